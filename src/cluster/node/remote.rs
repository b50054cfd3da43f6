//! The leader's side: other nodes' commands run through `commands::run` like its own clients',
//! other nodes' driver sessions attached as `RemoteSession`s, silent nodes forgotten.

use super::{lock, to_node};
use crate::actors::driver::DetachSession;
use crate::actors::session::LeaveRooms;
use crate::actors::{Deliver, Hub};
use crate::auth::Claims;
use crate::cluster::wire::{ToLeader, ToNode};
use crate::idempotency::Outcome;
use crate::protocol::{DriverId, SessionId};
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Another node's driver session, as the leader holds it.
struct Entry {
    /// Its id among this node's sessions (ids are per node).
    local: SessionId,
    driver: DriverId,
    since: Instant,
}

/// The sessions of other nodes, by (node, their id), and when each node was last heard.
#[derive(Default)]
pub struct Remotes {
    sessions: HashMap<(String, u64), Entry>,
    heard: HashMap<String, Instant>,
    /// Commands running, so a resend of one still running is not run beside it.
    running: HashSet<(String, u64)>,
}

/// Handles what a node sent the leader.
pub fn handle(hub: &Arc<Hub>, m: ToLeader) {
    match m {
        ToLeader::Command {
            from,
            id,
            claims,
            command,
            key,
        } => {
            {
                let mut r = lock(&hub.cluster.remote);
                r.heard.insert(from.clone(), Instant::now());
                if !r.running.insert((from.clone(), id)) {
                    return;
                }
            }
            let hub = hub.clone();
            actix_rt::spawn(async move {
                let result = crate::commands::run(hub.clone(), claims, command, Ok(key)).await;
                lock(&hub.cluster.remote)
                    .running
                    .remove(&(from.clone(), id));
                let outcome = Outcome::from_result(&result.map(|a| a.value));
                to_node(&hub, &from, &ToNode::Reply { id, outcome });
            });
        }
        ToLeader::Attach {
            from,
            id,
            session,
            claims,
        } => {
            let hub = hub.clone();
            actix_rt::spawn(async move {
                let outcome = Outcome::from_result(&attach(&hub, &from, session, &claims).await);
                to_node(&hub, &from, &ToNode::Reply { id, outcome });
            });
        }
        ToLeader::Detach { from, session } => {
            let gone = lock(&hub.cluster.remote).sessions.remove(&(from, session));
            if let Some(e) = gone {
                detach_local(hub, &e);
            }
        }
        ToLeader::Beat { from, sessions } => reconcile(hub, from, sessions),
    }
}

async fn attach(
    hub: &Arc<Hub>,
    from: &str,
    session: u64,
    claims: &Claims,
) -> Result<serde_json::Value, crate::error::AppError> {
    let Some(driver) = claims.driver().cloned() else {
        return Err(crate::error::AppError::bad_request(
            "only a driver's session is attached",
        ));
    };
    let local = {
        let mut r = lock(&hub.cluster.remote);
        r.heard.insert(from.to_string(), Instant::now());
        let key = (from.to_string(), session);
        let local = r
            .sessions
            .get(&key)
            .map(|e| e.local)
            .unwrap_or_else(|| hub.next_session_id());
        r.sessions.insert(
            key,
            Entry {
                local,
                driver,
                since: Instant::now(),
            },
        );
        local
    };
    let proxy = RemoteSession {
        hub: hub.clone(),
        node: from.to_string(),
        session,
    }
    .start();
    let attached =
        crate::actors::connect::attach_here(hub, claims, local, proxy.recipient()).await?;
    serde_json::to_value(attached)
        .map_err(|e| crate::error::AppError::internal(format!("an attach answer: {e}")))
}

fn detach_local(hub: &Hub, e: &Entry) {
    if let Some(d) = hub.driver(&e.driver) {
        d.do_send(DetachSession {
            session_id: e.local,
        });
    }
}

/// A node's heartbeat: what it holds and this node does not know is attached again; what this
/// node holds for it and it no longer lists (and was not attached just now) is detached.
fn reconcile(hub: &Arc<Hub>, from: String, sessions: Vec<u64>) {
    let listed: HashSet<u64> = sessions.iter().copied().collect();
    let settle = hub.settings.cluster.heartbeat() * 2;
    let (unknown, stale) = {
        let mut r = lock(&hub.cluster.remote);
        r.heard.insert(from.clone(), Instant::now());
        let unknown: Vec<u64> = sessions
            .iter()
            .copied()
            .filter(|s| !r.sessions.contains_key(&(from.clone(), *s)))
            .collect();
        let stale_keys: Vec<(String, u64)> = r
            .sessions
            .iter()
            .filter(|((n, s), e)| *n == from && !listed.contains(s) && e.since.elapsed() > settle)
            .map(|(k, _)| k.clone())
            .collect();
        let stale: Vec<Entry> = stale_keys
            .iter()
            .filter_map(|k| r.sessions.remove(k))
            .collect();
        (unknown, stale)
    };
    for e in &stale {
        detach_local(hub, e);
    }
    if !unknown.is_empty() {
        to_node(hub, &from, &ToNode::Reattach { sessions: unknown });
    }
}

/// Every heartbeat on the leader: a node silent past `cluster.node_timeout_ms` is dead, and its
/// sessions are detached (their drivers get the offline grace, as after any lost connection).
pub fn forget_silent(hub: &Arc<Hub>) {
    let timeout: Duration = hub.settings.cluster.node_timeout();
    let gone: Vec<(String, Vec<Entry>)> = {
        let mut r = lock(&hub.cluster.remote);
        let dead: Vec<String> = r
            .heard
            .iter()
            .filter(|(_, at)| at.elapsed() > timeout)
            .map(|(n, _)| n.clone())
            .collect();
        dead.into_iter()
            .map(|n| {
                r.heard.remove(&n);
                let keys: Vec<(String, u64)> = r
                    .sessions
                    .keys()
                    .filter(|(k, _)| *k == n)
                    .cloned()
                    .collect();
                let entries = keys.iter().filter_map(|k| r.sessions.remove(k)).collect();
                (n, entries)
            })
            .collect()
    };
    for (node, entries) in gone {
        log::warn!(
            "[CLUSTER] node {node} silent for over {} ms: its {} driver session(s) detached",
            timeout.as_millis(),
            entries.len()
        );
        for e in &entries {
            detach_local(hub, e);
        }
    }
}

/// Another node's driver session, on the leader: what the driver actor tells it goes back over
/// the bus.
struct RemoteSession {
    hub: Arc<Hub>,
    node: String,
    session: u64,
}

impl Actor for RemoteSession {
    type Context = Context<Self>;
}

impl Handler<LeaveRooms> for RemoteSession {
    type Result = ();
    fn handle(&mut self, msg: LeaveRooms, _: &mut Context<Self>) {
        let m = ToNode::Leave {
            session: self.session,
            rooms: msg.rooms.iter().map(|r| r.to_string()).collect(),
            reason: msg.reason,
        };
        to_node(&self.hub, &self.node, &m);
    }
}

impl Handler<Deliver> for RemoteSession {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
        // Frames reach the node through its rooms; only an order to close travels here.
        if let Deliver::Close { code, reason } = msg {
            let m = ToNode::Close {
                session: self.session,
                code,
                reason,
            };
            to_node(&self.hub, &self.node, &m);
        }
    }
}
