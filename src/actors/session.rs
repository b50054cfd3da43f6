//! `WsSession` (the session actor): one per WebSocket, the native transport.
//!
//! It decodes client frames into typed messages and hands each to the command layer
//! (`crate::commands`: the roles, the input rules, idempotency, who may join which room), then
//! answers every `ref` with exactly one `ack` or `error`. It applies what the session commands
//! decide to its own state (its rooms, its claims), writes what rooms deliver (already
//! serialized, shared bytes), pings every `heartbeat_ms` and drops a peer silent for 2.5
//! heartbeats, limits the client's frame rate, and closes with 4001 when the token expires. Its
//! mailbox is bounded by `limits.outbound_queue`: a room that finds it full drops the session
//! (4008).
//!
//! Joining rooms (the connect sequence and `join`) is in `joining`, rooms the server takes a
//! session out of in `rights`.

mod joining;
mod rights;
pub(crate) use rights::take_out;
pub use rights::LeaveRooms;

use super::registry::Leave;
use super::{ConnectionSlot, Deliver, Hub};
use crate::auth::{self, Claims};
use crate::commands::{self, session::SessionCommand, Command, Request};
use crate::error::AppError;
use crate::http::conn::ConnSocket;
use crate::protocol::client::ClientFrame;
use crate::protocol::*;
use actix::prelude::*;
use actix_web_actors::ws;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Reply = Result<serde_json::Value, AppError>;

/// One WebSocket session.
pub struct WsSession {
    id: SessionId,
    hub: Arc<Hub>,
    claims: Claims,
    /// Last time the peer showed it was alive.
    hb: Instant,
    /// The rooms joined (a handful: a Vec is smaller than a set).
    rooms: Vec<Room>,
    /// Positions given on the connect URL (`since=ROOM:SEQ,...`), for the default rooms.
    since: HashMap<String, i64>,
    /// The crowd event of `?event_id=` (SPEC 8): its room is joined after the default rooms.
    event: Option<String>,
    /// `limits.client_msgs_per_sec`: every frame the client sends counts.
    rate: crate::ratelimit::FrameRate,
    expiry: Option<SpawnHandle>,
    /// The close code once the server decided to close.
    close_code: Option<u16>,
    /// State-changing messages whose work has not answered yet.
    pending: usize,
    /// A close asked for while work was pending: done once the last answer is written.
    close_when_answered: Option<(u16, String)>,
    /// The TCP socket under the session, to cut off a peer that stops reading.
    socket: Option<ConnSocket>,
    /// This session's place under `limits.max_connections`, given back when it is dropped.
    _slot: ConnectionSlot,
    /// Where its worker's fan-out queues room frames for it.
    outbox: super::fanout::Registration,
}

impl WsSession {
    pub fn new(
        hub: Arc<Hub>,
        claims: Claims,
        since: HashMap<String, i64>,
        event: Option<String>,
        socket: Option<ConnSocket>,
        slot: ConnectionSlot,
    ) -> WsSession {
        let id = hub.next_session_id();
        let outbox = super::fanout::local(&hub).register(id);
        let rate = crate::ratelimit::FrameRate::new(hub.settings.limits.client_msgs_per_sec);
        WsSession {
            id,
            hub,
            claims,
            hb: Instant::now(),
            rooms: Vec::new(),
            since,
            event,
            rate,
            expiry: None,
            close_code: None,
            pending: 0,
            close_when_answered: None,
            socket,
            _slot: slot,
            outbox,
        }
    }

