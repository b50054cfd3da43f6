//! Socket.IO sockets: the one row per socket id that connection state recovery keeps between a
//! socket's connections (`socketio::recovery`, docs/SOCKETIO.md). A socket is created connected
//! at generation 0; its connection's close marks it dropped; a restore claims the generation in
//! force with one compare-and-set, moving it on; the janitor purges sockets dropped longer ago
//! than the recovery window.
//!
//! Generations are `u64` to the transport and `BIGINT` here: one beyond `i64::MAX` names no row
//! (a claim of it fails, a close with it marks nothing), and only this file writes them.

use crate::db::models::{from_db, to_db};
use crate::db::schema::socketio_sockets::dsl;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::socketio::recovery::SocketRecord;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

/// A socket's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRow {
    pub sid: String,
    /// The token `sub` that owns the socket (its pid is signed for it).
    pub sub: String,
    /// The generation of the socket's current (or last) connection.
    pub generation: i64,
    /// When its last connection dropped; `None` while a connection holds it.
    pub disconnected_at: Option<DateTime<Utc>>,
}

impl SocketRow {
    /// The row as `Claimed::restore` reads it. A negative generation is never written; were one
    /// read, it would count as 0, which no claim can then move on (the stored value differs).
    pub fn record(&self) -> SocketRecord {
        SocketRecord {
            generation: u64::try_from(self.generation).unwrap_or(0),
            disconnected_at_ms: self.disconnected_at.map(|t| t.timestamp_millis()),
        }
    }
}

