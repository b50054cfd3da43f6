//! Commands: what a client message asks for, checked against the sender's role, run against
//! the actors, the same for every transport (DESIGN: transport → command → system actor).
//!
//! A command's value is the raw result (the order, the event, the status): the actor that
//! commits it stores that value under the request's idempotency key in the same transaction, and
//! `AckShape` makes the transport's ack from it, for a first answer and a repeat alike.

use crate::actors::dispatcher::{DeclineOrder, ReportIncident};
use crate::actors::driver::{DriverActor, SetAvailability, UpdateLocation};
use crate::actors::order::{Accept, OrderActor, SetDeliveryStatus};
use crate::actors::{missing_order, Hub};
use crate::auth::Claims;
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::*;
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;

type Reply = Result<serde_json::Value, AppError>;

/// The work a state-changing message asks for, checked against the sender's role. Its value is
/// what the actor that commits it stores under `answer` (the idempotency key), so it is the raw
/// result (the order, the event, the status); `AckShape` makes the ack from it.
pub fn action(
    hub: Arc<Hub>,
    claims: Claims,
    msg: ClientMsg,
    answer: Option<AnswerKey>,
) -> LocalBoxFuture<'static, Reply> {
    Box::pin(async move {
        match msg {
            ClientMsg::Status { status, driver_id } => {
                let driver =
                    driver_actor(&hub, &claims, driver_id.as_ref(), "set a driver's status")?;
                let s = driver.send(SetAvailability { status, answer }).await??;
                to_value(&s)
            }
            ClientMsg::Location {
                lat,
                lng,
                speed,
                heading,
                driver_id,
                ..
            } => {
                let driver = driver_actor(&hub, &claims, driver_id.as_ref(), "send a location")?;
                let location = Location {
                    lat,
                    lng,
                    speed,
                    heading,
                    timestamp: chrono::Utc::now(),
                };
                // Awaited: once acked, the Dispatcher has the position queued before any
                // later report from this client.
                driver.send(UpdateLocation { location }).await?;
                Ok(serde_json::Value::Null)
            }
            ClientMsg::Accept { order_id } => {
                let me = own_driver(&claims, "accept an order")?;
                let order = order_actor(&hub, &order_id)
                    .await?
                    .send(Accept {
                        driver_id: me,
                        answer,
                    })
                    .await??;
                to_value(&order)
            }
            ClientMsg::Decline { order_id } => {
                let me = own_driver(&claims, "decline an order")?;
                // An unknown or finished order is answered here, never inside the Dispatcher's
                // decide-and-commit section (SPEC 4: nothing a client sends stalls it).
                order_actor(&hub, &order_id).await?;
                let order = hub
                    .dispatcher
                    .send(DeclineOrder {
                        driver_id: me,
                        order_id,
                        answer,
                    })
                    .await??;
                to_value(&order)
            }
            ClientMsg::OrderStatus { order_id, status } => {
                let me = own_driver(&claims, "update an order's status")?;
                let order = order_actor(&hub, &order_id)
                    .await?
                    .send(SetDeliveryStatus {
                        driver_id: me,
                        status,
                        answer,
                    })
                    .await??;
                to_value(&order)
            }
            ClientMsg::Report {
                order_id,
                kind,
                comment,
            } => {
                claims.require(&[Role::Driver, Role::Dispatcher, Role::Admin], "report")?;
                order_actor(&hub, &order_id).await?;
                let event = hub
                    .dispatcher
                    .send(ReportIncident {
                        reporter: claims,
                        order_id,
                        kind,
                        comment,
                        answer,
                    })
                    .await??;
                to_value(&event)
            }
            other => Err(AppError::internal(format!(
                "{} is not handled as an action",
                other.kind()
            ))),
        }
    })
}

/// How an ack is made from a work's value.
#[derive(Debug, Clone, Copy)]
pub enum AckShape {
    /// `{"event": value}` (a report: the value is the `emergency_event`).
    Event,
    /// `{"order": value}`.
    Order,
    /// `{"order_id", "status"}` of the order (a decline).
    Declined,
    /// `{"status": value}`.
    Status,
    /// The value itself.
    Plain,
}

impl AckShape {
    pub fn of(msg: &ClientMsg) -> AckShape {
        match msg {
            ClientMsg::Report { .. } => AckShape::Event,
            ClientMsg::Accept { .. } | ClientMsg::OrderStatus { .. } => AckShape::Order,
            ClientMsg::Decline { .. } => AckShape::Declined,
            ClientMsg::Status { .. } => AckShape::Status,
            _ => AckShape::Plain,
        }
    }

    pub fn ack(self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::json;
        match self {
            AckShape::Event => json!({ "event": value }),
            AckShape::Order => json!({ "order": value }),
            // An answer stored before v1.1 is already the ack.
            AckShape::Declined if value.get("order_id").is_some() => value,
            AckShape::Declined => json!({"order_id": value["id"], "status": value["status"]}),
            AckShape::Status if value.get("status").is_some() => value,
            AckShape::Status => json!({ "status": value }),
            AckShape::Plain => value,
        }
    }
}

pub fn to_value<T: serde::Serialize>(v: &T) -> Reply {
    serde_json::to_value(v).map_err(|e| AppError::internal(format!("encoding an answer: {e}")))
}

fn own_driver(claims: &Claims, what: &str) -> Result<DriverId, AppError> {
    claims
        .driver()
        .cloned()
        .ok_or_else(|| AppError::forbidden(format!("only a driver may {what}")))
}

/// The sender's own driver actor. A message naming another driver (`driver_id`) is `forbidden`.
fn driver_actor(
    hub: &Hub,
    claims: &Claims,
    named: Option<&DriverId>,
    what: &str,
) -> Result<Addr<DriverActor>, AppError> {
    let me = own_driver(claims, what)?;
    if let Some(other) = named.filter(|d| **d != me) {
        return Err(AppError::forbidden(format!(
            "you are driver {me}: you may not {what} for driver {other}"
        )));
    }
    hub.driver(&me)
        .ok_or_else(|| AppError::not_found(format!("driver {me} is not registered")))
}

/// The actor of an active order; for one with no actor, `not_found` or `conflict` (finished),
/// read from the database here, outside any actor's atomic section.
pub async fn order_actor(hub: &Hub, id: &OrderId) -> Result<Addr<OrderActor>, AppError> {
    match hub.order(id) {
        Some(a) => Ok(a),
        None => Err(missing_order(hub, id).await),
    }
}