    fn send(&self, ctx: &mut ws::WebsocketContext<Self>, msg: &ServerMsg) {
        crate::stats::messages_out(msg.kind(), 1);
        ctx.text(msg.to_text());
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, reason: &str) {
        if self.close_code.is_some() {
            return;
        }
        self.close_code = Some(code);
        log::info!(
            "[WEBSOCKET] session={} sub={:?} closing code={code} reason={reason:?}",
            self.id,
            self.claims.sub
        );
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: Some(reason.to_string()),
        }));
        ctx.stop();
    }

    /// Pings every heartbeat; drops a peer silent for 2.5 heartbeats; arms the token's expiry
    /// once it falls before the next beat (one timer per session for most of its life, not two).
    fn heartbeat(&self, ctx: &mut ws::WebsocketContext<Self>) {
        let rt = &self.hub.settings.realtime;
        let (every, timeout) = (rt.heartbeat(), rt.client_timeout());
        ctx.run_interval(every, move |act, ctx| {
            if act.hb.elapsed() > timeout {
                log::warn!("[WEBSOCKET] session={} heartbeat timeout", act.id);
                act.close(ctx, close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                return;
            }
            ctx.ping(b"");
            act.arm_expiry(ctx);
        });
    }

    /// Closes the session with 4001 when its token expires: arms a timer when the expiry comes
    /// before the next heartbeat (which checks again), and cancels one armed for an older token.
    fn arm_expiry(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        let left = self.claims.exp - chrono::Utc::now().timestamp();
        let left = Duration::from_secs(left.max(0) as u64);
        if left > self.hub.settings.realtime.heartbeat() {
            return;
        }
        self.expiry = Some(ctx.run_later(left, |act, ctx| {
            act.send(ctx, &ServerMsg::error(None, &AppError::TokenExpired));
            act.close(ctx, close::TOKEN_EXPIRED, "token expired");
        }));
    }

    /// Counts one frame against `limits.client_msgs_per_sec`; answers whether to handle it. A
    /// frame over the limit is refused unread: its `rate_limited` error has no `ref` (finding
    /// the ref would mean decoding it). The third over-limit window within five seconds closes
    /// the session with 1008.
    fn within_rate(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        use crate::ratelimit::Verdict;
        let verdict = self.rate.check(Instant::now());
        if verdict == Verdict::Allow {
            return true;
        }
        crate::stats::frame_refused("rate_limited");
        if self.close_code.is_none() {
            let e = AppError::RateLimited(format!(
                "more than {} messages per second: slow down",
                self.hub.settings.limits.client_msgs_per_sec
            ));
            self.send(ctx, &ServerMsg::error(None, &e));
        }
        if verdict == Verdict::Close {
            log::warn!(
                "[WEBSOCKET] session={} sub={:?} over the rate limit in 3 windows within 5 s",
                self.id,
                self.claims.sub
            );
            self.close(ctx, close::RATE_LIMITED, "too many messages");
        }
        false
    }

    /// Answers a client message: its `ack` (when it has a `ref`) or its `error`.
    fn answer(
        &self,
        ctx: &mut ws::WebsocketContext<Self>,
        reference: Option<String>,
        reply: Reply,
    ) {
        match reply {
            Ok(body) => {
                if let Some(r) = reference {
                    self.send(ctx, &ServerMsg::ack(r, body));
                }
            }
            Err(e) => {
                let (code, message) = (e.code(), e.client_message());
                crate::stats::frame_refused(code.as_str());
                log::warn!(
                    "[WEBSOCKET] session={} sub={:?} refused code={code:?}: {message:?}",
                    self.id,
                    self.claims.sub
                );
                self.send(
                    ctx,
                    &ServerMsg::Error {
                        reference,
                        code,
                        message,
                    },
                );
            }
        }
    }

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if self.close_when_answered.is_some() {
            let reference = ClientFrame::decode(text).map_or_else(|e| e.reference, |f| f.reference);
            crate::stats::frame_refused("restarting");
            self.send(
                ctx,
                &ServerMsg::Error {
                    reference,
                    code: crate::error::ErrorCode::Internal,
                    message: "the server is restarting: send this again after reconnecting".into(),
                },
            );
            return;
        }
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                crate::stats::message_in("invalid");
                crate::stats::frame_refused(e.error.code().as_str());
                log::warn!(
                    "[WEBSOCKET] session={} bad frame: {}",
                    self.id,
                    crate::telemetry::q(&e.error.to_string())
                );
                self.send(ctx, &ServerMsg::error(e.reference, &e.error));
                return;
            }
        };
        crate::stats::message_in(frame.msg.kind());
        log::debug!(
            "[WEBSOCKET] session={} message={}",
            self.id,
            frame.msg.kind()
        );
        let ClientFrame {
            msg,
            reference,
            idempotency_key,
        } = frame;
        match Request::from(msg) {
            Request::Ping => {
                self.send(ctx, &ServerMsg::Pong);
                if let Some(r) = reference {
                    self.send(ctx, &ServerMsg::ack(r, serde_json::Value::Null));
                }
            }
            Request::Session(SessionCommand::Refresh { token }) => {
                let reply = self.refresh(&token, ctx);
                self.answer(ctx, reference, reply);
            }
            Request::Session(SessionCommand::Join { room, since }) => {
                self.join(ctx, reference, &room, since)
            }
            Request::Session(SessionCommand::Leave { room }) => {
                let reply = self.leave(&room);
                self.answer(ctx, reference, reply);
            }
            Request::Command(command) => self.run(ctx, reference, command, idempotency_key),
        }
    }

    /// Runs a command; its answer is written when it comes (answers may overtake each other:
    /// clients match them by `ref`).
    fn run(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        reference: Option<String>,
        command: Command,
        idempotency_key: Option<String>,
    ) {
        let run = commands::run(
            self.hub.clone(),
            self.claims.clone(),
            command,
            Ok(idempotency_key),
        );
        self.pending += 1;
        ctx.spawn(run.into_actor(self).map(move |answer, act, ctx| {
            act.answer(ctx, reference, answer.map(commands::Answer::ack));
            act.pending -= 1;
            if act.pending == 0 {
                if let Some((code, reason)) = act.close_when_answered.take() {
                    act.close(ctx, code, &reason);
                }
            }
        }));
    }

    /// Leaves a room, as the command layer decides (only one the session is in).
    fn leave(&mut self, name: &str) -> Reply {
        let leave = commands::session::leave(&self.rooms, name)?;
        self.rooms.retain(|x| *x != leave.room);
        self.hub.rooms.do_send(Leave {
            rooms: vec![leave.room.clone()],
            session_id: self.id,
        });
        Ok(leave.ack())
    }

    /// Goes on under a new token, as the command layer decides: the new claims and expiry, and
    /// out of the rooms they no longer admit.
    fn refresh(&mut self, token: &str, ctx: &mut ws::WebsocketContext<Self>) -> Reply {
        let refreshed = commands::session::refresh(&self.hub, &self.claims, &self.rooms, token)?;
        let ack = refreshed.ack();
        self.claims = refreshed.claims;
        self.arm_expiry(ctx);
        self.revoke(refreshed.lost, LeftReason::RightsChanged);
        Ok(ack)
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.hub.settings.limits.outbound_queue);
        ctx.add_stream(self.outbox.ready());
        crate::stats::session_opened(self.claims.role.as_str());
        if !self
            .hub
            .session_opened(self.id, ctx.address().recipient(), self.socket)
        {
            // Upgraded as the shutdown began: told to reconnect, like every other session.
            self.close(ctx, close::SERVICE_RESTART, "server restart");
            return;
        }
        log::info!(
            "[WEBSOCKET] session={} connected sub={:?} role={} driver={}",
            self.id,
            self.claims.sub,
            self.claims.role,
            crate::telemetry::q_or_dash(self.claims.driver_id.as_ref())
        );
        self.heartbeat(ctx);
        self.arm_expiry(ctx);
        self.connect(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.hub.session_closed(self.id);
        self.hub.rooms.do_send(Leave {
            rooms: std::mem::take(&mut self.rooms),
            session_id: self.id,
        });
        super::connect::detach(&self.hub, &self.claims, self.id);
        crate::stats::session_closed(self.claims.role.as_str(), self.close_code);
        log::info!(
            "[WEBSOCKET] session={} disconnected sub={:?}",
            self.id,
            self.claims.sub
        );
        Running::Stop
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        match msg {
            Deliver::Frame(text) => ctx.text(text),
            // A restart lets the work this session started answer first (its acks go out).
            Deliver::Close { code, reason }
                if code == close::SERVICE_RESTART && self.pending > 0 =>
            {
                self.close_when_answered = Some((code, reason));
            }
            Deliver::Close { code, reason } => self.close(ctx, code, &reason),
        }
    }
}

