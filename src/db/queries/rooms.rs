//! Room history: per-room `seq` allocation and the stored messages resume is served from.

use crate::db::models::{to_db, RoomEventRow};
use crate::db::schema::{room_events, room_seqs};
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryResult;

/// Reserves the next `n` seqs of `room` and answers the last of them (the first is `last - n +
/// 1`). Call inside the writer's transaction: the upsert holds the counter's row lock until
/// commit, so seqs are handed out once and committed in order. One statement on both backends:
/// two writers' first messages to a new room never collide (the second waits for the first's
/// insert, then increments it), and a transaction reserving several rooms takes them in the
/// order given, which `commit::apply` keeps sorted by name so no two transactions deadlock.
pub fn reserve(conn: &mut DbConnection, room: &str, n: i64) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Reserved {
        #[diesel(sql_type = BigInt)]
        seq: i64,
    }
    let row: Reserved = diesel::sql_query(
        "INSERT INTO room_seqs (room, seq) VALUES ($1, $2) \
         ON CONFLICT (room) DO UPDATE SET seq = room_seqs.seq + excluded.seq \
         RETURNING seq",
    )
    .bind::<Text, _>(room)
    .bind::<BigInt, _>(n)
    .get_result(conn)?;
    Ok(row.seq)
}

/// Stores one message of `room` under `seq` (reserved with `reserve`); `build` makes its text
/// from the seq.
pub fn insert(
    conn: &mut DbConnection,
    room: &str,
    seq: i64,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
    build: impl FnOnce(i64) -> String,
) -> QueryResult<RoomEventRow> {
    let row = RoomEventRow {
        room: room.to_string(),
        seq,
        id: id.to_string(),
        payload: build(seq),
        created_at: to_db(now),
    };
    diesel::insert_into(room_events::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

/// The last seq allocated in `room` (0 when nothing was published).
pub fn current_seq(conn: &mut DbConnection, room: &str) -> QueryResult<i64> {
    Ok(room_seqs::table
        .filter(room_seqs::room.eq(room))
        .select(room_seqs::seq)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

/// The messages of `room` after `since`, in order, at most `limit`.
pub fn since(
    conn: &mut DbConnection,
    room: &str,
    since: i64,
    limit: i64,
) -> QueryResult<Vec<RoomEventRow>> {
    room_events::table
        .filter(room_events::room.eq(room))
        .filter(room_events::seq.gt(since))
        .order(room_events::seq.asc())
        .limit(limit)
        .select(RoomEventRow::as_select())
        .load(conn)
}

/// Every room's copy of the publications `ids`: (id, room, seq, committed at), by commit time.
/// A Socket.IO restore skips a replayed message the socket already had through another room.
pub fn copies(
    conn: &mut DbConnection,
    ids: &[String],
) -> QueryResult<Vec<(String, String, i64, chrono::NaiveDateTime)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    room_events::table
        .filter(room_events::id.eq_any(ids))
        .order((room_events::created_at.asc(), room_events::id.asc()))
        .select((
            room_events::id,
            room_events::room,
            room_events::seq,
            room_events::created_at,
        ))
        .load(conn)
}

/// The oldest seq still kept for `room`, if any.
pub fn oldest_seq(conn: &mut DbConnection, room: &str) -> QueryResult<Option<i64>> {
    room_events::table
        .filter(room_events::room.eq(room))
        .select(diesel::dsl::min(room_events::seq))
        .first(conn)
}

/// Trims room history: drops messages older than `before`, and in every room all but the last
/// `keep` seqs. The rooms' seq counters are untouched, so seqs keep growing. Answers how many
/// messages were removed.
pub fn trim(
    conn: &mut DbConnection,
    before: chrono::DateTime<chrono::Utc>,
    keep: i64,
) -> QueryResult<usize> {
    let old = diesel::delete(room_events::table.filter(room_events::created_at.lt(to_db(before))))
        .execute(conn)?;
    // `keep` is an integer from the configuration, so it is safe to write into the statement;
    // the same SQL runs on SQLite and PostgreSQL.
    let beyond = diesel::sql_query(format!(
        "DELETE FROM room_events WHERE seq <= \
         (SELECT s.seq FROM room_seqs s WHERE s.room = room_events.room) - {keep}"
    ))
    .execute(conn)?;
    Ok(old + beyond)
}
