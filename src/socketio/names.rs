//! SPEC 11's event names, both ways, pure: a client event is read as the native client message
//! it stands for, and a native server frame is written as the Socket.IO events it is.
//!
//! Client to server: an event named like a native client message type (`status`, `location`,
//! `report`, ...) carries that message without its `type` as its one argument; the frontends'
//! own names are translated: `driver:locationUpdate` `{driverId, location:{lat, lng, accuracy,
//! speed?, heading?}, timestamp}` is a `location`, `shipment:statusUpdate` `{shipmentId,
//! status}` an `order_status`. The result is the native message's JSON object, which the native
//! decoder (`ClientFrame::from_map`) checks by the same rules as a `/ws` frame.
//!
//! Server to client: every server message is an event named by its `type`, its payload the
//! message without `type` (a custom message's payload, and an emergency message's of SPEC 9, is
//! its `data`); beside our own names the aliases the frontends listen for: `assignment:new`
//! beside `order_assigned`,
//! `shipment:statusUpdated` `{shipmentId, status}` beside `order_updated`, and
//! `driver:locationUpdated` `{driverId, location, timestamp}` once per driver of a `locations`
//! batch (or once with the array, `LocationEvents::Batch`).

use crate::config::LocationEvents;
use crate::protocol::server::{DATA_TYPES, SERVER_TYPES};
use serde_json::{json, Map, Value};

/// Why a client event is no client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event `{0}` needs one JSON object as its argument")]
    NotAnObject(String),
    #[error("`{name}` needs `{field}`")]
    Missing { name: String, field: &'static str },
}

/// The native client message (a JSON object with its `type`) that event `name` with `args`
/// stands for. Its fields are not checked here: the native decoder does that.
pub fn client_message(name: &str, args: &[Value]) -> Result<Map<String, Value>, EventError> {
    let mut body = match args.first() {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(EventError::NotAnObject(name.to_string())),
    };
    // The ack id answers the event; a `ref` would make a second, native answer.
    body.remove("ref");
    let (kind, body) = match name {
        "driver:locationUpdate" => ("location", location_update(name, body)?),
        "shipment:statusUpdate" => ("order_status", status_update(name, body)?),
        _ => (name, body),
    };
    let mut msg = Map::with_capacity(body.len() + 1);
    msg.insert("type".into(), Value::from(kind));
    for (k, v) in body {
        if k != "type" {
            msg.insert(k, v);
        }
    }
    Ok(msg)
}

/// `{driverId, location:{lat, lng, accuracy, speed?, heading?}, timestamp}` as a `location`'s
/// fields (the client's `timestamp` is not kept: the server stamps what it receives).
fn location_update(
    name: &str,
    mut body: Map<String, Value>,
) -> Result<Map<String, Value>, EventError> {
    let Some(Value::Object(location)) = body.remove("location") else {
        return Err(missing(name, "location"));
    };
    let mut out = Map::new();
    for key in ["lat", "lng", "accuracy", "speed", "heading"] {
        if let Some(v) = location.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(d) = body.remove("driverId").filter(|v| !v.is_null()) {
        out.insert("driver_id".into(), d);
    }
    Ok(keep_key(body, out))
}

fn missing(name: &str, field: &'static str) -> EventError {
    EventError::Missing {
        name: name.to_string(),
        field,
    }
}

/// `out` with the event's `idempotency_key`, if it had one.
fn keep_key(mut body: Map<String, Value>, mut out: Map<String, Value>) -> Map<String, Value> {
    if let Some(k) = body.remove("idempotency_key") {
        out.insert("idempotency_key".into(), k);
    }
    out
}

/// `{shipmentId, status}` as an `order_status`'s fields. Those frontends write statuses in
/// capitals (`PICKED_UP`, `IN_TRANSIT`, `DELIVERED`): read case-blind, `in_transit` being
/// `out_for_delivery`.
fn status_update(
    name: &str,
    mut body: Map<String, Value>,
) -> Result<Map<String, Value>, EventError> {
    let id = body
        .remove("shipmentId")
        .ok_or_else(|| missing(name, "shipmentId"))?;
    let status = match body.remove("status") {
        Some(Value::String(s)) => {
            let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
            Value::from(if s == "in_transit" {
                "out_for_delivery".to_string()
            } else {
                s
            })
        }
        Some(other) => other,
        None => return Err(missing(name, "status")),
    };
    let mut out = Map::new();
    out.insert("order_id".into(), id);
    out.insert("status".into(), status);
    Ok(keep_key(body, out))
}

/// A native server frame read for Socket.IO: what it is, where it stands, and its events.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEvents {
    /// The native `type`.
    pub kind: String,
    /// The room and seq of a room message (`None`: ephemeral, or the session's own).
    pub position: Option<(String, i64)>,
    /// The publication's id: every room's copy of one publication carries the same.
    pub id: Option<String>,
    /// The room a `left` or `resync` names.
    pub room: Option<String>,
    /// Each event: its name and its one argument, serialized.
    pub events: Vec<(String, String)>,
}

