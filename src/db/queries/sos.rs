//! SOS alerts: a driver's alert is inserted with its `emergency_alert`, and resolved once, with
//! its `emergency_alert_resolved`, both inside `commands::sos`'s transaction.

use crate::db::models::SosRow;
use crate::db::schema::sos_alerts::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

pub fn insert(conn: &mut DbConnection, row: &SosRow) -> QueryResult<usize> {
    diesel::insert_into(dsl::sos_alerts)
        .values(row)
        .execute(conn)
}

pub fn find(conn: &mut DbConnection, alert_id: &str) -> QueryResult<Option<SosRow>> {
    dsl::sos_alerts
        .filter(dsl::alert_id.eq(alert_id))
        .select(SosRow::as_select())
        .first(conn)
        .optional()
}

/// Marks the alert resolved by `by` at `at`, provided it is still open: answers the rows changed
/// (0 when it was already resolved, or is unknown).
pub fn resolve(
    conn: &mut DbConnection,
    alert_id: &str,
    by: &str,
    at: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        dsl::sos_alerts
            .filter(dsl::alert_id.eq(alert_id))
            .filter(dsl::resolved_at.is_null()),
    )
    .set((dsl::resolved_at.eq(Some(at)), dsl::resolved_by.eq(Some(by))))
    .execute(conn)
}

/// Alerts, newest first; only the unresolved ones when `open`.
pub fn list(conn: &mut DbConnection, open: bool, limit: i64) -> QueryResult<Vec<SosRow>> {
    let mut q = dsl::sos_alerts.select(SosRow::as_select()).into_boxed();
    if open {
        q = q.filter(dsl::resolved_at.is_null());
    }
    q.order((dsl::created_at.desc(), dsl::alert_id.desc()))
        .limit(limit)
        .load(conn)
}
