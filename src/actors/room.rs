//! `RoomActor`: one room's members and its `seq`.
//!
//! It delivers committed messages in `seq` order, each serialized once and shared by every member
//! (a `ByteString` clone only bumps a refcount). A message that arrives ahead of a missing one
//! waits in a small buffer until the gap is filled, from the database if need be. A join with
//! `since` gets the missed messages from the database before it becomes a member, while the room
//! processes nothing else, so no message is missed or delivered twice at the seam.
//!
//! Members are reached in two ways. A WebSocket session is reached through its worker's
//! `Fanout` (see `fanout`): the room sends each worker one message per publication with the
//! frames and that worker's members, whatever their number. Any other actor that takes `Deliver`
//! (the tests' probes, tools) is messaged directly with `try_send`; one whose queue is full is
//! dropped and told to close (4008).

use super::fanout::{FanOut, Fanout, Slot};
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
    pub endpoint: Endpoint,
    pub since: Option<i64>,
}

/// How a member is reached.
#[derive(Clone)]
pub enum Endpoint {
    /// A session on a worker: through that worker's fan-out.
    Local {
        shard: u32,
        fanout: Addr<Fanout>,
        slot: Slot,
    },
    /// Any actor that takes `Deliver`: messaged directly.
    Mailbox(Recipient<Deliver>),
}

impl Endpoint {
    /// Hands one frame to the member, after whatever was handed to it before by the same actor.
    pub fn deliver(&self, frame: ByteString) {
        match self {
            Endpoint::Local { fanout, slot, .. } => fanout.do_send(FanOut {
                frames: Arc::new([frame]),
                to: Arc::new([*slot]),
            }),
            Endpoint::Mailbox(r) => r.do_send(Deliver::Frame(frame)),
        }
    }
}

impl From<Recipient<Deliver>> for Endpoint {
    fn from(r: Recipient<Deliver>) -> Endpoint {
        Endpoint::Mailbox(r)
    }
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

/// Takes a session out of the room on the server's initiative and hands it `frame` (its `left`)
/// through the way the room reaches it: after everything the room sent it, before nothing else.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoke {
    pub session_id: SessionId,
    pub endpoint: Endpoint,
    pub frame: ByteString,
}

/// Delivers committed messages; answers the deliveries made (members × messages).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PublishSequenced {
    /// (seq, type, text)
    pub messages: Vec<(i64, &'static str, ByteString)>,
}

/// Delivers an ephemeral message (no seq, not kept); answers the members reached.
#[derive(Message)]
#[rtype(result = "usize")]
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
    /// The workers that have members here, each with its members' slots.
    shards: HashMap<u32, Shard>,
    /// The last seq delivered to members.
    last_seq: i64,
    /// Messages that arrived ahead of a gap.
    ahead: BTreeMap<i64, (&'static str, ByteString)>,
    gap_check_armed: bool,
}

/// A member session.
struct Member {
    at: MemberAt,
    /// Everything after this seq reached the member (live or replayed).
    from_seq: i64,
}

enum MemberAt {
    Shard(u32, Slot),
    Mailbox(Recipient<Deliver>),
}

/// A worker with members in this room.
struct Shard {
    fanout: Addr<Fanout>,
    /// The members' slots, shared by every `FanOut` until the membership changes.
    slots: Option<Arc<[Slot]>>,
}

