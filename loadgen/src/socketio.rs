//! Socket.IO 4 as the load generator speaks it, by hand: Engine.IO v4 over the websocket
//! transport only (no long-polling, no upgrade), one packet per WebSocket frame.
//!
//! - Engine.IO packets: `0{..}` open (from the server), `2` ping (from the server), answered `3`;
//!   `4...` a Socket.IO packet.
//! - Socket.IO packets, after the `4`: `0` connect (`40` to the default namespace, or `40{auth}`
//!   with an auth object; answered `40{"sid":..}`, or `44{..}` refused), `2[name, data, ..]` an
//!   event, `2<id>[..]` an event that wants an ack, answered `3<id>[..]`.
//!
//! The framing (`connect`, `event`, `event_args`, `ack_parts`) serves two protocols: the Node
//! baseline's (this file's `decode`, `report`, `set_up`) and Rallypoint's own transport at
//! `/socket.io/` (`rallypoint_sio.rs`). The baseline server (bench/socketio/server.js) echoes a
//! report's `report_id` and `run` in the `emergency_event` it emits to everyone, so every event
//! names the report it answers.

use crate::client::{driver_location, send_text, wait_for, ClientSpec, Incoming, Role};
use crate::error::LoadgenError;
use crate::net::Ws;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// The Engine.IO endpoint, websocket transport straight away.
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";
/// Engine.IO's ping, as the server sends it.
pub const PING: &str = "2";
/// Engine.IO's pong.
pub const PONG: &str = "3";
/// The ack id of every set-up request; report `n` uses `n + 1`.
pub const SETUP_ACK: u64 = 0;

/// The ack id of report `n`.
pub fn report_ack(n: u64) -> u64 {
    n + 1
}

/// The report an ack id answers: `None` for a set-up ack.
pub fn report_of_ack(id: u64) -> Option<u64> {
    id.checked_sub(1)
}

/// An event packet `42[<ack id>]["name",payload]`.
pub fn event(name: &str, ack: Option<u64>, payload: &Value) -> String {
    let id = ack.map(|id| id.to_string()).unwrap_or_default();
    format!("42{id}[{},{payload}]", Value::from(name))
}

/// The name and first argument of an event packet `42[..]` (no ack id: the server sends
/// none), the arguments after it skipped unparsed: Rallypoint's transport adds the recipient's
/// offset to a room event.
pub fn event_args<'a, B: Deserialize<'a>>(text: &'a str) -> Option<(Cow<'a, str>, B)> {
    let payload = text.strip_prefix("42")?;
    let EventArgs(name, body) = serde_json::from_str(payload).ok()?;
    Some((name, body))
}

/// The ack id and the argument array (still JSON) of an ack packet `43<id>[..]`.
pub fn ack_parts(text: &str) -> Option<(u64, &str)> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse().ok()?;
    Some((id, &rest[digits..]))
}

/// An event's name and first argument, read from its JSON array; further arguments are
/// skipped. A missing argument is read from `null` (so an `Option` or a struct of defaults
/// takes it).
struct EventArgs<'a, B>(Cow<'a, str>, B);

impl<'de: 'a, 'a, B: Deserialize<'de>> Deserialize<'de> for EventArgs<'a, B> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Args<'a, B>(PhantomData<(&'a (), B)>);
        impl<'de: 'a, 'a, B: Deserialize<'de>> Visitor<'de> for Args<'a, B> {
            type Value = EventArgs<'a, B>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event: [name, argument, ..]")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let name: Cow<'a, str> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let body = match seq.next_element()? {
                    Some(body) => body,
                    None => B::deserialize(de::value::UnitDeserializer::new())?,
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EventArgs(name, body))
            }
        }
        deserializer.deserialize_seq(Args(PhantomData))
    }
}

