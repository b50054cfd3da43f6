//! Who leads (issue 15): the node holding the cluster's PostgreSQL advisory lock runs the
//! Dispatcher and every driver and order actor. No consensus of our own: the database grants the
//! lock to one session at a time and frees it when that session's connection goes, so a leader
//! that dies (even by SIGKILL: its socket closes) hands over within one `cluster.leader_poll_ms`.
//!
//! One lock for the whole cluster, not one per fleet: the product has one central Dispatcher,
//! its waiting orders, re-matching and storm batches see every fleet at once, and a command never
//! has to be routed by fleet before it is read. A fleet-sharded leader is a later step if one
//! node's Dispatcher ever becomes the limit.
//!
//! The lock lives on a connection of its own (not the pool's: a pooled connection is shared and
//! recycled), held by a thread of its own (diesel is blocking), which tries the lock while it
//! does not lead and checks the connection while it does. A leader whose lock connection fails
//! has lost the lock: it says so (`Change::Lost`), and the node exits (`node::start`).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the election thread reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This node holds the lock now.
    Gained,
    /// It held the lock and lost its connection: someone else may hold it already.
    Lost(String),
}

/// The advisory lock key of the cluster `namespace`: FNV-1a of its name, so clusters sharing a
/// database under different namespaces elect their own leaders.
pub fn lock_key(namespace: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("rallypoint-leader:{namespace}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

fn try_lock(conn: &mut PgConnection, key: i64) -> QueryResult<bool> {
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(key)
        .get_result(conn)?;
    Ok(row.locked)
}

/// Starts the election thread for database `url`; it reports to `changes` and stops when
/// `changes` is closed or after the lock is lost.
pub fn spawn(url: String, namespace: &str, poll: Duration, changes: UnboundedSender<Change>) {
    let key = lock_key(namespace);
    let spawned = std::thread::Builder::new()
        .name("rallypoint-leader".into())
        .spawn(move || elect(&url, key, poll, &changes));
    if let Err(e) = spawned {
        log::error!("[CLUSTER] cannot start the leader election thread: {e}");
    }
}

fn elect(url: &str, key: i64, poll: Duration, changes: &UnboundedSender<Change>) {
    let mut conn: Option<PgConnection> = None;
    let mut leading = false;
    let mut warned = false;
    while !changes.is_closed() {
        if conn.is_none() {
            match PgConnection::establish(url) {
                Ok(c) => conn = Some(c),
                Err(e) if leading => {
                    let _ = changes.send(Change::Lost(e.to_string()));
                    return;
                }
                Err(e) => {
                    if !warned {
                        log::warn!("[CLUSTER] the leader's lock is out of reach ({e}); retrying");
                        warned = true;
                    }
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if leading {
                if let Err(e) = diesel::sql_query("SELECT 1").execute(c) {
                    let _ = changes.send(Change::Lost(e.to_string()));
                    return;
                }
            } else {
                match try_lock(c, key) {
                    Ok(true) => {
                        leading = true;
                        if changes.send(Change::Gained).is_err() {
                            return;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        log::warn!("[CLUSTER] trying the leader's lock failed ({e}); reconnecting");
                        conn = None;
                    }
                }
            }
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_has_its_own_stable_lock() {
        assert_eq!(lock_key("rallypoint"), lock_key("rallypoint"));
        assert_ne!(lock_key("rallypoint"), lock_key("other"));
    }
}
