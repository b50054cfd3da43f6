//! Commands on orders: a driver's `accept`, `decline` and `order_status`, and the staff's
//! `POST /api/v1/orders`, `/orders/{id}/reassign` (the audited override) and `/orders/{id}/cancel`.

use super::driver::own_driver;
use super::{to_value, Reply};
use crate::actors::dispatcher::{self, OverrideAssignment};
use crate::actors::order::{self, OrderActor, SetDeliveryStatus};
use crate::actors::{missing_order, Hub};
use crate::auth::Claims;
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::Role;
use crate::protocol::{DeliveryStatus, DriverId, LatLng, Order, OrderId, OrderStatus, Priority};
use actix::Addr;

/// Who creates and cancels orders: dispatchers and admins, and partners their own (SPEC 10).
const CREATORS: &[Role] = &[Role::Dispatcher, Role::Admin, Role::Partner];

/// `accept`: the driver it was offered to accepts the order. Answers the order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accept {
    pub order_id: OrderId,
}

impl Accept {
    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let me = own_driver(claims, "accept an order")?;
        let order = order_actor(hub, &self.order_id)
            .await?
            .send(order::Accept {
                driver_id: me,
                answer,
            })
            .await??;
        to_value(&order)
    }
}

/// `decline`: the driver it was offered to hands the order back to the Dispatcher. Answers the
/// order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decline {
    pub order_id: OrderId,
}

impl Decline {
    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let me = own_driver(claims, "decline an order")?;
        // An unknown or finished order is answered here, never inside the Dispatcher's
        // decide-and-commit section (SPEC 4: nothing a client sends stalls it).
        order_actor(hub, &self.order_id).await?;
        let order = hub
            .dispatcher
            .send(dispatcher::DeclineOrder {
                driver_id: me,
                order_id: self.order_id,
                answer,
            })
            .await??;
        to_value(&order)
    }
}

/// `order_status`: the order's driver moves it along. Answers the order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetOrderStatus {
    pub order_id: OrderId,
    pub status: DeliveryStatus,
}

impl SetOrderStatus {
    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let me = own_driver(claims, "update an order's status")?;
        let order = order_actor(hub, &self.order_id)
            .await?
            .send(SetDeliveryStatus {
                driver_id: me,
                status: self.status,
                answer,
            })
            .await??;
        to_value(&order)
    }
}

/// `POST /api/v1/orders` (dispatcher, admin, partner): a new order, given to `driver_id` or, without one,
/// dispatched to the best available driver. Answers the order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CreateOrder {
    /// `ORD-` and 8 hex digits when not given.
    pub id: Option<String>,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    /// `normal` when not given.
    pub priority: Option<Priority>,
    /// `default` when not given.
    pub fleet: Option<String>,
    pub driver_id: Option<DriverId>,
    /// The customer it is delivered to.
    pub customer_id: Option<String>,
    /// The partner placing it; a partner's own token sets it, whatever the body says.
    pub partner_id: Option<String>,
}

/// A field of a new order that breaks a rule: its path in the order (`pickup.lat`) and the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub field: &'static str,
    pub rule: &'static str,
}

/// An optional customer or partner id breaks its rule unless it is 1 to 128 characters with no
/// control characters (it names a room).
fn bad_party(id: Option<&str>) -> bool {
    id.is_some_and(|v| v.is_empty() || v.len() > 128 || v.chars().any(char::is_control))
}

