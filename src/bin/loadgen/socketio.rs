//! Socket.IO 4 as the load generator speaks it, by hand: Engine.IO v4 over the websocket
//! transport only (no long-polling, no upgrade), one packet per WebSocket frame.
//!
//! - Engine.IO packets: `0{..}` open (from the server), `2` ping (from the server), answered `3`;
//!   `4...` a Socket.IO packet.
//! - Socket.IO packets, after the `4`: `0` connect (`40` to the default namespace, answered
//!   `40{"sid":..}`, or `44{..}` refused), `2[name, data]` an event, `2<id>[..]` an event that
//!   wants an ack, answered `3<id>[..]`.
//!
//! The baseline server (bench/socketio/server.js) echoes a report's `report_id` and `run` in the
//! `emergency_event` it emits to everyone, so every event names the report it answers.

use crate::client::{driver_location, send_text, wait_for, ClientSpec, Incoming, Role};
use crate::error::LoadgenError;
use crate::net::Ws;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;

/// The Engine.IO endpoint, websocket transport straight away.
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";
/// Engine.IO's pong.
pub const PONG: &str = "3";
/// The ack id of a driver's `online`; reports use `n + 1`.
const SETUP_ACK: u64 = 0;

/// The fields of an `emergency_event` the run looks at.
#[derive(Deserialize)]
struct EventBody<'a> {
    #[serde(default)]
    report_id: Option<u64>,
    #[serde(borrow, default)]
    run: Option<Cow<'a, str>>,
}

/// The body of an ack: the server answers `{"ok":true,..}` or `{"error":".."}`.
#[derive(Deserialize)]
struct AckBody<'a> {
    #[serde(borrow, default)]
    error: Option<Cow<'a, str>>,
}

/// Driver `n`'s id in run `run`.
pub fn driver_id(run: &str, n: usize) -> String {
    format!("lg-{run}-d{n}")
}

/// Decodes a frame received during the run.
pub fn decode(text: &str, run: &str) -> Incoming {
    if text == "2" {
        return Incoming::EnginePing;
    }
    if let Some(payload) = text.strip_prefix("42") {
        return match serde_json::from_str::<(Cow<'_, str>, EventBody<'_>)>(payload) {
            Ok((name, body)) if name == "emergency_event" => {
                match (body.report_id, body.run.as_deref()) {
                    (Some(n), Some(r)) if r == run => Incoming::Event(n),
                    _ => Incoming::ForeignEvent,
                }
            }
            _ => Incoming::Other,
        };
    }
    if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (Ok(id), body) = (rest[..digits].parse::<u64>(), &rest[digits..]) else {
            return Incoming::Other;
        };
        if id == SETUP_ACK {
            return Incoming::Other;
        }
        let refused = match serde_json::from_str::<Vec<AckBody<'_>>>(body) {
            Ok(args) => args
                .into_iter()
                .next()
                .and_then(|a| a.error.map(|e| e.into_owned())),
            Err(e) => Some(format!("unreadable ack `{body}`: {e}")),
        };
        return Incoming::Answer {
            n: id - 1,
            refused,
            order_lost: false,
        };
    }
    Incoming::Other
}

/// The frame of report `n`, sent by the driver `spec` is.
pub fn report(n: u64, spec: &ClientSpec, kind: &str, run: &str) -> String {
    let driver = match spec.role {
        Role::Driver(d) => d,
        _ => 0,
    };
    let (lat, lng) = driver_location(driver);
    let body = json!({
        "report_id": n,
        "run": run,
        "driver_id": driver_id(run, driver),
        "kind": kind,
        "lat": lat,
        "lng": lng,
    });
    format!("42{}[\"report\",{body}]", n + 1)
}

/// The Engine.IO open, the Socket.IO connect, and for a driver `online` with its location
/// (acknowledged). Pings arriving meanwhile go unanswered: set-up takes far less than the
/// server's ping interval plus timeout.
pub async fn set_up(ws: &mut Ws, spec: &ClientSpec, run: &str) -> Result<(), LoadgenError> {
    let client = spec.index;
    wait_for(ws, client, "the Engine.IO open packet", |text| {
        if text.starts_with('0') {
            Ok(Some(()))
        } else {
            Err(LoadgenError::Protocol {
                client,
                what: "instead of the Engine.IO open packet",
                frame: text.chars().take(200).collect(),
            })
        }
    })
    .await?;
    send_text(ws, client, "40".into()).await?;
    wait_for(ws, client, "the Socket.IO connect", |text| {
        if text.starts_with("40") {
            Ok(Some(()))
        } else if text.starts_with("44") {
            Err(LoadgenError::Refused {
                client,
                what: "the Socket.IO connect".into(),
                answer: text.chars().take(200).collect(),
            })
        } else {
            Ok(None)
        }
    })
    .await?;
    let Role::Driver(n) = spec.role else {
        return Ok(());
    };
    let (lat, lng) = driver_location(n);
    let online = json!({"driver_id": driver_id(run, n), "lat": lat, "lng": lng});
    send_text(ws, client, format!("42{SETUP_ACK}[\"online\",{online}]")).await?;
    let ack = format!("43{SETUP_ACK}[");
    wait_for(ws, client, "the ack to `online`", |text| {
        Ok(text.starts_with(&ack).then_some(()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver() -> ClientSpec {
        ClientSpec {
            index: 3,
            role: Role::Driver(2),
            token: None,
        }
    }

    #[test]
    fn an_engine_ping_is_answered() {
        assert_eq!(decode("2", "r"), Incoming::EnginePing);
    }

    #[test]
    fn an_event_of_this_run_names_its_report() {
        let text =
            r#"42["emergency_event",{"event_id":"e1","report_id":12,"run":"r1","risk_score":0.3}]"#;
        assert_eq!(decode(text, "r1"), Incoming::Event(12));
        assert_eq!(decode(text, "r2"), Incoming::ForeignEvent);
        assert_eq!(
            decode(r#"42["order_assigned",{"report_id":12}]"#, "r1"),
            Incoming::Other
        );
    }

    #[test]
    fn a_report_and_its_ack_share_the_ack_id() {
        let frame = report(7, &driver(), "accident", "r1");
        assert!(frame.starts_with("428[\"report\","), "{frame}");
        assert_eq!(
            decode(r#"438[{"ok":true,"event_id":"e"}]"#, "r1"),
            Incoming::Answer {
                n: 7,
                refused: None,
                order_lost: false
            }
        );
        assert_eq!(
            decode(r#"438[{"error":"unknown driver"}]"#, "r1"),
            Incoming::Answer {
                n: 7,
                refused: Some("unknown driver".into()),
                order_lost: false
            }
        );
    }
}
