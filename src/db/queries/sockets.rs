//! Socket.IO sockets: the one row per socket id that connection state recovery keeps (see
//! `socketio::recovery`): its owner, the generation of its current connection, and when that
//! connection dropped.

use crate::db::models::{from_db, to_db};
use crate::db::schema::socketio_sockets::dsl;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::socketio::recovery::SocketRecord;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

/// A socket's row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = crate::db::schema::socketio_sockets)]
pub struct SocketRow {
    pub sid: String,
    pub sub: String,
    pub generation: i64,
    pub disconnected_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl SocketRow {
    /// What the restore decision reads.
    pub fn record(&self) -> SocketRecord {
        SocketRecord {
            generation: u64::try_from(self.generation).unwrap_or(0),
            disconnected_at_ms: self.disconnected_at.map(|t| from_db(t).timestamp_millis()),
        }
    }
}

/// A new socket `sid` of `sub`: generation 0, connected.
pub fn create(
    conn: &mut DbConnection,
    sid: &str,
    sub: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    diesel::insert_into(dsl::socketio_sockets)
        .values((
            dsl::sid.eq(sid),
            dsl::sub.eq(sub),
            dsl::generation.eq(0i64),
            dsl::disconnected_at.eq(None::<NaiveDateTime>),
            dsl::created_at.eq(to_db(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The row of socket `sid`, if it is kept.
pub fn load(conn: &mut DbConnection, sid: &str) -> Result<Option<SocketRow>, AppError> {
    Ok(dsl::socketio_sockets
        .filter(dsl::sid.eq(sid))
        .select(SocketRow::as_select())
        .first(conn)
        .optional()?)
}

/// Claims the restore of socket `sid` of `sub` from generation `expected`: one compare-and-set
/// to `expected + 1`, connected again. True when this call won it; of two at once, one does.
pub fn claim(
    conn: &mut DbConnection,
    sid: &str,
    sub: &str,
    expected: i64,
) -> Result<bool, AppError> {
    let changed = diesel::update(
        dsl::socketio_sockets
            .filter(dsl::sid.eq(sid))
            .filter(dsl::sub.eq(sub))
            .filter(dsl::generation.eq(expected)),
    )
    .set((
        dsl::generation.eq(expected + 1),
        dsl::disconnected_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Records that the connection of generation `generation` dropped at `now`; nothing when the
/// socket has moved on (restored elsewhere since).
pub fn mark_disconnected(
    conn: &mut DbConnection,
    sid: &str,
    generation: i64,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    diesel::update(
        dsl::socketio_sockets
            .filter(dsl::sid.eq(sid))
            .filter(dsl::generation.eq(generation)),
    )
    .set(dsl::disconnected_at.eq(Some(to_db(now))))
    .execute(conn)?;
    Ok(())
}

/// Forgets sockets that dropped before `before` (past the recovery window); answers how many.
pub fn purge(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, AppError> {
    Ok(
        diesel::delete(dsl::socketio_sockets.filter(dsl::disconnected_at.lt(to_db(before))))
            .execute(conn)?,
    )
}
