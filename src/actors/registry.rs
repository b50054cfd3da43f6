//! `RoomRegistry`: finds or starts the `RoomActor` of a room and routes joins, leaves and
//! publications to it. It owns no membership itself: each room does.
//!
//! It also retires idle rooms. A room idle for `realtime.room_idle_s` says so with the count of
//! messages it has handled (`RoomIdle`); the registry counts what it routes to each room, and
//! retires the room only when the two agree, that is when nothing is on its way to it. It then
//! forgets the room before stopping it, so whatever comes next starts a new one, which reads its
//! seq from the database (every publication is stored before it is routed).
//!
//! And it keeps sleeping rooms (`room::Sleep`): a room with members that had nothing to do hands
//! over its members and seq and stops; the registry keeps that record where the address was, takes
//! a member out of it on a leave without waking the room, and wakes the room (starts its actor from
//! the record) for anything that must be delivered.

use super::room::{self, Asleep, Endpoint, JoinReply, RoomActor};
use super::Hub;
use crate::db::queries::commit::Published;
use crate::error::AppError;
use crate::protocol::{LeftReason, Room, ServerMsg, SessionId};
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Joins a session to a room (see `room::JoinRoom`).
#[derive(Message)]
#[rtype(result = "Result<JoinReply, AppError>")]
pub struct Join {
    pub room: Room,
    pub session_id: SessionId,
    pub endpoint: Endpoint,
    pub since: Option<i64>,
}

/// Removes a session from rooms.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub rooms: Vec<Room>,
    pub session_id: SessionId,
}

/// Takes a session out of rooms it may no longer be in: each room removes it, then hands it
/// `left` with `reason` after the room's last frame to it (see `room::Revoke`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevokeRooms {
    pub rooms: Vec<Room>,
    pub session_id: SessionId,
    pub endpoint: Endpoint,
    pub reason: LeftReason,
}

/// Delivers committed messages; answers the deliveries made (a member of two of the rooms
/// counts twice).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Publish {
    pub messages: Vec<Published>,
}

/// Delivers one ephemeral message (presence, locations) to a room; answers the members reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PublishEphemeral {
    pub room: Room,
    /// The message's `type`, for metrics.
    pub kind: &'static str,
    pub text: ByteString,
}

/// A room has been idle for `realtime.room_idle_s`, having handled `received` messages.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomIdle {
    pub room: Room,
    pub received: u64,
}

/// Gives the registry the hub, once it exists (the hub holds the registry's address).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetHub(pub Weak<Hub>);

/// Finds or starts room actors.
#[derive(Default)]
pub struct RoomRegistry {
    hub: Weak<Hub>,
    rooms: HashMap<Room, RoomEntry>,
}

/// A room with an actor, or asleep, and the count of messages routed to its actor.
struct RoomEntry {
    at: At,
    routed: u64,
}

enum At {
    Running(Addr<RoomActor>),
    Asleep(Box<Asleep>),
}

impl RoomEntry {
    /// The running room's address, counting one more message routed to it.
    fn route(&mut self) -> Option<Addr<RoomActor>> {
        match &self.at {
            At::Running(addr) if addr.connected() => {
                self.routed += 1;
                Some(addr.clone())
            }
            _ => None,
        }
    }
}

impl RoomRegistry {
    /// The room's actor, started (or woken) if need be, counting one message routed to it.
    fn room(&mut self, room: &Room) -> Result<Addr<RoomActor>, AppError> {
        if let Some(addr) = self.awake(room) {
            return Ok(addr);
        }
        let hub: Arc<Hub> = self
            .hub
            .upgrade()
            .ok_or_else(|| AppError::internal("the engine is shutting down"))?;
        let r = room.clone();
        hub.broker.watch(room);
        let addr =
            RoomActor::start_in_arbiter(&hub.engine.clone(), move |_| RoomActor::new(hub, r));
        self.rooms.insert(
            room.clone(),
            RoomEntry {
                at: At::Running(addr.clone()),
                routed: 1,
            },
        );
        Ok(addr)
    }

