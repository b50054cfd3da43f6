//! Rallypoint's protocol as the load generator speaks it (docs/PROTOCOL.md): tokens it signs
//! itself, each role's set-up, the report frame, and decoding only what the run counts.
//!
//! A report carries `comment: "lg <run> <n>"`; the server copies the comment into the
//! `emergency_event`, so every event names the report it answers and the run it belongs to.
//! The bare floor (bench/floor) speaks the same frames.

use crate::client::{driver_location, send_text, wait_for, ClientSpec, Incoming, Role};
use crate::error::LoadgenError;
use crate::net::Ws;
use rallypoint::auth::Claims;
use rallypoint::protocol::{DriverId, Role as TokenRole};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;

/// Tokens live long enough for any run.
const TOKEN_TTL_S: i64 = 24 * 3600;

/// Signs tokens with the run's secret (HS256, as the server verifies by default).
pub struct Signer {
    key: jsonwebtoken::EncodingKey,
    fleet: String,
}

impl Signer {
    pub fn new(secret: &str, fleet: &str) -> Signer {
        Signer {
            key: jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            fleet: fleet.to_string(),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, LoadgenError> {
        Ok(jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &self.key,
        )?)
    }

    /// The token of a client in `role`; `run` keeps this run's drivers apart from earlier ones.
    pub fn token(&self, role: Role, index: usize, run: &str) -> Result<String, LoadgenError> {
        let claims = match role {
            Role::Admin => Claims::new(
                &format!("lg-{run}-admin"),
                TokenRole::Admin,
                None,
                &self.fleet,
                TOKEN_TTL_S,
            ),
            Role::Driver(n) => Claims::new(
                &format!("lg-{run}-d{n}"),
                TokenRole::Driver,
                Some(DriverId::from(driver_id(run, n).as_str())),
                &self.fleet,
                TOKEN_TTL_S,
            ),
            Role::Observer => {
                let mut c = Claims::new(
                    &format!("lg-{run}-o{index}"),
                    TokenRole::Observer,
                    None,
                    &self.fleet,
                    TOKEN_TTL_S,
                );
                c.rooms = Some(vec![format!("fleet:{}", self.fleet)]);
                c
            }
        };
        self.sign(&claims)
    }

    /// The token of flood client `n` (flood.rs): a driver `LG-<run>-F<n>` of its own, or a
    /// dispatcher.
    pub fn flood_token(&self, n: usize, driver: bool, run: &str) -> Result<String, LoadgenError> {
        let sub = format!("lg-{run}-f{n}");
        let claims = if driver {
            let id = DriverId::from(format!("LG-{run}-F{n}").as_str());
            Claims::new(&sub, TokenRole::Driver, Some(id), &self.fleet, TOKEN_TTL_S)
        } else {
            Claims::new(&sub, TokenRole::Dispatcher, None, &self.fleet, TOKEN_TTL_S)
        };
        self.sign(&claims)
    }

    /// The admin's token, for the REST calls.
    pub fn admin_token(&self, run: &str) -> Result<String, LoadgenError> {
        self.token(Role::Admin, 0, run)
    }
}

/// Driver `n`'s id in run `run`.
pub fn driver_id(run: &str, n: usize) -> String {
    format!("LG-{run}-D{n}")
}

/// The fields of a server frame the run looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(rename = "ref", borrow, default)]
    reference: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    comment: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<AckedEvent<'a>>,
}

/// The `event` of a report's `ack` (natively, and over Socket.IO in the ack's body).
#[derive(Deserialize)]
pub struct AckedEvent<'a> {
    #[serde(borrow, default)]
    pub action_taken: Option<Cow<'a, str>>,
}

fn parse(text: &str) -> Option<Frame<'_>> {
    serde_json::from_str(text).ok()
}

/// Decodes a frame received during the run.
pub fn decode(text: &str, run: &str) -> Incoming {
    let Some(frame) = parse(text) else {
        return Incoming::Other;
    };
    match frame.ty.as_ref() {
        "emergency_event" => event_of(frame.comment.as_deref(), run),
        "ack" | "error" => {
            let Some(n) = frame.reference.as_deref().and_then(report_ref) else {
                return Incoming::Other;
            };
            let refusal = (frame.ty == "error").then(|| {
                (
                    frame.code.as_deref().unwrap_or("?"),
                    frame.message.as_deref().unwrap_or(""),
                )
            });
            let action = frame.event.as_ref().and_then(|e| e.action_taken.as_deref());
            answer(n, refusal, action)
        }
        _ => Incoming::Other,
    }
}

/// What an `emergency_event` with `comment` is: this run's report's, or another's.
pub fn event_of(comment: Option<&str>, run: &str) -> Incoming {
    match comment.and_then(|c| report_of(c, run)) {
        Some(n) => Incoming::Event(n),
        None => Incoming::ForeignEvent,
    }
}

/// The answer to report `n`: refused with `(code, message)`, or acked with its event's
/// `action_taken` (anything but MAINTAIN took the reporter's order away).
pub fn answer(n: u64, refusal: Option<(&str, &str)>, action_taken: Option<&str>) -> Incoming {
    match refusal {
        Some((code, message)) => Incoming::Answer {
            n,
            refused: Some(format!("{code}: {message}")),
            order_lost: false,
        },
        None => Incoming::Answer {
            n,
            refused: None,
            order_lost: action_taken.is_some_and(|a| a != "MAINTAIN"),
        },
    }
}

