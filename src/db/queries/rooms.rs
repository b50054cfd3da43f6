//! Room history: per-room `seq` allocation and the stored messages resume is served from.

use crate::db::models::{to_db, RoomEventRow};
use crate::db::schema::{room_events, room_seqs};
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

/// Allocates the next seq of `room`. Call inside the writer's transaction: the update holds the
/// counter's row lock until commit, so seqs are handed out once and committed in order.
pub fn next_seq(conn: &mut DbConnection, room: &str) -> QueryResult<i64> {
    let updated = diesel::update(room_seqs::table.filter(room_seqs::room.eq(room)))
        .set(room_seqs::seq.eq(room_seqs::seq + 1))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(room_seqs::table)
            .values((room_seqs::room.eq(room), room_seqs::seq.eq(1_i64)))
            .execute(conn)?;
        return Ok(1);
    }
    room_seqs::table
        .filter(room_seqs::room.eq(room))
        .select(room_seqs::seq)
        .first(conn)
}

/// Stores one message of `room` under a new seq; `build` makes its text from (seq, id).
pub fn append(
    conn: &mut DbConnection,
    room: &str,
    id: &str,
    now: chrono::DateTime<chrono::Utc>,
    build: impl FnOnce(i64) -> String,
) -> QueryResult<RoomEventRow> {
    let seq = next_seq(conn, room)?;
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
