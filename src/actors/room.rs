//! `RoomActor`: one room's members and its `seq`.
//!
//! It delivers committed messages in `seq` order, each serialized once and shared by every member
//! (a `ByteString` clone only bumps a refcount). A message that arrives ahead of a missing one
//! waits in a small buffer until the gap is filled from the database; a gap whose rows were
//! trimmed is skipped, and the members are told to `resync`. A join with `since` reads its replay
//! outside the room's turn (see `replay`), so a big replay never holds up live delivery.
//!
//! A room learns its seq from the database when it starts, retrying with a backoff until it does;
//! it handles nothing meanwhile, so nothing is delivered or joined against a wrong seq. A room with
//! no members and nothing in flight for `realtime.room_idle_s` asks the registry to retire it
//! (`RoomIdle`); the registry does so only if it has routed nothing to the room since, so no join
//! or publication is lost in the hand-off.
//!
//! A room with members that has had nothing to do for `realtime.room_sleep_ms` sleeps: it hands
//! its members and seq (`Asleep`) to the registry and stops, so a quiet room costs a small record
//! instead of an actor, its task and its mailbox. The hand-off is the same as retiring's: the
//! registry takes the record only if it has routed nothing to the room since, and the room waits
//! for the answer, handling nothing meanwhile, so what arrives in between is handled by the room
//! with its members given back. The next message for a sleeping room wakes it: the registry
//! starts its actor from the record, which knows its seq (no database read).
//!
//! Members are reached in two ways. A WebSocket session is reached through its worker's
//! `Fanout` (see `fanout`): the room sends each worker one message per publication with the
//! frames and that worker's members, whatever their number. Any other actor that takes `Deliver`
//! (the tests' probes, tools) is messaged directly with `try_send`; one whose queue is full is
//! dropped and told to close (4008).

mod members;
mod replay;
mod rest;

use super::fanout::{FanOut, Fanout, Slot};
use super::{Deliver, Hub};
use crate::db::{self, queries};
use crate::protocol::{server, Room, ServerMsg, SessionId};
use actix::prelude::*;
use bytestring::ByteString;
use members::Members;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a message ahead of a gap waits before the room reads the gap from the database.
const GAP_WAIT: Duration = Duration::from_millis(250);

/// The first wait before the seq read is tried again, doubled on each failure up to the second.
const SEQ_RETRY_FIRST: Duration = Duration::from_millis(50);
const SEQ_RETRY_MAX: Duration = Duration::from_secs(5);

pub use replay::JoinRoom;
pub use rest::{Asleep, Sleep};

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

/// Re-reads from the database what was committed after the last seq delivered (the cluster's
/// bus was away: `registry::CatchUpAll`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatchUp;

/// Stops the room: sent by the registry, which has forgotten it and routes nothing more to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRoom;

