//! Property tests of the frame decoder, `ClientFrame::decode` (SPEC 3: "a bad frame gets an
//! `error`, never a dropped session").
//!
//! - any text, any bytes (lossy UTF-8), token soup and mutated frames: no panic; a failure is
//!   `bad_request` with a message, and its `error` frame is a JSON object with a SPEC code;
//! - any JSON value, and objects of every known `type` with each field present, missing, null,
//!   mistyped or out of range: `Ok` exactly when the contract says so, the `ref` echoed;
//! - every well-formed message decodes to exactly what was generated.
//!
//! `PROPTEST_CASES=N` does not apply (each property sets its own count); a failure is shrunk and
//! its seed kept in `tests/decode_props.proptest-regressions` (commit it to replay it first).

mod common;
use common::spec::{SPEC_CODES, TYPES};

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use rallypoint::error::ErrorCode;
use rallypoint::protocol::client::{
    ClientFrame, ClientMsg, DecodeError, MAX_COMMENT_LEN, MAX_REF_LEN, MAX_SOS_MESSAGE_LEN,
};
use rallypoint::protocol::{
    AvailabilityStatus, DeliveryStatus, DriverId, IncidentKind, OrderId, ServerMsg,
};
use serde_json::{json, Map, Value};

/// The messages that may carry an `idempotency_key`.
const STATE_CHANGING: [&str; 8] = [
    "status",
    "accept",
    "decline",
    "order_status",
    "report",
    "sos",
    "complete_emergency",
    "ping_location",
];

/// Decodes `text` and checks what holds for every input: a success comes only from a JSON object
/// with a known `type`; a failure is `bad_request` with a message (which does not call a known
/// `type` unknown), any `ref` it keeps is a valid one, and its `error` frame is `{"type":"error","code":<SPEC code>,"message",...}` with that `ref`.
fn decode_checked(text: &str) -> Result<Result<ClientFrame, DecodeError>, TestCaseError> {
    match ClientFrame::decode(text) {
        Ok(frame) => {
            let value = serde_json::from_str::<Value>(text);
            prop_assert!(
                matches!(&value, Ok(Value::Object(_))),
                "decoded a frame that is not one JSON object: {:?}",
                text
            );
            let t = value
                .ok()
                .and_then(|v| v["type"].as_str().map(String::from));
            prop_assert_eq!(t.as_deref(), Some(frame.msg.kind()));
            Ok(Ok(frame))
        }
        Err(e) => {
            prop_assert_eq!(e.error.code(), ErrorCode::BadRequest, "{}", e.error);
            let message = e.error.client_message();
            prop_assert!(!message.trim().is_empty(), "empty message for {:?}", text);
            // The message says what was wrong: a known `type` is not called unknown.
            if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) {
                if m.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| TYPES.contains(&t))
                {
                    prop_assert!(
                        !message.contains("unknown message type"),
                        "{:?}: {}",
                        text,
                        message
                    );
                }
            }
            if let Some(r) = &e.reference {
                prop_assert!(r.len() <= MAX_REF_LEN);
            }
            let wire = ServerMsg::error(e.reference.clone(), &e.error).to_text();
            let v: Value = serde_json::from_str(&wire)
                .map_err(|err| TestCaseError::fail(format!("error frame {wire:?}: {err}")))?;
            prop_assert!(v.is_object(), "{}", wire);
            prop_assert_eq!(&v["type"], "error", "{}", wire);
            let code = v["code"].as_str().unwrap_or_default();
            prop_assert!(SPEC_CODES.contains(&code), "not a SPEC code: {}", wire);
            prop_assert_eq!(v["message"].as_str(), Some(message.as_str()));
            match &e.reference {
                Some(r) => prop_assert_eq!(v["ref"].as_str(), Some(r.as_str())),
                None => prop_assert!(v.get("ref").is_none(), "{}", wire),
            }
            Ok(Err(e))
        }
    }
}

/// `decode_checked` for input with no further expectation.
fn check(text: &str) -> Result<(), TestCaseError> {
    decode_checked(text).map(|_| ())
}

