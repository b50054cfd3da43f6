//! Drivers: registration, status and location.

use crate::db::models::DriverRow;
use crate::db::schema::drivers::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

/// Inserts a driver.
pub fn insert(conn: &mut DbConnection, row: &DriverRow) -> QueryResult<()> {
    diesel::insert_into(dsl::drivers)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Inserts a driver unless one with its id exists; answers whether it did. Two registrations
/// of one id at once never fail: one inserts, the other inserts nothing.
/// On PostgreSQL the losing insert waits for the winner's commit, then fails with a unique
/// violation, which is the answer (call it outside a transaction, or as its first statement).
pub fn insert_new(conn: &mut DbConnection, row: &DriverRow) -> QueryResult<bool> {
    use diesel::result::{DatabaseErrorKind, Error};
    match diesel::insert_into(dsl::drivers).values(row).execute(conn) {
        Ok(_) => Ok(true),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The driver with `id`, if any.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<DriverRow>> {
    dsl::drivers
        .filter(dsl::id.eq(id))
        .select(DriverRow::as_select())
        .first(conn)
        .optional()
}

/// Every driver, by id.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<DriverRow>> {
    dsl::drivers
        .order(dsl::id.asc())
        .select(DriverRow::as_select())
        .load(conn)
}

/// Stores a driver's availability.
pub fn set_status(
    conn: &mut DbConnection,
    id: &str,
    status: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(dsl::drivers.filter(dsl::id.eq(id)))
        .set((dsl::status.eq(status), dsl::updated_at.eq(now)))
        .execute(conn)
}

/// Stores a driver's last location.
pub fn set_location(
    conn: &mut DbConnection,
    id: &str,
    loc: &crate::protocol::Location,
) -> QueryResult<usize> {
    diesel::update(dsl::drivers.filter(dsl::id.eq(id)))
        .set((
            dsl::lat.eq(Some(loc.lat)),
            dsl::lng.eq(Some(loc.lng)),
            dsl::speed.eq(loc.speed),
            dsl::heading.eq(loc.heading),
            dsl::location_at.eq(Some(crate::db::models::to_db(loc.timestamp))),
        ))
        .execute(conn)
}

/// Takes the driver's row lock for the rest of the transaction (a write, so SQLite takes its
/// write lock first and PostgreSQL serializes concurrent assignments to one driver).
pub fn lock(conn: &mut DbConnection, id: &str, now: chrono::NaiveDateTime) -> QueryResult<usize> {
    diesel::update(dsl::drivers.filter(dsl::id.eq(id)))
        .set(dsl::updated_at.eq(now))
        .execute(conn)
}
