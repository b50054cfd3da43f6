//! The server publish API (SPEC 11): `POST /api/v1/rooms/{room}/messages` `{type, data}` by an
//! admin reaches the room's members as `{type, data, room, seq, id}`, stays in the room's history
//! (a `join` with `since` replays it), is done once per idempotency key, and is refused with the
//! contract's error body for a reserved or malformed `type`, a bad room, a big body or a
//! non-admin caller.

use crate::helpers::{spawn_app, TestApp, TestDb};
use crate::on_both_backends;
use rallypoint::protocol::Role;
use serde_json::{json, Value};

const FLEET: &str = "/api/v1/rooms/fleet:default/messages";

/// A `data` with every JSON kind in it, nested, and names the envelope also uses.
fn payload() -> Value {
    json!({
        "zone": "north gate", "density": 0.82, "count": 1204, "open": true, "note": null,
        "type": "inner", "room": "not the envelope's", "seq": -1,
        "gates": [{"id": "G1", "queue": [1, 2, 3]}, {"id": "G\"2\"", "queue": []}],
        "text": "ünïcødé ✓ \n tab\t"
    })
}

async fn publish(app: &TestApp, path: &str, body: &Value, token: &str) -> (u16, Value) {
    app.post_json(path, body, token).await
}

/// Asserts a refusal with its status and code in the contract's error body.
fn assert_refused(answer: &(u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{what}: {}", answer.1);
    assert!(
        answer.1["error"]["message"].is_string(),
        "{what}: {}",
        answer.1
    );
}

async fn a_member_receives_the_published_message_with_seq_id_and_exact_data(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let (status, answer) = publish(
        &app,
        FLEET,
        &json!({"type":"crowd:alert","data":payload()}),
        &app.admin_token(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["room"], "fleet:default", "{answer}");
    let seq = answer["seq"].as_i64().expect("a seq");
    let id = answer["id"].as_str().expect("an id");
    let m = alice.find(|m| m["type"] == "crowd:alert").await;
    assert_eq!(
        m,
        json!({"type":"crowd:alert","data":payload(),"room":"fleet:default","seq":seq,"id":id})
    );
    // To `dispatch` too, with that room's own seq.
    let (status, second) = publish(
        &app,
        "/api/v1/rooms/dispatch/messages",
        &json!({"type":"units.moved","data":[1, "two"]}),
        &app.admin_token(),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let m = desk.find(|m| m["type"] == "units.moved").await;
    assert_eq!(m["data"], json!([1, "two"]));
    assert_eq!(m["room"], "dispatch");
    assert_eq!(m["seq"], second["seq"]);
    assert_eq!(m["id"], second["id"]);
    // A missing `data` is `null`; the next message of the fleet room has the next seq.
    let (status, third) = publish(
        &app,
        FLEET,
        &json!({"type":"ping:fleet"}),
        &app.admin_token(),
    )
    .await;
    assert_eq!(status, 201, "{third}");
    assert_eq!(third["seq"].as_i64(), Some(seq + 1), "{third}");
    let m = alice.find(|m| m["type"] == "ping:fleet").await;
    assert_eq!(m["data"], Value::Null, "{m}");
    alice.assert_alive().await;
}
on_both_backends!(a_member_receives_the_published_message_with_seq_id_and_exact_data);

async fn a_join_with_since_replays_the_published_message(db: TestDb) {
    let app = spawn_app(db).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let joined = desk
        .request(json!({"type":"join","room":"fleet:default"}))
        .await;
    assert_eq!(joined["type"], "ack", "{joined}");
    let before = desk.expect("joined").await["seq"].as_i64().expect("a seq");
    desk.request(json!({"type":"leave","room":"fleet:default"}))
        .await;
    let mut sent = Vec::new();
    for n in 0..3 {
        let (status, answer) = publish(
            &app,
            FLEET,
            &json!({"type":"crowd:count","data":{"n":n}}),
            &app.admin_token(),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        sent.push(answer);
    }
    let ack = desk
        .request(json!({"type":"join","room":"fleet:default","since":before}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for (n, answer) in sent.iter().enumerate() {
        let m = desk
            .find(|m| m["type"] == "crowd:count" && m["id"] == answer["id"])
            .await;
        assert_eq!(m["data"], json!({"n": n}), "{m}");
        assert_eq!(m["seq"], answer["seq"], "{m}");
        assert_eq!(m["room"], "fleet:default", "{m}");
    }
    // The REST history holds them too.
    let (status, page) = app
        .get_json(
            &format!("/api/v1/rooms/fleet:default/events?since={before}"),
            Some(&app.dispatcher_token()),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().expect("events");
    assert_eq!(events.len(), 3, "{page}");
    assert_eq!(events[2]["data"], json!({"n": 2}), "{page}");
}
on_both_backends!(a_join_with_since_replays_the_published_message);

async fn a_repeated_idempotency_key_publishes_once(db: TestDb) {
    let app = spawn_app(db).await;
    let body = json!({"type":"crowd:alert","data":{"once":true}});
    let first = app
        .post_json_with_key(FLEET, &body, &app.admin_token(), "pub-1")
        .await;
    assert_eq!(first.0, 201, "{}", first.1);
    let again = app
        .post_json_with_key(FLEET, &body, &app.admin_token(), "pub-1")
        .await;
    assert_eq!(again, first, "a repeat gets the first answer");
    let (_, page) = app
        .get_json(
            "/api/v1/rooms/fleet:default/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    let published: Vec<&Value> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "crowd:alert")
        .collect();
    assert_eq!(published.len(), 1, "{page}");
    assert_eq!(published[0]["id"], first.1["id"], "{page}");
}
on_both_backends!(a_repeated_idempotency_key_publishes_once);

async fn reserved_and_malformed_types_and_bad_rooms_are_400_bad_request(db: TestDb) {
    let app = spawn_app(db).await;
    let admin = app.admin_token();
    let long = "t".repeat(65);
    let engine = [
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
    ];
    let socket_io = [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ];
    let malformed = ["", long.as_str(), "has space", "slash/ed", "ünï"];
    for kind in engine.iter().chain(&socket_io).chain(&malformed) {
        let answer = publish(&app, FLEET, &json!({"type":kind,"data":1}), &admin).await;
        assert_refused(&answer, 400, "bad_request", kind);
    }
    let ok = publish(&app, FLEET, &json!({"type":"t".repeat(64)}), &admin).await;
    assert_eq!(ok.0, 201, "64 characters are allowed: {}", ok.1);
    for body in [json!({"data":1}), json!({"type":7}), json!([1])] {
        let answer = publish(&app, FLEET, &body, &admin).await;
        assert_refused(&answer, 400, "bad_request", &body.to_string());
    }
    for room in ["nowhere", "fleet:", "zone:1", "dispatch:x"] {
        let answer = publish(
            &app,
            &format!("/api/v1/rooms/{room}/messages"),
            &json!({"type":"crowd:alert"}),
            &admin,
        )
        .await;
        assert_refused(&answer, 400, "bad_request", room);
    }
}
on_both_backends!(reserved_and_malformed_types_and_bad_rooms_are_400_bad_request);

async fn a_body_over_the_rest_limit_is_413_too_large(db: TestDb) {
    let app = spawn_app(db).await;
    let body = json!({"type":"crowd:alert","data":"x".repeat(70 * 1024)});
    let answer = publish(&app, FLEET, &body, &app.admin_token()).await;
    assert_refused(&answer, 413, "too_large", "70 KiB");
    let (status, body) = publish(
        &app,
        FLEET,
        &json!({"type":"crowd:alert"}),
        &app.admin_token(),
    )
    .await;
    assert_eq!(status, 201, "the server goes on: {body}");
}
on_both_backends!(a_body_over_the_rest_limit_is_413_too_large);

async fn only_an_admin_may_publish_others_get_403(db: TestDb) {
    let app = spawn_app(db).await;
    let body = json!({"type":"crowd:alert","data":{}});
    let driver = app.driver_token("DRV-001", "Alice");
    let observer = app.token_for("obs-1", Role::Observer, None);
    for (who, token) in [
        ("dispatcher", app.dispatcher_token()),
        ("driver", driver),
        ("observer", observer),
    ] {
        let answer = publish(&app, FLEET, &body, &token).await;
        assert_refused(&answer, 403, "forbidden", who);
        // Refused for the role before anything about the request is looked at.
        let answer = publish(&app, FLEET, &json!({"type":"welcome"}), &token).await;
        assert_refused(&answer, 403, "forbidden", who);
    }
    let (status, page) = app
        .get_json(
            "/api/v1/rooms/fleet:default/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["type"] != "crowd:alert"),
        "{page}"
    );
}
on_both_backends!(only_an_admin_may_publish_others_get_403);
