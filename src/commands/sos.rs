//! SOS without an order (SPEC 10): a driver's `sos` and `POST /api/v1/sos/{id}/resolve`. Each is
//! one transaction: the alert's row (inserted, or resolved), its announcement to `dispatch` and
//! the driver's fleet room as one publication (one `id`, so a session in both rooms keeps one
//! copy), and the answer under the request's key; then the fan-out.

use super::Reply;
use crate::actors::{self, Hub};
use crate::auth::Claims;
use crate::db::models::{to_db, SosRow};
use crate::db::{self, queries, queries::commit};
use crate::error::AppError;
use crate::idempotency::{self, AnswerKey};
use crate::protocol::{client, Role, Room, ServerMsg, SosAlert};
use crate::telemetry::{q, q_or_dash};

/// Who may resolve an alert.
pub const RESOLVERS: &[Role] = &[Role::Admin, Role::Dispatcher];

/// `sos`: the sending driver's alert at (`lat`, `lng`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sos {
    pub lat: f64,
    pub lng: f64,
    pub message: Option<String>,
}

impl Sos {
    pub(super) fn admit(&self) -> Result<(), AppError> {
        client::check_sos(self.lat, self.lng, self.message.as_deref())
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        // Under the key, as every socket message's role (see the module doc of `commands`).
        claims.require(&[Role::Driver], "raise an SOS")?;
        let driver_id = claims
            .driver()
            .cloned()
            .ok_or_else(|| AppError::forbidden("a driver token without a driver_id"))?;
        let alert = SosAlert {
            alert_id: uuid::Uuid::new_v4().to_string(),
            driver_id,
            fleet: claims.fleet.clone(),
            lat: self.lat,
            lng: self.lng,
            message: self.message,
            created_at: now(),
            resolved_at: None,
            resolved_by: None,
        };
        log::info!(
            "[EVENT_RECEIVED] sos alert={} driver={} fleet={} lat={} lng={} sub={} message={}",
            alert.alert_id,
            q(&alert.driver_id),
            q(&alert.fleet),
            alert.lat,
            alert.lng,
            q(&claims.sub),
            q_or_dash(alert.message.as_ref())
        );
        let msg = ServerMsg::EmergencyAlert {
            alert_id: alert.alert_id.clone(),
            driver_id: alert.driver_id.clone(),
            lat: alert.lat,
            lng: alert.lng,
            message: alert.message.clone(),
            timestamp: alert.created_at,
        };
        let value = super::to_value(&alert)?;
        let change = commit::Change {
            messages: vec![announcement(&alert.fleet, msg)],
            answer: idempotency::answer_ok(answer.as_ref(), &value),
            ..Default::default()
        };
        let row = SosRow::from(&alert);
        let published = db::run(&hub.pool, move |c| {
            diesel::Connection::transaction(c, |c| {
                queries::sos::insert(c, &row)?;
                commit::apply(c, change, alert.created_at)
            })
        })
        .await?;
        actors::publish(hub, "sos", published).await;
        Ok(value)
    }
}

/// `POST /api/v1/sos/{id}/resolve`: staff close an open alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolveSos {
    pub alert_id: String,
}

impl ResolveSos {
    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(RESOLVERS, "resolve an SOS")
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let by = claims.sub.clone();
        let id = self.alert_id;
        let now = now();
        let (published, value) = db::run(&hub.pool, move |c| {
            diesel::Connection::transaction(c, |c| {
                // The write first (db/mod.rs): of two resolves at once, one changes the row.
                let changed = queries::sos::resolve(c, &id, &by, to_db(now))?;
                let row = queries::sos::find(c, &id)?
                    .ok_or_else(|| AppError::not_found(format!("SOS {id} does not exist")))?;
                if changed == 0 {
                    return Err(AppError::conflict(format!("SOS {id} is already resolved")));
                }
                let alert = SosAlert::from(row);
                let msg = ServerMsg::EmergencyAlertResolved {
                    alert_id: alert.alert_id.clone(),
                    driver_id: alert.driver_id.clone(),
                    resolved_by: by.clone(),
                    timestamp: now,
                };
                let value = super::to_value(&alert)?;
                let change = commit::Change {
                    messages: vec![announcement(&alert.fleet, msg)],
                    answer: idempotency::answer_ok(answer.as_ref(), &value),
                    ..Default::default()
                };
                Ok((commit::apply(c, change, now)?, value))
            })
        })
        .await?;
        log::info!(
            "[EVENT_RECEIVED] sos resolved alert={} driver={} by={}",
            value["alert_id"].as_str().unwrap_or_default(),
            q(&value["driver_id"].as_str().unwrap_or_default()),
            q(&claims.sub)
        );
        actors::publish(hub, "sos_resolved", published).await;
        Ok(value)
    }
}

/// The time to stamp, at the databases' precision (microseconds), so the answer given now and
/// the alert read later agree.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)
}

/// An alert's message to `dispatch` and `fleet:<fleet>`: one publication, one `id`.
fn announcement(fleet: &str, msg: ServerMsg) -> commit::Publication {
    commit::Publication::to_all(vec![Room::Dispatch, Room::fleet(fleet)], msg)
}
