//! This node's part in the cluster (issue 15): leading, or handing its work to the leader.
//!
//! One node leads (`leader`): it runs the Dispatcher and every driver and order actor, rebuilt
//! from the database when it takes the lock, exactly as one node does alone. Every other node
//! serves its own sessions and rooms, and hands the leader what needs those actors:
//! - each command (`commands::run` asks `forwards()` first), with its caller's claims and key,
//!   answered on this node's channel; resent after a leader change (same request, same key, so
//!   it is done once), and given a key of its own when it came without one and is not a plain
//!   overwrite (a position, an availability);
//! - each driver session it opens or closes (`attach`, `detach`), so the leader's driver actor
//!   counts it, and a heartbeat with the sessions it holds, so a leader that is new or missed one
//!   attaches it again, and one that stops hearing a node detaches that node's sessions (the
//!   driver then goes offline after `realtime.offline_grace_ms` unless it reconnects anywhere).
//!
//! On the leader, another node's driver session is a `RemoteSession` actor: the driver actor
//! sees an ordinary session, and what it tells it (leave an order's room, close) goes back over
//! the bus. The leader announces itself with every heartbeat; a node that hears a new leader
//! resends its pending commands and its sessions at once.
//!
//! Alone (no `cluster.redis_url`) this node leads, nothing here runs, and nothing changes.

use super::leader::{self, Change};
use super::wire::{self, Announce, Heard, ToLeader, ToNode};
use crate::actors::session::LeaveRooms;
use crate::actors::{Deliver, Hub};
use crate::auth::Claims;
use crate::commands::{Answer, Command, IdempotencyKey};
use crate::error::{AppError, ErrorCode};
use crate::idempotency::Outcome;
use crate::protocol::{DriverStatus, Order, Room, SessionId};
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};

mod remote;

/// How long a forwarded command waits for its answer before it is sent again.
const RESEND: Duration = Duration::from_secs(2);

/// A driver's session on this node, as the leader must know it.
struct Here {
    claims: Claims,
    deliver: Recipient<Deliver>,
    leave: Recipient<LeaveRooms>,
}

/// This node's cluster state (in the `Hub`).
pub struct Node {
    enabled: bool,
    leading: AtomicBool,
    leader: Mutex<Option<String>>,
    leader_changed: Notify,
    next_request: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    /// Driver sessions of this node, while another node leads.
    here: Mutex<HashMap<SessionId, Here>>,
    /// On the leader: the sessions of other nodes.
    remote: Mutex<remote::Remotes>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<(String, String)>>>,
}

impl Node {
    /// A node alone leads; a node of a cluster starts as a follower, and `inbox` is what its bus
    /// hears on the node channels.
    pub fn new(enabled: bool, inbox: mpsc::UnboundedReceiver<(String, String)>) -> Node {
        Node {
            enabled,
            leading: AtomicBool::new(!enabled),
            leader: Mutex::new(None),
            leader_changed: Notify::new(),
            next_request: AtomicU64::new(1),
            pending: Mutex::default(),
            here: Mutex::default(),
            remote: Mutex::default(),
            inbox: Mutex::new(Some(inbox)),
        }
    }

    /// Whether this node runs the Dispatcher and the entity actors now.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Whether this node hands its commands and driver sessions to another.
    pub fn forwards(&self) -> bool {
        self.enabled && !self.leading()
    }

