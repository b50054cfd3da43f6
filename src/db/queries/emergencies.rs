//! Emergencies (SPEC 9): inserted at creation, then moved through their lifecycle, each step a
//! conditional write inside the emergency desk's transaction (`crate::units`), so a step whose
//! precondition no longer holds changes nothing. A unit is on at most one `ASSIGNED` emergency:
//! the unique index `emergencies_one_per_unit` refuses a second, whatever commits at once.

use crate::db::models::{DriverRow, EmergencyRow};
use crate::db::schema::drivers;
use crate::db::schema::emergencies::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

pub fn insert(conn: &mut DbConnection, row: &EmergencyRow) -> QueryResult<usize> {
    diesel::insert_into(dsl::emergencies)
        .values(row)
        .execute(conn)
}

pub fn find(conn: &mut DbConnection, request_id: &str) -> QueryResult<Option<EmergencyRow>> {
    dsl::emergencies
        .filter(dsl::request_id.eq(request_id))
        .select(EmergencyRow::as_select())
        .first(conn)
        .optional()
}

/// Assigns a `PENDING` emergency to `unit`: answers the rows changed (0 when it is not pending).
pub fn assign(
    conn: &mut DbConnection,
    request_id: &str,
    unit: &str,
    at: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        dsl::emergencies
            .filter(dsl::request_id.eq(request_id))
            .filter(dsl::status.eq("PENDING")),
    )
    .set((
        dsl::status.eq("ASSIGNED"),
        dsl::unit_id.eq(Some(unit)),
        dsl::updated_at.eq(at),
    ))
    .execute(conn)
}

/// Moves an emergency in one of `from` to `to` (`COMPLETED`, `CANCELLED`): answers the rows
/// changed (0 when it was in none of `from`).
pub fn finish(
    conn: &mut DbConnection,
    request_id: &str,
    from: &[&str],
    to: &str,
    at: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        dsl::emergencies
            .filter(dsl::request_id.eq(request_id))
            .filter(dsl::status.eq_any(from)),
    )
    .set((dsl::status.eq(to), dsl::updated_at.eq(at)))
    .execute(conn)
}

/// The emergencies `unit` is assigned to (at most one, by the unique index).
pub fn assigned_to(conn: &mut DbConnection, unit: &str) -> QueryResult<i64> {
    dsl::emergencies
        .filter(dsl::unit_id.eq(unit))
        .filter(dsl::status.eq("ASSIGNED"))
        .count()
        .get_result(conn)
}

/// The emergencies still open (`PENDING` or `ASSIGNED`), oldest first: what the desk rebuilds.
pub fn active(conn: &mut DbConnection) -> QueryResult<Vec<EmergencyRow>> {
    dsl::emergencies
        .filter(dsl::status.eq_any(["PENDING", "ASSIGNED"]))
        .order((dsl::created_at.asc(), dsl::request_id.asc()))
        .select(EmergencyRow::as_select())
        .load(conn)
}

/// Emergencies newest first, of `status` when given, of `reported_by` when given.
pub fn list(
    conn: &mut DbConnection,
    status: Option<&str>,
    reported_by: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<EmergencyRow>> {
    let mut q = dsl::emergencies
        .select(EmergencyRow::as_select())
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(dsl::status.eq(s.to_string()));
    }
    if let Some(r) = reported_by {
        q = q.filter(dsl::reported_by.eq(r.to_string()));
    }
    q.order((dsl::created_at.desc(), dsl::request_id.desc()))
        .limit(limit)
        .load(conn)
}

/// The drivers of the unit fleets, by id.
pub fn units(conn: &mut DbConnection, fleets: &[String]) -> QueryResult<Vec<DriverRow>> {
    drivers::table
        .filter(drivers::fleet.eq_any(fleets))
        .order(drivers::id.asc())
        .select(DriverRow::as_select())
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_db::{on_both_backends, TestDb};

    fn row(id: &str) -> EmergencyRow {
        let now = crate::db::models::to_db(chrono::Utc::now());
        EmergencyRow {
            request_id: id.into(),
            kind: "fire".into(),
            description: "smoke".into(),
            severity: "high".into(),
            lat: 1.0,
            lng: 2.0,
            status: "PENDING".into(),
            unit_id: None,
            reported_by: "rep".into(),
            created_at: now,
            updated_at: now,
        }
    }

    fn a_unit_is_never_assigned_twice_and_a_step_needs_its_status(db: &TestDb) {
        let c = &mut db.pool.get().unwrap_or_else(|e| panic!("{e}"));
        let now = crate::db::models::to_db(chrono::Utc::now());
        for id in ["E1", "E2"] {
            insert(c, &row(id)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(assign(c, "E1", "U1", now).ok(), Some(1));
        assert_eq!(
            assign(c, "E1", "U2", now).ok(),
            Some(0),
            "not pending any more"
        );
        let second = assign(c, "E2", "U1", now);
        assert!(
            matches!(
                second,
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ))
            ),
            "the index refuses a unit's second emergency: {second:?}"
        );
        assert_eq!(assigned_to(c, "U1").ok(), Some(1));
        assert_eq!(
            finish(c, "E1", &["ASSIGNED"], "COMPLETED", now).ok(),
            Some(1)
        );
        assert_eq!(
            finish(c, "E1", &["ASSIGNED"], "COMPLETED", now).ok(),
            Some(0)
        );
        assert_eq!(assign(c, "E2", "U1", now).ok(), Some(1), "free again");
        let open: Vec<String> = active(c)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(open, vec!["E2".to_string()]);
    }
    on_both_backends!(a_unit_is_never_assigned_twice_and_a_step_needs_its_status);
}