fn known_string() -> impl Strategy<Value = String> {
    let words = [
        "online",
        "offline",
        "busy",
        "picked_up",
        "delivered",
        "accident",
        "other",
        "dispatch",
        "fleet:default",
        "driver:DRV-001",
        "order:ORD-1",
        "DRV-001",
        "ORD-1",
        "",
    ];
    select(
        TYPES
            .iter()
            .chain(words.iter())
            .copied()
            .collect::<Vec<_>>(),
    )
    .prop_map(String::from)
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "type", "ref", "idempotency_key", "room", "since", "status", "driver_id", "lat",
            "lng", "speed", "heading", "accuracy", "order_id", "kind", "comment", "token",
        ])
        .prop_map(String::from),
        1 => "[a-z_]{0,10}",
        1 => "\\PC{0,6}",
    ]
}

/// Any JSON value: nested arrays and objects whose keys are often the contract's field names.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (-200.0..200.0f64).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        known_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    /// Any text at all.
    #[test]
    fn any_string_is_decoded_or_refused_with_a_spec_error(text in any::<String>()) {
        check(&text)?;
    }

    /// Any bytes, as a server that replaced invalid UTF-8 would see them.
    #[test]
    fn any_bytes_are_decoded_or_refused_with_a_spec_error(bytes in vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    /// Text made of JSON's own tokens and the contract's words, so that the parser gets deep.
    #[test]
    fn json_token_soup_is_decoded_or_refused_with_a_spec_error(
        tokens in vec(select(vec![
            "{", "}", "[", "]", ":", ",", " ", "\"", "\\", "\"type\"", "\"ref\"", "\"ping\"",
            "\"join\"", "\"room\"", "\"location\"", "\"lat\"", "\"lng\"", "\"since\"", "1", "-1",
            "0.5", "1e400", "-1e309", "18446744073709551616", "null", "true", "\"\\u0000\"",
            "\"\\ud800\"", "\"\\uDFFF\\uD800\"", "\"x\"", "\u{feff}", "\u{0}",
        ]), 0..40)
    ) {
        check(&tokens.concat())?;
    }

    /// Well-formed frames with bytes deleted, inserted or replaced.
    #[test]
    fn mutated_frames_are_decoded_or_refused_with_a_spec_error(
        frame in well_formed_frame(),
        edits in vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
    ) {
        let mut bytes = frame.text.into_bytes();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => { bytes.remove(i); }
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        check(&String::from_utf8_lossy(&bytes))?;
    }

    /// Nesting far past serde_json's recursion limit is an error, not a stack overflow.
    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow(
        depth in 1usize..5000,
        open in select(vec!["[", "{\"type\":"]),
        inside in select(vec!["{\"room\":", "[", "{\"a\":"]),
        closed in any::<bool>(),
    ) {
        let mut text = String::from(open);
        for _ in 0..depth {
            text.push_str(inside);
        }
        text.push('1');
        if closed {
            for _ in 0..depth {
                text.push(if inside == "[" { ']' } else { '}' });
            }
            text.push(if open == "[" { ']' } else { '}' });
        }
        let result = decode_checked(&text)?;
        prop_assert!(result.is_err(), "nested {} deep decoded", depth);
    }

    /// Any JSON value: a non-object is refused without a `ref`; an object's valid `ref` is kept,
    /// in the frame or in the error.
    #[test]
    fn any_json_value_is_decoded_or_refused_and_keeps_its_ref(value in arb_json()) {
        let result = decode_checked(&value.to_string())?;
        let Value::Object(map) = &value else {
            let e = result.err();
            prop_assert!(e.is_some(), "a non-object decoded: {}", value);
            prop_assert!(e.and_then(|e| e.reference).is_none());
            return Ok(());
        };
        if !matches!(map.get("type"), Some(Value::String(t)) if TYPES.contains(&t.as_str())) {
            prop_assert!(result.is_err(), "decoded without a known type: {}", value);
        }
        if let Some(Value::String(r)) = map.get("ref") {
            if r.len() <= MAX_REF_LEN {
                let kept = match &result {
                    Ok(f) => f.reference.clone(),
                    Err(e) => e.reference.clone(),
                };
                prop_assert_eq!(kept.as_deref(), Some(r.as_str()), "{}", value);
            }
        }
    }

    /// Objects of a known `type` (or a bad one) with each field right, missing, null, mistyped or
    /// out of range: decoded exactly when the contract says, and the `ref` kept when valid.
    #[test]
    fn typed_objects_decode_exactly_when_valid(case in typed_case()) {
        let text = Value::Object(case.object.clone()).to_string();
        let result = decode_checked(&text)?;
        if case.ref_kept {
            let kept = match &result {
                Ok(f) => f.reference.clone(),
                Err(e) => e.reference.clone(),
            };
            let sent = case.object.get("ref").and_then(Value::as_str);
            prop_assert_eq!(kept.as_deref(), sent, "{}", text);
        } else {
            prop_assert!(result.as_ref().is_err_and(|e| e.reference.is_none()), "{}", text);
        }
        if let Some(valid) = case.expect_ok {
            prop_assert_eq!(
                result.is_ok(),
                valid,
                "{} -> {:?}",
                text,
                result.as_ref().map_err(|e| e.error.to_string())
            );
        }
    }

    /// An object of a known type with every field valid decodes; the same object with exactly one
    /// field made wrong (mistyped, out of range, or a required one null or left out) is refused,
    /// and the error keeps its `ref`.
    #[test]
    fn one_wrong_field_is_refused_with_the_ref(case in one_wrong_field()) {
        let (good, bad, reference, field) = case;
        let text = Value::Object(good).to_string();
        let result = decode_checked(&text)?;
        prop_assert!(result.is_ok(), "{} -> {:?}", text, result.map_err(|e| e.error.to_string()));
        let text = Value::Object(bad).to_string();
        match decode_checked(&text)? {
            Ok(frame) => prop_assert!(false, "wrong `{}` accepted: {} -> {:?}", field, text, frame),
            Err(e) => prop_assert_eq!(e.reference, reference, "{}", text),
        }
    }

    /// Every well-formed message, with or without `ref` and `idempotency_key`, decodes to exactly
    /// what was generated.
    #[test]
    fn well_formed_frames_decode_to_what_was_sent(frame in well_formed_frame()) {
        let decoded = decode_checked(&frame.text)?;
        let decoded = decoded.map_err(|e| TestCaseError::fail(format!("{}: {}", frame.text, e.error)))?;
        prop_assert!(
            same_frame(&decoded, &frame.expected),
            "{}\ndecoded:   {:?}\ngenerated: {:?}",
            frame.text,
            decoded,
            frame.expected
        );
    }
}

