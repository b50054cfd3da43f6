//! Authorization: every refusal is an `error` `forbidden` carrying the message's `ref`, and the
//! session goes on; REST answers 403. Token refresh keeps a session past its first token.

use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::{DriverId, Role};
use serde_json::{json, Value};

/// Creates `id` for `driver` over REST.
async fn order_for(app: &TestApp, id: &str, driver: &str) {
    let (status, body) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.8,"lng":2.3},"driver_id":driver}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Sends `frame` with a ref and asserts the answer is `forbidden` with that ref, then that the
/// session still answers a `ping` and a `join`/`leave` round trip.
async fn assert_forbidden(c: &mut WsClient, frame: Value) {
    let r = format!("f-{}", uuid::Uuid::new_v4().simple());
    let mut sent = frame.clone();
    sent["ref"] = Value::String(r.clone());
    c.send(&sent).await;
    let e = c.find(|m| m["ref"] == r.as_str()).await;
    assert_eq!(e["type"], "error", "{frame}: {e}");
    assert_eq!(e["code"], "forbidden", "{frame}: {e}");
    assert!(e["message"].is_string(), "{frame}: {e}");
    c.assert_alive().await;
    let ack = c.request(json!({"type":"ping"})).await;
    assert_eq!(ack["type"], "ack", "after {frame}: {ack}");
}

/// `GET /api/v1/rooms/{room}/events` as `token`: 403 with the contract's error body.
async fn assert_room_read_forbidden(app: &TestApp, room: &str, token: &str) {
    let (status, body) = app
        .get_json(&format!("/api/v1/rooms/{room}/events?since=0"), Some(token))
        .await;
    assert_eq!(status, 403, "{room}: {body}");
    assert_eq!(body["error"]["code"], "forbidden", "{room}: {body}");
    assert!(body["error"]["message"].is_string(), "{room}: {body}");
}

fn sign(app: &TestApp, claims: &Claims) -> String {
    app.hub.keys.sign(claims).expect("sign")
}

