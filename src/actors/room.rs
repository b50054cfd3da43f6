//! `RoomActor`: one room's members and its `seq`.
//!
//! It delivers committed messages in `seq` order, each serialized once and shared by every member
//! (a `ByteString` clone only bumps a refcount). A message that arrives ahead of a missing one
//! waits in a small buffer until the gap is filled, from the database if need be. A join with
//! `since` gets the missed messages from the database before it becomes a member, while the room
//! processes nothing else, so no message is missed or delivered twice at the seam.
//! Fan-out uses `try_send`: a member whose queue is full is dropped and told to close (4008).

use super::{Deliver, Hub};
use crate::db::{self, queries};
use crate::protocol::{server, Room, SessionId};
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How long a message ahead of a gap waits before the room reads the gap from the database.
const GAP_WAIT: Duration = Duration::from_millis(250);

/// Adds a session to the room, replaying from `since` when given.
#[derive(Message)]
#[rtype(result = "Result<JoinReply, crate::error::AppError>")]
pub struct JoinRoom {
    pub session_id: SessionId,
    pub recipient: Recipient<Deliver>,
    pub since: Option<i64>,
}

/// What a joining session is told: the room's seq, whether the replay is complete, and the
/// missed messages in order (to write after `joined`, before anything live).
#[derive(Debug, Clone)]
pub struct JoinReply {
    pub seq: i64,
    pub recovered: Option<bool>,
    pub replay: Vec<ByteString>,
}

/// Removes a session from the room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoom {
    pub session_id: SessionId,
}

/// Delivers committed messages; answers the sessions reached.
#[derive(Message)]
#[rtype(result = "Vec<SessionId>")]
pub struct PublishSequenced {
    /// (seq, type, text)
    pub messages: Vec<(i64, &'static str, ByteString)>,
}

/// Delivers an ephemeral message (no seq, not kept); answers the sessions reached.
#[derive(Message)]
#[rtype(result = "Vec<SessionId>")]
pub struct PublishEphemeral {
    pub kind: &'static str,
    pub text: ByteString,
}

/// One room.
pub struct RoomActor {
    hub: Arc<Hub>,
    name: String,
    /// Members, each with the seq after which it has received everything.
    members: HashMap<SessionId, Member>,
    /// The last seq delivered to members.
    last_seq: i64,
    /// Messages that arrived ahead of a gap.
    ahead: BTreeMap<i64, (&'static str, ByteString)>,
    gap_check_armed: bool,
}

/// A member session.
struct Member {
    recipient: Recipient<Deliver>,
    /// Everything after this seq reached the member (live or replayed).
    from_seq: i64,
}

impl RoomActor {
    pub fn new(hub: Arc<Hub>, room: Room) -> RoomActor {
        RoomActor {
            hub,
            name: room.to_string(),
            members: HashMap::new(),
            last_seq: 0,
            ahead: BTreeMap::new(),
            gap_check_armed: false,
        }
    }

    /// Sends `text` to every member; drops those that are gone or cannot keep up.
    fn fan_out(&mut self, kind: &'static str, text: &ByteString) -> Vec<SessionId> {
        let mut reached = Vec::with_capacity(self.members.len());
        let mut dropped = Vec::new();
        for (id, member) in &self.members {
            match member.recipient.try_send(Deliver::Frame(text.clone())) {
                Ok(()) => reached.push(*id),
                Err(SendError::Full(_)) => {
                    log::warn!(
                        "[WEBSOCKET] session={id} room={} slow consumer: queue full, closing 4008",
                        self.name
                    );
                    self.hub.evict_slow_consumer(*id);
                    dropped.push(*id);
                }
                Err(SendError::Closed(_)) => dropped.push(*id),
            }
        }
        for id in dropped {
            self.members.remove(&id);
        }
        crate::stats::messages_out(kind, reached.len());
        reached
    }

    /// Delivers `seq` if it is next, buffers it if it is ahead, ignores it if already delivered.
    fn accept(
        &mut self,
        seq: i64,
        kind: &'static str,
        text: ByteString,
        reached: &mut Vec<SessionId>,
    ) {
        if seq <= self.last_seq {
            return;
        }
        if seq > self.last_seq + 1 {
            self.ahead.insert(seq, (kind, text));
            return;
        }
        reached.extend(self.fan_out(kind, &text));
        self.last_seq = seq;
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.last_seq + 1 {
                break;
            }
            let (seq, (kind, text)) = entry.remove_entry();
            reached.extend(self.fan_out(kind, &text));
            self.last_seq = seq;
        }
    }