/// Frames to fan out together, in order: (type, text).
type Batch = Vec<(&'static str, ByteString)>;

impl RoomActor {
    pub fn new(hub: Arc<Hub>, room: Room) -> RoomActor {
        RoomActor {
            hub,
            name: room.to_string(),
            members: HashMap::new(),
            shards: HashMap::new(),
            last_seq: 0,
            ahead: BTreeMap::new(),
            gap_check_armed: false,
        }
    }

    /// Adds (or replaces) a member.
    fn insert_member(&mut self, id: SessionId, endpoint: Endpoint, from_seq: i64) {
        let at = match endpoint {
            Endpoint::Local {
                shard,
                fanout,
                slot,
            } => {
                self.shards
                    .entry(shard)
                    .or_insert_with(|| Shard {
                        fanout,
                        slots: None,
                    })
                    .slots = None;
                MemberAt::Shard(shard, slot)
            }
            Endpoint::Mailbox(r) => MemberAt::Mailbox(r),
        };
        if let Some(old) = self.members.insert(id, Member { at, from_seq }) {
            self.forget_slot(&old.at);
        }
    }

    fn remove_member(&mut self, id: SessionId) {
        if let Some(old) = self.members.remove(&id) {
            self.forget_slot(&old.at);
        }
    }

    /// Marks the member's worker for a new snapshot.
    fn forget_slot(&mut self, at: &MemberAt) {
        if let MemberAt::Shard(shard, _) = at {
            if let Some(s) = self.shards.get_mut(shard) {
                s.slots = None;
            }
        }
    }

    /// Sends `frames` to every member: one `FanOut` per worker, one `Deliver` per frame to each
    /// mailbox member (dropping those gone or unable to keep up). Answers the deliveries made.
    fn fan_out(&mut self, frames: Batch) -> usize {
        if frames.is_empty() || self.members.is_empty() {
            return 0;
        }
        let mut members = 0;
        let mut dropped = Vec::new();
        for (id, member) in &self.members {
            let MemberAt::Mailbox(recipient) = &member.at else {
                continue;
            };
            for (_, text) in &frames {
                match recipient.try_send(Deliver::Frame(text.clone())) {
                    Ok(()) => {}
                    Err(SendError::Full(_)) => {
                        let queue = format!("mailbox (room {})", self.name);
                        self.hub.evict_slow_consumer(*id, &queue);
                        dropped.push(*id);
                        break;
                    }
                    Err(SendError::Closed(_)) => {
                        dropped.push(*id);
                        break;
                    }
                }
            }
            members += 1;
        }
        for id in dropped {
            members -= 1;
            self.remove_member(id);
        }
        let texts: Arc<[ByteString]> = if self.shards.is_empty() {
            Arc::new([])
        } else {
            frames.iter().map(|(_, t)| t.clone()).collect()
        };
        for (id, shard) in self.shards.iter_mut() {
            let members_map = &self.members;
            let slots = shard.slots.get_or_insert_with(|| {
                members_map
                    .values()
                    .filter_map(|m| match m.at {
                        MemberAt::Shard(s, slot) if s == *id => Some(slot),
                        _ => None,
                    })
                    .collect()
            });
            if slots.is_empty() {
                continue;
            }
            members += slots.len();
            shard.fanout.do_send(FanOut {
                frames: texts.clone(),
                to: slots.clone(),
            });
        }
        for (kind, _) in &frames {
            crate::stats::messages_out(kind, members);
        }
        members * frames.len()
    }

    /// Queues `seq` for delivery if it is next (with any buffered ones it unblocks), buffers it
    /// if it is ahead, ignores it if already delivered.
    fn accept(&mut self, seq: i64, kind: &'static str, text: ByteString, batch: &mut Batch) {
        if seq <= self.last_seq {
            return;
        }
        if seq > self.last_seq + 1 {
            self.ahead.insert(seq, (kind, text));
            return;
        }
        batch.push((kind, text));
        self.last_seq = seq;
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.last_seq + 1 {
                break;
            }
            let (seq, (kind, text)) = entry.remove_entry();
            batch.push((kind, text));
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
                        let mut batch = Vec::new();
                        for row in rows {
                            let kind = server::frame_type(&row.payload);
                            act.accept(row.seq, kind, row.payload.into(), &mut batch);
                        }
                        act.fan_out(batch);
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
                self.insert_member(msg.session_id, msg.endpoint, from_seq);
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
                let mut batch = Vec::new();
                for row in rows {
                    let text: ByteString = row.payload.into();
                    if row.seq > act.last_seq {
                        // Committed but not yet announced here: everyone gets it now, in order.
                        let kind = server::frame_type(&text);
                        act.accept(row.seq, kind, text.clone(), &mut batch);
                    }
                    if upto.is_none_or(|u| row.seq <= u) {
                        replay.push(text);
                    }
                }
                // To the members before this one, which has it in its replay.
                act.fan_out(batch);
            }
            act.insert_member(msg.session_id, msg.endpoint, since);
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
        self.remove_member(msg.session_id);
    }
}

impl Handler<Revoke> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Revoke, _: &mut Context<Self>) {
        self.remove_member(msg.session_id);
        msg.endpoint.deliver(msg.frame);
    }
}

impl Handler<PublishSequenced> for RoomActor {
    type Result = MessageResult<PublishSequenced>;

    fn handle(&mut self, msg: PublishSequenced, ctx: &mut Context<Self>) -> Self::Result {
        let mut batch = Vec::with_capacity(msg.messages.len());
        for (seq, kind, text) in msg.messages {
            self.accept(seq, kind, text, &mut batch);
        }
        let delivered = self.fan_out(batch);
        self.arm_gap_check(ctx);
        log::debug!(
            "[BROADCAST] room={} seq={} delivered={delivered}",
            self.name,
            self.last_seq,
        );
        MessageResult(delivered)
    }
}

impl Handler<PublishEphemeral> for RoomActor {
    type Result = MessageResult<PublishEphemeral>;

    fn handle(&mut self, msg: PublishEphemeral, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.fan_out(vec![(msg.kind, msg.text)]))
    }
}
