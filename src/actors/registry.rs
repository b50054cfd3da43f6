//! `RoomRegistry`: finds or starts the `RoomActor` of a room and routes joins, leaves and
//! publications to it. It owns no membership itself: each room does.

use super::room::{self, Endpoint, JoinReply, RoomActor};
use super::Hub;
use crate::db::queries::commit::Published;
use crate::error::AppError;
use crate::protocol::{LeftReason, Room, ServerMsg, SessionId};
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::{BTreeMap, HashMap};
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

/// Gives the registry the hub, once it exists (the hub holds the registry's address).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetHub(pub Weak<Hub>);

/// Finds or starts room actors.
#[derive(Default)]
pub struct RoomRegistry {
    hub: Weak<Hub>,
    rooms: HashMap<Room, Addr<RoomActor>>,
}

impl RoomRegistry {
    fn room(&mut self, room: &Room) -> Result<Addr<RoomActor>, AppError> {
        if let Some(addr) = self.rooms.get(room) {
            if addr.connected() {
                return Ok(addr.clone());
            }
        }
        let hub: Arc<Hub> = self
            .hub
            .upgrade()
            .ok_or_else(|| AppError::internal("the engine is shutting down"))?;
        let r = room.clone();
        let addr =
            RoomActor::start_in_arbiter(&hub.engine.clone(), move |_| RoomActor::new(hub, r));
        self.rooms.insert(room.clone(), addr.clone());
        Ok(addr)
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
            if let Some(addr) = self.rooms.get(&r) {
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
            match self.rooms.get(&r).filter(|a| a.connected()) {
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
        for p in msg.messages {
            crate::stats::room_event_published(p.room.kind());
            by_room
                .entry(p.room)
                .or_default()
                .push((p.seq, p.kind, p.text.into()));
        }
        // Only rooms with an actor have members. The messages are in the database already: a
        // room started later reads its seq there and replays from it.
        let mut sends = Vec::new();
        for (r, messages) in by_room {
            if let Some(addr) = self.rooms.get(&r).filter(|a| a.connected()) {
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
        // An ephemeral message to a room nobody is in reaches nobody: no actor is started for it.
        let addr = self.rooms.get(&msg.room).cloned();
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