/// Stores a new socket `sid` of `sub`: generation 0, held by the connection creating it.
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
            dsl::generation.eq(0_i64),
            dsl::disconnected_at.eq(None::<NaiveDateTime>),
            dsl::created_at.eq(to_db(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The row of socket `sid`, if there is one (never created, or purged: `None`).
pub fn load(conn: &mut DbConnection, sid: &str) -> Result<Option<SocketRow>, AppError> {
    let row: Option<(String, String, i64, Option<NaiveDateTime>)> = dsl::socketio_sockets
        .filter(dsl::sid.eq(sid))
        .select((dsl::sid, dsl::sub, dsl::generation, dsl::disconnected_at))
        .first(conn)
        .optional()?;
    Ok(
        row.map(|(sid, sub, generation, disconnected_at)| SocketRow {
            sid,
            sub,
            generation,
            disconnected_at: disconnected_at.map(from_db),
        }),
    )
}

/// Claims socket `sid` of `sub` for a restore: moves its generation from `expected_generation`
/// to the next and marks it held again, in one `UPDATE ... WHERE generation = expected`.
/// Answers whether this claim won. Of two concurrent claims of the same generation exactly one
/// does: on PostgreSQL the second waits for the first's row lock and then finds the generation
/// moved on; on SQLite the write lock orders them. A purged socket is claimed by no one.
pub fn claim(
    conn: &mut DbConnection,
    sid: &str,
    sub: &str,
    expected_generation: u64,
) -> Result<bool, AppError> {
    let Some((expected, next)) = i64::try_from(expected_generation)
        .ok()
        .and_then(|g| Some((g, g.checked_add(1)?)))
    else {
        return Ok(false);
    };
    let changed = diesel::update(
        dsl::socketio_sockets
            .filter(dsl::sid.eq(sid))
            .filter(dsl::sub.eq(sub))
            .filter(dsl::generation.eq(expected)),
    )
    .set((
        dsl::generation.eq(next),
        dsl::disconnected_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Marks socket `sid` dropped at `now` by its connection of `generation`; answers whether it
/// did. A connection whose socket was since restored elsewhere (the generation moved on) marks
/// nothing: its late close must not make the restored connection's socket look dropped.
pub fn mark_disconnected(
    conn: &mut DbConnection,
    sid: &str,
    generation: u64,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    let Ok(generation) = i64::try_from(generation) else {
        return Ok(false);
    };
    let changed = diesel::update(
        dsl::socketio_sockets
            .filter(dsl::sid.eq(sid))
            .filter(dsl::generation.eq(generation)),
    )
    .set(dsl::disconnected_at.eq(Some(to_db(now))))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Forgets the sockets dropped before `dropped_before` (no longer restorable); answers how many
/// were removed. Sockets still held by a connection are kept.
pub fn purge(conn: &mut DbConnection, dropped_before: DateTime<Utc>) -> Result<usize, AppError> {
    let removed = diesel::delete(
        dsl::socketio_sockets.filter(dsl::disconnected_at.lt(to_db(dropped_before))),
    )
    .execute(conn)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_db::{on_both_backends, TestDb};
    use chrono::{Duration, TimeZone};
    use std::sync::{Arc, Barrier};

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_else(|| panic!("{ms} ms is an instant"))
    }

    fn ok<T>(r: Result<T, AppError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    fn conn(db: &TestDb) -> diesel::r2d2::PooledConnection<crate::db::Manager> {
        db.pool.get().unwrap_or_else(|e| panic!("{e}"))
    }

    fn a_socket_round_trips(db: &TestDb) {
        let c = &mut conn(db);
        assert_eq!(ok(load(c, "sock1")), None);
        ok(create(c, "sock1", "driver-7", at(1_000)));
        let row = ok(load(c, "sock1")).unwrap_or_else(|| panic!("created"));
        assert_eq!(
            row,
            SocketRow {
                sid: "sock1".into(),
                sub: "driver-7".into(),
                generation: 0,
                disconnected_at: None,
            }
        );
        assert_eq!(
            row.record(),
            SocketRecord {
                generation: 0,
                disconnected_at_ms: None
            }
        );
        assert!(ok(mark_disconnected(c, "sock1", 0, at(1_234_567))));
        let row = ok(load(c, "sock1")).unwrap_or_else(|| panic!("created"));
        assert_eq!(row.disconnected_at, Some(at(1_234_567)));
        assert_eq!(row.record().disconnected_at_ms, Some(1_234_567));
        assert!(
            create(c, "sock1", "driver-8", at(2_000)).is_err(),
            "ids are unique"
        );
    }
    on_both_backends!(a_socket_round_trips);

    fn a_generation_is_claimed_once(db: &TestDb) {
        let c = &mut conn(db);
        ok(create(c, "sock1", "driver-7", at(0)));
        assert!(ok(mark_disconnected(c, "sock1", 0, at(10))));
        assert!(!ok(claim(c, "sock1", "driver-8", 0)), "another owner");
        assert!(!ok(claim(c, "sock1", "driver-7", 1)), "a future generation");
        assert!(!ok(claim(c, "sock2", "driver-7", 0)), "an unknown socket");
        assert!(ok(claim(c, "sock1", "driver-7", 0)));
        let row = ok(load(c, "sock1")).unwrap_or_else(|| panic!("created"));
        assert_eq!((row.generation, row.disconnected_at), (1, None));
        assert!(
            !ok(claim(c, "sock1", "driver-7", 0)),
            "the same offset again"
        );
        assert!(!ok(claim(c, "sock1", "driver-7", u64::MAX)));
        // The restored connection's offset restores after the next drop.
        assert!(ok(mark_disconnected(c, "sock1", 1, at(20))));
        assert!(ok(claim(c, "sock1", "driver-7", 1)));
        assert_eq!(ok(load(c, "sock1")).map(|r| r.generation), Some(2));
    }
    on_both_backends!(a_generation_is_claimed_once);

    fn two_concurrent_claims_one_wins(db: &TestDb) {
        for round in 0..20 {
            let sid = format!("sock{round}");
            ok(create(&mut conn(db), &sid, "driver-7", at(0)));
            let start = Arc::new(Barrier::new(2));
            let claims: Vec<_> = (0..2)
                .map(|_| {
                    let mut c = conn(db);
                    let (start, sid) = (start.clone(), sid.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        claim(&mut c, &sid, "driver-7", 0)
                    })
                })
                .collect();
            let won: Vec<bool> = claims
                .into_iter()
                .map(|t| ok(t.join().unwrap_or_else(|_| panic!("a claim panicked"))))
                .collect();
            assert_eq!(
                won.iter().filter(|w| **w).count(),
                1,
                "round {round}: {won:?}"
            );
            assert_eq!(ok(load(&mut conn(db), &sid)).map(|r| r.generation), Some(1));
        }
    }
    on_both_backends!(two_concurrent_claims_one_wins);

    fn a_stale_connection_does_not_mark_its_restored_socket_dropped(db: &TestDb) {
        let c = &mut conn(db);
        ok(create(c, "sock1", "driver-7", at(0)));
        // Restored on another node before this one noticed the drop.
        assert!(ok(claim(c, "sock1", "driver-7", 0)));
        assert!(!ok(mark_disconnected(c, "sock1", 0, at(50))));
        assert!(!ok(mark_disconnected(c, "sock1", u64::MAX, at(50))));
        let row = ok(load(c, "sock1")).unwrap_or_else(|| panic!("created"));
        assert_eq!((row.generation, row.disconnected_at), (1, None));
    }
    on_both_backends!(a_stale_connection_does_not_mark_its_restored_socket_dropped);

    fn only_sockets_dropped_long_ago_are_purged(db: &TestDb) {
        let c = &mut conn(db);
        let now = at(1_000_000_000);
        for sid in ["old", "recent", "held"] {
            ok(create(c, sid, "driver-7", now - Duration::hours(1)));
        }
        assert!(ok(mark_disconnected(
            c,
            "old",
            0,
            now - Duration::minutes(3)
        )));
        assert!(ok(mark_disconnected(
            c,
            "recent",
            0,
            now - Duration::minutes(1)
        )));
        assert_eq!(ok(purge(c, now - Duration::minutes(2))), 1);
        assert_eq!(ok(load(c, "old")), None);
        assert!(ok(load(c, "recent")).is_some());
        assert!(
            ok(load(c, "held")).is_some(),
            "a held socket is never purged"
        );
        assert_eq!(ok(purge(c, now - Duration::minutes(2))), 0);
    }
    on_both_backends!(only_sockets_dropped_long_ago_are_purged);
}
