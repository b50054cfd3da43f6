//! What clients send: `ClientMsg`, and `ClientFrame::decode`, which turns any text into either a
//! typed message with its `ref` and `idempotency_key`, or a SPEC error (never a panic).

use super::types::{AvailabilityStatus, DeliveryStatus, DriverId, IncidentKind, OrderId};
use crate::error::AppError;
use serde::Deserialize;

/// Longest `ref` or `idempotency_key` accepted.
pub const MAX_REF_LEN: usize = 64;
/// Longest `comment` on a report.
pub const MAX_COMMENT_LEN: usize = 1000;
/// Longest `message` on an SOS.
pub const MAX_SOS_MESSAGE_LEN: usize = 500;

/// A client message, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Join {
        room: String,
        #[serde(default)]
        since: Option<i64>,
    },
    Leave {
        room: String,
    },
    Status {
        status: AvailabilityStatus,
        /// Optional; when present it must be the sender's own driver id.
        #[serde(default)]
        driver_id: Option<DriverId>,
    },
    Location {
        lat: f64,
        lng: f64,
        #[serde(default)]
        speed: Option<f64>,
        #[serde(default)]
        heading: Option<f64>,
        #[serde(default)]
        accuracy: Option<f64>,
        /// Optional; when present it must be the sender's own driver id.
        #[serde(default)]
        driver_id: Option<DriverId>,
    },
    Accept {
        order_id: OrderId,
    },
    Decline {
        order_id: OrderId,
    },
    OrderStatus {
        order_id: OrderId,
        status: DeliveryStatus,
    },
    Report {
        order_id: OrderId,
        kind: IncidentKind,
        #[serde(default)]
        comment: Option<String>,
    },
    /// A driver's SOS without an order (SPEC 10).
    Sos {
        lat: f64,
        lng: f64,
        #[serde(default)]
        message: Option<String>,
    },
    /// The assigned unit ends its emergency (SPEC 9).
    CompleteEmergency {
        request_id: String,
    },
    /// A device's position at a crowd event (SPEC 8).
    PingLocation {
        event_id: String,
        device_id: String,
        lat: f64,
        lng: f64,
    },
    Ping,
    Refresh {
        token: String,
    },
}

impl ClientMsg {
    /// The message's `type`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMsg::Join { .. } => "join",
            ClientMsg::Leave { .. } => "leave",
            ClientMsg::Status { .. } => "status",
            ClientMsg::Location { .. } => "location",
            ClientMsg::Accept { .. } => "accept",
            ClientMsg::Decline { .. } => "decline",
            ClientMsg::OrderStatus { .. } => "order_status",
            ClientMsg::Report { .. } => "report",
            ClientMsg::Sos { .. } => "sos",
            ClientMsg::CompleteEmergency { .. } => "complete_emergency",
            ClientMsg::PingLocation { .. } => "ping_location",
            ClientMsg::Ping => "ping",
            ClientMsg::Refresh { .. } => "refresh",
        }
    }

    /// Whether the message changes state, and so may carry an idempotency key.
    pub fn is_state_changing(&self) -> bool {
        matches!(
            self,
            ClientMsg::Status { .. }
                | ClientMsg::Accept { .. }
                | ClientMsg::Decline { .. }
                | ClientMsg::OrderStatus { .. }
                | ClientMsg::Report { .. }
                | ClientMsg::Sos { .. }
                | ClientMsg::CompleteEmergency { .. }
                | ClientMsg::PingLocation { .. }
        )
    }
}

/// The known message types, for the error that names an unknown one.
const TYPE_NAMES: [&str; 13] = [
    "join",
    "leave",
    "status",
    "location",
    "accept",
    "decline",
    "order_status",
    "report",
    "sos",
    "complete_emergency",
    "ping_location",
    "ping",
    "refresh",
];

/// A decoded frame: the message and its envelope fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub msg: ClientMsg,
    pub reference: Option<String>,
    pub idempotency_key: Option<String>,
}

/// A frame that could not be decoded: the error, and the `ref` when one could be read.
#[derive(Debug)]
pub struct DecodeError {
    pub reference: Option<String>,
    pub error: AppError,
}

impl ClientFrame {
    /// Decodes one text frame. Every failure is `bad_request` with a message saying what was wrong.
    pub fn decode(text: &str) -> Result<ClientFrame, DecodeError> {
        let fail = |reference: Option<String>, msg: String| DecodeError {
            reference,
            error: AppError::BadRequest(msg),
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| fail(None, format!("the frame is not valid JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(fail(
                None,
                "a frame must be one JSON object with a \"type\"".into(),
            ));
        };
        ClientFrame::from_map(map)
    }