/// The report number in a comment `lg <run> <n>` of this run.
fn report_of(comment: &str, run: &str) -> Option<u64> {
    let rest = comment.strip_prefix("lg ")?.strip_prefix(run)?;
    rest.strip_prefix(' ')?.parse().ok()
}

/// The report number in a ref `r<n>`.
fn report_ref(reference: &str) -> Option<u64> {
    reference.strip_prefix('r')?.parse().ok()
}

/// The frame of report `n` on `order_id`.
pub fn report(n: u64, order_id: &str, kind: &str, run: &str) -> String {
    let mut body = report_body(n, order_id, kind, run);
    body["type"] = json!("report");
    body["ref"] = json!(format!("r{n}"));
    body.to_string()
}

/// Report `n`'s fields but `type` and `ref`: `order_id`, `kind` and the comment that names it.
pub fn report_body(n: u64, order_id: &str, kind: &str, run: &str) -> serde_json::Value {
    json!({
        "order_id": order_id,
        "kind": kind,
        "comment": format!("lg {run} {n}"),
    })
}

/// What a client in `role` sends, in order, before it counts as ready, each waiting for its
/// ack: a driver goes online and sends its location, an observer joins the fleet's room, the
/// admin pings. Each is the message's `type` and its other fields.
pub fn set_up_requests(role: Role, fleet: &str) -> Vec<(&'static str, serde_json::Value)> {
    match role {
        Role::Driver(n) => {
            let (lat, lng) = driver_location(n);
            vec![
                ("status", json!({"status": "online"})),
                ("location", json!({"lat": lat, "lng": lng})),
            ]
        }
        Role::Observer => vec![("join", json!({"room": format!("fleet:{fleet}")}))],
        Role::Admin => vec![("ping", json!({}))],
    }
}

/// Waits for the welcome, then sends the role's set-up requests (`set_up_requests`).
pub async fn set_up(ws: &mut Ws, spec: &ClientSpec, fleet: &str) -> Result<(), LoadgenError> {
    let client = spec.index;
    wait_for(ws, client, "welcome", |text| match parse(text) {
        Some(f) if f.ty == "welcome" => Ok(Some(())),
        Some(f) if f.ty == "error" => Err(refused(client, "the session", &f)),
        _ => Ok(None),
    })
    .await?;
    for (ty, mut message) in set_up_requests(spec.role, fleet) {
        message["type"] = json!(ty);
        request(ws, client, message).await?;
    }
    Ok(())
}

/// Sends `message` with ref `setup` and waits for its `ack`.
async fn request(
    ws: &mut Ws,
    client: usize,
    mut message: serde_json::Value,
) -> Result<(), LoadgenError> {
    message["ref"] = json!("setup");
    let what = message["type"].as_str().unwrap_or("?").to_string();
    send_text(ws, client, message.to_string()).await?;
    wait_for(
        ws,
        client,
        &format!("ack to `{what}`"),
        |text| match parse(text) {
            Some(f) if f.reference.as_deref() == Some("setup") => match f.ty.as_ref() {
                "ack" => Ok(Some(())),
                _ => Err(refused(client, &format!("`{what}`"), &f)),
            },
            _ => Ok(None),
        },
    )
    .await
}

fn refused(client: usize, what: &str, f: &Frame<'_>) -> LoadgenError {
    LoadgenError::Refused {
        client,
        what: what.to_string(),
        answer: format!(
            "{} {}",
            f.code.as_deref().unwrap_or(&f.ty),
            f.message.as_deref().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_of_this_run_names_its_report() {
        let text = r#"{"type":"emergency_event","room":"fleet:default","seq":3,"comment":"lg ab12 17","kind":"traffic_jam"}"#;
        assert_eq!(decode(text, "ab12"), Incoming::Event(17));
        assert_eq!(decode(text, "cd34"), Incoming::ForeignEvent);
    }

    #[test]
    fn a_report_ack_with_maintain_keeps_the_order() {
        let text =
            r#"{"type":"ack","ref":"r5","event":{"action_taken":"MAINTAIN","risk_score":0.2}}"#;
        assert_eq!(
            decode(text, "x"),
            Incoming::Answer {
                n: 5,
                refused: None,
                order_lost: false
            }
        );
        let moved =
            r#"{"type":"ack","ref":"r6","event":{"action_taken":"REASSIGNMENT_INITIATED"}}"#;
        assert!(matches!(
            decode(moved, "x"),
            Incoming::Answer {
                n: 6,
                order_lost: true,
                ..
            }
        ));
    }

    #[test]
    fn a_refused_report_carries_the_code_and_message() {
        let text =
            r#"{"type":"error","ref":"r9","code":"conflict","message":"order ORD-1 is pending"}"#;
        assert_eq!(
            decode(text, "x"),
            Incoming::Answer {
                n: 9,
                refused: Some("conflict: order ORD-1 is pending".into()),
                order_lost: false
            }
        );
    }

    #[test]
    fn a_report_frame_round_trips_through_the_event_comment() {
        let frame: serde_json::Value =
            serde_json::from_str(&report(42, "ORD-1", "traffic_jam", "run1")).unwrap();
        assert_eq!(frame["ref"], "r42");
        let comment = frame["comment"].as_str().unwrap();
        assert_eq!(report_of(comment, "run1"), Some(42));
    }
}