async fn a_driver_may_join_only_its_own_rooms(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    order_for(&app, "ORD-A", "DRV-001").await;
    order_for(&app, "ORD-B", "DRV-002").await;
    for room in [
        "driver:DRV-001",
        "fleet:other",
        "dispatch",
        "order:ORD-A",
        "order:ORD-NOPE",
    ] {
        assert_forbidden(&mut bob, json!({"type":"join","room":room})).await;
    }
    // Nothing was joined: the refused rooms are not Bob's to leave.
    let e = bob
        .request(json!({"type":"leave","room":"driver:DRV-001"}))
        .await;
    assert_eq!(e["code"], "not_found", "{e}");
    // Bob's own order room, and Alice's, are open to them.
    let ack = bob
        .request(json!({"type":"join","room":"order:ORD-B"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["room"], "order:ORD-B");
    let ack = alice
        .request(json!({"type":"join","room":"order:ORD-A"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Alice accepting her order is seen by her and not by Bob, who was refused that room.
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-A"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    alice
        .find(|m| m["type"] == "order_updated" && m["order_id"] == "ORD-A")
        .await;
    bob.assert_alive().await;
    assert!(
        bob.kept("order_updated")
            .iter()
            .all(|m| m["order_id"] != "ORD-A"),
        "Bob got messages of a room he was refused"
    );

    // Over REST: the same rooms, 403 with the contract's body; Bob's own rooms read fine.
    let token = app.driver_token("DRV-002", "Bob");
    for room in ["driver:DRV-001", "fleet:other", "dispatch", "order:ORD-A"] {
        assert_room_read_forbidden(&app, room, &token).await;
    }
    for room in ["driver:DRV-002", "fleet:default", "order:ORD-B"] {
        let (status, body) = app
            .get_json(
                &format!("/api/v1/rooms/{room}/events?since=0"),
                Some(&token),
            )
            .await;
        assert_eq!(status, 200, "{room}: {body}");
        assert_eq!(body["room"], room);
    }
}
on_both_backends!(a_driver_may_join_only_its_own_rooms);

async fn a_driver_may_not_speak_for_another_driver(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    assert_forbidden(
        &mut bob,
        json!({"type":"location","driver_id":"DRV-001","lat":10.0,"lng":10.0}),
    )
    .await;
    assert_forbidden(
        &mut bob,
        json!({"type":"status","driver_id":"DRV-001","status":"offline"}),
    )
    .await;
    // Alice was not touched.
    let (status, alice) = app
        .get_json("/api/v1/drivers/DRV-001", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["status"], "online", "{alice}");
    assert_eq!(alice["location"]["lat"], 48.85, "{alice}");
    // Naming itself is accepted.
    let ack = bob
        .request(json!({"type":"location","driver_id":"DRV-002","lat":48.87,"lng":2.36}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let ack = bob
        .request(json!({"type":"status","driver_id":"DRV-002","status":"offline"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["status"], "offline", "{ack}");
    let (_, bob_now) = app
        .get_json("/api/v1/drivers/DRV-002", Some(&app.admin_token()))
        .await;
    assert_eq!(bob_now["status"], "offline", "{bob_now}");
    assert_eq!(bob_now["location"]["lat"], 48.87, "{bob_now}");
}
on_both_backends!(a_driver_may_not_speak_for_another_driver);

async fn staff_may_not_act_as_a_driver(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    order_for(&app, "ORD-A", "DRV-001").await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    for frame in [
        json!({"type":"location","lat":48.0,"lng":2.0}),
        json!({"type":"status","status":"online"}),
        json!({"type":"status","status":"offline","driver_id":"DRV-001"}),
        json!({"type":"accept","order_id":"ORD-A"}),
        json!({"type":"decline","order_id":"ORD-A"}),
        json!({"type":"order_status","order_id":"ORD-A","status":"picked_up"}),
    ] {
        assert_forbidden(&mut desk, frame).await;
    }
    let mut admin = app.ws(&app.admin_token()).await;
    assert_forbidden(&mut admin, json!({"type":"accept","order_id":"ORD-A"})).await;
    // Nothing moved, and the dispatcher's own rights still work.
    let (_, order) = app
        .get_json("/api/v1/orders/ORD-A", Some(&app.admin_token()))
        .await;
    assert_eq!(order["driver_id"], "DRV-001", "{order}");
    assert_eq!(order["status"], "assigned", "{order}");
    assert_eq!(order["accepted_at"], Value::Null, "{order}");
    assert_eq!(order["version"], 1, "{order}");
    let (_, alice) = app
        .get_json("/api/v1/drivers/DRV-001", Some(&app.admin_token()))
        .await;
    assert_eq!(alice["status"], "busy", "{alice}");
    let ack = desk
        .request(json!({"type":"join","room":"order:ORD-A"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");

    // A dispatcher of another fleet may not join this fleet's room.
    let north = sign(
        &app,
        &Claims::new("disp-north", Role::Dispatcher, None, "north", 600),
    );
    let mut north = app.ws(&north).await;
    assert_forbidden(&mut north, json!({"type":"join","room":"fleet:default"})).await;
    let ack = north
        .request(json!({"type":"join","room":"driver:DRV-001"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}
on_both_backends!(staff_may_not_act_as_a_driver);

async fn an_observer_joins_only_rooms_its_patterns_admit(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    order_for(&app, "ORD-X", "DRV-001").await;
    let mut claims = Claims::new("watcher", Role::Observer, None, "default", 600);
    claims.rooms = Some(vec!["order:*".into()]);
    let token = sign(&app, &claims);
    let mut obs = app.ws(&token).await;
    assert_eq!(obs.welcome["role"], "observer");
    assert_eq!(obs.welcome["rooms"], json!({}), "{}", obs.welcome);
    let ack = obs
        .request(json!({"type":"join","room":"order:ORD-X"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["room"], "order:ORD-X");
    for frame in [
        json!({"type":"join","room":"dispatch"}),
        json!({"type":"join","room":"fleet:default"}),
        json!({"type":"join","room":"driver:DRV-001"}),
        json!({"type":"report","order_id":"ORD-X","kind":"accident"}),
        json!({"type":"status","status":"online"}),
        json!({"type":"accept","order_id":"ORD-X"}),
    ] {
        assert_forbidden(&mut obs, frame).await;
    }
    // The room it did join works: it sees the order move.
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-X"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let seen = obs
        .find(|m| m["type"] == "order_updated" && m["order_id"] == "ORD-X")
        .await;
    assert_eq!(seen["room"], "order:ORD-X");

    // REST: the same rules.
    for room in ["dispatch", "fleet:default", "driver:DRV-001"] {
        assert_room_read_forbidden(&app, room, &token).await;
    }
    let (status, body) = app
        .get_json("/api/v1/rooms/order:ORD-X/events?since=0", Some(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["events"].as_array().unwrap().is_empty(), "{body}");

    // An observer without `rooms` may join nothing.
    let bare = sign(
        &app,
        &Claims::new("blind", Role::Observer, None, "default", 600),
    );
    let mut blind = app.ws(&bare).await;
    assert_forbidden(&mut blind, json!({"type":"join","room":"order:ORD-X"})).await;
    assert_room_read_forbidden(&app, "order:ORD-X", &bare).await;
}
on_both_backends!(an_observer_joins_only_rooms_its_patterns_admit);

/// A driver token for DRV-009 (sub `d9`) valid for `ttl_s` seconds.
fn short_token(app: &TestApp, ttl_s: i64) -> (String, i64) {
    let claims = Claims::new(
        "d9",
        Role::Driver,
        Some(DriverId::from("DRV-009")),
        "default",
        ttl_s,
    );
    (sign(app, &claims), claims.exp)
}

/// Waits until the Unix second `exp` has passed by `margin_ms`.
async fn sleep_past(exp: i64, margin_ms: i64) {
    let left = exp * 1000 + margin_ms - chrono::Utc::now().timestamp_millis();
    if left > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(left as u64)).await;
    }
}

async fn a_refreshed_session_outlives_its_first_token_then_expires_with_the_new_one(db: TestDb) {
    let app = spawn_app(db).await;
    let (first, first_exp) = short_token(&app, 2);
    let mut c = app.ws(&first).await;
    let (second, second_exp) = short_token(&app, 4);
    assert!(second_exp > first_exp);
    let ack = c.request(json!({"type":"refresh","token":second})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["exp"], second_exp, "{ack}");
    // Past the first token's expiry the session is still there, and was never told it expired.
    sleep_past(first_exp, 600).await;
    c.assert_alive().await;
    let ack = c.request(json!({"type":"status","status":"online"})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert!(c.kept("error").is_empty(), "{:?}", c.kept("error"));
    // The second token expires in turn: token_expired, then 4001.
    let e = c.expect("error").await;
    assert_eq!(e["code"], "token_expired", "{e}");
    assert!(
        chrono::Utc::now().timestamp() >= second_exp,
        "closed before the refreshed token's expiry: {e}"
    );
    assert_eq!(c.expect_close().await, Some(4001));
}
on_both_backends!(a_refreshed_session_outlives_its_first_token_then_expires_with_the_new_one);

async fn a_refresh_with_someone_elses_or_a_bad_token_is_refused(db: TestDb) {
    let app = spawn_app(db).await;
    let (token, exp) = short_token(&app, 600);
    let mut c = app.ws(&token).await;
    let other_sub = sign(
        &app,
        &Claims::new(
            "d10",
            Role::Driver,
            Some(DriverId::from("DRV-009")),
            "default",
            3600,
        ),
    );
    let other_role = sign(&app, &Claims::new("d9", Role::Admin, None, "default", 3600));
    let other_driver = sign(
        &app,
        &Claims::new(
            "d9",
            Role::Driver,
            Some(DriverId::from("DRV-010")),
            "default",
            3600,
        ),
    );
    for t in [&other_sub, &other_role, &other_driver] {
        assert_forbidden(&mut c, json!({"type":"refresh","token":t})).await;
    }
    for (t, code) in [
        ("garbage".to_string(), "unauthorized"),
        (short_token(&app, -120).0, "token_expired"),
    ] {
        let e = c.request(json!({"type":"refresh","token":t})).await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["code"], code, "{e}");
        c.assert_alive().await;
    }
    // None of those took: the session still runs under its own token, as a driver.
    let ack = c.request(json!({"type":"join","room":"dispatch"})).await;
    assert_eq!(
        ack["code"], "forbidden",
        "an admin token was not taken: {ack}"
    );
    let (fresh, fresh_exp) = short_token(&app, 1200);
    let ack = c.request(json!({"type":"refresh","token":fresh})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["exp"], fresh_exp);
    assert!(fresh_exp > exp);
}
on_both_backends!(a_refresh_with_someone_elses_or_a_bad_token_is_refused);