/// Reads a native server frame (one JSON object with a `type`) as Socket.IO events. `None` when
/// the frame is no such object (never for frames the engine writes).
pub fn server_events(frame: &str, locations: LocationEvents) -> Option<ServerEvents> {
    let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(frame) else {
        return None;
    };
    let Some(Value::String(kind)) = msg.remove("type") else {
        return None;
    };
    // A room message has a room, a seq and a publication id; `joined` has a room and a seq but
    // is the session's own.
    let position = match (msg.get("room"), msg.get("seq"), msg.get("id")) {
        (Some(Value::String(room)), Some(Value::Number(seq)), Some(Value::String(_))) => {
            seq.as_i64().map(|s| (room.clone(), s))
        }
        _ => None,
    };
    let id = msg.get("id").and_then(Value::as_str).map(str::to_string);
    let room = match kind.as_str() {
        "left" | "resync" | "joined" => msg.get("room").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let mut events = Vec::with_capacity(2);
    match kind.as_str() {
        "locations" => {
            let drivers = msg.get("drivers").and_then(Value::as_array).cloned();
            let each: Vec<Value> = drivers.iter().flatten().map(driver_location).collect();
            events.push((kind.clone(), Value::Object(msg).to_string()));
            match locations {
                LocationEvents::PerDriver => {
                    for d in each {
                        events.push(("driver:locationUpdated".into(), d.to_string()));
                    }
                }
                LocationEvents::Batch => events.push((
                    "driver:locationUpdated".into(),
                    Value::from(each).to_string(),
                )),
            }
        }
        "order_assigned" => {
            let payload = Value::Object(msg).to_string();
            events.push((kind.clone(), payload.clone()));
            events.push(("assignment:new".into(), payload));
        }
        "order_updated" => {
            let alias = json!({"shipmentId": msg.get("order_id"), "status": msg.get("status")});
            events.push((kind.clone(), Value::Object(msg).to_string()));
            events.push(("shipment:statusUpdated".into(), alias.to_string()));
        }
        k if !SERVER_TYPES.contains(&k) || DATA_TYPES.contains(&k) => {
            // A publisher's own type, or one of sections 8 and 9: its payload is its `data`
            // (SPEC 11).
            let data = msg.remove("data").unwrap_or(Value::Null);
            events.push((kind.clone(), data.to_string()));
        }
        _ => events.push((kind.clone(), Value::Object(msg).to_string())),
    }
    Some(ServerEvents {
        kind,
        position,
        id,
        room,
        events,
    })
}

/// One driver of a `locations` batch as `driver:locationUpdated`'s payload.
fn driver_location(d: &Value) -> Value {
    let mut location = Map::new();
    for key in ["lat", "lng", "accuracy", "speed", "heading"] {
        if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
            location.insert(key.into(), v.clone());
        }
    }
    json!({
        "driverId": d.get("driver_id"),
        "location": location,
        "timestamp": d.get("timestamp"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_native_name_is_that_message_without_its_ref() {
        let m = client_message(
            "status",
            &[json!({"status": "online", "ref": "r1", "type": "x"})],
        );
        assert_eq!(m, Ok(obj(json!({"type": "status", "status": "online"}))));
        assert_eq!(
            client_message("ping", &[]),
            Ok(obj(json!({"type": "ping"})))
        );
        assert_eq!(
            client_message("status", &[json!("online")]),
            Err(EventError::NotAnObject("status".into()))
        );
    }

    #[test]
    fn the_frontends_names_are_translated() {
        let m = client_message(
            "driver:locationUpdate",
            &[
                json!({"driverId": "D1", "location": {"lat": 1.5, "lng": 2.5, "accuracy": 8, "speed": null}, "timestamp": 1}),
            ],
        );
        assert_eq!(
            m,
            Ok(obj(
                json!({"type": "location", "lat": 1.5, "lng": 2.5, "accuracy": 8, "driver_id": "D1"})
            ))
        );
        let m = client_message(
            "shipment:statusUpdate",
            &[json!({"shipmentId": "O1", "status": "IN_TRANSIT"})],
        );
        assert_eq!(
            m,
            Ok(obj(
                json!({"type": "order_status", "order_id": "O1", "status": "out_for_delivery"})
            ))
        );
        assert!(matches!(
            client_message("driver:locationUpdate", &[json!({"driverId": "D1"})]),
            Err(EventError::Missing {
                field: "location",
                ..
            })
        ));
    }

    #[test]
    fn a_room_message_keeps_its_fields_and_its_position() {
        let frame =
            r#"{"type":"emergency_event","event_id":"E1","room":"dispatch","seq":7,"id":"p1"}"#;
        let e = server_events(frame, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert_eq!(e.kind, "emergency_event");
        assert_eq!(e.position, Some(("dispatch".into(), 7)));
        assert_eq!(e.id.as_deref(), Some("p1"));
        assert_eq!(e.events.len(), 1);
        let payload: Value = serde_json::from_str(&e.events[0].1).unwrap_or_default();
        assert_eq!(
            payload,
            json!({"event_id":"E1","room":"dispatch","seq":7,"id":"p1"})
        );
    }

    #[test]
    fn a_float_reaches_socket_io_bit_for_bit() {
        // 0.9360769757661953 came out as ...52 before serde_json parsed floats exactly: a risk
        // score on Socket.IO differed from the native copy of the same publication.
        let frame = r#"{"type":"emergency_event","risk_score":0.9360769757661953,"room":"dispatch","seq":1,"id":"p"}"#;
        let e = server_events(frame, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert!(
            e.events[0].1.contains("\"risk_score\":0.9360769757661953"),
            "{}",
            e.events[0].1
        );
    }

    #[test]
    fn an_sos_and_its_alerts_pass_under_their_own_names() {
        let m = client_message("sos", &[json!({"lat": 1.5, "lng": 2.5, "message": "help"})]);
        assert_eq!(
            m,
            Ok(obj(
                json!({"type": "sos", "lat": 1.5, "lng": 2.5, "message": "help"})
            ))
        );
        for kind in ["emergency_alert", "emergency_alert_resolved"] {
            let f = format!(
                r#"{{"type":"{kind}","alert_id":"A1","room":"dispatch","seq":4,"id":"p"}}"#
            );
            let e = server_events(&f, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
            assert_eq!(e.events.len(), 1, "{kind}");
            assert_eq!(e.events[0].0, kind);
            let payload: Value = serde_json::from_str(&e.events[0].1).unwrap_or_default();
            assert_eq!(payload["alert_id"], "A1", "the fields, not a custom `data`");
        }
    }

    #[test]
    fn aliases_go_beside_our_names() {
        let f = r#"{"type":"order_assigned","order_id":"O1","room":"driver:D1","seq":2,"id":"p"}"#;
        let e = server_events(f, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        let names: Vec<&str> = e.events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["order_assigned", "assignment:new"]);
        assert_eq!(e.events[0].1, e.events[1].1);

        let f = r#"{"type":"order_updated","order_id":"O1","status":"delivered","room":"order:O1","seq":3,"id":"q"}"#;
        let e = server_events(f, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert_eq!(e.events[1].0, "shipment:statusUpdated");
        let alias: Value = serde_json::from_str(&e.events[1].1).unwrap_or_default();
        assert_eq!(alias, json!({"shipmentId": "O1", "status": "delivered"}));
    }

    #[test]
    fn a_locations_batch_is_one_event_per_driver_or_one_array() {
        let f = r#"{"type":"locations","drivers":[{"driver_id":"D1","lat":1,"lng":2,"speed":null,"heading":90,"timestamp":"t1"},{"driver_id":"D2","lat":3,"lng":4,"speed":5,"heading":null,"timestamp":"t2"}]}"#;
        let e = server_events(f, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert_eq!(e.position, None);
        assert_eq!(e.events.len(), 3);
        let first: Value = serde_json::from_str(&e.events[1].1).unwrap_or_default();
        assert_eq!(
            first,
            json!({"driverId":"D1","location":{"lat":1,"lng":2,"heading":90},"timestamp":"t1"})
        );
        let e = server_events(f, LocationEvents::Batch).unwrap_or_else(|| panic!("none"));
        assert_eq!(e.events.len(), 2);
        let all: Value = serde_json::from_str(&e.events[1].1).unwrap_or_default();
        assert_eq!(all.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn an_emergency_message_is_its_data_though_the_type_is_the_engines() {
        let f = r#"{"type":"emergency_updated","data":{"action":"assigned","emergency":{"request_id":"E1","type":"fire"}},"room":"unit_tracking","seq":7,"id":"p"}"#;
        let e = server_events(f, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert_eq!(
            e.events,
            vec![(
                "emergency_updated".to_string(),
                r#"{"action":"assigned","emergency":{"request_id":"E1","type":"fire"}}"#
                    .to_string()
            )]
        );
        assert_eq!(e.position, Some(("unit_tracking".into(), 7)));
    }

    #[test]
    fn a_custom_message_is_its_data() {
        let f = r#"{"type":"alert:new","data":{"id":"A1","type":"crowd"},"room":"event:E1","seq":4,"id":"p"}"#;
        let e = server_events(f, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert_eq!(
            e.events,
            vec![(
                "alert:new".to_string(),
                r#"{"id":"A1","type":"crowd"}"#.to_string()
            )]
        );
        assert_eq!(e.position, Some(("event:E1".into(), 4)));
        assert_eq!(server_events("[1]", LocationEvents::PerDriver), None);
        let joined = r#"{"type":"joined","room":"dispatch","seq":9}"#;
        let e = server_events(joined, LocationEvents::PerDriver).unwrap_or_else(|| panic!("none"));
        assert_eq!((e.position, e.room.as_deref()), (None, Some("dispatch")));
    }
}
