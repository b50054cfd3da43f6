//! What the server sends: `ServerMsg`, tagged by `"type"`.
//!
//! Room messages are serialized once with their envelope (`room`, `seq`, `id`) by
//! `server::envelope`, and the same text goes to every recipient.

use super::types::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One presence change in a `presence` batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PresenceChange {
    pub driver_id: DriverId,
    pub name: String,
    pub status: DriverStatus,
}

/// One driver's position in a `locations` batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriverLocation {
    pub driver_id: DriverId,
    pub lat: f64,
    pub lng: f64,
    pub speed: Option<f64>,
    pub heading: Option<f64>,
    pub timestamp: DateTime<Utc>,
}

/// What happened to an emergency: `emergency_update` and `emergency_updated`'s `data` (SPEC 9).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmergencyChange {
    pub action: EmergencyAction,
    pub emergency: Emergency,
    /// The unit dispatched, completing or freed; absent at creation and for a cancel with none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
}

/// A unit's new status: `unit_status_update`'s `data` (SPEC 9).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitStatusChange {
    pub unit_id: DriverId,
    pub status: UnitStatus,
    pub emergency_id: String,
}

/// A server message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome {
        session_id: SessionId,
        sub: String,
        role: Role,
        driver_id: Option<DriverId>,
        fleet: String,
        heartbeat_ms: u64,
        server_time: DateTime<Utc>,
        rooms: BTreeMap<String, i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<DriverStatus>,
        #[serde(skip_serializing_if = "Option::is_none")]
        orders: Option<Vec<Order>>,
    },
    Joined {
        room: String,
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    },
    Ack {
        #[serde(rename = "ref")]
        reference: String,
        #[serde(flatten)]
        body: serde_json::Map<String, serde_json::Value>,
    },
    Error {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        code: crate::error::ErrorCode,
        message: String,
    },
    Pong,
    Resync {
        room: String,
    },
    /// The session was taken out of `room` by the server (never after the client's own `leave`).
    Left {
        room: String,
        reason: LeftReason,
    },
    DriverStatus {
        driver_id: DriverId,
        name: String,
        status: DriverStatus,
        timestamp: DateTime<Utc>,
    },
    Presence {
        fleet: String,
        online: usize,
        changes: Vec<PresenceChange>,
        #[serde(skip_serializing_if = "Option::is_none")]
        truncated: Option<usize>,
    },
    EmergencyEvent(EmergencyEvent),
    OrderAssigned {
        order_id: OrderId,
        driver_id: DriverId,
        previous_driver_id: Option<DriverId>,
        reason: AssignReason,
        event_id: Option<EventId>,
        order: Order,
    },
    OrderUnassigned {
        order_id: OrderId,
        driver_id: DriverId,
        reason: AssignReason,
        event_id: Option<EventId>,
    },
    OrderUpdated {
        order_id: OrderId,
        status: OrderStatus,
        driver_id: Option<DriverId>,
        version: i64,
        eta: Option<DateTime<Utc>>,
        timestamp: DateTime<Utc>,
    },
    Locations {
        drivers: Vec<DriverLocation>,
    },
    /// Where a customer's courier is (SPEC 10): to `customer:<id>`, ephemeral, at most once per
    /// `realtime.location_flush_ms`, while the order is with its driver.
    CourierLocation {
        order_id: OrderId,
        lat: f64,
        lng: f64,
        speed: Option<f64>,
        heading: Option<f64>,
        timestamp: DateTime<Utc>,
    },
    /// A driver's SOS (SPEC 10), to `dispatch` and its fleet.
    EmergencyAlert {
        alert_id: String,
        driver_id: DriverId,
        lat: f64,
        lng: f64,
        message: Option<String>,
        timestamp: DateTime<Utc>,
    },
    /// An SOS resolved by staff, to the same rooms as its alert.
    EmergencyAlertResolved {
        alert_id: String,
        driver_id: DriverId,
        resolved_by: String,
        timestamp: DateTime<Utc>,
    },
    /// A new emergency (SPEC 9; its payload in `data`, as every emergency message's).
    EmergencyCreated {
        data: Emergency,
    },
    /// `{action:"created", emergency}` to `unit_tracking`, beside `emergency_created`.
    EmergencyUpdate {
        data: EmergencyChange,
    },
    /// An emergency assigned, completed or cancelled, with its unit.
    EmergencyUpdated {
        data: EmergencyChange,
    },
    /// A unit dispatched or freed.
    UnitStatusUpdate {
        data: UnitStatusChange,
    },
    /// To the unit's own `driver:<id>`: the emergency it is dispatched to.
    EmergencyAssigned {
        data: Emergency,
    },
    /// A zone over its threshold (SPEC 8), to `event:<id>`.
    #[serde(rename = "alert:new")]
    AlertNew {
        data: super::crowd::Alert,
    },
    /// An alert raised to `critical` or resolved.
    #[serde(rename = "alert:updated")]
    AlertUpdated {
        data: super::crowd::Alert,
    },
    /// The event's live map (ephemeral).
    #[serde(rename = "map:update")]
    MapUpdate {
        data: super::crowd::CrowdMap,
    },
    /// An operator's action.
    #[serde(rename = "action:created")]
    ActionCreated {
        data: super::crowd::Action,
    },
    /// A report from the field.
    #[serde(rename = "report:new")]
    ReportNew {
        data: super::crowd::Report,
    },
    /// The event's risk insight (ephemeral).
    #[serde(rename = "insight:update")]
    InsightUpdate {
        data: super::crowd::Insight,
    },
    /// The event's zones' predicted risk (ephemeral).
    #[serde(rename = "prediction:update")]
    PredictionUpdate {
        data: super::crowd::Prediction,
    },
    /// A message of a type of the publisher's own (`POST /api/v1/rooms/{room}/messages`):
    /// `{"type","data"}`, its `type` the publisher's, never one of `SERVER_TYPES`.
    #[serde(untagged)]
    Custom(CustomMsg),
}