/// Equal frames, numbers within one unit in the last place: serde_json (without its
/// `float_roundtrip` feature) may read the shortest spelling of an f64 back one ULP off, e.g.
/// `247.60653461595126` as `247.6065346159513`; nanodegrees, not a contract matter.
fn same_frame(a: &ClientFrame, b: &ClientFrame) -> bool {
    fn close(x: f64, y: f64) -> bool {
        x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs())
    }
    fn close_opt(x: Option<f64>, y: Option<f64>) -> bool {
        match (x, y) {
            (Some(x), Some(y)) => close(x, y),
            (x, y) => x == y,
        }
    }
    match (&a.msg, &b.msg) {
        (
            ClientMsg::Location {
                lat,
                lng,
                speed,
                heading,
                accuracy,
                driver_id,
            },
            ClientMsg::Location {
                lat: lat2,
                lng: lng2,
                speed: speed2,
                heading: heading2,
                accuracy: accuracy2,
                driver_id: driver_id2,
            },
        ) => {
            close(*lat, *lat2)
                && close(*lng, *lng2)
                && close_opt(*speed, *speed2)
                && close_opt(*heading, *heading2)
                && close_opt(*accuracy, *accuracy2)
                && driver_id == driver_id2
                && a.reference == b.reference
                && a.idempotency_key == b.idempotency_key
        }
        (
            ClientMsg::Sos { lat, lng, message },
            ClientMsg::Sos {
                lat: lat2,
                lng: lng2,
                message: message2,
            },
        ) => {
            close(*lat, *lat2)
                && close(*lng, *lng2)
                && message == message2
                && a.reference == b.reference
                && a.idempotency_key == b.idempotency_key
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Objects of a known type, field by field.

/// How one field of a generated object was made.
#[derive(Debug, Clone)]
enum Made {
    /// Left out.
    Missing,
    /// A value the contract accepts.
    Valid(Value),
    /// A value the contract refuses (wrong JSON type, out of range, unknown word, too long).
    Invalid(Value),
    /// Anything: no expectation.
    Random(Value),
}

/// A value for `field` of message `ty`, tagged with whether the contract accepts it. A required
/// field left out is settled when the object is put together.
fn made_field(ty: &'static str, field: &'static str, required: bool) -> BoxedStrategy<Made> {
    let (valid, invalid) = field_values(ty, field);
    let null = if required {
        Made::Invalid(Value::Null)
    } else {
        Made::Valid(Value::Null)
    };
    prop_oneof![
        10 => valid.prop_map(Made::Valid),
        2 => invalid.prop_map(Made::Invalid),
        1 => Just(Made::Missing),
        1 => Just(null),
        1 => arb_json().prop_map(Made::Random),
    ]
    .boxed()
}

/// Accepted and refused values of one field (SPEC 3's table, `validate`'s ranges).
fn field_values(ty: &str, field: &str) -> (BoxedStrategy<Value>, BoxedStrategy<Value>) {
    let not_a_string = || {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            (-1e6..1e6f64).prop_map(Value::from),
            Just(json!([])),
            Just(json!({"a": 1})),
            Just(json!(["x"])),
        ]
    };
    let any_string = || "\\PC{0,30}".prop_map(Value::String);
    let word_of = |words: Vec<&'static str>| {
        let valid = select(words.clone()).prop_map(Value::from).boxed();
        let also = words.clone();
        let invalid = prop_oneof![
            "\\PC{0,16}"
                .prop_filter("not a valid word", move |s| !words.contains(&s.as_str()))
                .prop_map(Value::String),
            select(vec![
                "busy",
                "pending",
                "assigned",
                "cancelled",
                "ONLINE",
                "Accident",
                ""
            ])
            .prop_filter("not a valid word", move |s| !also.contains(s))
            .prop_map(Value::from),
            not_a_string(),
        ]
        .boxed();
        (valid, invalid)
    };
    // In [lo, hi] is valid; below `below` or above `above` (when there is a top) is not. Values
    // near the bounds are drawn often: an off-by-a-little bound must show.
    let number_in = |lo: f64, hi: f64, below: f64, above: Option<f64>| {
        let valid = prop_oneof![
            (lo..=hi).prop_map(Value::from),
            ((lo.ceil() as i64)..=(hi.floor() as i64)).prop_map(Value::from),
            select(vec![lo, hi]).prop_map(Value::from),
            (hi - 1.0..=hi).prop_map(Value::from),
        ]
        .boxed();
        let over = match above {
            Some(above) => (above..1e300).prop_map(Value::from).boxed(),
            None => (-1e300..below).prop_map(Value::from).boxed(),
        };
        let near_over = match above {
            Some(above) => (above..above + 2.0).prop_map(Value::from).boxed(),
            None => (below - 2.0..below).prop_map(Value::from).boxed(),
        };
        let invalid = prop_oneof![
            1 => (-1e12..below).prop_map(Value::from),
            3 => (below - 2.0..below).prop_map(Value::from),
            1 => over,
            3 => near_over,
            1 => any_string(),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => Just(json!([1.0])),
            1 => Just(json!({"v": 1.0})),
        ]
        .boxed();
        (valid, invalid)
    };
    match (ty, field) {
        ("join" | "leave", "room") => (
            prop_oneof![
                "\\PC{0,60}".prop_filter("at most 200 bytes", |s| s.len() <= 200),
                select(vec![
                    "dispatch",
                    "fleet:default",
                    "driver:DRV-001",
                    "order:ORD-1"
                ])
                .prop_map(String::from),
                Just("r".repeat(200)),
            ]
            .prop_map(Value::String)
            .boxed(),
            prop_oneof![
                (201usize..400).prop_map(|n| Value::String("r".repeat(n))),
                Just(Value::String("é".repeat(101))),
                not_a_string(),
            ]
            .boxed(),
        ),
        ("join", "since") => (
            prop_oneof![(0..=i64::MAX).prop_map(Value::from), Just(json!(0))].boxed(),
            prop_oneof![
                (i64::MIN..0).prop_map(Value::from),
                ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Value::from),
                // A float, even a whole one written "2.0", is not an integer seq.
                (-1e6..1e6f64).prop_map(|f| Value::from(f.trunc() + 0.5)),
                Just(json!(2.0)),
                any_string(),
                any::<bool>().prop_map(Value::Bool),
                Just(json!([1])),
            ]
            .boxed(),
        ),
        ("status", "status") => word_of(vec!["online", "offline"]),
        ("order_status", "status") => word_of(vec!["picked_up", "out_for_delivery", "delivered"]),
        ("report", "kind") => word_of(IncidentKind::ALL.iter().map(|k| k.as_str()).collect()),
        ("location" | "sos" | "ping_location", "lat") => {
            number_in(-90.0, 90.0, -90.000001, Some(90.000001))
        }
        ("location" | "sos" | "ping_location", "lng") => {
            number_in(-180.0, 180.0, -180.000001, Some(180.000001))
        }
        ("location", "speed" | "accuracy") => number_in(0.0, 1e6, -1e-9, None),
        ("location", "heading") => number_in(0.0, 360.0, -1e-9, Some(360.000001)),
        ("report", "comment") => (
            prop_oneof![
                "\\PC{0,80}".prop_map(Value::String),
                Just(Value::String("é".repeat(MAX_COMMENT_LEN))),
            ]
            .boxed(),
            prop_oneof![
                ((MAX_COMMENT_LEN + 1)..MAX_COMMENT_LEN + 50)
                    .prop_map(|n| Value::String("c".repeat(n))),
                not_a_string(),
            ]
            .boxed(),
        ),
        ("sos", "message") => (
            prop_oneof![
                "\\PC{0,80}".prop_map(Value::String),
                Just(Value::String("é".repeat(MAX_SOS_MESSAGE_LEN))),
            ]
            .boxed(),
            prop_oneof![
                ((MAX_SOS_MESSAGE_LEN + 1)..MAX_SOS_MESSAGE_LEN + 50)
                    .prop_map(|n| Value::String("m".repeat(n))),
                not_a_string(),
            ]
            .boxed(),
        ),
        // Strings with no further rule: `driver_id`, `order_id`, `token`.
        _ => (any_string().boxed(), not_a_string().boxed()),
    }
}

