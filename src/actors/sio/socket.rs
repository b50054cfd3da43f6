//! The Socket.IO part of a `SioSession`: CONNECT with its token, events handed to the command
//! layer, acks, and what rooms deliver written as events with the socket's offset.
//!
//! - CONNECT (`40`, `auth.token` or the query's `token`): a bad token is `44{"message":
//!   "Unauthorized"}`; a good one gets the connect sequence every transport runs
//!   (`actors::connect`: driver attached, default rooms joined), then `40{"sid","pid"}`,
//!   `connection:status` with the socket's offset, `welcome`, and each room's `joined`; then the
//!   query's `eventId` joins `event:<id>` (a room it may not join is an `error` event, never a
//!   failed connection). A `{pid, offset}` in the auth restores the socket (`recover`).
//! - An EVENT is read as the native client message its name stands for (`socketio::names`),
//!   decoded by the native rules, and run by `commands::run`; its ack id gets the ack or
//!   `{error:{code,message}}`, and an error without an ack id is an `error` event.
//! - Room frames become events (`names::server_events`), each room message once per socket
//!   (copies of one publication share an `id`), its last argument the socket's offset.

use super::SioSession;
use super::{convert, recover};
use crate::actors::connect::{self, Connected, Connecting};
use crate::actors::driver::DetachSession;
use crate::actors::registry::Leave;
use crate::actors::room::JoinReply;
use crate::actors::session::{take_out, LeaveRooms};
use crate::actors::{ConnectionSlot, Deliver, Hub, SlotRefused};
use crate::auth::{self, Claims};
use crate::commands::{self, session::SessionCommand, Command, Request};
use crate::db::queries;
use crate::error::AppError;
use crate::protocol::client::ClientFrame;
use crate::protocol::{LeftReason, Room, ServerMsg, SessionId};
use crate::socketio::names;
use crate::socketio::packet::{DecodeError, Packet, DEFAULT_NAMESPACE};
use crate::socketio::recovery::RecoveryClaim;
use crate::socketio::{Offset, SharedEvent};
use actix::prelude::*;
use bytestring::ByteString;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Publication ids remembered to send each publication once (copies come close together).
const RECENT_IDS: usize = 64;

type Reply = Result<Value, AppError>;

/// The socket on a session: waiting for its CONNECT, or connected.
pub(super) struct Socket {
    id: SessionId,
    query: HashMap<String, String>,
    live: Option<Box<Live>>,
    connecting: bool,
    /// Binary attachments still to come after a refused binary packet: ignored.
    attachments_left: u64,
}

/// How a socket starts: its id, its positions, the rooms to join from them, whether it is a
/// restore, and the rooms a restore left out.
struct Start {
    socket_id: String,
    offset: Offset,
    rooms: Vec<(Room, Option<i64>)>,
    restored: bool,
    dropped: Vec<String>,
}

/// A connected socket.
struct Live {
    claims: Claims,
    socket_id: String,
    rooms: Vec<Room>,
    offset: Offset,
    /// `offset` encoded, as the frames carry it.
    offset_text: String,
    /// The publications sent lately, by `Converted::id_hash`.
    recent: VecDeque<u64>,
    rate: crate::ratelimit::FrameRate,
    expiry: Option<SpawnHandle>,
    _slot: ConnectionSlot,
}

impl Socket {
    pub(super) fn new(_hub: &Hub, id: SessionId, query: HashMap<String, String>) -> Socket {
        Socket {
            id,
            query,
            live: None,
            connecting: false,
            attachments_left: 0,
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.live.is_some()
    }
}

impl Live {
    fn set_offset(&mut self) {
        self.offset_text = self.offset.encode();
    }
}

impl SioSession {
    /// Sends a Socket.IO packet.
    fn send_packet(&mut self, ctx: &mut Context<Self>, p: &Packet) {
        self.emit(ctx, p.to_message());
    }

    /// Sends event `name` with one argument (no offset).
    fn send_event(&mut self, ctx: &mut Context<Self>, name: &str, payload: &Value) {
        let frame = SharedEvent::from_json_args(name, &[&payload.to_string()]).frame();
        self.emit(ctx, frame);
    }

