//! Connecting a Socket.IO socket: CONNECT with its token (or a restore with its pid and
//! offset), the connect sequence, then the CONNECT answer, `connection:status`, `welcome`, the
//! rooms' `joined` and a restore's missed events; and the token's expiry.

use super::socket::{Live, Start, RECENT_IDS};
use super::{recover, SioSession};
use crate::actors::connect::{self, Connected, Connecting};
use crate::actors::room::JoinReply;
use crate::actors::session::LeaveRooms;
use crate::actors::{ConnectionSlot, Deliver, SlotRefused};
use crate::auth::{self, Claims};
use crate::db::queries;
use crate::error::AppError;
use crate::protocol::{Room, ServerMsg};
use crate::socketio::packet::{Packet, DEFAULT_NAMESPACE};
use crate::socketio::recovery::RecoveryClaim;
use crate::socketio::{Offset, SharedEvent};
use actix::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::time::Duration;

impl SioSession {
    /// CONNECT: the token checked, the slot taken, the connect sequence run.
    pub(super) fn on_connect(
        &mut self,
        ctx: &mut Context<Self>,
        nsp: &str,
        auth: Option<Map<String, Value>>,
    ) {
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
        let slot = match self.hub.reserve_connection(&claims.sub, claims.role) {
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
    pub(super) fn start_fresh(
        &mut self,
        ctx: &mut Context<Self>,
        claims: Claims,
        slot: ConnectionSlot,
    ) {
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
    pub(super) fn start_socket(
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
    pub(super) fn connected(
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
    pub(super) fn write_join(
        &mut self,
        ctx: &mut Context<Self>,
        room: &Room,
        reply: JoinReply,
        settle: bool,
    ) {
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
    pub(super) fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
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
}
