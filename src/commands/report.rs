//! The emergency path's commands (SPEC 4): a socket's `report`, and
//! `POST /api/v1/events/delay`, which may also name the reporting driver. Both end in the
//! Dispatcher's `ReportIncident` and answer the `emergency_event`.

use super::orders::order_actor;
use super::{to_value, Reply};
use crate::actors::dispatcher::ReportIncident;
use crate::actors::order::GetOrder;
use crate::actors::Hub;
use crate::auth::Claims;
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::{client, DriverId, IncidentKind, OrderId, Role};

/// Who may report: the order's driver (the Dispatcher checks it holds the order), dispatchers,
/// admins.
pub const REPORTERS: &[Role] = &[Role::Driver, Role::Dispatcher, Role::Admin];

/// `report`: an incident on an order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub order_id: OrderId,
    pub kind: IncidentKind,
    pub comment: Option<String>,
}

impl Report {
    pub(super) fn admit(&self) -> Result<(), AppError> {
        client::check_comment(self.comment.as_deref())
    }

    pub(super) async fn run(self, hub: &Hub, claims: Claims, answer: Option<AnswerKey>) -> Reply {
        // Under the key, as every socket message's role (see the module doc of `commands`).
        claims.require(REPORTERS, "report")?;
        incident(
            hub,
            claims,
            self.order_id,
            self.kind,
            self.comment,
            None,
            answer,
        )
        .await
    }
}

/// `POST /api/v1/events/delay` (also `/event/delay`): a report that may name `driver_id`, which
/// must then be the sender itself, when a driver sends it, and the order's current driver.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReportDelay {
    pub order_id: OrderId,
    pub driver_id: Option<DriverId>,
    pub kind: IncidentKind,
    pub comment: Option<String>,
}

impl ReportDelay {
    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(REPORTERS, "report")?;
        client::check_comment(self.comment.as_deref())?;
        if let (Some(named), Some(me)) = (&self.driver_id, claims.driver()) {
            if named != me {
                return Err(AppError::forbidden("a driver reports only as itself"));
            }
        }
        Ok(())
    }

    pub(super) async fn run(self, hub: &Hub, claims: Claims, answer: Option<AnswerKey>) -> Reply {
        let holder = self.driver_id;
        incident(
            hub,
            claims,
            self.order_id,
            self.kind,
            self.comment,
            holder,
            answer,
        )
        .await
    }
}

/// Hands a report to the Dispatcher. An unknown or finished order, or one `holder` does not
/// hold, is answered here, outside the Dispatcher's atomic section (SPEC 4).
async fn incident(
    hub: &Hub,
    reporter: Claims,
    order_id: OrderId,
    kind: IncidentKind,
    comment: Option<String>,
    holder: Option<DriverId>,
    answer: Option<AnswerKey>,
) -> Reply {
    let order = order_actor(hub, &order_id).await?;
    if let Some(named) = &holder {
        let current = order.send(GetOrder).await?.order.driver_id;
        if current.as_ref() != Some(named) {
            return Err(AppError::conflict(format!(
                "driver {named} does not hold order {order_id}"
            )));
        }
    }
    let event = hub
        .dispatcher
        .send(ReportIncident {
            reporter,
            order_id,
            kind,
            comment,
            answer,
        })
        .await??;
    to_value(&event)
}
