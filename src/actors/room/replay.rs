//! `JoinRoom`: a session joins a room, with the messages it missed when it gives `since`.
//!
//! The replay is read outside the room's turn, so the room goes on delivering to its other
//! members while a big history is read. The seam stays exact: the joiner becomes a member at
//! once, from the room's current seq `at`, so every live message after `at` reaches it; the read
//! fetches exactly `since+1 ..= at`. A session writes nothing the room sends it until its join
//! is answered (`ctx.wait`), so it writes `joined`, the replay, then what arrived live meanwhile
//! (held in its outbox, bounded by `limits.outbound_queue`: past it, it is a slow consumer): every
//! message once, in order. (A `Mailbox` member that joins with `since` must likewise take the
//! answer before the frames; the tests' probes join without.)
//!
//! `recovered: true` only when the rows read are exactly `since+1, since+2, ..., at`: a trim
//! racing the resume (or any hole) makes it `false`, and the session is told to `resync`.

use super::{Endpoint, JoinReply, RoomActor};
use crate::db::models::RoomEventRow;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::SessionId;
use actix::prelude::*;
use bytestring::ByteString;
use std::sync::atomic::Ordering;

/// Adds a session to the room, replaying from `since` when given.
#[derive(Message)]
#[rtype(result = "Result<JoinReply, AppError>")]
pub struct JoinRoom {
    pub session_id: SessionId,
    pub endpoint: Endpoint,
    pub since: Option<i64>,
}

/// Whether `rows` are exactly the seqs `since+1 ..= at`, in order.
pub(super) fn contiguous(rows: &[RoomEventRow], since: i64, at: i64) -> bool {
    rows.len() as i64 == at - since && rows.iter().zip(since + 1..).all(|(r, seq)| r.seq == seq)
}

impl Handler<JoinRoom> for RoomActor {
    // Not atomic: the room keeps handling publications while the replay is read.
    type Result = ResponseActFuture<Self, Result<JoinReply, AppError>>;

    fn handle(&mut self, msg: JoinRoom, ctx: &mut Context<Self>) -> Self::Result {
        self.received += 1;
        match msg.since {
            Some(since) if since > self.last_seq => self.catch_up_then_join(since, msg),
            _ => self.join(msg, ctx),
        }
    }
}

impl RoomActor {
    /// A client that resumes from further than this room has delivered: it saw those messages
    /// through another node of the cluster (or the publication is still on its way). The room
    /// first reads what was committed up to `since` and delivers it to its members, then joins the
    /// session as usual, from where it is; what it never had (a `since` beyond anything
    /// committed) is refused as before, with `recovered: false`. Without this, the joiner would
    /// be a member from the room's older seq and get again what it already had.
    fn catch_up_then_join(
        &mut self,
        since: i64,
        msg: JoinRoom,
    ) -> ResponseActFuture<Self, Result<JoinReply, AppError>> {
        let (pool, name, from) = (self.hub.pool.clone(), self.name.clone(), self.last_seq);
        let limit = self.hub.settings.realtime.history_per_room.max(1);
        let count = (since - from).min(limit);
        // Not idle while it reads: the join is still to come.
        self.replays += 1;
        let read = async move {
            db::run(&pool, move |c| {
                Ok(queries::rooms::since(c, &name, from, count)?)
            })
            .await
        };
        Box::pin(read.into_actor(self).then(move |rows, act, ctx| {
            act.replays -= 1;
            match rows {
                Ok(rows) => {
                    let batch = act.accept_rows(rows);
                    act.fan_out(batch);
                    act.arm_gap_check(ctx);
                }
                Err(e) => log::error!(
                    "[BROADCAST] room={:?} catch-up for a join failed: {}",
                    act.name,
                    crate::telemetry::q(&e.to_string())
                ),
            }
            act.join(msg, ctx)
        }))
    }

    fn join(
        &mut self,
        msg: JoinRoom,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<JoinReply, AppError>> {
        let id = msg.session_id;
        // A member re-joining with `since` gets only what it has not received: up to the seq
        // it became a member at. A new member has everything after the current seq live.
        let member_from = self.members.get(&id).map(|m| m.from_seq);
        let at = member_from.unwrap_or(self.last_seq);
        let since = match msg.since {
            Some(since) if since < at => since,
            other => {
                // Nothing missed, unless the client claims more than this room ever had.
                let recovered = other.map(|s| s <= self.last_seq);
                self.insert_member(id, msg.endpoint, at);
                self.check_idle(ctx);
                let reply = JoinReply {
                    seq: self.last_seq,
                    recovered,
                    replay: Vec::new(),
                };
                return Box::pin(fut::ready(Ok(reply)));
            }
        };
        if member_from.is_none() {
            self.insert_member(id, msg.endpoint, at);
        }
        self.replays += 1;
        self.hub
            .room_replays_reading
            .fetch_add(1, Ordering::Relaxed);
        let (pool, name) = (self.hub.pool.clone(), self.name.clone());
        let limit = self.hub.settings.realtime.history_per_room.max(1);
        let missed = at - since;
        let read = async move {
            if missed > limit {
                // More than is kept for resume: not read at all.
                return Ok(None);
            }
            db::run(&pool, move |c| {
                Ok(Some(queries::rooms::since(c, &name, since, missed)?))
            })
            .await
        };
        Box::pin(read.into_actor(self).map(move |res, act, ctx| {
            act.replays -= 1;
            act.hub.room_replays_reading.fetch_sub(1, Ordering::Relaxed);
            act.check_idle(ctx);
            let rows = res?;
            let complete = rows.as_ref().is_some_and(|r| contiguous(r, since, at));
            let replay: Vec<ByteString> = match rows {
                Some(rows) if complete => rows.into_iter().map(|r| r.payload.into()).collect(),
                _ => Vec::new(),
            };
            if complete {
                // It now has everything after `since`.
                if let Some(m) = act.members.get_mut(&id) {
                    m.from_seq = m.from_seq.min(since);
                }
            }
            Ok(JoinReply {
                seq: if member_from.is_some() {
                    act.last_seq
                } else {
                    at
                },
                recovered: Some(complete),
                replay,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(seqs: &[i64]) -> Vec<RoomEventRow> {
        seqs.iter()
            .map(|&seq| RoomEventRow {
                room: "dispatch".into(),
                seq,
                id: format!("m{seq}"),
                payload: "{}".into(),
                created_at: chrono::NaiveDateTime::default(),
            })
            .collect()
    }

    #[test]
    fn a_replay_is_complete_only_when_it_is_every_seq_after_since() {
        assert!(contiguous(&rows(&[4, 5, 6]), 3, 6));
        assert!(contiguous(&rows(&[]), 6, 6));
        assert!(!contiguous(&rows(&[4, 6]), 3, 6), "a hole");
        assert!(!contiguous(&rows(&[5, 6]), 3, 6), "trimmed at the start");
        assert!(!contiguous(&rows(&[4, 5]), 3, 6), "short at the end");
        assert!(
            !contiguous(&rows(&[4, 5, 7]), 3, 6),
            "a hole the length hides"
        );
    }
}
