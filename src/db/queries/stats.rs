//! Statistics (`GET /api/v1/stats`): counts grouped in the database, so reading them costs the
//! same however many orders and incidents there are; only one day's deliveries are loaded, to
//! average their durations on either backend alike.

use crate::db::schema::{drivers, incidents, orders};
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::QueryResult;

const HOLDING: [&str; 3] = ["assigned", "picked_up", "out_for_delivery"];

/// Orders by status: of one partner, or (`None`) every order.
pub fn orders_by_status(
    conn: &mut DbConnection,
    partner: Option<&str>,
) -> QueryResult<Vec<(String, i64)>> {
    match partner {
        Some(p) => orders::table
            .filter(orders::partner_id.eq(p))
            .group_by(orders::status)
            .select((orders::status, count_star()))
            .load(conn),
        None => orders::table
            .group_by(orders::status)
            .select((orders::status, count_star()))
            .load(conn),
    }
}

/// The orders delivered since `since` (of one partner, or all): when each was accepted, if it
/// was, and when it was delivered (a delivered order never changes again, so its `updated_at`).
pub fn delivered_since(
    conn: &mut DbConnection,
    partner: Option<&str>,
    since: NaiveDateTime,
) -> QueryResult<Vec<(Option<NaiveDateTime>, NaiveDateTime)>> {
    let mut q = orders::table
        .filter(orders::status.eq("delivered"))
        .filter(orders::updated_at.ge(since))
        .select((orders::accepted_at, orders::updated_at))
        .into_boxed();
    if let Some(p) = partner {
        q = q.filter(orders::partner_id.eq(p.to_string()));
    }
    q.load(conn)
}

/// Incidents reported since `since`, by kind.
pub fn incidents_by_kind(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> QueryResult<Vec<(String, i64)>> {
    incidents::table
        .filter(incidents::created_at.ge(since))
        .group_by(incidents::kind)
        .select((incidents::kind, count_star()))
        .load(conn)
}

/// Every driver's availability as stored (`online`/`offline`), capacity, and the orders it
/// holds now.
pub fn drivers_with_load(conn: &mut DbConnection) -> QueryResult<Vec<(String, i32, i64)>> {
    let rows: Vec<(String, String, i32)> = drivers::table
        .select((drivers::id, drivers::status, drivers::capacity))
        .load(conn)?;
    let held: Vec<(Option<String>, i64)> = orders::table
        .filter(orders::status.eq_any(HOLDING))
        .filter(orders::driver_id.is_not_null())
        .group_by(orders::driver_id)
        .select((orders::driver_id, count_star()))
        .load(conn)?;
    let held: std::collections::HashMap<String, i64> = held
        .into_iter()
        .filter_map(|(d, n)| d.map(|d| (d, n)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(id, status, capacity)| {
            let n = held.get(&id).copied().unwrap_or(0);
            (status, capacity, n)
        })
        .collect())
}
