//! The Socket.IO part of a `SioSession`: the socket's state, packets read and answered, and what
//! rooms deliver written as events with the socket's offset. Connecting is in `connecting`,
//! events in `events`.
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

use super::convert;
use super::SioSession;
use crate::actors::registry::Leave;
use crate::actors::session::LeaveRooms;
use crate::actors::ConnectionSlot;
use crate::auth::Claims;
use crate::db::queries;
use crate::error::AppError;
use crate::protocol::{Room, ServerMsg, SessionId};
use crate::socketio::packet::{DecodeError, Packet, DEFAULT_NAMESPACE};
use crate::socketio::{Offset, SharedEvent};
use actix::prelude::*;
use bytestring::ByteString;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};

/// Publication ids remembered to send each publication once (copies come close together).
pub(super) const RECENT_IDS: usize = 64;

pub(super) type Reply = Result<Value, AppError>;

/// The socket on a session: waiting for its CONNECT, or connected.
pub(super) struct Socket {
    pub(super) id: SessionId,
    pub(super) query: HashMap<String, String>,
    pub(super) live: Option<Box<Live>>,
    pub(super) connecting: bool,
    /// Binary attachments still to come after a refused binary packet: ignored.
    pub(super) attachments_left: u64,
}

/// How a socket starts: its id, its positions, the rooms to join from them, whether it is a
/// restore, and the rooms a restore left out.
pub(super) struct Start {
    pub(super) socket_id: String,
    pub(super) offset: Offset,
    pub(super) rooms: Vec<(Room, Option<i64>)>,
    pub(super) restored: bool,
    pub(super) dropped: Vec<String>,
}

/// A connected socket.
pub(super) struct Live {
    pub(super) claims: Claims,
    pub(super) socket_id: String,
    pub(super) rooms: Vec<Room>,
    pub(super) offset: Offset,
    /// `offset` encoded, as the frames carry it.
    pub(super) offset_text: String,
    /// The publications sent lately, by `Converted::id_hash`.
    pub(super) recent: VecDeque<u64>,
    pub(super) rate: crate::ratelimit::FrameRate,
    pub(super) expiry: Option<SpawnHandle>,
    pub(super) _slot: ConnectionSlot,
}

impl Socket {
    pub(super) fn new(id: SessionId, query: HashMap<String, String>) -> Socket {
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
    pub(super) fn set_offset(&mut self) {
        self.offset_text = self.offset.encode();
    }
}

impl SioSession {
    /// Sends a Socket.IO packet.
    pub(super) fn send_packet(&mut self, ctx: &mut Context<Self>, p: &Packet) {
        self.emit(ctx, p.to_message());
    }

    /// Sends event `name` with one argument (no offset).
    pub(super) fn send_event(&mut self, ctx: &mut Context<Self>, name: &str, payload: &Value) {
        let frame = SharedEvent::from_json_args(name, &[&payload.to_string()]).frame();
        self.emit(ctx, frame);
    }

    /// Answers an event: its ack (with an ack id), or its error (as the ack, or an `error`
    /// event without one).
    pub(super) fn answer(&mut self, ctx: &mut Context<Self>, ack: Option<u64>, reply: Reply) {
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
    pub(super) fn deliver_msg(&mut self, ctx: &mut Context<Self>, msg: &ServerMsg) {
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
        crate::actors::connect::detach(&self.hub, &live.claims, id);
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
