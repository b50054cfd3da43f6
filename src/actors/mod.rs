//! The actors: one per WebSocket session (`session`), driver (`driver`), order (`order`) and
//! room (`room`, created by the `registry`), and the central `dispatcher`.
//!
//! `Hub` is what they share: configuration, the pool, the token keys, the addresses of the
//! singletons and the directory of entity actors. Every actor holds one `Arc<Hub>`, never its own
//! copies of what is in it.

pub mod connect;
pub mod dispatcher;
pub mod driver;
pub mod fanout;
pub mod janitor;
pub mod order;
pub mod registry;
pub mod room;
pub mod session;
pub mod sio;
mod slots;
pub mod tracks;

use crate::auth::TokenKeys;
use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::http::conn::ConnSocket;
use crate::protocol::{DriverId, OrderId};
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub use slots::{ConnectionSlot, SlotRefused};

/// What a room hands a session: a frame to write (the same bytes shared by every recipient), or
/// an order to close (a slow consumer, a shutdown), sent with `do_send` past a full mailbox.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum Deliver {
    Frame(ByteString),
    Close { code: u16, reason: String },
}

/// What every actor shares.
pub struct Hub {
    pub settings: Settings,
    pub pool: DbPool,
    pub keys: TokenKeys,
    pub rooms: Addr<registry::RoomRegistry>,
    pub dispatcher: Addr<dispatcher::Dispatcher>,
    /// The emergency units' desk (SPEC 9, `crate::units`).
    pub units: Addr<crate::units::EmergencyDesk>,
    /// The crowd events' desks (SPEC 8, `crate::crowd`).
    pub crowd: crate::crowd::Directory,
    /// The arbiter the entity actors (drivers, orders) run on.
    pub engine: ArbiterHandle,
    drivers: RwLock<HashMap<DriverId, Addr<driver::DriverActor>>>,
    orders: RwLock<HashMap<OrderId, Addr<order::OrderActor>>>,
    /// Open WebSocket sessions.
    pub connections: AtomicUsize,
    next_session: AtomicU64,
    pub started: std::time::Instant,
    /// This process's id, unique per start: whose claims of idempotency keys are whose.
    pub node_id: String,
    /// State-changing requests (WebSocket or REST) whose work is running.
    pub actions_running: AtomicUsize,
    /// Set when a graceful shutdown starts: new sessions are refused or closed with 1012.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Every open session, so a shutdown can close them all with 1012 and a slow consumer can
    /// be cut off.
    sessions: std::sync::Mutex<HashMap<crate::protocol::SessionId, OpenSession>>,
    /// Open sessions per `sub`, for `limits.max_connections_per_sub`.
    subs: std::sync::Mutex<HashMap<String, usize>>,
    /// Open sessions per role, for `GET /api/v1/stats`.
    roles: std::sync::Mutex<HashMap<crate::protocol::Role, usize>>,
    /// History reads per `sub`, for `limits.rest_per_sub_per_sec`.
    history_reads: std::sync::Mutex<crate::ratelimit::PerSub>,
    /// Room actors running, for `rallypoint_room_actors`.
    pub room_actors: AtomicUsize,
    /// Rooms asleep, for `rallypoint_rooms_asleep`.
    pub rooms_asleep: AtomicUsize,
    /// Replays being read outside their room's turn, for `rallypoint_room_replays_reading`.
    pub room_replays_reading: AtomicUsize,
    /// The open Engine.IO sessions at `/socket.io/`.
    pub socketio: sio::Sessions,
    /// Signs and checks Socket.IO recovery pids.
    pub pid_key: crate::socketio::PidKey,
    /// Where published messages go beyond this node (`cluster`).
    pub broker: crate::cluster::Broker,
    /// Whether this node leads its cluster, and what it hands the leader (`cluster::node`).
    pub cluster: crate::cluster::node::Node,
    /// Drivers' track samples waiting for their batch write (`tracks`).
    pub tracks: tracks::Buffer,
}

/// An open session: its mailbox, and the socket under it when it came over TCP.
struct OpenSession {
    recipient: Recipient<Deliver>,
    socket: Option<ConnSocket>,
}

/// The key of Socket.IO pids: from the token secret, the same on every node; with RS256 only,
/// from the public key (a pid then binds a socket to its owner's `sub`, which the token proves).
fn pid_key(settings: &Settings) -> crate::socketio::PidKey {
    let auth = &settings.auth;
    let secret = if auth.secret.is_empty() {
        auth.public_key_pem.as_bytes()
    } else {
        auth.secret.as_bytes()
    };
    crate::socketio::PidKey::derive(secret).unwrap_or_else(|_| {
        let mut random = [0u8; 32];
        let _ = getrandom::fill(&mut random);
        log::warn!(
            "[STARTUP] no secret to derive Socket.IO pids from: this node's pids are its own"
        );
        crate::socketio::PidKey::derive(&random).unwrap_or_else(|_| unreachable_key())
    })
}

