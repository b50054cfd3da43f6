//! Property tests of the codec: encoding then decoding gives back every packet of every kind, an
//! offset, a pid; and no input, however malformed, panics a decoder (they return errors).
//!
//! JSON values are generated without floats: `serde_json` (without `float_roundtrip`) may read a
//! printed float back one unit in the last place off, which is serde's, not ours.

use super::engine::{self, Packet as Eio, WsFrame};
use super::frame::SharedEvent;
use super::handshake::{classify, Handshake, Method};
use super::offset::Offset;
use super::packet::{Packet as Sio, RESERVED_EVENTS};
use super::recovery::{PidKey, RecoveryClaim};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    btree_map("[a-zA-Z]{1,8}", json_value(), 0..4).prop_map(|m| m.into_iter().collect())
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just("/".to_string()), 1 => "/[a-z0-9_/-]{0,10}"]
}

fn handshake() -> impl Strategy<Value = Handshake> {
    (
        any::<String>(),
        vec("[a-z]{1,10}", 0..3),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(sid, upgrades, ping_interval, ping_timeout, max_payload)| Handshake {
                sid,
                upgrades,
                ping_interval,
                ping_timeout,
                max_payload,
            },
        )
}

/// Engine.IO packets; text without `\x1e` when they go into a payload.
fn engine_packet(payload_safe: bool) -> impl Strategy<Value = Eio> {
    let text = if payload_safe { "[^\u{1e}]*" } else { "(?s).*" };
    prop_oneof![
        handshake().prop_map(Eio::Open),
        Just(Eio::Close),
        text.prop_map(Eio::Ping),
        text.prop_map(Eio::Pong),
        text.prop_map(Eio::Message),
        vec(any::<u8>(), 0..64).prop_map(Eio::Binary),
        Just(Eio::Upgrade),
        Just(Eio::Noop),
    ]
}

fn event_name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

fn socket_packet() -> impl Strategy<Value = Sio> {
    let args = || vec(json_value(), 0..4);
    prop_oneof![
        (namespace(), option::of(json_object())).prop_map(|(nsp, data)| Sio::Connect { nsp, data }),
        namespace().prop_map(|nsp| Sio::Disconnect { nsp }),
        (namespace(), option::of(any::<u64>()), event_name(), args()).prop_map(
            |(nsp, id, name, args)| Sio::Event {
                nsp,
                id,
                name,
                args
            }
        ),
        (namespace(), any::<u64>(), args()).prop_map(|(nsp, id, args)| Sio::Ack { nsp, id, args }),
        (
            namespace(),
            prop_oneof![
                json_object().prop_map(Value::Object),
                any::<String>().prop_map(Value::String)
            ]
        )
            .prop_map(|(nsp, data)| Sio::ConnectError { nsp, data }),
    ]
}

fn offset() -> impl Strategy<Value = Offset> {
    (
        any::<u64>(),
        btree_map("\\PC{1,12}|[a-z]{1,8}:[a-z0-9]{1,8}", 0..i64::MAX, 0..6),
    )
        .prop_map(|(generation, rooms)| {
            let mut o = Offset::new(generation);
            for (room, seq) in rooms {
                o.join(&room, seq);
            }
            o
        })
}

/// Strings made of the characters packets are made of, so the decoders' branches are reached.
fn packet_soup() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            "[0-9]{1,3}",
            Just("-".to_string()),
            Just("/".to_string()),
            Just(",".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("{}".to_string()),
            Just("\"a\"".to_string()),
            Just("b".to_string()),
            Just("\u{1e}".to_string()),
            Just("probe".to_string()),
            Just("|".to_string()),
            Just("=".to_string()),
            Just("%".to_string()),
            "\\PC{0,3}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn every_engine_packet_survives_text_and_websocket_encoding(p in engine_packet(false)) {
        prop_assert_eq!(Eio::decode_text(&p.encode_text()), Ok(p.clone()));
        let back = match p.encode_ws() {
            WsFrame::Text(t) => Eio::decode_text(&t),
            WsFrame::Binary(b) => Ok(Eio::decode_binary(&b)),
        };
        prop_assert_eq!(back, Ok(p));
    }

    #[test]
    fn every_polling_payload_survives_encoding(ps in vec(engine_packet(true), 1..6)) {
        prop_assert_eq!(engine::decode_payload(&engine::encode_payload(&ps)), Ok(ps));
    }

    #[test]
    fn every_socket_packet_survives_encoding(p in socket_packet()) {
        prop_assert_eq!(Sio::decode(&p.encode()), Ok(p.clone()));
        // And inside an Engine.IO message, as it travels.
        let message = Eio::decode_text(&p.to_message());
        prop_assert_eq!(message, Ok(Eio::Message(p.encode())));
    }

    #[test]
    fn a_shared_event_with_an_offset_is_that_event(name in event_name(), arg in json_value(), o in offset()) {
        let shared = SharedEvent::new(&name, &arg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let frame = shared.frame_with_offset(&o);
        let expected = Sio::event(&name, vec![arg, Value::from(o.encode())]);
        prop_assert_eq!(Sio::decode(&frame[1..]), Ok(expected));
    }

    #[test]
    fn every_offset_survives_encoding_and_needs_no_json_escape(o in offset()) {
        let s = o.encode();
        prop_assert_eq!(Value::from(s.clone()).to_string(), format!("\"{s}\""));
        prop_assert_eq!(Offset::parse(&s), Ok(o));
    }

    #[test]
    fn a_pid_checks_for_its_owner_and_no_edit_of_it_does(
        sid in "[A-Za-z0-9_-]{1,64}",
        sub in any::<String>(),
        at in any::<prop::sample::Index>(),
        with in any::<char>(),
    ) {
        let key = PidKey::derive(b"k").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pid = key.sign(&sid, &sub);
        prop_assert_eq!(key.verify(&pid, &sub), Ok(sid.as_str()));
        let mut chars: Vec<char> = pid.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != with);
        chars[i] = with;
        let edited: String = chars.into_iter().collect();
        prop_assert!(key.verify(&edited, &sub).is_err());
    }

    #[test]
    fn no_text_panics_the_decoders(text in prop_oneof![any::<String>(), packet_soup()]) {
        let _ = Eio::decode_text(&text);
        let _ = engine::decode_payload(&text);
        let _ = Sio::decode(&text);
        let _ = Offset::parse(&text);
        let key = PidKey::derive(b"k").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = key.verify(&text, "sub");
        let claim = RecoveryClaim { pid: text.clone(), offset: Some(text.clone()) };
        let _ = claim.check(&key, "sub");
        let pairs: Vec<(&str, &str)> = text.split('&').map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
        for method in [Method::Get, Method::Post, Method::WebSocket, Method::Other] {
            let _ = classify(method, pairs.iter().copied());
        }
    }

    #[test]
    fn no_bytes_panic_the_binary_decoder(bytes in vec(any::<u8>(), 0..256)) {
        prop_assert_eq!(Eio::decode_binary(&bytes), Eio::Binary(bytes.clone()));
        let _ = Sio::decode(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn no_connect_auth_panics_the_claim_reader(auth in option::of(json_object()), pid in json_value(), offset in json_value()) {
        let mut auth = auth.unwrap_or_default();
        auth.insert("pid".into(), pid);
        auth.insert("offset".into(), offset);
        let _ = RecoveryClaim::from_auth(Some(&auth));
    }
}