/// The fields of each type: (name, required).
fn fields_of(ty: &str) -> &'static [(&'static str, bool)] {
    match ty {
        "join" => &[("room", true), ("since", false)],
        "leave" => &[("room", true)],
        "status" => &[("status", true), ("driver_id", false)],
        "location" => &[
            ("lat", true),
            ("lng", true),
            ("speed", false),
            ("heading", false),
            ("accuracy", false),
            ("driver_id", false),
        ],
        "accept" | "decline" => &[("order_id", true)],
        "order_status" => &[("order_id", true), ("status", true)],
        "report" => &[("order_id", true), ("kind", true), ("comment", false)],
        "sos" => &[("lat", true), ("lng", true), ("message", false)],
        "complete_emergency" => &[("request_id", true)],
        "ping_location" => &[
            ("event_id", true),
            ("device_id", true),
            ("lat", true),
            ("lng", true),
        ],
        "refresh" => &[("token", true)],
        _ => &[],
    }
}

/// A generated object and what the contract says of it.
#[derive(Debug, Clone)]
struct TypedCase {
    object: Map<String, Value>,
    /// `Some(ok)` when every part was made valid or invalid on purpose.
    expect_ok: Option<bool>,
    /// Whether the `ref` is one the decoder must keep (absent and null count: kept as none).
    ref_kept: bool,
}