/// A 32-byte key never fails to derive; this keeps the signature total.
fn unreachable_key() -> crate::socketio::PidKey {
    loop {
        let mut random = [1u8; 32];
        let _ = getrandom::fill(&mut random);
        if let Ok(k) = crate::socketio::PidKey::derive(&random) {
            return k;
        }
    }
}

/// How long a session told to close (4008, 1012) has to do so before its socket is shut down
/// under it: a peer that does not read never lets the close frame out.
pub const CUT_OFF_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl Hub {
    pub(crate) fn new(
        settings: Settings,
        pool: DbPool,
        keys: TokenKeys,
        rooms: Addr<registry::RoomRegistry>,
        dispatcher: Addr<dispatcher::Dispatcher>,
        units: Addr<crate::units::EmergencyDesk>,
    ) -> Hub {
        let settings_rest_limit = settings.limits.rest_per_sub_per_sec;
        let pid_key = pid_key(&settings);
        let node_id = uuid::Uuid::new_v4().to_string();
        let (inbox, heard) = tokio::sync::mpsc::unbounded_channel();
        let broker = crate::cluster::Broker::start(&settings, &node_id, rooms.clone(), inbox);
        let cluster = crate::cluster::node::Node::new(settings.cluster.enabled(), heard);
        Hub {
            settings,
            pool,
            keys,
            rooms,
            dispatcher,
            units,
            crowd: Default::default(),
            engine: Arbiter::current(),
            drivers: RwLock::default(),
            orders: RwLock::default(),
            connections: AtomicUsize::new(0),
            next_session: AtomicU64::new(1),
            started: std::time::Instant::now(),
            node_id,
            actions_running: AtomicUsize::new(0),
            shutting_down: Default::default(),
            sessions: Default::default(),
            subs: Default::default(),
            roles: Default::default(),
            history_reads: std::sync::Mutex::new(crate::ratelimit::PerSub::new(
                settings_rest_limit,
            )),
            room_actors: AtomicUsize::new(0),
            rooms_asleep: AtomicUsize::new(0),
            room_replays_reading: AtomicUsize::new(0),
            socketio: sio::Sessions::default(),
            pid_key,
            broker,
            cluster,
            tracks: tracks::Buffer::default(),
        }
    }

    /// Counts one history read of `sub`; `false` past `limits.rest_per_sub_per_sec`.
    pub fn allow_history_read(&self, sub: &str) -> bool {
        lock(&self.history_reads).allow(sub, std::time::Instant::now())
    }

    /// A new session id, unique within this node's lifetime.
    pub fn next_session_id(&self) -> crate::protocol::SessionId {
        crate::protocol::SessionId(self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    /// Records an open session. Answers false when a shutdown has started: the session must
    /// close (1012) at once, since the shutdown may not have seen it.
    pub fn session_opened(
        &self,
        id: crate::protocol::SessionId,
        recipient: Recipient<Deliver>,
        socket: Option<ConnSocket>,
    ) -> bool {
        lock(&self.sessions).insert(id, OpenSession { recipient, socket });
        !self.is_shutting_down()
    }

    /// Tells a session that cannot keep up to close with 4008, and shuts its socket down if it
    /// has not closed after `CUT_OFF_AFTER` (a peer that stopped reading stalls the session).
    /// `full` names the queue it filled, for the log.
    pub fn evict_slow_consumer(self: &Arc<Self>, id: crate::protocol::SessionId, full: &str) {
        log::warn!(
            "[WEBSOCKET] session={id} slow consumer: {} full, closing 4008",
            crate::telemetry::q(full)
        );
        let Some(recipient) = lock(&self.sessions).get(&id).map(|s| s.recipient.clone()) else {
            return;
        };
        crate::stats::slow_consumer();
        recipient.do_send(Deliver::Close {
            code: crate::protocol::close::SLOW_CONSUMER,
            reason: "outbound queue full: resume from your last seq".into(),
        });
        let hub = Arc::downgrade(self);
        actix_rt::spawn(async move {
            actix_rt::time::sleep(CUT_OFF_AFTER).await;
            if let Some(hub) = hub.upgrade() {
                hub.cut_off(&[id]);
            }
        });
    }

    /// Shuts down the sockets of those of `ids` still open; answers how many were.
    pub fn cut_off(&self, ids: &[crate::protocol::SessionId]) -> usize {
        // The lock is held while shutting down: a session is only removed once its actor
        // stopped, which happens before its connection closes the socket (see ConnSocket).
        let sessions = lock(&self.sessions);
        let mut cut = 0;
        for id in ids {
            let Some(socket) = sessions.get(id).and_then(|s| s.socket) else {
                continue;
            };
            match socket.shut_down() {
                Ok(()) => {
                    cut += 1;
                    crate::stats::connection_cut_off();
                    log::warn!(
                        "[WEBSOCKET] session={id} did not close within {CUT_OFF_AFTER:?}: connection shut down"
                    );
                }
                Err(e) => log::warn!("[WEBSOCKET] session={id} could not be shut down: {e}"),
            }
        }
        cut
    }

    /// The ids of the open sessions.
    pub fn open_sessions(&self) -> Vec<crate::protocol::SessionId> {
        lock(&self.sessions).keys().copied().collect()
    }

    /// Forgets a closed session.
    pub fn session_closed(&self, id: crate::protocol::SessionId) {
        lock(&self.sessions).remove(&id);
    }

    /// Whether a graceful shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Starts a graceful shutdown: from now on, a session that registers is told to close at
    /// once (`session_opened` answers false), and every open one is told to close with `code`.
    /// Answers how many were told.
    pub fn close_all_sessions(&self, code: u16, reason: &str) -> usize {
        self.shutting_down.store(true, Ordering::SeqCst);
        let sessions: Vec<_> = lock(&self.sessions)
            .values()
            .map(|s| s.recipient.clone())
            .collect();
        for s in &sessions {
            s.do_send(Deliver::Close {
                code,
                reason: reason.to_string(),
            });
        }
        sessions.len()
    }

    /// The actor of driver `id`, if the engine knows it.
    pub fn driver(&self, id: &DriverId) -> Option<Addr<driver::DriverActor>> {
        read(&self.drivers).get(id).cloned()
    }

    /// Every driver actor.
    pub fn all_drivers(&self) -> Vec<Addr<driver::DriverActor>> {
        read(&self.drivers).values().cloned().collect()
    }

    /// Starts the actor of a driver unless one runs already; returns the running one.
    pub fn spawn_driver(self: &Arc<Self>, state: driver::DriverState) -> Addr<driver::DriverActor> {
        let mut map = write(&self.drivers);
        if let Some(addr) = map.get(&state.id) {
            return addr.clone();
        }
        let id = state.id.clone();
        let hub = self.clone();
        let addr = driver::DriverActor::start_in_arbiter(&self.engine, move |_| {
            driver::DriverActor::new(hub, state)
        });
        map.insert(id, addr.clone());
        addr
    }

    /// The actor of an active order, if any.
    pub fn order(&self, id: &OrderId) -> Option<Addr<order::OrderActor>> {
        read(&self.orders).get(id).cloned()
    }

    /// Starts the actor of an active order unless one runs already.
    pub fn spawn_order(self: &Arc<Self>, state: order::OrderState) -> Addr<order::OrderActor> {
        let mut map = write(&self.orders);
        if let Some(addr) = map.get(&state.order.id) {
            return addr.clone();
        }
        let id = state.order.id.clone();
        let hub = self.clone();
        let addr = order::OrderActor::start_in_arbiter(&self.engine, move |_| {
            order::OrderActor::new(hub, state)
        });
        map.insert(id, addr.clone());
        addr
    }

    /// Forgets a finished order's actor.
    pub fn remove_order(&self, id: &OrderId) {
        write(&self.orders).remove(id);
    }
}

// A poisoned lock only means another thread panicked while holding it; the maps stay usable.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Sends an ephemeral message (no seq, not kept: presence, locations, a courier's position) to
/// `room`'s members, under a publication id of its own.
pub fn publish_ephemeral(hub: &Hub, room: crate::protocol::Room, msg: &crate::protocol::ServerMsg) {
    let text = crate::protocol::server::envelope(
        msg,
        &room.to_string(),
        None,
        &uuid::Uuid::new_v4().to_string(),
    );
    hub.rooms.do_send(registry::PublishEphemeral {
        room,
        kind: msg.kind(),
        text: text.into(),
    });
}

/// Sends committed messages to their rooms and logs `[BROADCAST]` with the deliveries made.
pub async fn publish(hub: &Hub, what: &str, messages: Vec<db::queries::commit::Published>) {
    publish_timed(hub, what, messages, None).await
}

/// `publish`, logging also the time since `started` (when the report was received).
pub async fn publish_timed(
    hub: &Hub,
    what: &str,
    messages: Vec<db::queries::commit::Published>,
    started: Option<std::time::Instant>,
) {
    if messages.is_empty() {
        return;
    }
    let count = messages.len();
    let taken_off: Vec<(DriverId, OrderId)> = messages
        .iter()
        .filter_map(|m| match (&m.room, &m.taken_off) {
            (crate::protocol::Room::Driver(d), Some(o)) => Some((d.clone(), o.clone())),
            _ => None,
        })
        .collect();
    let mut rooms: Vec<String> = Vec::new();
    for m in &messages {
        let name = m.room.to_string();
        if !rooms.contains(&name) {
            rooms.push(name);
        }
    }
    match hub.rooms.send(registry::Publish { messages }).await {
        Ok(delivered) => match started {
            Some(t) => {
                crate::stats::report_broadcast(t.elapsed());
                log::info!(
                "[BROADCAST] {what} messages={count} rooms={rooms:?} delivered={delivered} after_ms={:.2}",
                t.elapsed().as_secs_f64() * 1000.0
            )
            }
            None => log::info!(
                "[BROADCAST] {what} messages={count} rooms={rooms:?} delivered={delivered}"
            ),
        },
        Err(e) => log::error!("[BROADCAST] {what} failed: {e}"),
    }
    // Delivered (handed to every member's fan-out): a driver taken off an order leaves its room
    // now, so its `left` follows the `order_unassigned`.
    for (driver, order_id) in taken_off {
        if let Some(d) = hub.driver(&driver) {
            d.do_send(driver::TakenOff { order_id });
        }
    }
}

/// The actor of the driver a token names, registering the driver on the spot when the engine
/// does not know it yet (SPEC 2: the token's issuer is the source of identity).
pub async fn ensure_driver(
    hub: &Arc<Hub>,
    id: &DriverId,
    name: Option<String>,
    fleet: &str,
) -> Result<Addr<driver::DriverActor>, crate::error::AppError> {
    if let Some(a) = hub.driver(id) {
        return Ok(a);
    }
    let row = db::models::DriverRow::new_offline(
        id.0.clone(),
        name.unwrap_or_else(|| id.0.clone()),
        fleet.to_string(),
        hub.settings.dispatch.default_capacity,
    );
    let stored = db::run(&hub.pool, move |c| {
        // Another node or tab may be registering it at this moment: the insert does nothing
        // then, and the stored row wins (SPEC 2: two first connections both succeed).
        if db::queries::drivers::insert_new(c, &row)? {
            return Ok(row);
        }
        db::queries::drivers::find(c, &row.id)?.ok_or_else(|| {
            crate::error::AppError::internal(format!(
                "driver {} vanished while registering",
                row.id
            ))
        })
    })
    .await?;
    log::info!(
        "[WEBSOCKET] driver={} registered fleet={}",
        crate::telemetry::q(&stored.id),
        crate::telemetry::q(&stored.fleet)
    );
    Ok(start_driver(hub, &stored, Default::default()))
}

/// The answer for an order with no actor: `not_found`, or `conflict` when it is finished. It
/// reads the database, so callers run it outside every actor's atomic section (SPEC 4: an id a
/// client sends never stalls the Dispatcher).
pub async fn missing_order(hub: &Hub, id: &OrderId) -> crate::error::AppError {
    use crate::error::AppError;
    let key = id.0.clone();
    match db::run(&hub.pool, move |c| Ok(db::queries::orders::find(c, &key)?)).await {
        Ok(Some(row)) => AppError::conflict(format!("order {id} is {}", row.status)),
        Ok(None) => AppError::not_found(format!("order {id} does not exist")),
        Err(e) => e,
    }
}

/// A driver's state from its row and the orders it holds.
pub fn driver_state(
    row: &db::models::DriverRow,
    orders: std::collections::BTreeSet<OrderId>,
) -> driver::DriverState {
    driver::DriverState {
        id: DriverId(row.id.clone()),
        name: row.name.clone(),
        fleet: row.fleet.clone(),
        capacity: row.capacity,
        online: row.is_online(),
        location: row.location(),
        orders,
        unit_type: row.unit_type(),
        emergency: None,
    }
}

/// Starts a driver's actor from its row and tells the Dispatcher about it (and the emergency
/// desk, when it is a unit).
pub fn start_driver(
    hub: &Arc<Hub>,
    row: &db::models::DriverRow,
    orders: std::collections::BTreeSet<OrderId>,
) -> Addr<driver::DriverActor> {
    let state = driver_state(row, orders);
    let changed = state.changed();
    crate::units::feed::unit_changed(hub, &state);
    let addr = hub.spawn_driver(state);
    hub.dispatcher.do_send(changed);
    addr
}
