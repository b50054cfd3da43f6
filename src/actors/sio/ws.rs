//! `SioWs`: the WebSocket under a Socket.IO session. It carries Engine.IO packets, one per
//! frame, between the socket and its `SioSession`, and runs the upgrade's handshake itself.
//!
//! - A WebSocket-only session (`transport=websocket`, no `sid`): the socket opens its session at
//!   once and forwards everything.
//! - An upgrade (`sid` of a polling session): the client sends `2probe`, answered `3probe` (the
//!   session ends its pending poll with a noop), then `5`: from then on the session's packets go
//!   over this socket. Anything else before the `5`, or no `5` within `UPGRADE_TIMEOUT`, closes
//!   this socket; the polling session goes on.

use super::{FromWs, SioSession, WsLink};
use crate::actors::Hub;
use actix::prelude::*;
use actix_web_actors::ws;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long an upgrade may take from the WebSocket's opening to the client's `5` (the
/// reference's `upgradeTimeout`).
pub const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_WS: AtomicU64 = AtomicU64::new(1);

/// What the session writes to its WebSocket.
#[derive(Message)]
#[rtype(result = "()")]
pub enum WsOut {
    Text(String),
    Close,
}

enum Stage {
    /// WebSocket-only: opens its session when started.
    Open(HashMap<String, String>),
    /// An upgrade of this session, before the client's `5`.
    Probing {
        session: Addr<SioSession>,
        probed: bool,
    },
    /// Carrying the session's packets.
    Carrying(Addr<SioSession>),
}

/// One WebSocket at `/socket.io/`.
pub struct SioWs {
    id: u64,
    hub: Arc<Hub>,
    stage: Stage,
}

impl SioWs {
    /// A WebSocket-only session; `query` is the handshake's (its `token`, `eventId`).
    pub fn open(hub: Arc<Hub>, query: HashMap<String, String>) -> SioWs {
        SioWs {
            id: NEXT_WS.fetch_add(1, Ordering::Relaxed),
            hub,
            stage: Stage::Open(query),
        }
    }

    /// An upgrade of `session` from polling.
    pub fn upgrade(hub: Arc<Hub>, session: Addr<SioSession>) -> SioWs {
        SioWs {
            id: NEXT_WS.fetch_add(1, Ordering::Relaxed),
            hub,
            stage: Stage::Probing {
                session,
                probed: false,
            },
        }
    }

    fn link(&self, ctx: &mut ws::WebsocketContext<Self>) -> WsLink {
        WsLink {
            id: self.id,
            out: ctx.address().recipient(),
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        match &mut self.stage {
            Stage::Carrying(s) => s.do_send(FromWs::Text(text.to_string())),
            Stage::Probing { session, probed } => match (text, *probed) {
                ("2probe", false) => {
                    *probed = true;
                    ctx.text("3probe");
                    session.do_send(FromWs::Probing);
                }
                ("5", true) => {
                    let session = session.clone();
                    session.do_send(FromWs::Upgraded(self.link(ctx)));
                    self.stage = Stage::Carrying(session);
                }
                _ => {
                    log::warn!("[WEBSOCKET] socket.io upgrade: unexpected packet, closing it");
                    ctx.close(None);
                    ctx.stop();
                }
            },
            Stage::Open(_) => {}
        }
    }
}

impl Actor for SioWs {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        match std::mem::replace(&mut self.stage, Stage::Open(HashMap::new())) {
            Stage::Open(query) => {
                let link = self.link(ctx);
                let (_, session) = SioSession::open(self.hub.clone(), Some(link), query);
                self.stage = Stage::Carrying(session);
            }
            other => {
                self.stage = other;
                ctx.run_later(UPGRADE_TIMEOUT, |act, ctx| {
                    if matches!(act.stage, Stage::Probing { .. }) {
                        log::warn!("[WEBSOCKET] socket.io upgrade timed out");
                        ctx.close(None);
                        ctx.stop();
                    }
                });
            }
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        match &self.stage {
            Stage::Carrying(s) => s.do_send(FromWs::Closed { id: self.id }),
            Stage::Probing {
                session,
                probed: true,
            } => session.do_send(FromWs::ProbeFailed),
            _ => {}
        }
    }
}

impl Handler<WsOut> for SioWs {
    type Result = ();

    fn handle(&mut self, msg: WsOut, ctx: &mut Self::Context) {
        match msg {
            WsOut::Text(t) => ctx.text(t),
            WsOut::Close => {
                ctx.close(None);
                ctx.stop();
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for SioWs {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(t)) => self.on_text(&t, ctx),
            Ok(ws::Message::Binary(b)) => {
                if let Stage::Carrying(s) = &self.stage {
                    s.do_send(FromWs::Binary(b.len()));
                }
            }
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Pong(_) | ws::Message::Nop | ws::Message::Continuation(_)) => {}
            Err(e) => {
                log::warn!(
                    "[WEBSOCKET] socket.io websocket error: {}",
                    crate::telemetry::q(&e.to_string())
                );
                ctx.stop();
            }
        }
    }
}
