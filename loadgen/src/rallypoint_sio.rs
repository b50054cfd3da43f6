//! Rallypoint's own protocol spoken over its Socket.IO transport at `/socket.io/` (SPEC 11):
//! the same run as `rallypoint.rs` (its tokens, its set-up requests, its reports and the
//! comment that names each report), in `socketio.rs`'s framing.
//!
//! - Connect: `40{"token":"<jwt>"}`, answered `40{"sid",..}` or `44{"message":"Unauthorized"}`;
//!   then `connection:status` and `welcome` arrive as events.
//! - A client message is the event named by its `type`, its payload the message without `type`
//!   and `ref`; the ack id stands for the `ref`: `42<id>["report",{order_id, kind, comment}]` is
//!   answered `43<id>[<the ack without type and ref>]` or `43<id>[{"error":{code, message}}]`.
//! - A server message is the event named by its `type`, its payload the message without `type`,
//!   and for a room message the recipient's offset as a last argument (skipped here).

use crate::client::{send_text, wait_for, ClientSpec, Incoming};
use crate::error::LoadgenError;
use crate::net::Ws;
use crate::rallypoint::{self, AckedEvent};
use crate::socketio::{self, ack_parts, event, event_args, report_of_ack, SETUP_ACK};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;

/// The fields of an `emergency_event`'s payload the run looks at.
#[derive(Deserialize)]
struct EventBody<'a> {
    #[serde(borrow, default)]
    comment: Option<Cow<'a, str>>,
}

/// An ack's one argument: the native ack's fields, or `error`.
#[derive(Default, Deserialize)]
struct AckBody<'a> {
    #[serde(borrow, default)]
    error: Option<Refusal<'a>>,
    #[serde(borrow, default)]
    event: Option<AckedEvent<'a>>,
}

/// The `error` of a refused request.
#[derive(Deserialize)]
struct Refusal<'a> {
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

impl Refusal<'_> {
    fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("?")
    }

    fn message(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

/// The first argument of ack `body` (its JSON array), none or `null` being an ack with no
/// fields (a `ping`'s); `Err` says why it cannot be read.
fn ack_body(body: &str) -> Result<AckBody<'_>, String> {
    let args: Vec<Option<AckBody<'_>>> =
        serde_json::from_str(body).map_err(|e| format!("unreadable ack `{body}`: {e}"))?;
    Ok(args.into_iter().next().flatten().unwrap_or_default())
}

/// Decodes a frame received during the run.
pub fn decode(text: &str, run: &str) -> Incoming {
    if text == socketio::PING {
        return Incoming::EnginePing;
    }
    if let Some((name, body)) = event_args::<Option<EventBody<'_>>>(text) {
        if name != "emergency_event" {
            return Incoming::Other;
        }
        return rallypoint::event_of(body.and_then(|b| b.comment).as_deref(), run);
    }
    let Some((id, body)) = ack_parts(text) else {
        return Incoming::Other;
    };
    let Some(n) = report_of_ack(id) else {
        return Incoming::Other;
    };
    match ack_body(body) {
        Ok(ack) => {
            let refusal = ack.error.as_ref().map(|e| (e.code(), e.message()));
            let action = ack.event.as_ref().and_then(|e| e.action_taken.as_deref());
            rallypoint::answer(n, refusal, action)
        }
        Err(why) => Incoming::Answer {
            n,
            refused: Some(why),
            order_lost: false,
        },
    }
}

/// The frame of report `n` on `order_id`.
pub fn report(n: u64, order_id: &str, kind: &str, run: &str) -> String {
    let body = rallypoint::report_body(n, order_id, kind, run);
    event("report", Some(socketio::report_ack(n)), &body)
}

