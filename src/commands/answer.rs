//! What a command answers: its raw value, and the shape a socket's ack gives it.

use super::Reply;
use crate::error::AppError;

/// A command's answer: `value` is what REST returns and what is stored under the key; `shape`
/// makes a socket's ack from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: serde_json::Value,
    pub shape: AckShape,
}

impl Answer {
    /// The body of a socket's ack.
    pub fn ack(self) -> serde_json::Value {
        self.shape.ack(self.value)
    }
}

/// How an ack is made from a work's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckShape {
    /// `{"event": value}` (a report: the value is the `emergency_event`).
    Event,
    /// `{"order": value}`.
    Order,
    /// `{"alert": value}` (an SOS: the value is the stored alert).
    Alert,
    /// `{"emergency": value}` (a `complete_emergency`).
    Emergency,
    /// `{"order_id", "status"}` of the order (a decline).
    Declined,
    /// `{"status": value}`.
    Status,
    /// The value itself.
    Plain,
}

impl AckShape {
    /// The ack's body for `value`, a first answer's or a stored one's.
    pub fn ack(self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::json;
        match self {
            AckShape::Event => json!({ "event": value }),
            AckShape::Order => json!({ "order": value }),
            AckShape::Alert => json!({ "alert": value }),
            AckShape::Emergency => json!({ "emergency": value }),
            // An answer stored before v1.1 is already the ack.
            AckShape::Declined if value.get("order_id").is_some() => value,
            AckShape::Declined => json!({"order_id": value["id"], "status": value["status"]}),
            AckShape::Status if value.get("status").is_some() => value,
            AckShape::Status => json!({ "status": value }),
            AckShape::Plain => value,
        }
    }
}

/// A work's value as JSON.
pub fn to_value<T: serde::Serialize>(v: &T) -> Reply {
    serde_json::to_value(v).map_err(|e| AppError::internal(format!("encoding an answer: {e}")))
}
