//! `SioSession` (the Socket.IO session actor): one per Engine.IO session at `/socket.io/`, the
//! second transport (SPEC 11, docs/SOCKETIO.md). It does for socket.io-client what `WsSession`
//! does natively: decodes, hands every command to the command layer, encodes the answers and
//! what rooms deliver, and keeps its connection alive. No product rule is here.
//!
//! This file is the Engine.IO part: the transport under the session (HTTP long-polling, then a
//! WebSocket after the upgrade, or a WebSocket from the start), the packets waiting for a poll,
//! and the server's heartbeat (ping every `socketio.ping_interval_ms`, closed when no pong came
//! within `socketio.ping_timeout_ms`). `socket` is the Socket.IO part on top (with `connecting`:
//! CONNECT with its token or a restore, and `events`: events as commands), acks, room events with
//! their offsets; `recover` decides restores, `convert` reads room frames once per worker. `ws`
//! is the WebSocket actor that carries the session's packets once it upgraded. `Sessions` is
//! the table of open sids the HTTP routes look sessions up in.

mod connecting;
mod convert;
mod events;
mod recover;
mod socket;
pub mod ws;

use super::{fanout, Deliver, Hub};
use crate::socketio::engine::{self, Packet as Eio};
use crate::socketio::handshake::{self, EngineError, Handshake};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The open Engine.IO sessions of this node, by sid, and which of them holds which Socket.IO
/// socket (a restore takes a socket over from a connection this node has not seen drop).
#[derive(Default)]
pub struct Sessions {
    by_sid: Mutex<HashMap<String, Addr<SioSession>>>,
    by_socket: Mutex<HashMap<String, Addr<SioSession>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    pub fn get(&self, sid: &str) -> Option<Addr<SioSession>> {
        lock(&self.by_sid).get(sid).cloned()
    }

    fn insert(&self, sid: String, addr: Addr<SioSession>) {
        lock(&self.by_sid).insert(sid, addr);
    }

    fn remove(&self, sid: &str) {
        lock(&self.by_sid).remove(sid);
    }

    /// `addr` now holds socket `socket`; answers the session that held it before, if another.
    fn hold_socket(&self, socket: &str, addr: Addr<SioSession>) -> Option<Addr<SioSession>> {
        lock(&self.by_socket)
            .insert(socket.to_string(), addr.clone())
            .filter(|old| *old != addr)
    }

    /// `addr` no longer holds socket `socket` (unless another session took it over since).
    fn release_socket(&self, socket: &str, addr: &Addr<SioSession>) {
        let mut sockets = lock(&self.by_socket);
        if sockets.get(socket) == Some(addr) {
            sockets.remove(socket);
        }
    }
}

/// A new random id (Engine.IO sid, Socket.IO socket id): 20 URL-safe characters.
pub fn new_id() -> String {
    let mut random = [0u8; 15];
    if getrandom::fill(&mut random).is_err() {
        // Never on the platforms we run on; a clock-derived id still names one session.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        random[..15].copy_from_slice(&nanos.to_le_bytes()[..15]);
    }
    handshake::new_id(random)
}

/// The WebSocket a session's packets go over, and which one it is.
#[derive(Clone)]
pub struct WsLink {
    pub id: u64,
    pub out: Recipient<ws::WsOut>,
}

/// Where the session's packets go.
enum Link {
    /// Long-polling: packets wait in `queue` for a GET; `poll` is the GET waiting for them.
    Polling {
        poll: Option<oneshot::Sender<Result<String, EngineError>>>,
    },
    /// A WebSocket: each packet one frame.
    Ws(WsLink),
}

/// A GET on the session's sid: answered with the packets waiting, or when some come.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Poll {
    pub reply: oneshot::Sender<Result<String, EngineError>>,
}

/// A POST on the session's sid: its body, packets joined by `\x1e`.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct Post {
    pub body: String,
}

