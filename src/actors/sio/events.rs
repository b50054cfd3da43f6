//! A connected socket's events: each read as the client message its name stands for, decoded
//! by the native rules and run by the command layer; `join`, `leave` and `refresh` applied to
//! the socket.

use super::socket::Reply;
use super::SioSession;
use crate::actors::connect;
use crate::actors::registry::Leave;
use crate::actors::session::take_out;
use crate::commands::{self, session::SessionCommand, Command, Request};
use crate::error::AppError;
use crate::protocol::client::ClientFrame;
use crate::protocol::{LeftReason, Room};
use crate::socketio::names;
use actix::prelude::*;
use serde_json::{json, Value};
use std::time::Instant;

impl SioSession {
    /// An EVENT: counted against the rate limit, read as a client message, run.
    pub(super) fn on_event(
        &mut self,
        ctx: &mut Context<Self>,
        ack: Option<u64>,
        name: &str,
        args: Vec<Value>,
    ) {
        let Some(live) = self.socket.live.as_mut() else {
            let e = AppError::Unauthorized("send CONNECT with your token first".into());
            self.answer(ctx, ack, Err(e));
            return;
        };
        if live.rate.check(Instant::now()) != crate::ratelimit::Verdict::Allow {
            let e = AppError::RateLimited(format!(
                "more than {} messages per second: slow down",
                self.hub.settings.limits.client_msgs_per_sec
            ));
            self.answer(ctx, ack, Err(e));
            return;
        }
        let frame = names::client_message(name, &args)
            .map_err(|e| AppError::bad_request(e.to_string()))
            .and_then(|map| ClientFrame::from_map(map).map_err(|d| d.error));
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                crate::stats::message_in("invalid");
                self.answer(ctx, ack, Err(e));
                return;
            }
        };
        crate::stats::message_in(frame.msg.kind());
        let key = frame.idempotency_key;
        match Request::from(frame.msg) {
            Request::Ping => self.answer(ctx, ack, Ok(json!({}))),
            Request::Session(SessionCommand::Join { room, since }) => {
                self.join(ctx, ack, room, since)
            }
            Request::Session(SessionCommand::Leave { room }) => {
                let reply = self.leave(&room);
                self.answer(ctx, ack, reply);
            }
            Request::Session(SessionCommand::Refresh { token }) => {
                let reply = self.refresh(ctx, &token);
                self.answer(ctx, ack, reply);
            }
            Request::Command(c) => self.run(ctx, ack, c, key),
        }
    }

    pub(super) fn run(
        &mut self,
        ctx: &mut Context<Self>,
        ack: Option<u64>,
        command: Command,
        key: Option<String>,
    ) {
        let Some(live) = self.socket.live.as_ref() else {
            return;
        };
        let run = commands::run(self.hub.clone(), live.claims.clone(), command, Ok(key));
        ctx.spawn(run.into_actor(self).map(move |answer, act, ctx| {
            act.answer(ctx, ack, answer.map(commands::Answer::ack));
        }));
    }

    /// `join`, decided by the command layer; the replay written before anything live.
    pub(super) fn join(
        &mut self,
        ctx: &mut Context<Self>,
        ack: Option<u64>,
        name: String,
        since: Option<i64>,
    ) {
        let Some(live) = self.socket.live.as_ref() else {
            return;
        };
        let work = connect::join(
            &self.hub,
            &live.claims,
            &live.rooms,
            &name,
            since,
            self.socket.id,
            self.outbox.endpoint(),
        );
        ctx.wait(work.into_actor(self).map(move |res, act, ctx| match res {
            Ok((join, reply)) => {
                let body = join.ack(reply.seq);
                if let (Some(live), Some(since)) = (act.socket.live.as_mut(), join.since) {
                    live.offset.join(&join.room.to_string(), since);
                }
                act.write_join(ctx, &join.room, reply, true);
                act.answer(ctx, ack, Ok(body));
            }
            Err(e) => act.answer(ctx, ack, Err(e)),
        }));
    }

    pub(super) fn leave(&mut self, name: &str) -> Reply {
        let live = self
            .socket
            .live
            .as_mut()
            .ok_or_else(|| AppError::internal("not connected"))?;
        let leave = commands::session::leave(&live.rooms, name)?;
        live.rooms.retain(|r| *r != leave.room);
        live.offset.leave(&leave.room.to_string());
        live.set_offset();
        self.hub.rooms.do_send(Leave {
            rooms: vec![leave.room.clone()],
            session_id: self.socket.id,
        });
        Ok(leave.ack())
    }

    pub(super) fn refresh(&mut self, ctx: &mut Context<Self>, token: &str) -> Reply {
        let live = self
            .socket
            .live
            .as_mut()
            .ok_or_else(|| AppError::internal("not connected"))?;
        let refreshed = commands::session::refresh(&self.hub, &live.claims, &live.rooms, token)?;
        let ack = refreshed.ack();
        live.claims = refreshed.claims;
        let lost = refreshed.lost;
        self.arm_expiry(ctx);
        self.revoke(lost, LeftReason::RightsChanged);
        Ok(ack)
    }

    /// Takes the socket out of those of `rooms` it is in; each room then writes `left`.
    pub(super) fn revoke(&mut self, rooms: Vec<Room>, reason: LeftReason) {
        let endpoint = self.outbox.endpoint();
        if let Some(live) = self.socket.live.as_mut() {
            take_out(
                &self.hub,
                &mut live.rooms,
                rooms,
                self.socket.id,
                endpoint,
                reason,
            );
        }
    }
}