/// The body of a `ServerMsg::Custom`: serialized as `{"type": kind, "data": data}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomMsg {
    #[serde(rename = "type")]
    pub kind: String,
    pub data: serde_json::Value,
}

/// The event names Socket.IO keeps for itself (`socket.io-parser`'s `RESERVED_EVENTS`): an EVENT
/// named so is invalid, an event by one of them never reaches a socket.io-client listener as a
/// message, so nothing is published under one (SPEC 11).
pub const SOCKET_IO_RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The `type` of every message the engine itself sends: a custom message may not take one.
pub const SERVER_TYPES: [&str; 29] = [
    "welcome",
    "joined",
    "ack",
    "error",
    "pong",
    "resync",
    "left",
    "driver_status",
    "presence",
    "emergency_event",
    "order_assigned",
    "order_unassigned",
    "order_updated",
    "locations",
    "courier_location",
    "emergency_alert",
    "emergency_alert_resolved",
    "emergency_created",
    "emergency_update",
    "emergency_updated",
    "unit_status_update",
    "emergency_assigned",
    "alert:new",
    "alert:updated",
    "map:update",
    "action:created",
    "report:new",
    "insight:update",
    "prediction:update",
];

/// The engine's own types whose payload is their `data` (SPEC 8, 9): over Socket.IO their
/// event's payload is that `data`, as a custom message's.
pub const DATA_TYPES: [&str; 12] = [
    "emergency_created",
    "emergency_update",
    "emergency_updated",
    "unit_status_update",
    "emergency_assigned",
    "alert:new",
    "alert:updated",
    "map:update",
    "action:created",
    "report:new",
    "insight:update",
    "prediction:update",
];

impl ServerMsg {
    /// The message's `type`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMsg::Welcome { .. } => "welcome",
            ServerMsg::Joined { .. } => "joined",
            ServerMsg::Ack { .. } => "ack",
            ServerMsg::Error { .. } => "error",
            ServerMsg::Pong => "pong",
            ServerMsg::Resync { .. } => "resync",
            ServerMsg::Left { .. } => "left",
            ServerMsg::DriverStatus { .. } => "driver_status",
            ServerMsg::Presence { .. } => "presence",
            ServerMsg::EmergencyEvent(_) => "emergency_event",
            ServerMsg::OrderAssigned { .. } => "order_assigned",
            ServerMsg::OrderUnassigned { .. } => "order_unassigned",
            ServerMsg::OrderUpdated { .. } => "order_updated",
            ServerMsg::Locations { .. } => "locations",
            ServerMsg::CourierLocation { .. } => "courier_location",
            ServerMsg::EmergencyAlert { .. } => "emergency_alert",
            ServerMsg::EmergencyAlertResolved { .. } => "emergency_alert_resolved",
            ServerMsg::EmergencyCreated { .. } => "emergency_created",
            ServerMsg::EmergencyUpdate { .. } => "emergency_update",
            ServerMsg::EmergencyUpdated { .. } => "emergency_updated",
            ServerMsg::UnitStatusUpdate { .. } => "unit_status_update",
            ServerMsg::EmergencyAssigned { .. } => "emergency_assigned",
            ServerMsg::AlertNew { .. } => "alert:new",
            ServerMsg::AlertUpdated { .. } => "alert:updated",
            ServerMsg::MapUpdate { .. } => "map:update",
            ServerMsg::ActionCreated { .. } => "action:created",
            ServerMsg::ReportNew { .. } => "report:new",
            ServerMsg::InsightUpdate { .. } => "insight:update",
            ServerMsg::PredictionUpdate { .. } => "prediction:update",
            // A fixed label: the publisher's types would be unbounded metric labels.
            ServerMsg::Custom(_) => "custom",
        }
    }

    /// Serializes a message for one session. Our types always serialize; the fallback keeps a
    /// session alive even if one ever did not.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            log::error!("[WEBSOCKET] could not serialize {}: {e}", self.kind());
            r#"{"type":"error","code":"internal","message":"could not encode a message"}"#
                .to_string()
        })
    }

    /// An `ack` for `reference` with `body`'s fields beside `type` and `ref`.
    pub fn ack(reference: String, body: serde_json::Value) -> ServerMsg {
        let body = match body {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("result".into(), other);
                map
            }
        };
        ServerMsg::Ack { reference, body }
    }

    /// The `error` frame for an application error.
    pub fn error(reference: Option<String>, e: &crate::error::AppError) -> ServerMsg {
        ServerMsg::Error {
            reference,
            code: e.code(),
            message: e.client_message(),
        }
    }
}