fn typed_case() -> impl Strategy<Value = TypedCase> {
    let ty = prop_oneof![
        10 => select(TYPES.to_vec()).prop_map(|t| (Value::from(t), Some(t))),
        1 => "[a-z_]{0,12}"
            .prop_filter("unknown", |t| !TYPES.contains(&t.as_str()))
            .prop_map(|t| (Value::String(t), None)),
        1 => prop_oneof![Just(Value::Null), Just(json!(1)), Just(json!(["ping"]))].prop_map(|v| (v, None)),
    ];
    ty.prop_flat_map(|(type_value, ty)| {
        let fields: Vec<BoxedStrategy<(&'static str, Made)>> = ty
            .map(fields_of)
            .unwrap_or(&[])
            .iter()
            .map(|&(name, required)| {
                made_field(ty.unwrap_or_default(), name, required)
                    .prop_map(move |m| (name, m))
                    .boxed()
            })
            .collect();
        let reference = prop_oneof![
            3 => Just(Made::Missing),
            1 => Just(Made::Valid(Value::Null)),
            6 => "\\PC{0,64}"
                .prop_filter("at most 64 bytes", |s| s.len() <= MAX_REF_LEN)
                .prop_map(|s| Made::Valid(Value::String(s))),
            1 => Just(Made::Valid(Value::String("é".repeat(32)))),
            1 => prop_oneof![
                Just(Value::String("é".repeat(33))),
                (65usize..100).prop_map(|n| Value::String("r".repeat(n))),
                any::<i64>().prop_map(Value::from),
                Just(json!(["r"])),
                Just(json!({"r": 1})),
                Just(json!(true)),
            ]
            .prop_map(Made::Invalid),
        ];
        let key = prop_oneof![
            6 => Just(Made::Missing),
            1 => Just(Made::Valid(Value::Null)),
            3 => "\\PC{1,64}"
                .prop_filter("1 to 64 bytes", |s| !s.is_empty() && s.len() <= MAX_REF_LEN)
                .prop_map(|s| Made::Valid(Value::String(s))),
            1 => prop_oneof![
                Just(Value::String(String::new())),
                (65usize..100).prop_map(|n| Value::String("k".repeat(n))),
                any::<i64>().prop_map(Value::from),
                Just(json!(["k"])),
            ]
            .prop_map(Made::Invalid),
        ];
        // Fields the type does not have are ignored, whatever they hold.
        let extra = btree_map(
            prop_oneof![
                "[a-z_]{1,10}",
                select(vec![
                    "room", "lat", "order_id", "kind", "token", "status", "since"
                ])
                .prop_map(String::from)
            ],
            arb_json(),
            0..3,
        );
        (Just(type_value), Just(ty), fields, reference, key, extra)
    })
    .prop_map(|(type_value, ty, fields, reference, key, extra)| {
        let own: Vec<&str> = ty
            .map(fields_of)
            .unwrap_or(&[])
            .iter()
            .map(|f| f.0)
            .collect();
        let mut object = Map::new();
        for (name, value) in extra {
            if !own.contains(&name.as_str())
                && !["type", "ref", "idempotency_key"].contains(&name.as_str())
            {
                object.insert(name, value);
            }
        }
        let mut expect = Some(ty.is_some());
        let mut ref_kept = true;
        let put = |object: &mut Map<String, Value>,
                   name: &str,
                   made: &Made,
                   expect: &mut Option<bool>| {
            match made {
                Made::Missing => {}
                Made::Valid(v) => {
                    object.insert(name.to_string(), v.clone());
                }
                Made::Invalid(v) => {
                    object.insert(name.to_string(), v.clone());
                    *expect = expect.map(|_| false);
                }
                Made::Random(v) => {
                    object.insert(name.to_string(), v.clone());
                    if *expect == Some(true) {
                        *expect = None;
                    }
                }
            }
        };
        object.insert("type".into(), type_value);
        put(&mut object, "ref", &reference, &mut expect);
        if matches!(reference, Made::Invalid(_)) {
            ref_kept = false;
        }
        put(&mut object, "idempotency_key", &key, &mut expect);
        if let (Made::Valid(Value::String(_)), Some(t)) = (&key, ty) {
            if !STATE_CHANGING.contains(&t) {
                expect = expect.map(|_| false);
            }
        }
        for (name, made) in &fields {
            if let (Made::Missing, Some(t)) = (made, ty) {
                if fields_of(t)
                    .iter()
                    .any(|&(n, required)| n == *name && required)
                {
                    expect = expect.map(|_| false);
                }
            }
            put(&mut object, name, made, &mut expect);
        }
        // An invalid part settles it whatever else is random.
        let any_invalid = matches!(reference, Made::Invalid(_))
            || matches!(key, Made::Invalid(_))
            || fields.iter().any(|(_, m)| matches!(m, Made::Invalid(_)));
        if any_invalid || ty.is_none() {
            expect = Some(false);
        }
        TypedCase {
            object,
            expect_ok: expect,
            ref_kept,
        }
    })
}

/// (an object with every field valid, the same with one field wrong, its `ref`, the field's name)
type OneWrong = (
    Map<String, Value>,
    Map<String, Value>,
    Option<String>,
    &'static str,
);

fn one_wrong_field() -> impl Strategy<Value = OneWrong> {
    let typed = select(
        TYPES
            .iter()
            .copied()
            .filter(|t| *t != "ping")
            .collect::<Vec<_>>(),
    );
    typed
        .prop_flat_map(|ty| {
            let fields = fields_of(ty);
            let values: Vec<_> = fields
                .iter()
                .map(|&(name, _)| {
                    let (valid, invalid) = field_values(ty, name);
                    (valid, invalid, any::<bool>())
                })
                .collect();
            (
                Just(ty),
                values,
                0..fields.len(),
                0u8..4,
                option::of("[a-z0-9]{1,64}"),
            )
        })
        .prop_map(|(ty, values, wrong, how, reference)| {
            let mut good = Map::new();
            good.insert("type".into(), Value::from(ty));
            if let Some(r) = &reference {
                good.insert("ref".into(), Value::from(r.as_str()));
            }
            let mut bad = good.clone();
            for (i, ((name, required), (valid, invalid, keep))) in
                fields_of(ty).iter().zip(values).enumerate()
            {
                if i == wrong {
                    good.insert(name.to_string(), valid);
                    match how {
                        0 if *required => {}
                        1 if *required => {
                            bad.insert(name.to_string(), Value::Null);
                        }
                        _ => {
                            bad.insert(name.to_string(), invalid);
                        }
                    }
                } else if *required || keep {
                    good.insert(name.to_string(), valid.clone());
                    bad.insert(name.to_string(), valid);
                }
            }
            (good, bad, reference, fields_of(ty)[wrong].0)
        })
}

// ---------------------------------------------------------------------------------------------
// Well-formed frames: the message generated, and the text a client would send.

#[derive(Debug, Clone)]
struct WellFormed {
    expected: ClientFrame,
    text: String,
}

fn id_string() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z]{3}-[0-9]{1,4}", "\\PC{0,20}"]
}