impl CreateOrder {
    /// The first rule this order's fields break, if any (its role is checked apart).
    pub fn problem(&self) -> Option<Problem> {
        let p = |field, rule| Some(Problem { field, rule });
        const PARTY: &str = "must be 1 to 128 printable characters";
        const LAT: &str = "must be a latitude in [-90, 90]";
        const LNG: &str = "must be a longitude in [-180, 180]";
        let lat_ok = |v: f64| v.is_finite() && (-90.0..=90.0).contains(&v);
        let lng_ok = |v: f64| v.is_finite() && (-180.0..=180.0).contains(&v);
        if bad_party(self.customer_id.as_deref()) {
            return p("customer_id", PARTY);
        }
        if bad_party(self.partner_id.as_deref()) {
            return p("partner_id", PARTY);
        }
        if !lat_ok(self.pickup.lat) {
            return p("pickup.lat", LAT);
        }
        if !lng_ok(self.pickup.lng) {
            return p("pickup.lng", LNG);
        }
        if !lat_ok(self.dropoff.lat) {
            return p("dropoff.lat", LAT);
        }
        if !lng_ok(self.dropoff.lng) {
            return p("dropoff.lng", LNG);
        }
        if self
            .id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 64)
        {
            return p("id", "must be 1 to 64 characters");
        }
        None
    }

    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(CREATORS, "create orders")?;
        match self.problem() {
            Some(p) => Err(AppError::bad_request(format!("`{}` {}", p.field, p.rule))),
            None => Ok(()),
        }
    }

    /// The order to insert, as `claims` places it: a partner as itself (its token names it,
    /// never the body), with an `ORD-` and 8 hex digits id when none is given.
    pub(super) fn new_order(self, claims: &Claims) -> (Order, Option<DriverId>) {
        let partner_id = match claims.partner() {
            Some(p) => Some(p.to_string()),
            None => self.partner_id,
        };
        let id = self
            .id
            .unwrap_or_else(|| format!("ORD-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        let now = chrono::Utc::now();
        let order = Order {
            id: OrderId(id),
            status: OrderStatus::Pending,
            driver_id: None,
            fleet: self.fleet.unwrap_or_else(|| "default".into()),
            priority: self.priority.unwrap_or(Priority::Normal),
            pickup: self.pickup,
            dropoff: self.dropoff,
            version: 1,
            accepted_at: None,
            eta: None,
            created_at: now,
            updated_at: now,
            customer_id: self.customer_id,
            partner_id,
        };
        (order, self.driver_id)
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let (order, driver) = self.new_order(claims);
        let order = hub
            .dispatcher
            .send(dispatcher::CreateOrder {
                order,
                driver,
                answer,
            })
            .await??;
        to_value(&order)
    }
}

/// `POST /api/v1/orders/{id}/reassign` (admin): the override, audited under the caller's `sub`;
/// `force` past an offline or full driver. Answers the order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reassign {
    pub order_id: OrderId,
    pub driver_id: DriverId,
    pub reason: String,
    pub force: bool,
}

impl Reassign {
    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(&[Role::Admin], "override an assignment")?;
        if self.reason.trim().is_empty() || self.reason.len() > 500 {
            return Err(AppError::bad_request(
                "`reason` must be 1 to 500 characters",
            ));
        }
        Ok(())
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        order_actor(hub, &self.order_id).await?;
        let order = hub
            .dispatcher
            .send(OverrideAssignment {
                actor: claims.sub.clone(),
                order_id: self.order_id,
                driver_id: self.driver_id,
                reason: self.reason,
                force: self.force,
                answer,
            })
            .await??;
        to_value(&order)
    }
}

/// `POST /api/v1/orders/{id}/cancel` (dispatcher, admin; a partner its own pending orders).
/// Answers the order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cancel {
    pub order_id: OrderId,
}

impl Cancel {
    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(CREATORS, "cancel orders")
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let order = order_actor(hub, &self.order_id).await?;
        let cancel = order::Cancel {
            by: claims.sub.clone(),
            partner: claims.partner().map(str::to_string),
            answer,
        };
        to_value(&order.send(cancel).await??)
    }
}

/// The actor of an active order; for one with no actor, `not_found` or `conflict` (finished),
/// read from the database here, outside any actor's atomic section.
pub async fn order_actor(hub: &Hub, id: &OrderId) -> Result<Addr<OrderActor>, AppError> {
    match hub.order(id) {
        Some(a) => Ok(a),
        None => Err(missing_order(hub, id).await),
    }
}
