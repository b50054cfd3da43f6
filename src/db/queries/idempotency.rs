//! Idempotency keys: a key is claimed (a row with no answer yet) before its work runs, and the
//! answer is written into that row, in the same transaction as the work's effect when it has one.

use crate::db::models::to_db;
use crate::db::schema::idempotency_keys::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use diesel::QueryResult;

/// An answer to store under (`sub`, `key`): the serialized outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub sub: String,
    pub key: String,
    pub response: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The key is now this node's: do the work.
    Claimed,
    /// The key was answered within the window: the stored answer.
    Answered(String),
    /// Another request with the key is still running in this node.
    Running,
}

/// When a claim counts as given up.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    pub now: chrono::DateTime<chrono::Utc>,
    /// Keys from before this are outside the window: a new request.
    pub window_start: chrono::DateTime<chrono::Utc>,
    /// An unanswered claim of another process from before this was abandoned.
    pub claim_stale: chrono::DateTime<chrono::Utc>,
}

/// Claims (`sub`, `key`) for `node`.
///
/// The insert comes first, so two concurrent claims can never both win: on PostgreSQL the second
/// waits for the first to commit and then inserts nothing; on SQLite the write lock orders them.
/// A key outside the window is taken over. So is an unanswered claim of another process (an
/// earlier run of this engine, or another node) older than `claim_stale`: its work never
/// committed, since the answer is written with the work's change.
pub fn claim(
    conn: &mut DbConnection,
    sub: &str,
    key: &str,
    node: &str,
    at: Horizon,
) -> QueryResult<Claim> {
    let now = at.now;
    conn.transaction(|conn| {
        // The same SQL on both backends (diesel's MultiConnection has no upsert builder).
        let inserted = diesel::sql_query(
            "INSERT INTO idempotency_keys (sub, key, response, node, created_at) \
             VALUES ($1, $2, NULL, $3, $4) ON CONFLICT (sub, key) DO NOTHING",
        )
        .bind::<Text, _>(sub)
        .bind::<Text, _>(key)
        .bind::<Text, _>(node)
        .bind::<Timestamp, _>(to_db(now))
        .execute(conn)?;
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        let (response, owner, created): (Option<String>, Option<String>, chrono::NaiveDateTime) =
            dsl::idempotency_keys
                .filter(dsl::sub.eq(sub))
                .filter(dsl::key.eq(key))
                .select((dsl::response, dsl::node, dsl::created_at))
                .first(conn)?;
        let expired = created < to_db(at.window_start);
        let abandoned = owner.as_deref() != Some(node) && created < to_db(at.claim_stale);
        match response {
            Some(answer) if !expired => return Ok(Claim::Answered(answer)),
            None if !expired && !abandoned => return Ok(Claim::Running),
            _ => {}
        }
        // Expired, or abandoned: take it over.
        diesel::update(
            dsl::idempotency_keys
                .filter(dsl::sub.eq(sub))
                .filter(dsl::key.eq(key)),
        )
        .set((
            dsl::response.eq(None::<String>),
            dsl::node.eq(node),
            dsl::created_at.eq(to_db(now)),
        ))
        .execute(conn)?;
        Ok(Claim::Claimed)
    })
}

/// Writes the answer under its key. Called inside the effect's transaction (see
/// `commit::apply`), or alone for work without an effect to commit.
pub fn answer(
    conn: &mut DbConnection,
    answer: &StoredAnswer,
    now: chrono::DateTime<chrono::Utc>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO idempotency_keys (sub, key, response, node, created_at) \
         VALUES ($1, $2, $3, NULL, $4) \
         ON CONFLICT (sub, key) DO UPDATE SET response = excluded.response",
    )
    .bind::<Text, _>(&answer.sub)
    .bind::<Text, _>(&answer.key)
    .bind::<Text, _>(&answer.response)
    .bind::<Timestamp, _>(to_db(now))
    .execute(conn)?;
    Ok(())
}

/// Writes the answer unless the effect's transaction already did.
pub fn answer_if_unanswered(conn: &mut DbConnection, answer: &StoredAnswer) -> QueryResult<usize> {
    diesel::update(
        dsl::idempotency_keys
            .filter(dsl::sub.eq(&answer.sub))
            .filter(dsl::key.eq(&answer.key))
            .filter(dsl::response.is_null()),
    )
    .set(dsl::response.eq(&answer.response))
    .execute(conn)
}

/// Gives up an unanswered claim (the work failed in a way worth retrying).
pub fn release(conn: &mut DbConnection, sub: &str, key: &str) -> QueryResult<usize> {
    diesel::delete(
        dsl::idempotency_keys
            .filter(dsl::sub.eq(sub))
            .filter(dsl::key.eq(key))
            .filter(dsl::response.is_null()),
    )
    .execute(conn)
}

/// Gives up every unanswered claim of a process other than `node`: a cluster's new leader does
/// this when it takes the lock, since only the leader runs commands and the previous one is
/// gone, so their resends are done at once instead of after `realtime.idempotency_claim_s`.
pub fn release_claims_of_others(conn: &mut DbConnection, node: &str) -> QueryResult<usize> {
    diesel::delete(
        dsl::idempotency_keys
            .filter(dsl::response.is_null())
            .filter(dsl::node.ne(node)),
    )
    .execute(conn)
}

/// Forgets the answers given before `before`; answers how many were removed.
pub fn purge(conn: &mut DbConnection, before: chrono::DateTime<chrono::Utc>) -> QueryResult<usize> {
    diesel::delete(dsl::idempotency_keys.filter(dsl::created_at.lt(to_db(before)))).execute(conn)
}