fn arb_msg() -> impl Strategy<Value = ClientMsg> {
    let room = prop_oneof![
        select(vec![
            "dispatch",
            "fleet:default",
            "driver:DRV-001",
            "order:ORD-1"
        ])
        .prop_map(String::from),
        "\\PC{0,40}",
    ];
    let order_id = || id_string().prop_map(OrderId);
    prop_oneof![
        (room.clone(), option::of(0..=i64::MAX))
            .prop_map(|(room, since)| ClientMsg::Join { room, since }),
        room.prop_map(|room| ClientMsg::Leave { room }),
        (
            select(AvailabilityStatus::ALL.to_vec()),
            option::of(id_string().prop_map(DriverId))
        )
            .prop_map(|(status, driver_id)| ClientMsg::Status { status, driver_id }),
        (
            -90.0..=90.0f64,
            -180.0..=180.0f64,
            option::of(0.0..100.0f64),
            option::of(0.0..=360.0f64),
            option::of(0.0..5000.0f64),
            option::of(id_string().prop_map(DriverId)),
        )
            .prop_map(|(lat, lng, speed, heading, accuracy, driver_id)| {
                ClientMsg::Location {
                    lat,
                    lng,
                    speed,
                    heading,
                    accuracy,
                    driver_id,
                }
            }),
        order_id().prop_map(|order_id| ClientMsg::Accept { order_id }),
        order_id().prop_map(|order_id| ClientMsg::Decline { order_id }),
        (order_id(), select(DeliveryStatus::ALL.to_vec()))
            .prop_map(|(order_id, status)| ClientMsg::OrderStatus { order_id, status }),
        (
            order_id(),
            select(IncidentKind::ALL.to_vec()),
            option::of("\\PC{0,200}")
        )
            .prop_map(|(order_id, kind, comment)| ClientMsg::Report {
                order_id,
                kind,
                comment
            }),
        (
            -90.0..=90.0f64,
            -180.0..=180.0f64,
            option::of("\\PC{0,200}")
        )
            .prop_map(|(lat, lng, message)| ClientMsg::Sos { lat, lng, message }),
        id_string().prop_map(|request_id| ClientMsg::CompleteEmergency { request_id }),
        (id_string(), id_string(), -90.0..=90.0f64, -180.0..=180.0f64).prop_map(
            |(event_id, device_id, lat, lng)| ClientMsg::PingLocation {
                event_id,
                device_id,
                lat,
                lng
            }
        ),
        Just(ClientMsg::Ping),
        "[A-Za-z0-9._-]{0,80}".prop_map(|token| ClientMsg::Refresh { token }),
    ]
}