    /// The room's actor if it has one or is asleep (woken then), counting one message routed to
    /// it; none for a room not running, which has no members.
    fn awake(&mut self, room: &Room) -> Option<Addr<RoomActor>> {
        if let Some(RoomEntry {
            at: At::Asleep(_), ..
        }) = self.rooms.get(room)
        {
            let hub = self.hub.upgrade()?;
            if let Some(RoomEntry {
                at: At::Asleep(asleep),
                ..
            }) = self.rooms.remove(room)
            {
                hub.rooms_asleep.fetch_sub(1, Ordering::Relaxed);
                let r = room.clone();
                let addr = RoomActor::start_in_arbiter(&hub.engine.clone(), move |_| {
                    RoomActor::waking(hub, r, *asleep)
                });
                log::debug!("[BROADCAST] room={:?} woken", room.to_string());
                // The new actor counts from nothing.
                self.rooms.insert(
                    room.clone(),
                    RoomEntry {
                        at: At::Running(addr),
                        routed: 0,
                    },
                );
            }
        }
        self.rooms.get_mut(room)?.route()
    }
}

impl RoomRegistry {
    /// Takes a session out of a sleeping room without waking it (a room left by everyone is
    /// forgotten, as an idle one is retired); answers whether the room was asleep.
    fn leave_asleep(&mut self, room: &Room, session: SessionId) -> bool {
        let Some(RoomEntry {
            at: At::Asleep(asleep),
            ..
        }) = self.rooms.get_mut(room)
        else {
            return false;
        };
        if !asleep.remove_member(session) {
            self.rooms.remove(room);
            if let Some(h) = self.hub.upgrade() {
                h.rooms_asleep.fetch_sub(1, Ordering::Relaxed);
                h.broker.unwatch(room);
            }
            log::debug!(
                "[BROADCAST] room={:?} left by everyone while asleep",
                room.to_string()
            );
        }
        true
    }
}

impl Handler<room::Sleep> for RoomRegistry {
    type Result = Option<Box<Asleep>>;

    /// Keeps the room's record in place of its actor, unless something was routed to the actor
    /// since it asked: then the record goes back and the actor handles what is on its way.
    fn handle(&mut self, msg: room::Sleep, _: &mut Context<Self>) -> Option<Box<Asleep>> {
        match self.rooms.get_mut(&msg.room) {
            Some(entry) if matches!(entry.at, At::Running(_)) && entry.routed == msg.received => {
                entry.at = At::Asleep(msg.asleep);
                entry.routed = 0;
                if let Some(h) = self.hub.upgrade() {
                    h.rooms_asleep.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
            _ => Some(msg.asleep),
        }
    }
}

impl Actor for RoomRegistry {
    type Context = Context<Self>;
}

impl Handler<SetHub> for RoomRegistry {
    type Result = ();
    fn handle(&mut self, msg: SetHub, _: &mut Context<Self>) {
        self.hub = msg.0;
    }
}

impl Handler<Join> for RoomRegistry {
    type Result = ResponseFuture<Result<JoinReply, AppError>>;

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> Self::Result {
        let room = self.room(&msg.room);
        Box::pin(async move {
            room?
                .send(room::JoinRoom {
                    session_id: msg.session_id,
                    endpoint: msg.endpoint,
                    since: msg.since,
                })
                .await?
        })
    }
}

impl Handler<Leave> for RoomRegistry {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        for r in msg.rooms {
            if self.leave_asleep(&r, msg.session_id) {
                continue;
            }
            if let Some(addr) = self.awake(&r) {
                addr.do_send(room::LeaveRoom {
                    session_id: msg.session_id,
                });
            }
        }
    }
}

impl Handler<RevokeRooms> for RoomRegistry {
    type Result = ();

