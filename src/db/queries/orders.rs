//! Orders: reads, and the exclusions that keep an order from going back to a driver.

use crate::db::models::OrderRow;
use crate::db::schema::{order_exclusions, orders::dsl};
use crate::db::DbConnection;
use crate::protocol::OrderStatus;
use diesel::prelude::*;
use diesel::QueryResult;

const HOLDING: [&str; 3] = ["assigned", "picked_up", "out_for_delivery"];

/// The order with `id`, if any.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OrderRow>> {
    dsl::orders
        .filter(dsl::id.eq(id))
        .select(OrderRow::as_select())
        .first(conn)
        .optional()
}

/// Whose orders a list is of: each id given narrows it (none: every order).
#[derive(Debug, Clone, Default)]
pub struct Whose {
    pub driver: Option<String>,
    pub customer: Option<String>,
    pub partner: Option<String>,
}

/// Orders, newest first, optionally of one driver, customer or partner, or one status.
pub fn list(
    conn: &mut DbConnection,
    whose: &Whose,
    status: Option<OrderStatus>,
    limit: i64,
) -> QueryResult<Vec<OrderRow>> {
    let mut q = dsl::orders.select(OrderRow::as_select()).into_boxed();
    if let Some(d) = &whose.driver {
        q = q.filter(dsl::driver_id.eq(d.clone()));
    }
    if let Some(c) = &whose.customer {
        q = q.filter(dsl::customer_id.eq(c.clone()));
    }
    if let Some(p) = &whose.partner {
        q = q.filter(dsl::partner_id.eq(p.clone()));
    }
    if let Some(s) = status {
        q = q.filter(dsl::status.eq(s.as_str()));
    }
    q.order((dsl::created_at.desc(), dsl::id.desc()))
        .limit(limit)
        .load(conn)
}

/// Every order not yet delivered or cancelled: what the actors are rebuilt from.
pub fn active(conn: &mut DbConnection) -> QueryResult<Vec<OrderRow>> {
    dsl::orders
        .filter(dsl::status.ne_all(["delivered", "cancelled"]))
        .order((dsl::created_at.asc(), dsl::id.asc()))
        .select(OrderRow::as_select())
        .load(conn)
}

/// How many orders `driver` holds now.
pub fn held_by(conn: &mut DbConnection, driver: &str) -> QueryResult<i64> {
    dsl::orders
        .filter(dsl::driver_id.eq(driver))
        .filter(dsl::status.eq_any(HOLDING))
        .count()
        .get_result(conn)
}

/// Drivers this order must not go to.
pub fn exclusions(conn: &mut DbConnection, order: &str) -> QueryResult<Vec<String>> {
    order_exclusions::table
        .filter(order_exclusions::order_id.eq(order))
        .select(order_exclusions::driver_id)
        .load(conn)
}

/// Every exclusion of the active orders, for the rebuild.
pub fn all_exclusions(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    order_exclusions::table
        .inner_join(dsl::orders.on(dsl::id.eq(order_exclusions::order_id)))
        .filter(dsl::status.ne_all(["delivered", "cancelled"]))
        .select((order_exclusions::order_id, order_exclusions::driver_id))
        .load(conn)
}