/// What the WebSocket actor reports.
#[derive(Message)]
#[rtype(result = "()")]
pub enum FromWs {
    /// `2probe` arrived on a new WebSocket: end the pending poll with a noop, and every poll
    /// until the upgrade is done.
    Probing,
    /// The probed WebSocket closed before the client's `5`: polling goes on.
    ProbeFailed,
    /// `5` arrived: the session's packets go over this WebSocket from now on.
    Upgraded(WsLink),
    /// A text frame on the session's WebSocket.
    Text(String),
    /// A binary frame on the session's WebSocket.
    Binary(usize),
    /// That WebSocket closed.
    Closed { id: u64 },
}

/// One Engine.IO session and the Socket.IO socket on it.
pub struct SioSession {
    hub: Arc<Hub>,
    sid: String,
    link: Link,
    /// Encoded packets waiting for a poll.
    queue: Vec<String>,
    /// The ping's timeout, armed from each ping until its pong.
    pong_due: Option<SpawnHandle>,
    /// Between a probe and the client's `5`: polls are answered with a noop at once (the
    /// client waits for its last poll to end before it sends `5`).
    upgrading: bool,
    closed: bool,
    /// The Socket.IO side.
    socket: socket::Socket,
    /// Where its worker's fan-out queues room frames for it.
    outbox: fanout::Registration,
}

impl SioSession {
    /// Opens a session: registers it under a new sid and starts it on the current arbiter, its
    /// packets going over `ws` (a WebSocket-only session) or waiting for polls. `query` is the
    /// handshake's query string (its `token` and `eventId`).
    pub fn open(
        hub: Arc<Hub>,
        ws: Option<WsLink>,
        query: HashMap<String, String>,
    ) -> (String, Addr<SioSession>) {
        let sid = new_id();
        let id = hub.next_session_id();
        let outbox = fanout::local(&hub).register(id);
        let transport = if ws.is_some() {
            handshake::Transport::Websocket
        } else {
            handshake::Transport::Polling
        };
        let s = &hub.settings.socketio;
        let open = Handshake::new(
            sid.clone(),
            transport,
            s.ping_interval(),
            s.ping_timeout(),
            hub.settings.limits.max_frame_bytes,
        );
        let link = match ws {
            Some(l) => Link::Ws(l),
            None => Link::Polling { poll: None },
        };
        let session = SioSession {
            socket: socket::Socket::new(id, query),
            hub: hub.clone(),
            sid: sid.clone(),
            link,
            queue: Vec::new(),
            pong_due: None,
            upgrading: false,
            closed: false,
            outbox,
        };
        let addr = SioSession::create(|ctx| {
            let mut session = session;
            session.emit(ctx, Eio::Open(open).encode_text());
            session
        });
        hub.socketio.insert(sid.clone(), addr.clone());
        (sid, addr)
    }

    /// Sends one encoded Engine.IO packet: a frame on the WebSocket, or into the poll queue.
    fn emit(&mut self, ctx: &mut Context<Self>, packet: String) {
        match &mut self.link {
            Link::Ws(l) => l.out.do_send(ws::WsOut::Text(packet)),
            Link::Polling { .. } => {
                if self.queue.len() >= self.hub.settings.limits.outbound_queue {
                    // A client that stopped polling: the same limit as a socket that stopped
                    // reading (`limits.outbound_queue`).
                    if !self.closed {
                        log::warn!(
                            "[WEBSOCKET] socket.io sid={} {} packets waiting for a poll: closing",
                            self.short_sid(),
                            self.queue.len()
                        );
                        crate::stats::frame_refused("slow_consumer");
                        self.close(ctx, "slow consumer");
                    }
                    return;
                }
                self.queue.push(packet);
                self.flush_poll();
            }
        }
    }