    /// The node that leads, as last announced (this one when it leads).
    pub fn leader(&self) -> Option<String> {
        lock(&self.leader).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts this node's cluster tasks: the election, the inbox, the heartbeat. `rebuild` builds
/// the entity actors from the database when this node takes the lead.
pub fn start(
    hub: &Arc<Hub>,
    rebuild: fn(Arc<Hub>) -> futures_util::future::LocalBoxFuture<'static, Result<(), AppError>>,
) {
    let Some(inbox) = lock(&hub.cluster.inbox).take() else {
        return;
    };
    let (changes, mut changed) = mpsc::unbounded_channel();
    leader::spawn(
        hub.settings.database.url.clone(),
        &hub.settings.cluster.namespace,
        hub.settings.cluster.leader_poll(),
        changes,
    );
    let weak = Arc::downgrade(hub);
    actix_rt::spawn(async move {
        while let Some(change) = changed.recv().await {
            let Some(hub) = weak.upgrade() else { return };
            match change {
                Change::Gained => take_lead(hub, rebuild).await,
                Change::Lost(why) => {
                    // Another node may hold the lock already: this node's actors must not
                    // decide anything more. Exiting is the one way to be sure none does; its
                    // clients reconnect to the other nodes, and the process manager restarts it.
                    log::error!(
                        "[CLUSTER] node {} lost the leader's lock ({why}): exiting so that the next leader alone decides; restart it to rejoin as a follower",
                        hub.node_id
                    );
                    std::process::exit(70);
                }
            }
        }
    });
    let weak = Arc::downgrade(hub);
    actix_rt::spawn(listen(weak, inbox));
    let weak = Arc::downgrade(hub);
    let every = hub.settings.cluster.heartbeat();
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(hub) = weak.upgrade() else { return };
            beat(&hub);
        }
    });
}

/// Becomes the leader: frees the keys the previous leader claimed and never answered, rebuilds
/// the actors, attaches this node's own driver sessions to them, then listens for the others.
async fn take_lead(
    hub: Arc<Hub>,
    rebuild: fn(Arc<Hub>) -> futures_util::future::LocalBoxFuture<'static, Result<(), AppError>>,
) {
    let started = Instant::now();
    let me = hub.node_id.clone();
    let freed = crate::db::run(&hub.pool, move |c| {
        Ok(crate::db::queries::idempotency::release_claims_of_others(
            c, &me,
        )?)
    })
    .await;
    if let Err(e) = rebuild(hub.clone()).await {
        log::error!(
            "[CLUSTER] node {} took the lead but could not rebuild from the database ({e}): exiting",
            hub.node_id
        );
        std::process::exit(70);
    }
    let mine: Vec<(SessionId, Claims, Recipient<LeaveRooms>)> = lock(&hub.cluster.here)
        .drain()
        .map(|(id, h)| (id, h.claims, h.leave))
        .collect();
    hub.cluster.leading.store(true, Ordering::Release);
    *lock(&hub.cluster.leader) = Some(hub.node_id.clone());
    let ns = &hub.settings.cluster.namespace;
    hub.broker.listen(wire::leader_channel(ns));
    announce(&hub);
    let n = mine.len();
    for (id, claims, leave) in mine {
        if let Err(e) = crate::actors::connect::attach_here(&hub, &claims, id, leave).await {
            log::warn!("[CLUSTER] re-attaching session {id} here failed: {e}");
        }
    }
    hub.cluster.leader_changed.notify_waiters();
    // The previous leader may have committed room messages it died before publishing: with no
    // message after them, no gap would show them. Every room re-reads its tail.
    hub.rooms.do_send(crate::actors::registry::CatchUpAll);
    log::warn!(
        "[CLUSTER] node {} leads: Dispatcher and actors rebuilt in {} ms, own driver sessions {n}, unanswered claims freed {}",
        hub.node_id,
        started.elapsed().as_millis(),
        freed.map_or_else(|e| format!("? ({e})"), |n| n.to_string())
    );
}

fn announce(hub: &Hub) {
    let a = Announce {
        leader: hub.node_id.clone(),
    };
    hub.broker.send(
        wire::nodes_channel(&hub.settings.cluster.namespace),
        wire::encode(&a),
    );
}

fn to_leader(hub: &Hub, m: &ToLeader) {
    hub.broker.send(
        wire::leader_channel(&hub.settings.cluster.namespace),
        wire::encode(m),
    );
}

pub(crate) fn to_node(hub: &Hub, node: &str, m: &ToNode) {
    hub.broker.send(
        wire::node_channel(&hub.settings.cluster.namespace, node),
        wire::encode(m),
    );
}

