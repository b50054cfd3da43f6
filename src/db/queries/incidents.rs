//! Incidents: every report with its risk and decision.

use crate::db::models::IncidentRow;
use crate::db::schema::incidents::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

/// Incidents, newest first, optionally of one order.
pub fn list(
    conn: &mut DbConnection,
    order: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<IncidentRow>> {
    let mut q = dsl::incidents.select(IncidentRow::as_select()).into_boxed();
    if let Some(o) = order {
        q = q.filter(dsl::order_id.eq(o.to_string()));
    }
    q.order((dsl::created_at.desc(), dsl::id.desc()))
        .limit(limit)
        .load(conn)
}

/// How many incidents `driver` reported since `since`: a feature of the risk model.
pub fn count_for_driver_since(
    conn: &mut DbConnection,
    driver: &str,
    since: chrono::NaiveDateTime,
) -> QueryResult<i64> {
    dsl::incidents
        .filter(dsl::driver_id.eq(driver))
        .filter(dsl::created_at.ge(since))
        .count()
        .get_result(conn)
}