    /// Answers the waiting poll with everything queued.
    fn flush_poll(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let Link::Polling { poll } = &mut self.link else {
            return;
        };
        let Some(reply) = poll.take() else {
            return;
        };
        let packets = std::mem::take(&mut self.queue);
        let body = engine::join_payload(packets.iter());
        if reply.send(Ok(body)).is_err() {
            // The GET went away before it was answered: the packets wait for the next one.
            let mut later = std::mem::take(&mut self.queue);
            self.queue = packets;
            self.queue.append(&mut later);
        }
    }

    /// Pings after `ping_interval_ms`; a session whose pong does not come within
    /// `ping_timeout_ms` of the ping is closed (the reference re-arms from each pong).
    fn schedule_ping(&mut self, ctx: &mut Context<Self>) {
        let s = &self.hub.settings.socketio;
        let (interval, timeout) = (s.ping_interval(), s.ping_timeout());
        ctx.run_later(interval, move |act, ctx| {
            if act.closed {
                return;
            }
            act.emit(ctx, Eio::ping().encode_text());
            act.pong_due = Some(ctx.run_later(timeout, |act, ctx| {
                log::warn!("[WEBSOCKET] socket.io sid={} ping timeout", act.short_sid());
                act.close(ctx, "ping timeout");
            }));
        });
    }

    /// The sid's first characters, for logs (the sid alone lets a request act for the session).
    fn short_sid(&self) -> &str {
        self.sid.get(..6).unwrap_or(&self.sid)
    }

    /// Handles one Engine.IO packet from the client.
    fn on_packet(&mut self, ctx: &mut Context<Self>, packet: Eio) {
        match packet {
            Eio::Pong(_) => {
                if let Some(h) = self.pong_due.take() {
                    ctx.cancel_future(h);
                    self.schedule_ping(ctx);
                }
            }
            Eio::Message(text) => self.on_message(ctx, &text),
            Eio::Binary(bytes) => self.on_binary(ctx, bytes.len()),
            Eio::Close => self.close(ctx, "client close"),
            Eio::Noop | Eio::Upgrade => {}
            Eio::Ping(_) => {
                // Engine.IO v4: the server pings; a client ping is a revision 3 client.
                log::warn!(
                    "[WEBSOCKET] socket.io sid={} pinged the server (Engine.IO v3?): closing",
                    self.short_sid()
                );
                self.close(ctx, "invalid heartbeat direction");
            }
            Eio::Open(_) => self.close(ctx, "the client sent an open packet"),
        }
    }

    /// Closes the session: the WebSocket closed, a pending poll answered with `1`, the sid
    /// forgotten, the socket's rooms left.
    fn close(&mut self, ctx: &mut Context<Self>, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        log::info!(
            "[WEBSOCKET] socket.io sid={} closing reason={reason:?}",
            self.short_sid()
        );
        match &mut self.link {
            Link::Ws(l) => l.out.do_send(ws::WsOut::Close),
            Link::Polling { poll } => {
                if let Some(reply) = poll.take() {
                    let _ = reply.send(Ok(Eio::Close.encode_text()));
                }
            }
        }
        self.hub.socketio.remove(&self.sid);
        ctx.stop();
    }
}

impl Actor for SioSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.hub.settings.limits.outbound_queue);
        ctx.add_stream(self.outbox.ready());
        self.schedule_ping(ctx);
        ctx.run_later(self.hub.settings.socketio.connect_timeout(), |act, ctx| {
            if !act.socket.is_connected() {
                act.close(ctx, "no CONNECT in time");
            }
        });
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        self.closed = true;
        self.hub.socketio.remove(&self.sid);
        self.socket_closed(ctx);
        Running::Stop
    }
}

impl Handler<Poll> for SioSession {
    type Result = ();

