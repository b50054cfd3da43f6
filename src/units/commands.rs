//! The emergency units' commands (SPEC 9), called by every transport through `commands::run`:
//! `POST /api/v1/emergencies`, `.../{id}/dispatch`, `.../{id}/complete` (also the unit's
//! `complete_emergency` message) and `.../{id}/cancel`. Each checks its input and role, then
//! hands the step to the `EmergencyDesk`, which commits it with the answer under the request's
//! key.

use super::desk::{self, DeskError};
use crate::actors::Hub;
use crate::auth::Claims;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::{
    client, DriverId, Emergency, EmergencyStatus, EmergencyType, LatLng, Role, Severity,
};

type Reply = Result<serde_json::Value, AppError>;

/// Who dispatches and cancels.
pub const AUTHORITIES: &[Role] = &[Role::Dispatcher, Role::Admin];
/// Who creates emergencies.
pub const CREATORS: &[Role] = &[Role::Reporter, Role::Dispatcher, Role::Admin];
/// Longest `description`.
pub const MAX_DESCRIPTION_LEN: usize = 2000;

/// `POST /api/v1/emergencies`: a new emergency, `PENDING` (dispatched at once when its
/// severity is in `units.auto_dispatch` and a unit is free). Answers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CreateEmergency {
    #[serde(rename = "type")]
    pub kind: EmergencyType,
    pub description: String,
    pub severity: Severity,
    pub location: LatLng,
}

impl CreateEmergency {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(CREATORS, "create emergencies")?;
        client::check_location(self.location.lat, self.location.lng, None, None, None)?;
        let len = self.description.chars().count();
        if self.description.trim().is_empty() || len > MAX_DESCRIPTION_LEN {
            return Err(AppError::bad_request(format!(
                "`description` must be 1 to {MAX_DESCRIPTION_LEN} characters"
            )));
        }
        Ok(())
    }

    pub(crate) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let at = desk::now();
        let emergency = Emergency {
            request_id: format!("EMG-{}", uuid::Uuid::new_v4().simple()),
            kind: self.kind,
            description: self.description,
            severity: self.severity,
            location: self.location,
            status: EmergencyStatus::Pending,
            unit_id: None,
            reported_by: claims.sub.clone(),
            created_at: at,
            updated_at: at,
        };
        let step = hub.units.send(desk::Create { emergency, answer }).await?;
        answered(hub, "", step).await
    }
}

/// `POST /api/v1/emergencies/{id}/dispatch` `{unit_id?}` (dispatcher, admin).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DispatchEmergency {
    pub request_id: String,
    pub unit_id: Option<DriverId>,
}

impl DispatchEmergency {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(AUTHORITIES, "dispatch units")
    }

    pub(crate) async fn run(self, hub: &Hub, answer: Option<AnswerKey>) -> Reply {
        let id = self.request_id.clone();
        let step = hub
            .units
            .send(desk::Dispatch {
                request_id: self.request_id,
                unit_id: self.unit_id,
                answer,
            })
            .await?;
        answered(hub, &id, step).await
    }
}

/// `complete_emergency` (the assigned unit's session) and `POST .../{id}/complete`
/// (dispatcher, admin, the assigned unit).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompleteEmergency {
    pub request_id: String,
}

impl CompleteEmergency {
    pub(crate) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        // Under the key, as every socket message's role (see `commands`); whether a driver is
        // the assigned unit is the desk's to say.
        claims.require(
            &[Role::Dispatcher, Role::Admin, Role::Driver],
            "complete emergencies",
        )?;
        finish(
            hub,
            claims,
            self.request_id,
            EmergencyStatus::Completed,
            answer,
        )
        .await
    }
}

/// `POST /api/v1/emergencies/{id}/cancel` (dispatcher, admin): its unit, if any, is freed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CancelEmergency {
    pub request_id: String,
}

impl CancelEmergency {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(AUTHORITIES, "cancel emergencies")
    }

    pub(crate) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        finish(
            hub,
            claims,
            self.request_id,
            EmergencyStatus::Cancelled,
            answer,
        )
        .await
    }
}

async fn finish(
    hub: &Hub,
    claims: &Claims,
    request_id: String,
    to: EmergencyStatus,
    answer: Option<AnswerKey>,
) -> Reply {
    let step = hub
        .units
        .send(desk::Finish {
            request_id: request_id.clone(),
            to,
            by: claims.clone(),
            answer,
        })
        .await?;
    answered(hub, &request_id, step).await
}

/// A step's answer: the emergency, or the error; one the desk does not hold open is read from
/// the database, outside the desk (unknown: 404; finished: 409).
async fn answered(hub: &Hub, id: &str, step: Result<Emergency, DeskError>) -> Reply {
    match step {
        Ok(e) => crate::commands::to_value(&e),
        Err(DeskError::Refused(e)) => Err(e),
        Err(DeskError::NotOpen) => {
            let key = id.to_string();
            let row = db::run(&hub.pool, move |c| Ok(queries::emergencies::find(c, &key)?)).await?;
            Err(match row {
                Some(r) => AppError::conflict(format!("emergency {id} is {}", r.status)),
                None => AppError::not_found(format!("emergency {id} does not exist")),
            })
        }
    }
}