    fn handle(&mut self, msg: RevokeRooms, _: &mut Context<Self>) {
        for r in msg.rooms {
            let frame = ServerMsg::Left {
                room: r.to_string(),
                reason: msg.reason,
            }
            .to_text()
            .into();
            crate::stats::messages_out("left", 1);
            if self.leave_asleep(&r, msg.session_id) {
                // Asleep: nothing of the room is on its way to the session.
                msg.endpoint.deliver(frame);
                continue;
            }
            match self.awake(&r) {
                Some(addr) => addr.do_send(room::Revoke {
                    session_id: msg.session_id,
                    endpoint: msg.endpoint.clone(),
                    frame,
                }),
                // No actor: the session is in no member list, and nothing of the room is on
                // its way to it.
                None => msg.endpoint.deliver(frame),
            }
        }
    }
}

impl Handler<Publish> for RoomRegistry {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        let mut by_room: BTreeMap<Room, Vec<(i64, &'static str, ByteString)>> = BTreeMap::new();
        let hub = self.hub.upgrade();
        for p in msg.messages {
            crate::stats::room_event_published(p.room.kind());
            let text: ByteString = p.text.into();
            // The other nodes' rooms (the broker seam: nothing leaves a node that is alone).
            if let Some(h) = &hub {
                h.broker.sequenced(&p.room, p.seq, &text);
            }
            by_room
                .entry(p.room)
                .or_default()
                .push((p.seq, p.kind, text));
        }
        // Only rooms with an actor have members. The messages are in the database already: a
        // room started later reads its seq there and replays from it.
        let mut sends = Vec::new();
        for (r, messages) in by_room {
            if let Some(addr) = self.awake(&r) {
                sends.push(addr.send(room::PublishSequenced { messages }));
            }
        }
        Box::pin(async move {
            let mut delivered = 0;
            for s in sends {
                delivered += s.await.unwrap_or(0);
            }
            delivered
        })
    }
}

impl Handler<PublishEphemeral> for RoomRegistry {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: PublishEphemeral, _: &mut Context<Self>) -> Self::Result {
        if let Some(h) = self.hub.upgrade() {
            h.broker.ephemeral(&msg.room, &msg.text);
        }
        // An ephemeral message to a room nobody is in reaches nobody: no actor is started for it.
        let addr = self.awake(&msg.room);
        Box::pin(async move {
            match addr {
                Some(a) => a
                    .send(room::PublishEphemeral {
                        kind: msg.kind,
                        text: msg.text,
                    })
                    .await
                    .unwrap_or(0),
                None => 0,
            }
        })
    }
}

impl Handler<RoomIdle> for RoomRegistry {
    type Result = ();

    fn handle(&mut self, msg: RoomIdle, _: &mut Context<Self>) {
        let Some(r) = self.rooms.get(&msg.room) else {
            return;
        };
        if r.routed != msg.received {
            // Something is on its way to the room: it is not idle after all.
            return;
        }
        if let Some(RoomEntry {
            at: At::Running(addr),
            ..
        }) = self.rooms.remove(&msg.room)
        {
            addr.do_send(room::StopRoom);
            if let Some(h) = self.hub.upgrade() {
                h.broker.unwatch(&msg.room);
            }
        }
    }
}

/// A message another node published (`cluster::bus`): to this node's room, if it runs one
/// (a node with no member in a room does not listen to it), never back to the bus.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remote {
    pub room: Room,
    /// The room's seq; `None` for an ephemeral message.
    pub seq: Option<i64>,
    pub text: ByteString,
}

impl Handler<Remote> for RoomRegistry {
    type Result = ();

    fn handle(&mut self, msg: Remote, _: &mut Context<Self>) {
        let Some(addr) = self.awake(&msg.room) else {
            return;
        };
        let kind = crate::protocol::server::frame_type(&msg.text);
        match msg.seq {
            Some(seq) => addr.do_send(room::PublishSequenced {
                messages: vec![(seq, kind, msg.text)],
            }),
            None => addr.do_send(room::PublishEphemeral {
                kind,
                text: msg.text,
            }),
        }
    }
}

/// The bus came back, or the cluster's leader changed: every running room re-reads what was
/// committed that it has not delivered (while the bus was away, or by a leader that died before
/// publishing it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatchUpAll;

impl Handler<CatchUpAll> for RoomRegistry {
    type Result = ();

    fn handle(&mut self, _: CatchUpAll, _: &mut Context<Self>) {
        let rooms: Vec<Room> = self.rooms.keys().cloned().collect();
        log::info!(
            "[CLUSTER] {} rooms re-read what the bus missed",
            rooms.len()
        );
        // Sleeping rooms too: their members must not wait for a next message to get what was
        // missed (each goes back to sleep once it has delivered it).
        for r in rooms {
            if let Some(addr) = self.awake(&r) {
                addr.do_send(room::CatchUp);
            }
        }
    }
}

/// Whether a room runs on this node, that is has members (or had within `realtime.room_idle_s`):
/// for a system that pushes ephemeral news only while someone watches (SPEC 8's insights).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Watched {
    pub room: Room,
}

impl Handler<Watched> for RoomRegistry {
    type Result = bool;

    fn handle(&mut self, msg: Watched, _: &mut Context<Self>) -> bool {
        self.rooms.get(&msg.room).is_some_and(|r| match &r.at {
            At::Running(addr) => addr.connected(),
            At::Asleep(_) => true,
        })
    }
}