/// One room.
pub struct RoomActor {
    hub: Arc<Hub>,
    room: Room,
    name: String,
    /// Members, each with the seq after which it has received everything.
    members: Members<Member>,
    /// The workers that have members here, each with its members' slots (a few: one per HTTP
    /// worker at most, so a list).
    shards: Vec<(u32, Shard)>,
    /// The last seq delivered to members.
    last_seq: i64,
    /// Messages that arrived ahead of a gap.
    ahead: BTreeMap<i64, (&'static str, ByteString)>,
    gap_check_armed: bool,
    /// Messages the registry routed here and this room handled (see `RoomIdle`).
    received: u64,
    /// Replays being read for joining sessions.
    replays: usize,
    /// Since when the room has had no members and nothing in flight.
    idle_since: Option<Instant>,
    idle_check_armed: bool,
    sleep_check_armed: bool,
    /// Its seq is known (a room woken from sleep): nothing to read when it starts.
    seq_known: bool,
}

/// Takes a member out (of a running room or a sleeping one's record).
fn remove_member(members: &mut Members<Member>, shards: &mut [(u32, Shard)], id: SessionId) {
    if let Some(old) = members.remove(&id) {
        forget_slot(shards, &old.at);
    }
}

/// Marks the member's worker for a new snapshot of its slots.
fn forget_slot(shards: &mut [(u32, Shard)], at: &MemberAt) {
    if let MemberAt::Shard(shard, _) = at {
        if let Some((_, s)) = shards.iter_mut().find(|(s, _)| s == shard) {
            s.slots = None;
        }
    }
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
            room,
            members: Members::default(),
            shards: Vec::new(),
            last_seq: 0,
            ahead: BTreeMap::new(),
            gap_check_armed: false,
            received: 0,
            replays: 0,
            idle_since: None,
            idle_check_armed: false,
            sleep_check_armed: false,
            seq_known: false,
        }
    }

    /// Delivers the buffered messages that now follow `last_seq`.
    fn drain_ahead(&mut self, batch: &mut Batch) {
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.last_seq + 1 {
                break;
            }
            let (seq, (kind, text)) = entry.remove_entry();
            batch.push((kind, text));
            self.last_seq = seq;
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
                match self.shards.iter_mut().find(|(s, _)| *s == shard) {
                    Some((_, s)) => s.slots = None,
                    None => {
                        self.shards.reserve_exact(1);
                        self.shards.push((
                            shard,
                            Shard {
                                fanout,
                                slots: None,
                            },
                        ));
                    }
                }
                MemberAt::Shard(shard, slot)
            }
            Endpoint::Mailbox(r) => MemberAt::Mailbox(r),
        };
        if let Some(old) = self.members.insert(id, Member { at, from_seq }) {
            forget_slot(&mut self.shards, &old.at);
        }
    }

    fn remove_member(&mut self, id: SessionId) {
        remove_member(&mut self.members, &mut self.shards, id);
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
        self.drain_ahead(batch);
    }

    /// Rows read from the database (a gap, a catch-up), accepted in order: what is next to
    /// deliver.
    fn accept_rows(&mut self, rows: Vec<crate::db::models::RoomEventRow>) -> Batch {
        let mut batch = Vec::new();
        for row in rows {
            let kind = server::frame_type(&row.payload);
            self.accept(row.seq, kind, row.payload.into(), &mut batch);
        }
        batch
    }

    /// After a gap read of every seq up to `read_upto`: what the database did not have of it was
    /// trimmed (a seq is committed before it is published, and a room's seqs commit in order, so
    /// below a message that arrived nothing is still to come). Nobody can fill that gap: members
    /// are told to `resync`, and delivery goes on after it. A gap above `read_upto` was not read
    /// and waits for the next read.
    fn skip_trimmed_gaps(&mut self, read_upto: i64, batch: &mut Batch) {
        while let Some(&next) = self.ahead.keys().next() {
            if next <= self.last_seq + 1 || next > read_upto {
                return;
            }
            self.skip_gap_before(next, batch);
        }
    }

    fn skip_gap_before(&mut self, next: i64, batch: &mut Batch) {
        log::warn!(
            "[BROADCAST] room={:?} seq {}..{} trimmed before delivery: members told to resync",
            self.name,
            self.last_seq + 1,
            next - 1
        );
        let resync = ServerMsg::Resync {
            room: self.name.clone(),
        };
        batch.push(("resync", resync.to_text().into()));
        self.last_seq = next - 1;
        self.drain_ahead(batch);
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
            // Every gap below the last message waiting, not only the first: the seqs between
            // two waiting messages are read too, or the second gap would look trimmed.
            let cap = act.hub.settings.realtime.history_per_room.max(1);
            let upto = act
                .ahead
                .keys()
                .next_back()
                .copied()
                .unwrap_or(from)
                .min(from + cap);
            let read = async move {
                db::run(&pool, move |c| {
                    Ok(queries::rooms::since(c, &name, from, upto - from)?)
                })
                .await
            };
            ctx.wait(read.into_actor(act).map(move |rows, act, ctx| {
                match rows {
                    Ok(rows) => {
                        let mut batch = act.accept_rows(rows);
                        act.skip_trimmed_gaps(upto, &mut batch);
                        act.fan_out(batch);
                    }
                    Err(e) => log::error!(
                        "[BROADCAST] room={:?} gap read failed: {}",
                        act.name,
                        crate::telemetry::q(&e.to_string())
                    ),
                }
                act.arm_gap_check(ctx);
                act.check_idle(ctx);
            }));
        });
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    /// Reads the room's seq, retrying until it is known. The room handles nothing meanwhile
    /// (`wait`): joins and publications queue until then.
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.hub.room_actors.fetch_add(1, Ordering::Relaxed);
        if self.seq_known {
            // Woken from sleep.
            return self.check_idle(ctx);
        }
        let (pool, name) = (self.hub.pool.clone(), self.name.clone());
        let read = async move {
            let mut backoff = SEQ_RETRY_FIRST;
            loop {
                let n = name.clone();
                match db::run(&pool, move |c| Ok(queries::rooms::current_seq(c, &n)?)).await {
                    Ok(seq) => return seq,
                    Err(e) => {
                        crate::stats::room_seq_read_failed();
                        log::error!(
                            "[BROADCAST] room={name:?} cannot read its seq, retrying in {backoff:?}: {}",
                            crate::telemetry::q(&e.to_string())
                        );
                        actix_rt::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(SEQ_RETRY_MAX);
                    }
                }
            }
        };
        ctx.wait(read.into_actor(self).map(|seq, act, ctx| {
            act.last_seq = seq;
            act.check_idle(ctx);
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.hub.room_actors.fetch_sub(1, Ordering::Relaxed);
        log::debug!("[BROADCAST] room={:?} stopped (idle)", self.name);
    }
}

impl Handler<StopRoom> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: StopRoom, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<LeaveRoom> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoom, ctx: &mut Context<Self>) {
        self.received += 1;
        self.remove_member(msg.session_id);
        self.check_idle(ctx);
    }
}

