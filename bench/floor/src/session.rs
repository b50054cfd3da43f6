//! `FloorSession`: one per WebSocket, as plain as a chat example's. It registers with the
//! `Broadcaster`, says `welcome`, pings on a heartbeat, hands `report`s to the broadcaster and
//! acknowledges anything else that carries a `ref`. It checks nothing (no token, no roles).

use crate::broadcaster::{Broadcaster, Connect, Disconnect, Frame, Report};
use actix::prelude::*;
use actix_web_actors::ws;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How often the session pings its client.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A client silent this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(12_500);

/// One client's WebSocket.
pub struct FloorSession {
    id: u64,
    hb: Instant,
    broadcaster: Addr<Broadcaster>,
}

impl FloorSession {
    pub fn new(broadcaster: Addr<Broadcaster>) -> FloorSession {
        FloorSession {
            id: 0,
            hb: Instant::now(),
            broadcaster,
        }
    }

    /// Pings the client every `HEARTBEAT_INTERVAL`; stops the session when it has gone silent.
    fn hb(&self, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if Instant::now().duration_since(act.hb) > CLIENT_TIMEOUT {
                log::warn!("[WEBSOCKET] session={} heartbeat timeout", act.id);
                ctx.stop();
                return;
            }
            ctx.ping(b"");
        });
    }

    /// Answers one client frame.
    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
            ctx.text(r#"{"type":"error","code":"bad_request","message":"not a JSON object"}"#);
            return;
        };
        let reference = frame
            .remove("ref")
            .and_then(|r| r.as_str().map(String::from));
        match frame.get("type").and_then(Value::as_str) {
            Some("report") => self.broadcaster.do_send(Report {
                from: self.id,
                reference,
                order_id: frame.remove("order_id").unwrap_or(Value::Null),
                kind: frame.remove("kind").unwrap_or(Value::Null),
                comment: frame.remove("comment").unwrap_or(Value::Null),
            }),
            Some("ping") => {
                ctx.text(r#"{"type":"pong"}"#);
                ack(reference, ctx);
            }
            _ => ack(reference, ctx),
        }
    }
}

/// Acknowledges a frame that carried a `ref`.
fn ack(reference: Option<String>, ctx: &mut ws::WebsocketContext<FloorSession>) {
    if let Some(r) = reference {
        ctx.text(json!({"type": "ack", "ref": r}).to_string());
    }
}

impl Actor for FloorSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.hb(ctx);
        let session = ctx.address().recipient();
        self.broadcaster
            .send(Connect { session })
            .into_actor(self)
            .then(|res, act, ctx| {
                match res {
                    Ok(id) => {
                        act.id = id;
                        ctx.text(json!({"type": "welcome", "session_id": id}).to_string());
                    }
                    Err(_) => ctx.stop(),
                }
                fut::ready(())
            })
            // Nothing else is handled until the session has its id.
            .wait(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.broadcaster.do_send(Disconnect { id: self.id });
        Running::Stop
    }
}

impl Handler<Frame> for FloorSession {
    type Result = ();

    fn handle(&mut self, msg: Frame, ctx: &mut Self::Context) {
        ctx.text(msg.text);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for FloorSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) => {
                log::warn!("[WEBSOCKET] session={} protocol error: {e}", self.id);
                ctx.stop();
                return;
            }
        };
        self.hb = Instant::now();
        match msg {
            ws::Message::Text(text) => self.on_text(&text, ctx),
            ws::Message::Ping(bytes) => ctx.pong(&bytes),
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            ws::Message::Pong(_)
            | ws::Message::Binary(_)
            | ws::Message::Continuation(_)
            | ws::Message::Nop => {}
        }
    }
}
