//! Unit tests of the Socket.IO packet codec, with the byte strings of the protocol document's
//! examples.

use super::*;
use serde_json::json;

fn obj(v: Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

/// Checks both directions: `text` decodes to `packet`, and `packet` encodes to `text`.
fn both_ways(text: &str, packet: Packet) {
    assert_eq!(Packet::decode(text), Ok(packet.clone()), "decoding {text}");
    assert_eq!(packet.encode(), text, "encoding {packet:?}");
}

#[test]
fn the_documents_connect_examples_round_trip() {
    // Socket.IO protocol v5, "Packet encoding", "Connection to a namespace".
    both_ways(
        "0",
        Packet::Connect {
            nsp: "/".into(),
            data: None,
        },
    );
    both_ways(
        r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
        Packet::Connect {
            nsp: "/admin".into(),
            data: obj(json!({"sid": "oSO0OpakMV_3jnilAAAA"})),
        },
    );
    both_ways(
        r#"4{"message":"Not authorized"}"#,
        Packet::ConnectError {
            nsp: "/".into(),
            data: json!({"message": "Not authorized"}),
        },
    );
    // "Sample session", requests n°2 and n°3, and the `/admin` CONNECT of its WebSocket part.
    assert_eq!(
        Packet::decode("0"),
        Ok(Packet::Connect {
            nsp: "/".into(),
            data: None
        })
    );
    assert_eq!(
        Packet::connect_ok("wZX3oN0bSVIhsaknAAAI", None).to_message(),
        r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#
    );
    both_ways(
        "0/admin,",
        Packet::Connect {
            nsp: "/admin".into(),
            data: None,
        },
    );
}

#[test]
fn the_documents_event_and_ack_examples_round_trip() {
    // Socket.IO protocol v5, "Packet encoding", "Sending and receiving data" and
    // "Acknowledgement" (its `3/admin,13["bar"]` has a stray backquote in the document).
    both_ways(r#"2["foo"]"#, Packet::event("foo", vec![]));
    both_ways(
        r#"2/admin,["bar"]"#,
        Packet::Event {
            nsp: "/admin".into(),
            id: None,
            name: "bar".into(),
            args: vec![],
        },
    );
    both_ways(
        r#"212["foo"]"#,
        Packet::Event {
            nsp: "/".into(),
            id: Some(12),
            name: "foo".into(),
            args: vec![],
        },
    );
    both_ways(
        r#"3/admin,13["bar"]"#,
        Packet::Ack {
            nsp: "/admin".into(),
            id: 13,
            args: vec![json!("bar")],
        },
    );
    // "Exchange protocol", "Acknowledgement": `{ type: ACK, data: [], id: 12 }`.
    both_ways("312[]", Packet::ack(12, vec![]));
    // "Sample session", request n°4 and the WebSocket part's `42/admin,1["tellme"]`.
    assert_eq!(
        Packet::event("hey", vec![json!("Jude")]).to_message(),
        r#"42["hey","Jude"]"#
    );
    both_ways(
        r#"2/admin,1["tellme"]"#,
        Packet::Event {
            nsp: "/admin".into(),
            id: Some(1),
            name: "tellme".into(),
            args: vec![],
        },
    );
}

#[test]
fn the_documents_disconnect_examples_round_trip() {
    // Socket.IO protocol v5, "Packet encoding", "Disconnection from a namespace".
    both_ways("1", Packet::Disconnect { nsp: "/".into() });
    both_ways(
        "1/admin,",
        Packet::Disconnect {
            nsp: "/admin".into(),
        },
    );
}

#[test]
fn binary_packets_are_recognised_and_refused_with_their_header() {
    // Socket.IO protocol v5, "Packet encoding", the binary examples.
    assert_eq!(
        Packet::decode(r#"51-["baz",{"_placeholder":true,"num":0}]"#),
        Err(DecodeError::Binary {
            kind: PacketType::BinaryEvent,
            nsp: "/".into(),
            id: None,
            attachments: 1
        })
    );
    assert_eq!(
        Packet::decode(
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        ),
        Err(DecodeError::Binary {
            kind: PacketType::BinaryEvent,
            nsp: "/admin".into(),
            id: None,
            attachments: 2
        })
    );
    assert_eq!(
        Packet::decode(r#"61-15["bar",{"_placeholder":true,"num":0}]"#),
        Err(DecodeError::Binary {
            kind: PacketType::BinaryAck,
            nsp: "/".into(),
            id: Some(15),
            attachments: 1
        })
    );
    // "Sample session": `461-/admin,1[{"_placeholder":true,"num":0}]`, the `4` taken off.
    assert!(matches!(
        Packet::decode(r#"61-/admin,1[{"_placeholder":true,"num":0}]"#),
        Err(DecodeError::Binary {
            id: Some(1),
            attachments: 1,
            ..
        })
    ));
    assert_eq!(Packet::decode("5-[]"), Err(DecodeError::InvalidAttachments));
    assert_eq!(Packet::decode("51[]"), Err(DecodeError::InvalidAttachments));
    assert_eq!(
        Packet::decode("599999999999999999999-[]"),
        Err(DecodeError::InvalidAttachments)
    );
}

#[test]
fn the_server_answers_are_spelled_as_the_clients_read_them() {
    // Key order is the map's (sorted without serde_json's `preserve_order`); clients read
    // the object, not its spelling.
    let ok = Packet::connect_ok("s1", Some("p1")).to_message();
    assert!(ok.starts_with("40{"));
    let data: Value = serde_json::from_str(&ok[2..]).unwrap_or_default();
    assert_eq!(data, json!({"sid": "s1", "pid": "p1"}));
    assert_eq!(
        Packet::unauthorized().to_message(),
        r#"44{"message":"Unauthorized"}"#
    );
    assert_eq!(
        Packet::ack(7, vec![json!({"ok": true})]).to_message(),
        r#"437[{"ok":true}]"#
    );
    assert_eq!(
        Packet::event("assignment:new", vec![json!({"order_id": "o\"1"})]).to_message(),
        r#"42["assignment:new",{"order_id":"o\"1"}]"#
    );
}

#[test]
fn malformed_packets_say_what_is_wrong() {
    let payload = |kind, expected| Err(DecodeError::InvalidPayload { kind, expected });
    assert_eq!(Packet::decode(""), Err(DecodeError::Empty));
    assert_eq!(Packet::decode("7"), Err(DecodeError::UnknownType('7')));
    assert_eq!(Packet::decode("x[]"), Err(DecodeError::UnknownType('x')));
    assert!(matches!(
        Packet::decode("2[\"a\""),
        Err(DecodeError::InvalidJson(_))
    ));
    assert!(matches!(
        Packet::decode("2abc"),
        Err(DecodeError::InvalidJson(_))
    ));
    assert_eq!(Packet::decode("2"), payload(PacketType::Event, "an array"));
    assert_eq!(
        Packet::decode("2[]"),
        payload(PacketType::Event, "a non-empty array")
    );
    assert_eq!(
        Packet::decode("2[1]"),
        payload(PacketType::Event, "an array starting with the event name")
    );
    assert_eq!(
        Packet::decode(r#"2{"a":1}"#),
        payload(PacketType::Event, "an array")
    );
    assert_eq!(
        Packet::decode(r#"2["connect"]"#),
        Err(DecodeError::ReservedEventName("connect".into()))
    );
    assert_eq!(
        Packet::decode("0[]"),
        payload(PacketType::Connect, "an object")
    );
    assert_eq!(
        Packet::decode("1{}"),
        payload(PacketType::Disconnect, "absent")
    );
    assert_eq!(Packet::decode("3[]"), Err(DecodeError::MissingAckId));
    assert_eq!(Packet::decode("312"), payload(PacketType::Ack, "an array"));
    assert_eq!(
        Packet::decode("4"),
        payload(PacketType::ConnectError, "an object or a string")
    );
    assert_eq!(
        Packet::decode("012{}"),
        Err(DecodeError::UnexpectedAckId(PacketType::Connect))
    );
    assert_eq!(
        Packet::decode("299999999999999999999[\"a\"]"),
        Err(DecodeError::InvalidAckId)
    );
    assert_eq!(
        Packet::decode(r#"4"old""#).map(|p| p.nsp().to_string()),
        Ok("/".into())
    );
}