    /// Answers an event: its ack (with an ack id), or its error (as the ack, or an `error`
    /// event without one).
    fn answer(&mut self, ctx: &mut Context<Self>, ack: Option<u64>, reply: Reply) {
        match (reply, ack) {
            (Ok(v), Some(id)) => {
                // As natively: an ack is an object, `{}` when the command answers nothing.
                let v = if v.is_null() { json!({}) } else { v };
                self.send_packet(ctx, &Packet::ack(id, vec![v]))
            }
            (Ok(_), None) => {}
            (Err(e), ack) => {
                let (code, message) = (e.code(), e.client_message());
                crate::stats::frame_refused(code.as_str());
                log::warn!(
                    "[WEBSOCKET] socket.io session={} sub={:?} refused code={code:?}: {message:?}",
                    self.socket.id,
                    self.socket.live.as_ref().map(|l| l.claims.sub.as_str())
                );
                let body = json!({"code": code, "message": message});
                match ack {
                    Some(id) => {
                        self.send_packet(ctx, &Packet::ack(id, vec![json!({ "error": body })]))
                    }
                    None => self.send_event(ctx, "error", &body),
                }
            }
        }
    }

    /// An Engine.IO message: one Socket.IO packet.
    pub(super) fn on_message(&mut self, ctx: &mut Context<Self>, text: &str) {
        match Packet::decode(text) {
            Ok(Packet::Connect { nsp, data }) => self.on_connect(ctx, &nsp, data),
            Ok(Packet::Event {
                nsp,
                id,
                name,
                args,
            }) if nsp == DEFAULT_NAMESPACE => self.on_event(ctx, id, &name, args),
            Ok(Packet::Disconnect { .. }) => self.close(ctx, "client namespace disconnect"),
            Ok(Packet::Ack { .. }) => {}
            Ok(other) => {
                let e = AppError::bad_request(format!(
                    "namespace {:?} is not served: use the default namespace `/`",
                    other.nsp()
                ));
                self.answer(ctx, None, Err(e));
            }
            Err(DecodeError::Binary {
                id, attachments, ..
            }) => {
                self.socket.attachments_left = attachments;
                let e = AppError::bad_request(
                    "binary attachments are not supported: send JSON (numbers, strings, arrays)",
                );
                self.answer(ctx, id, Err(e));
            }
            Err(e) => self.refuse_packet(ctx, &e.to_string()),
        }
    }

    /// A binary message: an attachment of a binary packet already refused, or one on its own.
    pub(super) fn on_binary(&mut self, ctx: &mut Context<Self>, _len: usize) {
        if self.socket.attachments_left > 0 {
            self.socket.attachments_left -= 1;
            return;
        }
        let e = AppError::bad_request("binary messages are not supported: send JSON text");
        self.answer(ctx, None, Err(e));
    }

    /// A packet that does not decode: an `error` event; the session goes on (SPEC 3).
    pub(super) fn refuse_packet(&mut self, ctx: &mut Context<Self>, why: &str) {
        crate::stats::message_in("invalid");
        let e = AppError::bad_request(format!("the packet does not decode: {why}"));
        self.answer(ctx, None, Err(e));
    }

    /// The server closes the socket (a restart, a slow consumer): an `error` event saying why,
    /// then the namespace's DISCONNECT.
    pub(super) fn server_close(&mut self, ctx: &mut Context<Self>, code: u16, reason: &str) {
        if self.socket.live.is_none() {
            return;
        }
        self.send_event(
            ctx,
            "error",
            &json!({"code": "closing", "close_code": code, "message": reason}),
        );
        self.send_packet(
            ctx,
            &Packet::Disconnect {
                nsp: DEFAULT_NAMESPACE.into(),
            },
        );
    }