/// Room frames queued by this worker's fan-out: all of them are written now, so they leave in
/// one write.
impl StreamHandler<super::fanout::FramesWaiting> for WsSession {
    fn handle(&mut self, _: super::fanout::FramesWaiting, ctx: &mut Self::Context) {
        self.outbox.drain(|frame| ctx.text(frame));
    }

    // The outbox lives as long as the session: its end stops nothing.
    fn finished(&mut self, _: &mut Self::Context) {}
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(m) => m,
            Err(ws::ProtocolError::Overflow) => {
                crate::stats::frame_refused("too_large");
                log::warn!("[WEBSOCKET] session={} frame too large", self.id);
                self.close(ctx, close::TOO_LARGE, "frame too large");
                return;
            }
            Err(e) => {
                crate::stats::frame_refused("protocol");
                log::warn!(
                    "[WEBSOCKET] session={} protocol error: {}",
                    self.id,
                    crate::telemetry::q(&e.to_string())
                );
                self.close(ctx, 1002, "protocol error");
                return;
            }
        };
        self.hb = Instant::now();
        // Every frame counts, pings, pongs, binary and continuation frames too; a close is
        // always honoured.
        if !matches!(msg, ws::Message::Close(_) | ws::Message::Nop) && !self.within_rate(ctx) {
            return;
        }
        match msg {
            ws::Message::Text(text) => self.handle_text(&text, ctx),
            ws::Message::Binary(_) => {
                crate::stats::frame_refused("bad_request");
                let e = AppError::bad_request("binary frames are not supported: send JSON text");
                self.send(ctx, &ServerMsg::error(None, &e));
            }
            ws::Message::Ping(p) => ctx.pong(&p),
            ws::Message::Pong(_) => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            ws::Message::Continuation(_) => {
                crate::stats::frame_refused("bad_request");
                let e = AppError::bad_request("fragmented frames are not supported");
                self.send(ctx, &ServerMsg::error(None, &e));
            }
            ws::Message::Nop => {}
        }
    }
}
