//! Drivers' tracks: sampled positions, written in batches (`actors::tracks`), read by driver
//! and time for route replay, purged after `tracking.retention_h`.

use crate::db::models::TrackPointRow;
use crate::db::schema::track_points::dsl;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::QueryResult;

/// Rows per statement: 6 binds each keeps a statement under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 5000;

/// Inserts `rows` in one multi-row statement (one per `ROWS_PER_STATEMENT`), in one
/// transaction; a sample already stored (the same driver and instant) is kept as it is.
/// Answers the rows inserted. Each backend's own connection writes it: a multi-row `INSERT ..
/// ON CONFLICT DO NOTHING` is what both speak, but not diesel's `MultiConnection` itself.
pub fn insert_batch(conn: &mut DbConnection, rows: &[TrackPointRow]) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    conn.transaction(|conn| {
        let mut n = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let insert = diesel::insert_into(dsl::track_points)
                .values(chunk)
                .on_conflict_do_nothing();
            n += match conn {
                DbConnection::Pg(c) => insert.execute(c)?,
                DbConnection::Sqlite(c) => insert.execute(c)?,
            };
        }
        Ok(n)
    })
}

/// `driver`'s samples from `since` to `until` (both included), oldest first.
pub fn between(
    conn: &mut DbConnection,
    driver: &str,
    since: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<TrackPointRow>> {
    dsl::track_points
        .filter(dsl::driver_id.eq(driver))
        .filter(dsl::at.ge(since))
        .filter(dsl::at.le(until))
        .order(dsl::at.asc())
        .select(TrackPointRow::as_select())
        .load(conn)
}

/// Deletes every sample older than `before`; answers how many.
pub fn purge(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(dsl::track_points.filter(dsl::at.lt(before))).execute(conn)
}