    /// CONNECT: the token checked, the slot taken, the connect sequence run.
    fn on_connect(&mut self, ctx: &mut Context<Self>, nsp: &str, auth: Option<Map<String, Value>>) {
        if nsp != DEFAULT_NAMESPACE {
            self.send_packet(
                ctx,
                &Packet::ConnectError {
                    nsp: nsp.to_string(),
                    data: json!({"message": "Invalid namespace"}),
                },
            );
            return;
        }
        if self.socket.live.is_some() || self.socket.connecting {
            return;
        }
        let token = auth
            .as_ref()
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.socket.query.get("token").cloned());
        let claims = match token.map(|t| self.hub.keys.verify(&t)) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                crate::stats::connection_refused(e.code().as_str());
                log::warn!(
                    "[WEBSOCKET] socket.io refused: {}",
                    crate::telemetry::q(&e.to_string())
                );
                self.send_packet(ctx, &Packet::unauthorized());
                return;
            }
            None => {
                crate::stats::connection_refused("unauthorized");
                self.send_packet(ctx, &Packet::unauthorized());
                return;
            }
        };
        if self.hub.is_shutting_down() {
            crate::stats::connection_refused("shutting_down");
            self.send_packet(
                ctx,
                &Packet::connect_error("the server is restarting; reconnect in a moment"),
            );
            return;
        }
        let slot = match self.hub.reserve_connection(&claims.sub) {
            Ok(s) => s,
            Err(SlotRefused::Node(max)) => {
                crate::stats::connection_refused("max_connections");
                let m = format!("this node holds its maximum of {max} connections; retry later");
                self.send_packet(ctx, &Packet::connect_error(&m));
                return;
            }
            Err(SlotRefused::Sub(max)) => {
                crate::stats::connection_refused("max_connections_per_sub");
                let m = format!(
                    "`{}` holds its maximum of {max} connections (limits.max_connections_per_sub)",
                    claims.sub
                );
                self.send_packet(ctx, &Packet::connect_error(&m));
                return;
            }
        };
        self.socket.connecting = true;
        let claimed = RecoveryClaim::from_auth(auth.as_ref())
            .map(|c| c.check(&self.hub.pid_key, &claims.sub));
        match claimed {
            None => self.start_fresh(ctx, claims, slot),
            Some(Err(refused)) => {
                log::info!(
                    "[WEBSOCKET] socket.io session={} not restored: {refused}",
                    self.socket.id
                );
                self.start_fresh(ctx, claims, slot);
            }
            Some(Ok(claimed)) => {
                let work = recover::restore(self.hub.clone(), claims.clone(), claimed);
                ctx.wait(work.into_actor(self).map(move |res, act, ctx| match res {
                    Ok(r) => {
                        log::info!(
                            "[WEBSOCKET] socket.io session={} restoring socket={} rooms={}",
                            act.socket.id,
                            r.sid,
                            r.rooms.len()
                        );
                        let start = Start {
                            socket_id: r.sid,
                            offset: r.offset,
                            rooms: r.rooms,
                            restored: true,
                            dropped: r.dropped,
                        };
                        act.start_socket(ctx, claims, slot, start);
                    }
                    Err(e) => {
                        log::info!(
                            "[WEBSOCKET] socket.io session={} not restored: {}",
                            act.socket.id,
                            crate::telemetry::q(&e.to_string())
                        );
                        act.start_fresh(ctx, claims, slot);
                    }
                }));
            }
        }
    }

    /// A new socket: a new id, the default rooms from now.
    fn start_fresh(&mut self, ctx: &mut Context<Self>, claims: Claims, slot: ConnectionSlot) {
        let rooms = auth::default_rooms(&claims)
            .into_iter()
            .map(|r| (r, None))
            .collect();
        let start = Start {
            socket_id: super::new_id(),
            offset: Offset::new(0),
            rooms,
            restored: false,
            dropped: Vec::new(),
        };
        self.start_socket(ctx, claims, slot, start);
    }

    /// Runs the connect sequence for `claims` as socket `socket_id`, its rooms joined from
    /// their positions, then writes the CONNECT answer and what follows it.
    fn start_socket(
        &mut self,
        ctx: &mut Context<Self>,
        claims: Claims,
        slot: ConnectionSlot,
        start: Start,
    ) {
        let Start {
            socket_id,
            offset,
            rooms,
            restored,
            dropped,
        } = start;
        let id = self.socket.id;
        if !self.hub.session_opened(id, ctx.address().recipient(), None) {
            self.send_packet(
                ctx,
                &Packet::connect_error("the server is restarting; reconnect in a moment"),
            );
            return;
        }
        crate::stats::session_opened(claims.role.as_str());
        let rate = crate::ratelimit::FrameRate::new(self.hub.settings.limits.client_msgs_per_sec);
        let replay_from = offset.clone();
        let (row_sid, row_sub) = (socket_id.clone(), claims.sub.clone());
        self.socket.live = Some(Box::new(Live {
            claims: claims.clone(),
            socket_id,
            rooms: Vec::new(),
            offset,
            offset_text: String::new(),
            recent: VecDeque::with_capacity(RECENT_IDS),
            rate,
            expiry: None,
            _slot: slot,
        }));
        let connecting = connect::connect(Connecting {
            hub: self.hub.clone(),
            claims,
            id,
            deliver: ctx.address().recipient::<Deliver>(),
            leave: ctx.address().recipient::<LeaveRooms>(),
            endpoint: self.outbox.endpoint(),
            rooms,
        });
        let hub = self.hub.clone();
        let work = async move {
            if !restored {
                // The socket's row, before the client can know its pid.
                crate::db::run(&hub.pool, move |conn| {
                    queries::sockets::create(conn, &row_sid, &row_sub, chrono::Utc::now())
                })
                .await?;
            }
            let mut c = connecting.await?;
            let merged = if restored {
                recover::merge_replays(&hub, &replay_from, &mut c.joined).await?
            } else {
                Vec::new()
            };
            Ok::<_, AppError>((c, merged))
        };
        ctx.wait(work.into_actor(self).map(move |res, act, ctx| {
            act.socket.connecting = false;
            match res {
                Ok((c, merged)) => act.connected(ctx, c, merged, dropped),
                Err(e) => {
                    log::error!(
                        "[WEBSOCKET] socket.io session={} connect failed: {}",
                        act.socket.id,
                        crate::telemetry::q(&e.to_string())
                    );
                    act.send_packet(
                        ctx,
                        &Packet::connect_error("could not set up the session; reconnect"),
                    );
                    act.close(ctx, "connect failed");
                }
            }
        }));
    }

    /// Writes the CONNECT answer, the replays, `connection:status`, `welcome`, `joined`; then
    /// joins the query's event room.
    fn connected(
        &mut self,
        ctx: &mut Context<Self>,
        c: Connected,
        merged: Vec<bytestring::ByteString>,
        dropped: Vec<String>,
    ) {
        let Some(live) = self.socket.live.as_mut() else {
            return;
        };
        let pid = self.hub.pid_key.sign(&live.socket_id, &live.claims.sub);
        let answer = Packet::connect_ok(&live.socket_id, Some(&pid));
        let sub = live.claims.sub.clone();
        log::info!(
            "[WEBSOCKET] socket.io session={} connected sub={:?} role={} socket={}",
            self.socket.id,
            sub,
            live.claims.role,
            live.socket_id
        );
        // A connection of this node that still holds the socket (its client saw the drop
        // first) is closed: the socket is this connection's now.
        if let Some(old) = self
            .hub
            .socketio
            .hold_socket(&live.socket_id, ctx.address())
        {
            log::info!(
                "[WEBSOCKET] socket.io socket={} taken over by session={}",
                live.socket_id,
                self.socket.id
            );
            old.do_send(Deliver::Close {
                code: crate::protocol::close::TAKEN_OVER,
                reason: "this socket was restored on another connection".into(),
            });
        }
        self.send_packet(ctx, &answer);
        self.arm_expiry(ctx);
        let Connected { driver, joined } = c;
        let Some(live) = self.socket.live.as_mut() else {
            return;
        };
        // Each room from where the socket stands: a restored one from its offset (the replay
        // follows), a new one from the room's seq now.
        let mut rooms = std::collections::BTreeMap::new();
        for (room, reply) in &joined {
            let name = room.to_string();
            rooms.insert(name.clone(), reply.seq);
            if live.offset.position(&name).is_none() {
                live.offset.join(&name, reply.seq);
            }
        }
        live.set_offset();
        let status = json!({
            "status": "connected",
            "sid": live.socket_id,
            "serverTime": chrono::Utc::now(),
        });
        let frame = SharedEvent::from_json_args("connection:status", &[&status.to_string()])
            .frame_with_encoded_offset(&live.offset_text);
        let (status, orders) = match driver {
            Some((s, o)) => (Some(s), Some(o)),
            None => (None, None),
        };
        let welcome = ServerMsg::Welcome {
            session_id: self.socket.id,
            sub: live.claims.sub.clone(),
            role: live.claims.role,
            driver_id: live.claims.driver_id.clone(),
            fleet: live.claims.fleet.clone(),
            heartbeat_ms: self.hub.settings.socketio.ping_interval_ms,
            server_time: chrono::Utc::now(),
            rooms,
            status,
            orders,
        };
        self.emit(ctx, frame);
        self.deliver_msg(ctx, &welcome);
        for room in dropped {
            let e = AppError::forbidden(format!("you may no longer be in `{room}`: not restored"));
            self.answer(ctx, None, Err(e));
        }
        // The restored rooms' replays (merged, each publication once), then each room settled
        // at its seq.
        let mut settle = Vec::with_capacity(joined.len());
        for (room, reply) in joined {
            settle.push((room.clone(), reply.seq));
            self.write_join(ctx, &room, reply, false);
        }
        crate::stats::messages_out("replay", merged.len());
        for frame in merged {
            self.deliver(ctx, &frame);
        }
        if let Some(live) = self.socket.live.as_mut() {
            for (room, seq) in settle {
                let name = room.to_string();
                if live.offset.position(&name).is_some_and(|at| at < seq) {
                    live.offset.join(&name, seq);
                }
            }
            live.set_offset();
        }
        let event = ["eventId", "event_id"]
            .iter()
            .find_map(|k| self.socket.query.get(*k).cloned());
        if let Some(e) = event {
            self.join(ctx, None, format!("event:{e}"), None);
        }
    }

    /// Writes `joined` and the replay; the room's position in the offset is `reply.seq`.
    /// `settle`: move the room's position to its seq after the replay (not for a restore,
    /// whose replays were taken out to be merged: its rooms are settled after them).
    fn write_join(&mut self, ctx: &mut Context<Self>, room: &Room, reply: JoinReply, settle: bool) {
        let name = room.to_string();
        if let Some(live) = self.socket.live.as_mut() {
            if !live.rooms.contains(room) {
                live.rooms.push(room.clone());
            }
            let from = live.offset.position(&name).unwrap_or(0).min(reply.seq);
            live.offset.join(&name, from);
            live.set_offset();
        }
        let joined = ServerMsg::Joined {
            room: name.clone(),
            seq: reply.seq,
            recovered: reply.recovered,
        };
        self.deliver_msg(ctx, &joined);
        crate::stats::messages_out("replay", reply.replay.len());
        for frame in reply.replay {
            self.deliver(ctx, &frame);
        }
        if settle {
            if let Some(live) = self.socket.live.as_mut() {
                if live.offset.position(&name).is_some_and(|at| at < reply.seq) {
                    live.offset.join(&name, reply.seq);
                    live.set_offset();
                }
            }
        }
        if reply.recovered == Some(false) {
            self.deliver_msg(ctx, &ServerMsg::Resync { room: name });
        }
    }

    /// Closes the socket when its token expires (a `refresh` re-arms it).
    fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
        let Some(live) = self.socket.live.as_mut() else {
            return;
        };
        if let Some(h) = live.expiry.take() {
            ctx.cancel_future(h);
        }
        let left = live.claims.exp - chrono::Utc::now().timestamp();
        let left = Duration::from_secs(left.max(0) as u64);
        let h = ctx.run_later(left, |act, ctx| {
            act.answer(ctx, None, Err(AppError::TokenExpired));
            act.send_packet(
                ctx,
                &Packet::Disconnect {
                    nsp: DEFAULT_NAMESPACE.into(),
                },
            );
            act.close(ctx, "token expired");
        });
        if let Some(live) = self.socket.live.as_mut() {
            live.expiry = Some(h);
        }
    }

    /// An EVENT: counted against the rate limit, read as a client message, run.
    fn on_event(
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

    fn run(
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
    fn join(
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

    fn leave(&mut self, name: &str) -> Reply {
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

    fn refresh(&mut self, ctx: &mut Context<Self>, token: &str) -> Reply {
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
    fn revoke(&mut self, rooms: Vec<Room>, reason: LeftReason) {
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

    /// A native frame for this socket, written as its events: a room message once per socket
    /// and with the socket's offset, anything else as it is.
    pub(super) fn deliver(&mut self, ctx: &mut Context<Self>, frame: &ByteString) {
        let locations = self.hub.settings.socketio.location_events;
        let Some(converted) = convert::convert(frame, locations) else {
            log::error!(
                "[WEBSOCKET] socket.io session={} unreadable frame",
                self.socket.id
            );
            return;
        };
        let ev = &converted.ev;
        let Some(live) = self.socket.live.as_mut() else {
            return;
        };
        if ev.kind == "left" {
            if let Some(room) = ev.room.as_deref() {
                live.offset.leave(room);
                live.set_offset();
                if let Some(r) = Room::parse(room) {
                    live.rooms.retain(|x| *x != r);
                }
            }
        }
        let with_offset = match &ev.position {
            Some((room, seq)) => {
                if !live.offset.advance(room, *seq) {
                    return; // already had it (a replay overlapping what was live)
                }
                live.set_offset();
                if let Some(id) = converted.id_hash {
                    if live.recent.contains(&id) {
                        return; // another room's copy of a publication sent already
                    }
                    if live.recent.len() == RECENT_IDS {
                        live.recent.pop_front();
                    }
                    live.recent.push_back(id);
                }
                true
            }
            None => false,
        };
        let frames: Vec<String> = converted
            .heads
            .iter()
            .map(|head| {
                if with_offset {
                    head.frame_with_encoded_offset(&live.offset_text)
                } else {
                    head.frame()
                }
            })
            .collect();
        for f in frames {
            self.emit(ctx, f);
        }
    }

    /// One of the session's own messages, written like a room's.
    fn deliver_msg(&mut self, ctx: &mut Context<Self>, msg: &ServerMsg) {
        self.deliver(ctx, &ByteString::from(msg.to_text()));
    }

    /// The session ended: out of its rooms, its driver detached.
    pub(super) fn socket_closed(&mut self, ctx: &mut Context<Self>) {
        let Some(live) = self.socket.live.take() else {
            return;
        };
        self.hub
            .socketio
            .release_socket(&live.socket_id, &ctx.address());
        let id = self.socket.id;
        self.hub.session_closed(id);
        self.hub.rooms.do_send(Leave {
            rooms: live.rooms.clone(),
            session_id: id,
        });
        if let Some(d) = live.claims.driver().and_then(|d| self.hub.driver(d)) {
            d.do_send(DetachSession { session_id: id });
        }
        let (sid, generation, pool) = (
            live.socket_id.clone(),
            live.offset.generation(),
            self.hub.pool.clone(),
        );
        actix::spawn(async move {
            let marked = crate::db::run(&pool, move |conn| {
                queries::sockets::mark_disconnected(conn, &sid, generation, chrono::Utc::now())
                    .map(|_| ())
            })
            .await;
            if let Err(e) = marked {
                log::error!(
                    "[WEBSOCKET] socket.io drop not recorded (the socket stays restorable past recovery_s): {}",
                    crate::telemetry::q(&e.to_string())
                );
            }
        });
        crate::stats::session_closed(live.claims.role.as_str(), None);
        log::info!(
            "[WEBSOCKET] socket.io session={} disconnected sub={:?}",
            id,
            live.claims.sub
        );
    }
}

impl Handler<LeaveRooms> for SioSession {
    type Result = ();

    fn handle(&mut self, msg: LeaveRooms, _: &mut Context<Self>) {
        self.revoke(msg.rooms, msg.reason);
    }
}