/// Connects with the client's token as the auth object, waits for the `welcome` event, then
/// sends the role's set-up requests (`rallypoint::set_up_requests`), each waiting for its ack.
pub async fn set_up(ws: &mut Ws, spec: &ClientSpec, fleet: &str) -> Result<(), LoadgenError> {
    let client = spec.index;
    let auth = spec.token.as_ref().map(|token| json!({ "token": token }));
    socketio::connect(ws, client, auth.as_ref()).await?;
    wait_for(ws, client, "the `welcome` event", |text| {
        Ok(event_args::<serde::de::IgnoredAny>(text)
            .filter(|(name, _)| name == "welcome")
            .map(|_| ()))
    })
    .await?;
    for (name, payload) in rallypoint::set_up_requests(spec.role, fleet) {
        send_text(ws, client, event(name, Some(SETUP_ACK), &payload)).await?;
        let what = format!("the ack to `{name}`");
        wait_for(ws, client, &what, |text| match ack_parts(text) {
            Some((SETUP_ACK, body)) => match ack_body(body) {
                Ok(AckBody { error: None, .. }) => Ok(Some(())),
                Ok(AckBody { error: Some(e), .. }) => Err(LoadgenError::Refused {
                    client,
                    what: format!("`{name}`"),
                    answer: format!("{} {}", e.code(), e.message()),
                }),
                Err(why) => Err(LoadgenError::Refused {
                    client,
                    what: format!("`{name}`"),
                    answer: why,
                }),
            },
            _ => Ok(None),
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_of_this_run_names_its_report_past_the_offset() {
        let text = r#"42["emergency_event",{"event_id":"e1","comment":"lg ab12 17","room":"fleet:default","seq":3,"id":"m1"},"g1.fleet:default=3"]"#;
        assert_eq!(decode(text, "ab12"), Incoming::Event(17));
        assert_eq!(decode(text, "cd34"), Incoming::ForeignEvent);
        let without_offset = r#"42["emergency_event",{"comment":"lg ab12 4"}]"#;
        assert_eq!(decode(without_offset, "ab12"), Incoming::Event(4));
        assert_eq!(
            decode(r#"42["emergency_event",{"comment":null}]"#, "ab12"),
            Incoming::ForeignEvent
        );
    }

    #[test]
    fn other_events_and_engine_packets_are_not_events() {
        assert_eq!(decode("2", "r"), Incoming::EnginePing);
        assert_eq!(
            decode(r#"42["welcome",{"session_id":"s"}]"#, "r"),
            Incoming::Other
        );
        assert_eq!(
            decode(r#"42["connection:status",{"status":"connected"}]"#, "r"),
            Incoming::Other
        );
        assert_eq!(decode(r#"40{"sid":"x"}"#, "r"), Incoming::Other);
        assert_eq!(decode("42[not json", "r"), Incoming::Other);
    }

    #[test]
    fn a_report_is_the_native_report_as_an_event_with_its_ack_id() {
        let frame = report(7, "ORD-1", "traffic_jam", "run1");
        let args = frame.strip_prefix("428").expect(&frame);
        let args: serde_json::Value = serde_json::from_str(args).unwrap();
        assert_eq!(
            args,
            json!(["report", {"order_id": "ORD-1", "kind": "traffic_jam", "comment": "lg run1 7"}])
        );
        assert_eq!(
            decode(
                &format!("438[{}]", json!({"event": {"action_taken": "MAINTAIN"}})),
                "run1"
            ),
            Incoming::Answer {
                n: 7,
                refused: None,
                order_lost: false
            }
        );
    }

    #[test]
    fn an_ack_decided_otherwise_takes_the_order_away() {
        let text = r#"436[{"event":{"action_taken":"REASSIGNMENT_INITIATED","risk_score":0.9}}]"#;
        assert!(matches!(
            decode(text, "x"),
            Incoming::Answer {
                n: 5,
                refused: None,
                order_lost: true
            }
        ));
    }

    #[test]
    fn a_refused_report_carries_the_code_and_message() {
        let text = r#"4310[{"error":{"code":"conflict","message":"order ORD-1 is pending"}}]"#;
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
    fn an_unreadable_ack_is_a_refusal_an_empty_one_an_ack_and_a_set_up_ack_no_report() {
        assert!(matches!(
            decode("433[null]", "x"),
            Incoming::Answer {
                n: 2,
                refused: None,
                ..
            }
        ));
        assert!(matches!(
            decode("433{}", "x"),
            Incoming::Answer {
                n: 2,
                refused: Some(_),
                ..
            }
        ));
        assert!(matches!(
            decode("433[{\"error\":\"a string\"}]", "x"),
            Incoming::Answer {
                n: 2,
                refused: Some(_),
                ..
            }
        ));
        assert_eq!(decode("430[{}]", "x"), Incoming::Other);
    }
}