impl Handler<Revoke> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Revoke, ctx: &mut Context<Self>) {
        self.received += 1;
        self.remove_member(msg.session_id);
        msg.endpoint.deliver(msg.frame);
        self.check_idle(ctx);
    }
}

impl Handler<PublishSequenced> for RoomActor {
    type Result = MessageResult<PublishSequenced>;

    fn handle(&mut self, msg: PublishSequenced, ctx: &mut Context<Self>) -> Self::Result {
        self.received += 1;
        let mut batch = Vec::with_capacity(msg.messages.len());
        for (seq, kind, text) in msg.messages {
            self.accept(seq, kind, text, &mut batch);
        }
        let delivered = self.fan_out(batch);
        self.arm_gap_check(ctx);
        self.check_idle(ctx);
        log::debug!(
            "[BROADCAST] room={:?} seq={} delivered={delivered}",
            self.name,
            self.last_seq,
        );
        MessageResult(delivered)
    }
}

impl Handler<CatchUp> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: CatchUp, ctx: &mut Context<Self>) {
        self.received += 1;
        self.catch_up(ctx);
    }
}

impl RoomActor {
    /// Reads and delivers what was committed after the last seq delivered; handles nothing else
    /// meanwhile.
    fn catch_up(&mut self, ctx: &mut Context<Self>) {
        let (pool, name, from) = (self.hub.pool.clone(), self.name.clone(), self.last_seq);
        let limit = self.hub.settings.realtime.history_per_room.max(1);
        let read = async move {
            db::run(&pool, move |c| {
                Ok(queries::rooms::since(c, &name, from, limit)?)
            })
            .await
        };
        ctx.wait(read.into_actor(self).map(|rows, act, ctx| {
            match rows {
                Ok(rows) => {
                    let batch = act.accept_rows(rows);
                    act.fan_out(batch);
                }
                Err(e) => log::error!(
                    "[CLUSTER] room={:?} catch-up read failed: {}",
                    act.name,
                    crate::telemetry::q(&e.to_string())
                ),
            }
            act.arm_gap_check(ctx);
            act.check_idle(ctx);
        }));
    }
}

impl Handler<PublishEphemeral> for RoomActor {
    type Result = MessageResult<PublishEphemeral>;

    fn handle(&mut self, msg: PublishEphemeral, ctx: &mut Context<Self>) -> Self::Result {
        self.received += 1;
        let reached = self.fan_out(vec![(msg.kind, msg.text)]);
        self.check_idle(ctx);
        MessageResult(reached)
    }
}