    /// Reads a gap from the database when messages wait ahead of it.
    fn arm_gap_check(&mut self, ctx: &mut Context<Self>) {
        if self.ahead.is_empty() || self.gap_check_armed {
            return;
        }
        self.gap_check_armed = true;
        ctx.run_later(GAP_WAIT, |act, ctx| {
            act.gap_check_armed = false;
            if act.ahead.is_empty() {
                return;
            }
            let (pool, name, from) = (act.hub.pool.clone(), act.name.clone(), act.last_seq);
            let upto = act.ahead.keys().next().copied().unwrap_or(from);
            let read = async move {
                db::run(&pool, move |c| {
                    Ok(queries::rooms::since(c, &name, from, upto - from)?)
                })
                .await
            };
            ctx.wait(read.into_actor(act).map(|rows, act, ctx| {
                match rows {
                    Ok(rows) => {
                        let mut reached = Vec::new();
                        for row in rows {
                            let kind = server::frame_type(&row.payload);
                            act.accept(row.seq, kind, row.payload.into(), &mut reached);
                        }
                    }
                    Err(e) => log::error!("[BROADCAST] room={} gap read failed: {e}", act.name),
                }
                act.arm_gap_check(ctx);
            }));
        });
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (pool, name) = (self.hub.pool.clone(), self.name.clone());
        let read = async move {
            db::run(&pool, move |c| Ok(queries::rooms::current_seq(c, &name)?)).await
        };
        ctx.wait(read.into_actor(self).map(|seq, act, _| match seq {
            Ok(seq) => act.last_seq = seq,
            Err(e) => log::error!("[BROADCAST] room={} cannot read its seq: {e}", act.name),
        }));
    }
}

impl Handler<JoinRoom> for RoomActor {
    // Atomic: the room handles nothing else until the replay is read, so nothing is published
    // between the replay and membership.
    type Result = AtomicResponse<Self, Result<JoinReply, crate::error::AppError>>;

    fn handle(&mut self, msg: JoinRoom, _: &mut Context<Self>) -> Self::Result {
        // A member re-joining with `since` gets only what it has not received: up to the seq
        // it became a member at.
        let upto = self.members.get(&msg.session_id).map(|m| m.from_seq);
        let since = match msg.since {
            Some(since) if since < upto.unwrap_or(self.last_seq) => since,
            other => {
                // Nothing missed, unless the client claims more than this room ever had.
                let recovered = other.map(|s| s <= self.last_seq);
                let from_seq = upto.unwrap_or(self.last_seq);
                self.members.insert(
                    msg.session_id,
                    Member {
                        recipient: msg.recipient,
                        from_seq,
                    },
                );
                let reply = JoinReply {
                    seq: self.last_seq,
                    recovered,
                    replay: Vec::new(),
                };
                return AtomicResponse::new(Box::pin(fut::ready(Ok(reply))));
            }
        };
        let (pool, name) = (self.hub.pool.clone(), self.name.clone());
        let limit = self.hub.settings.realtime.history_per_room.max(1);
        let read = async move {
            db::run(&pool, move |c| {
                let oldest = queries::rooms::oldest_seq(c, &name)?;
                let rows = queries::rooms::since(c, &name, since, limit + 1)?;
                Ok((oldest, rows))
            })
            .await
        };
        AtomicResponse::new(Box::pin(read.into_actor(self).map(move |res, act, _| {
            let (oldest, rows) = res?;
            let reaches_back = oldest.is_some_and(|o| o <= since + 1);
            let complete = reaches_back && rows.len() as i64 <= limit;
            let mut replay = Vec::new();
            if complete {
                for row in rows {
                    let text: ByteString = row.payload.into();
                    if row.seq > act.last_seq {
                        // Committed but not yet announced here: everyone gets it now, in order.
                        let mut reached = Vec::new();
                        let kind = server::frame_type(&text);
                        act.accept(row.seq, kind, text.clone(), &mut reached);
                    }
                    if upto.is_none_or(|u| row.seq <= u) {
                        replay.push(text);
                    }
                }
            }
            act.members.insert(
                msg.session_id,
                Member {
                    recipient: msg.recipient,
                    from_seq: since,
                },
            );
            Ok(JoinReply {
                seq: act.last_seq,
                recovered: Some(complete),
                replay,
            })
        })))
    }
}

impl Handler<LeaveRoom> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoom, _: &mut Context<Self>) {
        self.members.remove(&msg.session_id);
    }
}

impl Handler<PublishSequenced> for RoomActor {
    type Result = MessageResult<PublishSequenced>;

    fn handle(&mut self, msg: PublishSequenced, ctx: &mut Context<Self>) -> Self::Result {
        let mut reached = Vec::new();
        for (seq, kind, text) in msg.messages {
            self.accept(seq, kind, text, &mut reached);
        }
        self.arm_gap_check(ctx);
        log::debug!(
            "[BROADCAST] room={} seq={} sessions={}",
            self.name,
            self.last_seq,
            reached.len()
        );
        MessageResult(reached)
    }
}

impl Handler<PublishEphemeral> for RoomActor {
    type Result = MessageResult<PublishEphemeral>;

    fn handle(&mut self, msg: PublishEphemeral, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.fan_out(msg.kind, &msg.text))
    }
}
