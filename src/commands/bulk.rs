//! `POST /api/v1/orders/bulk` (staff, SPEC 10): up to `MAX_ORDERS` new orders in one request.
//! Every order is checked before anything is done, and one that breaks a rule refuses the whole
//! request with its index (`orders[17].pickup.lat ...`). The Dispatcher then inserts them all in
//! one transaction and dispatches each exactly as a single `POST /api/v1/orders` would be, with
//! the same room messages.

use super::orders::CreateOrder;
use super::{to_value, Reply};
use crate::actors::dispatcher;
use crate::actors::Hub;
use crate::auth::Claims;
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::Role;
use std::collections::HashMap;

/// Orders one bulk request may carry.
pub const MAX_ORDERS: usize = 1000;

/// Who may place orders in bulk: the staff.
const STAFF: &[Role] = &[Role::Dispatcher, Role::Admin];

/// `POST /api/v1/orders/bulk`: the orders, in the order given. Answers the created orders, in
/// that order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CreateOrders {
    pub orders: Vec<CreateOrder>,
}

impl CreateOrders {
    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(STAFF, "create orders in bulk")?;
        let n = self.orders.len();
        if n == 0 || n > MAX_ORDERS {
            return Err(AppError::bad_request(format!(
                "`orders` must hold 1 to {MAX_ORDERS} orders, not {n}"
            )));
        }
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for (i, order) in self.orders.iter().enumerate() {
            if let Some(p) = order.problem() {
                return Err(AppError::bad_request(format!(
                    "orders[{i}].{} {}",
                    p.field, p.rule
                )));
            }
            if let Some(id) = order.id.as_deref() {
                if let Some(first) = ids.insert(id, i) {
                    return Err(AppError::bad_request(format!(
                        "orders[{i}].id repeats orders[{first}].id {id:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let orders = self
            .orders
            .into_iter()
            .map(|o| o.new_order(claims))
            .collect();
        let created = hub
            .dispatcher
            .send(dispatcher::CreateOrders { orders, answer })
            .await??;
        to_value(&created)
    }
}