/// Every `cluster.heartbeat_ms`: the leader announces itself and forgets silent nodes; a
/// follower tells the leader which driver sessions it holds.
fn beat(hub: &Arc<Hub>) {
    if hub.cluster.leading() {
        announce(hub);
        remote::forget_silent(hub);
    } else {
        let sessions = lock(&hub.cluster.here).keys().map(|s| s.0).collect();
        to_leader(
            hub,
            &ToLeader::Beat {
                from: hub.node_id.clone(),
                sessions,
            },
        );
    }
}

async fn listen(hub: Weak<Hub>, mut inbox: mpsc::UnboundedReceiver<(String, String)>) {
    while let Some((channel, payload)) = inbox.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        let ns = &hub.settings.cluster.namespace;
        match wire::hear(ns, &hub.node_id, &channel, &payload) {
            Some(Heard::Announce(a)) => heard_leader(&hub, a.leader),
            Some(Heard::ToLeader(m)) if hub.cluster.leading() => remote::handle(&hub, *m),
            Some(Heard::ToLeader(_)) => {}
            Some(Heard::ToNode(m)) => from_leader(&hub, m),
            None => log::warn!("[CLUSTER] an unreadable message on {channel:?}"),
        }
    }
}

fn heard_leader(hub: &Arc<Hub>, leader: String) {
    if leader == hub.node_id {
        return;
    }
    if hub.cluster.leading() {
        log::error!(
            "[CLUSTER] node {} leads, yet node {leader} announces itself as leader",
            hub.node_id
        );
        return;
    }
    let changed = {
        let mut known = lock(&hub.cluster.leader);
        let changed = known.as_deref() != Some(leader.as_str());
        *known = Some(leader.clone());
        changed
    };
    if changed {
        log::warn!("[CLUSTER] node {leader} leads; handing it this node's sessions and commands");
        reattach(hub, None);
        hub.cluster.leader_changed.notify_waiters();
        // What the previous leader committed and died before publishing (see take_lead).
        hub.rooms.do_send(crate::actors::registry::CatchUpAll);
    }
}

fn from_leader(hub: &Arc<Hub>, m: ToNode) {
    match m {
        ToNode::Reply { id, outcome } => {
            if let Some(tx) = lock(&hub.cluster.pending).remove(&id) {
                let _ = tx.send(outcome);
            }
        }
        ToNode::Leave {
            session,
            rooms,
            reason,
        } => {
            if let Some(h) = lock(&hub.cluster.here).get(&SessionId(session)) {
                let rooms = rooms.iter().filter_map(|r| Room::parse(r)).collect();
                h.leave.do_send(LeaveRooms { rooms, reason });
            }
        }
        ToNode::Close {
            session,
            code,
            reason,
        } => {
            if let Some(h) = lock(&hub.cluster.here).get(&SessionId(session)) {
                h.deliver.do_send(Deliver::Close { code, reason });
            }
        }
        ToNode::Reattach { sessions } => {
            let only: HashSet<u64> = sessions.into_iter().collect();
            reattach(hub, Some(&only));
        }
    }
}

/// Sends the leader the attach of this node's driver sessions (`only` those, or all).
fn reattach(hub: &Arc<Hub>, only: Option<&HashSet<u64>>) {
    let here: Vec<(u64, Claims)> = lock(&hub.cluster.here)
        .iter()
        .filter(|(id, _)| only.is_none_or(|o| o.contains(&id.0)))
        .map(|(id, h)| (id.0, h.claims.clone()))
        .collect();
    for (session, claims) in here {
        let id = hub.cluster.next_request.fetch_add(1, Ordering::Relaxed);
        to_leader(
            hub,
            &ToLeader::Attach {
                from: hub.node_id.clone(),
                id,
                session,
                claims,
            },
        );
    }
}