    /// Decodes a message already read as a JSON object (a Socket.IO event's, `socketio::names`),
    /// by the same rules as a frame.
    pub fn from_map(
        mut map: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ClientFrame, DecodeError> {
        let fail = |reference: Option<String>, msg: String| DecodeError {
            reference,
            error: AppError::BadRequest(msg),
        };
        let reference = match map.remove("ref") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(r)) if r.len() <= MAX_REF_LEN => Some(r),
            Some(serde_json::Value::String(_)) => {
                return Err(fail(
                    None,
                    format!("`ref` is longer than {MAX_REF_LEN} characters"),
                ))
            }
            Some(_) => return Err(fail(None, "`ref` must be a string".into())),
        };
        let idempotency_key = match map.remove("idempotency_key") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(k)) if !k.is_empty() && k.len() <= MAX_REF_LEN => {
                Some(k)
            }
            Some(_) => {
                return Err(fail(
                    reference,
                    format!("`idempotency_key` must be a string of 1 to {MAX_REF_LEN} characters"),
                ))
            }
        };
        match map.get("type") {
            Some(serde_json::Value::String(t)) if TYPE_NAMES.contains(&t.as_str()) => {}
            Some(serde_json::Value::String(t)) => {
                return Err(fail(
                    reference,
                    format!(
                        "unknown message type `{t}`; expected one of: {}",
                        TYPE_NAMES.join(", ")
                    ),
                ))
            }
            Some(_) => return Err(fail(reference, "`type` must be a string".into())),
            None => {
                return Err(fail(
                    reference,
                    format!(
                        "the frame has no \"type\"; expected one of: {}",
                        TYPE_NAMES.join(", ")
                    ),
                ))
            }
        }
        // The type is known (checked above), so serde's "unknown variant" here is a field's value,
        // e.g. `"status":"busy"`, not the message type.
        let msg: ClientMsg = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| fail(reference.clone(), format!("invalid message: {e}")))?;
        validate(&msg).map_err(|error| DecodeError {
            reference: reference.clone(),
            error,
        })?;
        if idempotency_key.is_some() && !msg.is_state_changing() {
            return Err(fail(
                reference,
                format!("`{}` does not take an idempotency_key", msg.kind()),
            ));
        }
        Ok(ClientFrame {
            msg,
            reference,
            idempotency_key,
        })
    }
}

/// Checks what types alone cannot: ranges and lengths. The rules are the `check_*` functions
/// below, which the command layer applies too, for transports that do not decode through here.
fn validate(msg: &ClientMsg) -> Result<(), AppError> {
    match msg {
        ClientMsg::Location {
            lat,
            lng,
            speed,
            heading,
            accuracy,
            ..
        } => check_location(*lat, *lng, *speed, *heading, *accuracy),
        ClientMsg::Report { comment, .. } => check_comment(comment.as_deref()),
        ClientMsg::Sos { lat, lng, message } => check_sos(*lat, *lng, message.as_deref()),
        ClientMsg::PingLocation { lat, lng, .. } => check_location(*lat, *lng, None, None, None),
        ClientMsg::Join { room, since } => {
            check_room_name(room)?;
            check_since(*since)
        }
        ClientMsg::Leave { room } => check_room_name(room),
        _ => Ok(()),
    }
}

/// A position's ranges: `lat` in [-90, 90], `lng` in [-180, 180], `speed`, `heading` and
/// `accuracy` non-negative, `heading` at most 360.
pub fn check_location(
    lat: f64,
    lng: f64,
    speed: Option<f64>,
    heading: Option<f64>,
    accuracy: Option<f64>,
) -> Result<(), AppError> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(AppError::bad_request("`lat` must be between -90 and 90"));
    }
    if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
        return Err(AppError::bad_request("`lng` must be between -180 and 180"));
    }
    for (name, v) in [
        ("speed", speed),
        ("heading", heading),
        ("accuracy", accuracy),
    ] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 {
                return Err(AppError::bad_request(format!(
                    "`{name}` must be a non-negative number"
                )));
            }
        }
    }
    if heading.is_some_and(|h| h > 360.0) {
        return Err(AppError::bad_request("`heading` must be between 0 and 360"));
    }
    Ok(())
}