/// The Engine.IO open packet, then the Socket.IO connect (`40`, or `40{auth}`) and its answer.
/// Pings arriving meanwhile go unanswered: set-up takes far less than the server's ping
/// interval plus timeout.
pub async fn connect(ws: &mut Ws, client: usize, auth: Option<&Value>) -> Result<(), LoadgenError> {
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
    let connect = match auth {
        Some(auth) => format!("40{auth}"),
        None => "40".into(),
    };
    send_text(ws, client, connect).await?;
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
    .await
}

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
    if text == PING {
        return Incoming::EnginePing;
    }
    if let Some((name, body)) = event_args::<EventBody<'_>>(text) {
        if name != "emergency_event" {
            return Incoming::Other;
        }
        return match (body.report_id, body.run.as_deref()) {
            (Some(n), Some(r)) if r == run => Incoming::Event(n),
            _ => Incoming::ForeignEvent,
        };
    }
    let Some((id, body)) = ack_parts(text) else {
        return Incoming::Other;
    };
    let Some(n) = report_of_ack(id) else {
        return Incoming::Other;
    };
    let refused = match serde_json::from_str::<Vec<AckBody<'_>>>(body) {
        Ok(args) => args
            .into_iter()
            .next()
            .and_then(|a| a.error.map(|e| e.into_owned())),
        Err(e) => Some(format!("unreadable ack `{body}`: {e}")),
    };
    Incoming::Answer {
        n,
        refused,
        order_lost: false,
    }
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
    event("report", Some(report_ack(n)), &body)
}

/// The Engine.IO open, the Socket.IO connect, and for a driver `online` with its location
/// (acknowledged).
pub async fn set_up(ws: &mut Ws, spec: &ClientSpec, run: &str) -> Result<(), LoadgenError> {
    let client = spec.index;
    connect(ws, client, None).await?;
    let Role::Driver(n) = spec.role else {
        return Ok(());
    };
    let (lat, lng) = driver_location(n);
    let online = json!({"driver_id": driver_id(run, n), "lat": lat, "lng": lng});
    send_text(ws, client, event("online", Some(SETUP_ACK), &online)).await?;
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

    #[test]
    fn an_event_is_encoded_with_or_without_its_ack_id() {
        let payload = json!({"status": "online"});
        assert_eq!(
            event("status", Some(0), &payload),
            r#"420["status",{"status":"online"}]"#
        );
        assert_eq!(event("loc\"x", None, &json!({})), r#"42["loc\"x",{}]"#);
        assert_eq!(report_ack(0), 1);
        assert_eq!(report_of_ack(report_ack(41)), Some(41));
        assert_eq!(report_of_ack(SETUP_ACK), None);
    }

    #[test]
    fn event_args_read_the_name_and_first_argument_and_skip_the_rest() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct B {
            a: u32,
        }
        let (name, b) = event_args::<B>(r#"42["x",{"a":1},"g1.fleet:default=3",[1,{}]]"#).unwrap();
        assert_eq!((name.as_ref(), b), ("x", B { a: 1 }));
        let (name, b) = event_args::<Option<B>>(r#"42["bare"]"#).unwrap();
        assert_eq!((name.as_ref(), b), ("bare", None));
        assert!(event_args::<B>(r#"42[]"#).is_none());
        assert!(event_args::<B>(r#"42["x",{"a":"no"}]"#).is_none());
        assert!(
            event_args::<B>(r#"421["x",{"a":1}]"#).is_none(),
            "an ack id is the client's"
        );
        assert!(event_args::<B>(r#"43["x",{"a":1}]"#).is_none());
        let (name, _) = event_args::<IgnoredAny>(r#"42["esc\"aped",1]"#).unwrap();
        assert_eq!(name, "esc\"aped");
    }

    #[test]
    fn ack_parts_split_the_id_from_the_arguments() {
        assert_eq!(
            ack_parts(r#"4312[{"ok":true}]"#),
            Some((12, r#"[{"ok":true}]"#))
        );
        assert_eq!(ack_parts("430[]"), Some((0, "[]")));
        assert_eq!(ack_parts("43[]"), None, "an ack needs its id");
        assert_eq!(ack_parts(r#"42["x"]"#), None);
    }
}