    fn handle(&mut self, msg: Poll, ctx: &mut Self::Context) {
        if self.closed {
            let _ = msg.reply.send(Err(EngineError::UnknownSid(String::new())));
            return;
        }
        match &mut self.link {
            Link::Ws(_) => {
                // Upgraded: a poll now is a client that lost track (the reference answers 400).
                let _ = msg.reply.send(Err(EngineError::BadRequest(
                    handshake::BadRequestReason::TransportMismatch,
                )));
            }
            Link::Polling { poll } if poll.is_some() => {
                // Two GETs at once: the reference answers 400 and closes the session.
                let _ = msg.reply.send(Err(EngineError::BadRequest(
                    handshake::BadRequestReason::Overlap,
                )));
                self.close(ctx, "overlapping polls");
            }
            Link::Polling { .. } if self.upgrading && self.queue.is_empty() => {
                let _ = msg.reply.send(Ok(Eio::Noop.encode_text()));
            }
            Link::Polling { poll } => {
                *poll = Some(msg.reply);
                self.flush_poll();
            }
        }
    }
}

impl Handler<Post> for SioSession {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, msg: Post, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(EngineError::UnknownSid(String::new()));
        }
        if matches!(self.link, Link::Ws(_)) {
            return Err(EngineError::BadRequest(
                handshake::BadRequestReason::TransportMismatch,
            ));
        }
        let packets = engine::decode_payload(&msg.body).map_err(|e| {
            log::warn!(
                "[WEBSOCKET] socket.io sid={} bad polling payload: {}",
                self.short_sid(),
                crate::telemetry::q(&e.to_string())
            );
            EngineError::BadRequest(handshake::BadRequestReason::BadPayload)
        })?;
        for p in packets {
            if self.closed {
                break;
            }
            self.on_packet(ctx, p);
        }
        Ok(())
    }
}

impl Handler<FromWs> for SioSession {
    type Result = ();

    fn handle(&mut self, msg: FromWs, ctx: &mut Self::Context) {
        match msg {
            FromWs::ProbeFailed => self.upgrading = false,
            FromWs::Probing => {
                // End the pending poll so the client can finish the upgrade.
                self.upgrading = true;
                if let Link::Polling { poll } = &mut self.link {
                    if let Some(reply) = poll.take() {
                        let _ = reply.send(Ok(Eio::Noop.encode_text()));
                    }
                }
            }
            FromWs::Upgraded(l) => {
                if let Link::Polling { poll } = &mut self.link {
                    if let Some(reply) = poll.take() {
                        let _ = reply.send(Ok(Eio::Noop.encode_text()));
                    }
                }
                for packet in std::mem::take(&mut self.queue) {
                    l.out.do_send(ws::WsOut::Text(packet));
                }
                log::debug!("[WEBSOCKET] socket.io sid={} upgraded", self.short_sid());
                self.upgrading = false;
                self.link = Link::Ws(l);
            }
            FromWs::Text(text) => match Eio::decode_text(&text) {
                Ok(p) => self.on_packet(ctx, p),
                Err(e) => {
                    log::warn!(
                        "[WEBSOCKET] socket.io sid={} bad packet: {}",
                        self.short_sid(),
                        crate::telemetry::q(&e.to_string())
                    );
                    self.refuse_packet(ctx, &e.to_string());
                }
            },
            FromWs::Binary(len) => self.on_binary(ctx, len),
            FromWs::Closed { id } => {
                if matches!(&self.link, Link::Ws(l) if l.id == id) {
                    self.close(ctx, "transport close");
                }
            }
        }
    }
}

impl Handler<Deliver> for SioSession {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        match msg {
            Deliver::Frame(text) => self.deliver(ctx, &text),
            Deliver::Close { code, reason } => {
                self.server_close(ctx, code, &reason);
                self.close(ctx, &reason);
            }
        }
    }
}

/// Room frames queued by this worker's fan-out.
impl StreamHandler<fanout::FramesWaiting> for SioSession {
    fn handle(&mut self, _: fanout::FramesWaiting, ctx: &mut Self::Context) {
        let mut frames = Vec::new();
        self.outbox.drain(|f| frames.push(f));
        crate::stats::messages_out("socketio", frames.len());
        for f in frames {
            self.deliver(ctx, &f);
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {}
}