/// A report's `comment`: at most `MAX_COMMENT_LEN` characters.
pub fn check_comment(comment: Option<&str>) -> Result<(), AppError> {
    match comment {
        Some(c) if c.chars().count() > MAX_COMMENT_LEN => Err(AppError::bad_request(format!(
            "`comment` is longer than {MAX_COMMENT_LEN} characters"
        ))),
        _ => Ok(()),
    }
}

/// An SOS: its position by `check_location`'s ranges, its `message` at most
/// `MAX_SOS_MESSAGE_LEN` characters.
pub fn check_sos(lat: f64, lng: f64, message: Option<&str>) -> Result<(), AppError> {
    check_location(lat, lng, None, None, None)?;
    match message {
        Some(m) if m.chars().count() > MAX_SOS_MESSAGE_LEN => Err(AppError::bad_request(format!(
            "`message` is longer than {MAX_SOS_MESSAGE_LEN} characters"
        ))),
        _ => Ok(()),
    }
}

/// A `room` as a client names it: at most 200 bytes (what it names is `Room::parse`'s).
pub fn check_room_name(room: &str) -> Result<(), AppError> {
    if room.len() > 200 {
        return Err(AppError::bad_request("`room` is too long"));
    }
    Ok(())
}

/// A `since`: 0 or more.
pub fn check_since(since: Option<i64>) -> Result<(), AppError> {
    match since {
        Some(s) if s < 0 => Err(AppError::bad_request("`since` must be 0 or more")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn code_of(text: &str) -> ErrorCode {
        ClientFrame::decode(text).unwrap_err().error.code()
    }

    #[test]
    fn a_report_decodes_with_its_ref_and_key() {
        let f = ClientFrame::decode(
            r#"{"type":"report","ref":"r1","idempotency_key":"k1","order_id":"ORD-1","kind":"accident"}"#,
        )
        .unwrap();
        assert_eq!(f.reference.as_deref(), Some("r1"));
        assert_eq!(f.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(
            f.msg,
            ClientMsg::Report {
                order_id: OrderId("ORD-1".into()),
                kind: IncidentKind::Accident,
                comment: None
            }
        );
    }

    #[test]
    fn non_json_unknown_type_missing_and_mistyped_fields_are_bad_requests() {
        assert_eq!(code_of("not json"), ErrorCode::BadRequest);
        assert_eq!(code_of("[1,2]"), ErrorCode::BadRequest);
        assert_eq!(code_of(r#"{"type":"fly"}"#), ErrorCode::BadRequest);
        assert_eq!(code_of(r#"{"type":"accept"}"#), ErrorCode::BadRequest);
        assert_eq!(
            code_of(r#"{"type":"location","lat":"x","lng":1}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"location","lat":91,"lng":1}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"status","status":"asleep"}"#),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn the_ref_is_kept_when_the_message_is_bad() {
        let e = ClientFrame::decode(r#"{"type":"accept","ref":"abc"}"#).unwrap_err();
        assert_eq!(e.reference.as_deref(), Some("abc"));
        assert!(e.error.to_string().contains("order_id"), "{}", e.error);
    }

    #[test]
    fn an_sos_takes_a_key_and_is_checked_like_a_location() {
        let f = ClientFrame::decode(
            r#"{"type":"sos","idempotency_key":"k","lat":48.85,"lng":2.35,"message":"help"}"#,
        )
        .unwrap();
        assert_eq!(f.idempotency_key.as_deref(), Some("k"));
        assert_eq!(
            f.msg,
            ClientMsg::Sos {
                lat: 48.85,
                lng: 2.35,
                message: Some("help".into())
            }
        );
        assert!(ClientFrame::decode(r#"{"type":"sos","lat":1,"lng":2}"#).is_ok());
        assert_eq!(
            code_of(r#"{"type":"sos","lat":-91,"lng":2}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code_of(r#"{"type":"sos","lat":1,"lng":181}"#),
            ErrorCode::BadRequest
        );
        let long = "x".repeat(MAX_SOS_MESSAGE_LEN + 1);
        let text = format!(r#"{{"type":"sos","lat":1,"lng":2,"message":"{long}"}}"#);
        assert_eq!(code_of(&text), ErrorCode::BadRequest);
    }

    #[test]
    fn an_overlong_ref_is_refused() {
        let long = "x".repeat(65);
        let text = format!(r#"{{"type":"ping","ref":"{long}"}}"#);
        assert_eq!(code_of(&text), ErrorCode::BadRequest);
    }
}
