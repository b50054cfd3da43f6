//! Answers to state-changing requests carrying an idempotency key.

use crate::db::models::to_db;
use crate::db::schema::idempotency_keys::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

/// The stored answer for (`sub`, `key`) given after `not_before`, if any.
pub fn find(
    conn: &mut DbConnection,
    sub: &str,
    key: &str,
    not_before: chrono::DateTime<chrono::Utc>,
) -> QueryResult<Option<String>> {
    dsl::idempotency_keys
        .filter(dsl::sub.eq(sub))
        .filter(dsl::key.eq(key))
        .filter(dsl::created_at.ge(to_db(not_before)))
        .select(dsl::response)
        .first(conn)
        .optional()
}

/// Stores the answer for (`sub`, `key`), replacing an expired one.
pub fn store(
    conn: &mut DbConnection,
    sub: &str,
    key: &str,
    response: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<()> {
    diesel::delete(
        dsl::idempotency_keys
            .filter(dsl::sub.eq(sub))
            .filter(dsl::key.eq(key)),
    )
    .execute(conn)?;
    diesel::insert_into(dsl::idempotency_keys)
        .values((
            dsl::sub.eq(sub),
            dsl::key.eq(key),
            dsl::response.eq(response),
            dsl::created_at.eq(to_db(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets the answers given before `before`; answers how many were removed.
pub fn purge(conn: &mut DbConnection, before: chrono::DateTime<chrono::Utc>) -> QueryResult<usize> {
    diesel::delete(dsl::idempotency_keys.filter(dsl::created_at.lt(to_db(before)))).execute(conn)
}