/// The `type` of a stored message's text (a metrics label): one of `SERVER_TYPES`, `custom` for
/// a publisher's own type (as `ServerMsg::kind`), `unknown` if it has no `type` at all.
pub fn frame_type(text: &str) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }

    serde_json::from_str::<Typed>(text)
        .ok()
        .map(|t| {
            SERVER_TYPES
                .iter()
                .find(|k| **k == t.kind)
                .copied()
                .unwrap_or("custom")
        })
        .unwrap_or("unknown")
}

/// Serializes a room message once with its envelope: `room`, `seq` and `id` beside its fields.
pub fn envelope(msg: &ServerMsg, room: &str, seq: Option<i64>, id: &str) -> String {
    Encoded::new(msg).envelope(room, seq, id)
}

/// A room message serialized once, without its envelope. Each room's copy of a publication is
/// this text with that copy's `room`, `seq` and `id` spliced in after the message's own fields,
/// so a publication to several rooms encodes its body once. Room messages have no `room`, `seq`
/// or `id` fields of their own (the envelope's would repeat them).
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The message's JSON object without its closing brace.
    open: String,
}

impl Encoded {
    pub fn new(msg: &ServerMsg) -> Encoded {
        let mut open = msg.to_text();
        // `to_text` always writes one JSON object.
        open.pop();
        Encoded { open }
    }

    /// The text of the copy for `room`: the message with `room`, `seq` (when given) and `id`.
    pub fn envelope(&self, room: &str, seq: Option<i64>, id: &str) -> String {
        let mut text = String::with_capacity(self.open.len() + room.len() + id.len() + 40);
        text.push_str(&self.open);
        if !self.open.ends_with('{') {
            text.push(',');
        }
        text.push_str("\"room\":");
        push_json_str(&mut text, room);
        if let Some(seq) = seq {
            text.push_str(",\"seq\":");
            text.push_str(&seq.to_string());
        }
        text.push_str(",\"id\":");
        push_json_str(&mut text, id);
        text.push('}');
        text
    }
}

/// Appends `s` as a JSON string (quoted and escaped).
fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        // A `&str` always serializes; kept total rather than panicking.
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_carries_its_ref_and_body_fields() {
        let text = ServerMsg::ack("r9".into(), serde_json::json!({"status":"online"})).to_text();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"ack","ref":"r9","status":"online"})
        );
    }

    fn status() -> ServerMsg {
        ServerMsg::DriverStatus {
            driver_id: DriverId("DRV-1".into()),
            name: "Ann \"A\"".into(),
            status: DriverStatus::Online,
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn a_room_message_carries_room_seq_and_id() {
        let v: serde_json::Value =
            serde_json::from_str(&envelope(&status(), "fleet:default", Some(7), "e1")).unwrap();
        assert_eq!(v["room"], "fleet:default");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["id"], "e1");
        assert_eq!(v["type"], "driver_status");
        assert_eq!(v["name"], "Ann \"A\"");
    }

    #[test]
    fn one_encoding_makes_each_rooms_copy_with_the_same_fields() {
        let msg = status();
        let body = Encoded::new(&msg);
        let mut expected = serde_json::to_value(&msg).unwrap();
        for (room, seq) in [("dispatch", 3), ("order:\"x\"", 41)] {
            let v: serde_json::Value =
                serde_json::from_str(&body.envelope(room, Some(seq), "id-1")).unwrap();
            expected["room"] = room.into();
            expected["seq"] = seq.into();
            expected["id"] = "id-1".into();
            assert_eq!(v, expected);
        }
    }

    #[test]
    fn a_custom_message_carries_its_type_data_and_envelope() {
        let msg = ServerMsg::Custom(CustomMsg {
            kind: "crowd:alert".into(),
            data: serde_json::json!({"zone": "A", "type": "inner", "n": [1, 2]}),
        });
        assert_eq!(msg.kind(), "custom");
        let v: serde_json::Value =
            serde_json::from_str(&envelope(&msg, "dispatch", Some(4), "i")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "crowd:alert",
                "data": {"zone": "A", "type": "inner", "n": [1, 2]},
                "room": "dispatch", "seq": 4, "id": "i"
            })
        );
        let empty = ServerMsg::Custom(CustomMsg {
            kind: "x".into(),
            data: serde_json::Value::Null,
        });
        assert_eq!(empty.to_text(), r#"{"type":"x","data":null}"#);
    }

    #[test]
    fn a_copy_without_seq_has_room_and_id_only() {
        let v: serde_json::Value =
            serde_json::from_str(&Encoded::new(&ServerMsg::Pong).envelope("dispatch", None, "i"))
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"pong","room":"dispatch","id":"i"})
        );
    }
}