/// Asks the leader and waits for its answer, sending the request again every `RESEND` and at
/// once when a new leader is heard, until `cluster.forward_timeout_ms`. `Ok(None)`: this node
/// took the lead meanwhile, so the work is to be done here.
async fn ask(hub: &Arc<Hub>, id: u64, m: &ToLeader) -> Result<Option<serde_json::Value>, AppError> {
    // Encoded once, however often it is sent.
    let payload = wire::encode(m);
    let channel = wire::leader_channel(&hub.settings.cluster.namespace);
    let (tx, mut rx) = oneshot::channel();
    lock(&hub.cluster.pending).insert(id, tx);
    let deadline = Instant::now() + hub.settings.cluster.forward_timeout();
    loop {
        let changed = hub.cluster.leader_changed.notified();
        if hub.cluster.leading() {
            lock(&hub.cluster.pending).remove(&id);
            return Ok(None);
        }
        hub.broker.send(channel.clone(), payload.clone());
        let wait = RESEND.min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            got = &mut rx => {
                return got
                    .map_err(|_| AppError::internal("the answer was dropped"))?
                    .into_result()
                    .map(Some);
            }
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
        }
        if Instant::now() >= deadline {
            lock(&hub.cluster.pending).remove(&id);
            return Err(AppError::Answered {
                code: ErrorCode::Internal,
                message: format!(
                    "no leader answered within {} ms (the cluster may be electing one): send it again with the same idempotency key",
                    hub.settings.cluster.forward_timeout_ms
                ),
            });
        }
    }
}

/// A command of this node's client, run by the leader.
pub async fn forward(
    hub: Arc<Hub>,
    claims: Claims,
    command: Command,
    key: IdempotencyKey,
) -> Result<Answer, AppError> {
    let key = key?;
    let shape = command.shape();
    let id = hub.cluster.next_request.fetch_add(1, Ordering::Relaxed);
    // A resend must not do the work twice: a command without a key gets one of its own, unless
    // doing it twice changes nothing (a position, an availability).
    let key = match (&key, &command) {
        (Some(_), _) | (None, Command::SendLocation(_) | Command::SetStatus(_)) => key,
        (None, _) => Some(format!("cluster:{}:{id}", hub.node_id)),
    };
    let m = ToLeader::Command {
        from: hub.node_id.clone(),
        id,
        claims,
        command,
        key,
    };
    if let Some(value) = ask(&hub, id, &m).await? {
        return Ok(Answer { value, shape });
    }
    // This node leads now: it does the work itself, under the same key (if the old leader did
    // it, its answer is in the database).
    let ToLeader::Command {
        claims,
        command,
        key,
        ..
    } = m
    else {
        return Err(AppError::internal("a forwarded command changed kind"));
    };
    Box::pin(crate::commands::run(hub, claims, command, Ok(key))).await
}

/// Attaches a driver session of this node to the leader's driver actor; answers the driver's
/// status and orders.
pub async fn attach(
    hub: &Arc<Hub>,
    claims: &Claims,
    session: SessionId,
    deliver: Recipient<Deliver>,
    leave: Recipient<LeaveRooms>,
) -> Result<(DriverStatus, Vec<Order>), AppError> {
    let leave_again = leave.clone();
    lock(&hub.cluster.here).insert(
        session,
        Here {
            claims: claims.clone(),
            deliver,
            leave,
        },
    );
    let id = hub.cluster.next_request.fetch_add(1, Ordering::Relaxed);
    let m = ToLeader::Attach {
        from: hub.node_id.clone(),
        id,
        session: session.0,
        claims: claims.clone(),
    };
    let Some(value) = ask(hub, id, &m).await? else {
        // This node leads now (`take_lead` attached what was here; once more is harmless).
        lock(&hub.cluster.here).remove(&session);
        return crate::actors::connect::attach_here(hub, claims, session, leave_again).await;
    };
    serde_json::from_value(value)
        .map_err(|e| AppError::internal(format!("the leader's attach answer: {e}")))
}

/// A driver session of this node closed.
pub fn detach(hub: &Arc<Hub>, session: SessionId) {
    if lock(&hub.cluster.here).remove(&session).is_none() {
        return;
    }
    to_leader(
        hub,
        &ToLeader::Detach {
            from: hub.node_id.clone(),
            session: session.0,
        },
    );
}
