//! Message handling fed generated frames over a real WebSocket (SPEC 3: every message with a
//! `ref` gets exactly one `ack` or `error`; a bad frame never drops the session).
//!
//! A driver with an order and a dispatcher each get a few hundred frames: a known `type` (now and
//! then an unknown one) with the type's fields, plausible or arbitrary, extra fields and an
//! occasional `idempotency_key`, each with a unique `ref`. Valid ones do change state. proptest's
//! runner is synchronous, so the frames are drawn with `Strategy::new_tree` and sent one by one.
//! The seed is random and printed on failure; `FUZZ_WS_SEED=N` replays one.

use crate::helpers::{spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use crate::spec::SPEC_CODES;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rallypoint::auth::Claims;
use rallypoint::protocol::{ClientFrame, DriverId, Role, ServerMsg};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Frames sent per session.
const FRAMES: usize = 200;

/// Each message type of SPEC 3 with its fields.
const TYPES: [(&str, &[&str]); 13] = [
    ("join", &["room", "since"]),
    ("leave", &["room"]),
    ("status", &["status", "driver_id"]),
    (
        "location",
        &["lat", "lng", "speed", "heading", "accuracy", "driver_id"],
    ),
    ("accept", &["order_id"]),
    ("decline", &["order_id"]),
    ("order_status", &["order_id", "status"]),
    ("report", &["order_id", "kind", "comment"]),
    ("sos", &["lat", "lng", "message"]),
    ("complete_emergency", &["request_id"]),
    ("ping_location", &["event_id", "device_id", "lat", "lng"]),
    ("ping", &[]),
    ("refresh", &["token"]),
];

/// Any JSON value, a little nested.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9..1e9f64).prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value a client might well send for `field` of message `ty`: the fixture's ids and rooms, the contract's
/// words, coordinates; `$OWN`, `$OTHER` and `$EXPIRED` stand for tokens made at send time.
fn plausible(ty: &str, field: &str) -> BoxedStrategy<Value> {
    let words = |w: Vec<&'static str>| select(w).prop_map(Value::from).boxed();
    match field {
        "room" => words(vec![
            "dispatch",
            "fleet:default",
            "fleet:other",
            "driver:DRV-001",
            "driver:DRV-404",
            "order:ORD-F1",
            "order:ORD-F2",
            "order:NOPE",
            "nowhere",
            "",
        ]),
        "since" => prop_oneof![9 => (0i64..50).prop_map(Value::from), 1 => Just(json!(-1))].boxed(),
        "status" if ty == "status" => words(vec!["online", "online", "offline", "busy"]),
        "status" => words(vec![
            "picked_up",
            "out_for_delivery",
            "delivered",
            "cancelled",
        ]),
        "driver_id" => words(vec!["DRV-001", "DRV-002", ""]),
        "lat" => (-91.0..91.0f64).prop_map(Value::from).boxed(),
        "lng" => (-181.0..181.0f64).prop_map(Value::from).boxed(),
        "speed" | "accuracy" => (-0.5..60.0f64).prop_map(Value::from).boxed(),
        "heading" => (-1.0..361.0f64).prop_map(Value::from).boxed(),
        "order_id" => words(vec!["ORD-F1", "ORD-F2", "ORD-NOPE"]),
        "kind" => words(vec![
            "vehicle_breakdown",
            "accident",
            "medical",
            "traffic_jam",
            "weather",
            "road_closure",
            "other",
            "alien_abduction",
        ]),
        "comment" => "\\PC{0,60}".prop_map(Value::String).boxed(),
        "token" => words(vec!["$OWN", "$OTHER", "$EXPIRED", "not.a.token"]),
        _ => arb_json().boxed(),
    }
}

/// One generated frame, without its `ref`.
fn frame() -> impl Strategy<Value = Map<String, Value>> {
    let ty = prop_oneof![
        24 => select(TYPES.to_vec()).prop_map(|(t, f)| (Value::from(t), f)),
        1 => "[a-z_]{0,10}".prop_map(|t| (Value::String(t), &[][..])),
        1 => arb_json().prop_map(|t| (t, &[][..])),
    ];
    ty.prop_flat_map(|(type_value, fields)| {
        let t = type_value.as_str().unwrap_or_default();
        let own: Vec<_> = fields
            .iter()
            .map(|&name| {
                let value = prop_oneof![25 => plausible(t, name), 1 => arb_json()];
                (Just(name), proptest::option::weighted(0.92, value))
            })
            .collect();
        let extra = proptest::collection::btree_map(
            prop_oneof![
                "[a-z_]{1,10}",
                select(vec!["room", "order_id", "status", "lat", "token"]).prop_map(String::from)
            ],
            arb_json(),
            0..2,
        );
        let key = proptest::option::weighted(
            0.15,
            prop_oneof![
                4 => select(vec!["k1", "k2", "k3"]).prop_map(Value::from),
                4 => "[a-z0-9]{1,12}".prop_map(Value::String),
                1 => arb_json(),
            ],
        );
        (Just(type_value), own, extra, key)
    })
    .prop_map(|(type_value, own, extra, key)| {
        let mut m: Map<String, Value> = extra.into_iter().collect();
        for (name, value) in own {
            match value {
                Some(v) => m.insert(name.to_string(), v),
                None => m.remove(name),
            };
        }
        if let Some(k) = key {
            m.insert("idempotency_key".into(), k);
        }
        m.insert("type".into(), type_value);
        m
    })
}

/// A token for `$OWN`, `$OTHER` or `$EXPIRED`, from `who`'s point of view.
fn token(app: &TestApp, who: &str, placeholder: &str) -> Option<String> {
    let own = |ttl| match who {
        "driver" => {
            let c = Claims::new(
                "drv-001",
                Role::Driver,
                Some(DriverId::from("DRV-001")),
                "default",
                ttl,
            );
            app.hub.keys.sign(&c).expect("sign")
        }
        _ => app
            .hub
            .keys
            .sign(&Claims::new(
                "dispatcher-1",
                Role::Dispatcher,
                None,
                "default",
                ttl,
            ))
            .expect("sign"),
    };
    match placeholder {
        "$OWN" => Some(own(3600)),
        "$EXPIRED" => Some(own(-3600)),
        "$OTHER" => Some(app.admin_token()),
        _ => None,
    }
}

/// Sends `n` generated frames on `c` and checks each gets exactly one answer with its `ref`.
async fn send_generated(
    app: &TestApp,
    c: &mut WsClient,
    who: &str,
    runner: &mut TestRunner,
    seed: u64,
    tally: &mut BTreeMap<String, usize>,
) {
    let strategy = frame();
    for i in 0..FRAMES {
        let mut m = strategy
            .new_tree(runner)
            .expect("a frame is drawn")
            .current();
        if let Some(Value::String(t)) = m.get("token") {
            if let Some(real) = token(app, who, t) {
                m.insert("token".into(), Value::String(real));
            }
        }
        let r = format!("fz-{who}-{i}");
        m.insert("ref".into(), Value::String(r.clone()));
        let text = Value::Object(m).to_string();
        c.send_text(&text).await;
        let answer = c
            .find(|m| m["ref"] == r.as_str() && (m["type"] == "ack" || m["type"] == "error"))
            .await;
        let ctx = format!("seed {seed} ({who} #{i}): {text} -> {answer}");
        let kind = match answer["type"].as_str() {
            Some("ack") => "ack".to_string(),
            _ => {
                let code = answer["code"].as_str().unwrap_or_default();
                assert!(SPEC_CODES.contains(&code), "not a SPEC code: {ctx}");
                assert!(
                    !["internal", "rate_limited", "too_large"].contains(&code),
                    "a generated frame must not get `{code}`: {ctx}"
                );
                assert!(
                    answer["message"].as_str().is_some_and(|s| !s.is_empty()),
                    "an error has a message: {ctx}"
                );
                format!("error:{code}")
            }
        };
        // A frame the decoder refuses gets exactly the decoder's error.
        if let Err(e) = ClientFrame::decode(&text) {
            let expected: Value =
                serde_json::from_str(&ServerMsg::error(e.reference, &e.error).to_text())
                    .expect("JSON");
            assert_eq!(answer, expected, "{ctx}");
        }
        *tally.entry(kind).or_default() += 1;
    }
}

/// Every answer was taken by its `ref`: any `ack` or `error` left over is a second answer, or
/// one without its `ref`. Then the session still answers a `ping`.
async fn assert_one_answer_each_and_alive(c: &mut WsClient, seed: u64) {
    let last = c.request(json!({"type":"ping"})).await;
    assert_eq!(last["type"], "ack", "seed {seed}: {last}");
    let extra: Vec<Value> = [c.kept("ack"), c.kept("error")].concat();
    assert!(
        extra.is_empty(),
        "seed {seed}: answers left over: {extra:?}"
    );
    for _ in 0..c.kept("pong").len() {
        c.expect("pong").await;
    }
    c.assert_alive().await;
}

async fn generated_frames_each_get_one_answer_and_the_sessions_live(db: TestDb) {
    let seed = std::env::var("FUZZ_WS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand_seed);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let app = spawn_app_with(db, |s| s.limits.client_msgs_per_sec = 100_000).await;
    let mut driver = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    for (id, assign) in [("ORD-F1", Some("DRV-001")), ("ORD-F2", None)] {
        let mut body =
            json!({"id": id, "pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.8,"lng":2.3}});
        if let Some(d) = assign {
            body["driver_id"] = json!(d);
        }
        let (status, body) = app
            .post_json("/api/v1/orders", &body, &app.dispatcher_token())
            .await;
        assert_eq!(status, 201, "{body}");
    }

    let mut tally = BTreeMap::new();
    send_generated(&app, &mut driver, "driver", &mut runner, seed, &mut tally).await;
    send_generated(
        &app,
        &mut dispatcher,
        "dispatcher",
        &mut runner,
        seed,
        &mut tally,
    )
    .await;
    assert_one_answer_each_and_alive(&mut driver, seed).await;
    assert_one_answer_each_and_alive(&mut dispatcher, seed).await;

    // The generator reaches past the decoder: some frames are done, some refused by the session.
    let acks = tally.get("ack").copied().unwrap_or_default();
    let beyond_decoding: usize = tally
        .iter()
        .filter(|(k, _)| k.starts_with("error:") && k.as_str() != "error:bad_request")
        .map(|(_, n)| n)
        .sum();
    eprintln!("fuzz_ws seed {seed}: {} frames: {tally:?}", 2 * FRAMES);
    assert!(acks >= FRAMES / 10, "seed {seed}: too few acks: {tally:?}");
    assert!(
        beyond_decoding >= FRAMES / 20,
        "seed {seed}: too few refusals past decoding: {tally:?}"
    );
}
on_both_backends!(generated_frames_each_get_one_answer_and_the_sessions_live);

/// A seed that differs from run to run.
fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}
