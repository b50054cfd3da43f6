//! A room at rest: asleep with members, or retired without any.
//!
//! A room with members that has handled nothing for `realtime.room_sleep_ms` hands its members
//! and seq (`Asleep`) to the registry and stops; the registry takes the record only if it has
//! routed nothing to the room since, and the room handles nothing until it answers. A room with
//! no members and nothing in flight for `realtime.room_idle_s` asks the registry to retire it
//! (`RoomIdle`), on the same condition. See the room module's own documentation.

use super::{remove_member, Member, Members, RoomActor, Shard};
use crate::actors::registry::RoomIdle;
use crate::actors::Hub;
use crate::protocol::{Room, SessionId};
use actix::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// A sleeping room's members and seq, kept by the registry in place of its actor.
pub struct Asleep {
    members: Members<Member>,
    shards: Vec<(u32, Shard)>,
    last_seq: i64,
}

impl Asleep {
    /// Takes a member out while the room sleeps; answers whether the room has members left.
    pub fn remove_member(&mut self, id: SessionId) -> bool {
        remove_member(&mut self.members, &mut self.shards, id);
        !self.members.is_empty()
    }

    /// Whether `id` is a member (tests).
    pub fn has_member(&self, id: SessionId) -> bool {
        self.members.get(&id).is_some()
    }
}

/// Asks the registry to let the room sleep, handing it `asleep`; answers it back when refused
/// (something was routed to the room since it handled `received` messages).
#[derive(Message)]
#[rtype(result = "Option<Box<Asleep>>")]
pub struct Sleep {
    pub room: Room,
    pub received: u64,
    pub asleep: Box<Asleep>,
}

impl RoomActor {
    /// A sleeping room woken by the registry: its members and seq as it left them.
    pub fn waking(hub: Arc<Hub>, room: Room, asleep: Asleep) -> RoomActor {
        let mut act = RoomActor::new(hub, room);
        act.members = asleep.members;
        act.shards = asleep.shards;
        act.last_seq = asleep.last_seq;
        act.seq_known = true;
        act
    }

    /// Members and nothing in flight or waiting: nothing the room does until a message comes.
    fn may_sleep(&self) -> bool {
        !self.members.is_empty()
            && self.replays == 0
            && self.ahead.is_empty()
            && !self.gap_check_armed
    }

    /// Arms the check that puts the room to sleep once it has handled no message for
    /// `realtime.room_sleep_ms`. Called with `check_idle`, at the end of every handler.
    fn check_sleep(&mut self, ctx: &mut Context<Self>) {
        let Some(wait) = self.hub.settings.realtime.room_sleep() else {
            return;
        };
        if self.sleep_check_armed || !self.may_sleep() {
            return;
        }
        self.sleep_check_armed = true;
        let mark = self.received;
        ctx.run_later(wait, move |act, ctx| {
            act.sleep_check_armed = false;
            if act.received != mark {
                // Busy meanwhile: looked at again a period after now.
                return act.check_sleep(ctx);
            }
            if !act.may_sleep() {
                return;
            }
            let asleep = Box::new(Asleep {
                members: std::mem::take(&mut act.members),
                shards: std::mem::take(&mut act.shards),
                last_seq: act.last_seq,
            });
            let ask = act.hub.rooms.send(Sleep {
                room: act.room.clone(),
                received: act.received,
                asleep,
            });
            // Nothing else is handled until the registry answers: a message routed meanwhile
            // waits in the mailbox and finds the members given back.
            ctx.wait(ask.into_actor(act).map(|answer, act, ctx| match answer {
                Ok(None) => {
                    log::debug!("[BROADCAST] room={:?} asleep", act.name);
                    ctx.stop();
                }
                Ok(Some(back)) => {
                    act.members = back.members;
                    act.shards = back.shards;
                    act.check_sleep(ctx);
                }
                Err(e) => {
                    // The registry is gone: the engine is stopping.
                    log::warn!("[BROADCAST] room={:?} could not sleep: {e}", act.name);
                    ctx.stop();
                }
            }));
        });
    }

    /// No members and nothing in flight: nothing would be lost if the room stopped.
    fn is_idle(&self) -> bool {
        self.members.is_empty() && self.replays == 0 && self.ahead.is_empty()
    }

    /// Notes when the room became idle and arms the check that retires it after
    /// `realtime.room_idle_s`. Called at the end of every handler.
    pub(super) fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.is_idle() {
            self.idle_since = None;
            self.check_sleep(ctx);
            return;
        }
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        if self.idle_check_armed {
            return;
        }
        self.idle_check_armed = true;
        let wait = self
            .hub
            .settings
            .realtime
            .room_idle()
            .saturating_sub(since.elapsed());
        ctx.run_later(wait, |act, ctx| {
            act.idle_check_armed = false;
            let Some(since) = act.idle_since.filter(|_| act.is_idle()) else {
                return;
            };
            if since.elapsed() < act.hub.settings.realtime.room_idle() {
                return act.check_idle(ctx);
            }
            // The registry retires the room only if nothing was routed here since `received`;
            // otherwise what is on its way arrives, and the room is checked again after it.
            act.hub.rooms.do_send(RoomIdle {
                room: act.room.clone(),
                received: act.received,
            });
        });
    }
}