/// The message as SPEC 3 spells it, written by hand (not by the crate's serde derive), with
/// each absent optional field either left out or `null` as `nulls` says.
fn spell(msg: &ClientMsg, nulls: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(msg.kind()));
    let opt = |m: &mut Map<String, Value>, name: &str, v: Option<Value>| match v {
        Some(v) => {
            m.insert(name.into(), v);
        }
        None if nulls => {
            m.insert(name.into(), Value::Null);
        }
        None => {}
    };
    match msg {
        ClientMsg::Join { room, since } => {
            m.insert("room".into(), Value::from(room.as_str()));
            opt(&mut m, "since", since.map(Value::from));
        }
        ClientMsg::Leave { room } => {
            m.insert("room".into(), Value::from(room.as_str()));
        }
        ClientMsg::Status { status, driver_id } => {
            m.insert("status".into(), Value::from(status.as_str()));
            opt(
                &mut m,
                "driver_id",
                driver_id.as_ref().map(|d| Value::from(d.as_str())),
            );
        }
        ClientMsg::Location {
            lat,
            lng,
            speed,
            heading,
            accuracy,
            driver_id,
        } => {
            m.insert("lat".into(), Value::from(*lat));
            m.insert("lng".into(), Value::from(*lng));
            opt(&mut m, "speed", speed.map(Value::from));
            opt(&mut m, "heading", heading.map(Value::from));
            opt(&mut m, "accuracy", accuracy.map(Value::from));
            opt(
                &mut m,
                "driver_id",
                driver_id.as_ref().map(|d| Value::from(d.as_str())),
            );
        }
        ClientMsg::Accept { order_id } | ClientMsg::Decline { order_id } => {
            m.insert("order_id".into(), Value::from(order_id.as_str()));
        }
        ClientMsg::OrderStatus { order_id, status } => {
            m.insert("order_id".into(), Value::from(order_id.as_str()));
            m.insert("status".into(), Value::from(status.as_str()));
        }
        ClientMsg::Report {
            order_id,
            kind,
            comment,
        } => {
            m.insert("order_id".into(), Value::from(order_id.as_str()));
            m.insert("kind".into(), Value::from(kind.as_str()));
            opt(&mut m, "comment", comment.as_deref().map(Value::from));
        }
        ClientMsg::Sos { lat, lng, message } => {
            m.insert("lat".into(), Value::from(*lat));
            m.insert("lng".into(), Value::from(*lng));
            opt(&mut m, "message", message.as_deref().map(Value::from));
        }
        ClientMsg::CompleteEmergency { request_id } => {
            m.insert("request_id".into(), Value::from(request_id.as_str()));
        }
        ClientMsg::PingLocation {
            event_id,
            device_id,
            lat,
            lng,
        } => {
            m.insert("event_id".into(), Value::from(event_id.as_str()));
            m.insert("device_id".into(), Value::from(device_id.as_str()));
            m.insert("lat".into(), Value::from(*lat));
            m.insert("lng".into(), Value::from(*lng));
        }
        ClientMsg::Ping => {}
        ClientMsg::Refresh { token } => {
            m.insert("token".into(), Value::from(token.as_str()));
        }
    }
    m
}

fn well_formed_frame() -> impl Strategy<Value = WellFormed> {
    (
        arb_msg(),
        any::<bool>(),
        option::of("\\PC{0,40}".prop_filter("at most 64 bytes", |s| s.len() <= MAX_REF_LEN)),
        option::of("[a-zA-Z0-9-]{1,64}"),
        any::<bool>(),
    )
        .prop_map(|(msg, nulls, reference, key, pretty)| {
            let idempotency_key = key.filter(|_| msg.is_state_changing());
            let mut object = spell(&msg, nulls);
            if let Some(r) = &reference {
                object.insert("ref".into(), Value::from(r.as_str()));
            }
            if let Some(k) = &idempotency_key {
                object.insert("idempotency_key".into(), Value::from(k.as_str()));
            }
            let value = Value::Object(object);
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap_or_default()
            } else {
                value.to_string()
            };
            WellFormed {
                expected: ClientFrame {
                    msg,
                    reference,
                    idempotency_key,
                },
                text,
            }
        })
}
