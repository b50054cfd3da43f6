//! SOS without an order (SPEC 10) over real sockets: a driver's `sos` reaches `dispatch` and its
//! fleet room as one publication, is stored and listed, and is resolved once by staff.

use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::{DriverId, Role};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a socket is watched for a copy it must not get.
const QUIET: Duration = Duration::from_millis(500);

/// A driver's socket in `fleet`.
async fn driver_in(app: &TestApp, id: &str, fleet: &str) -> WsClient {
    let mut claims = Claims::new(
        &id.to_lowercase(),
        Role::Driver,
        Some(DriverId::from(id)),
        fleet,
        3600,
    );
    claims.name = Some(id.to_string());
    app.ws(&app.hub.keys.sign(&claims).expect("sign")).await
}

/// `who` raises an SOS; answers its ack.
async fn sos(who: &mut WsClient, body: Value) -> Value {
    let mut msg = json!({"type":"sos"});
    if let (Some(m), Some(b)) = (msg.as_object_mut(), body.as_object()) {
        m.extend(b.clone());
    }
    who.request(msg).await
}

fn alert_of(m: &Value, t: &str, alert_id: &Value) -> bool {
    m["type"] == t && m["alert_id"] == *alert_id
}

/// How many copies of the alert's message of type `t` reach `c` within `QUIET` (beside those
/// already taken).
async fn more_copies(c: &mut WsClient, t: &str, alert_id: &Value) -> usize {
    c.drain_for(QUIET)
        .await
        .iter()
        .filter(|m| alert_of(m, t, alert_id))
        .count()
}

/// The alerts `GET /api/v1/sos{query}` lists.
async fn listed(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get_json(
            &format!("/api/v1/sos{query}"),
            Some(&app.dispatcher_token()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

async fn a_drivers_sos_reaches_dispatch_and_its_fleet_once_and_is_resolved_once(db: TestDb) {
    let app = spawn_app(db).await;
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    let mut alice = driver_in(&app, "DRV-001", "default").await;
    let mut bob = driver_in(&app, "DRV-002", "default").await;
    let mut north = driver_in(&app, "DRV-009", "north").await;

    let ack = sos(
        &mut alice,
        json!({"lat":48.8566,"lng":2.3522,"message":"flat tyre, stranger following"}),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let alert = ack["alert"].clone();
    let id = alert["alert_id"].clone();
    assert!(id.is_string(), "{ack}");
    assert_eq!(alert["driver_id"], "DRV-001");
    assert_eq!(alert["fleet"], "default");
    assert_eq!(alert["lat"], 48.8566);
    assert_eq!(alert["lng"], 2.3522);
    assert_eq!(alert["message"], "flat tyre, stranger following");
    assert!(alert["resolved_at"].is_null(), "{alert}");

    let at_dispatch = dispatcher
        .find(|m| alert_of(m, "emergency_alert", &id))
        .await;
    assert_eq!(at_dispatch["room"], "dispatch");
    assert_eq!(at_dispatch["driver_id"], "DRV-001");
    assert_eq!(at_dispatch["lat"], 48.8566);
    assert_eq!(at_dispatch["lng"], 2.3522);
    assert_eq!(at_dispatch["message"], "flat tyre, stranger following");
    assert!(at_dispatch["timestamp"].is_string(), "{at_dispatch}");
    assert!(at_dispatch["seq"].is_i64(), "{at_dispatch}");
    let at_fleet = bob.find(|m| alert_of(m, "emergency_alert", &id)).await;
    assert_eq!(at_fleet["room"], "fleet:default");
    assert_eq!(
        at_fleet["id"], at_dispatch["id"],
        "one publication, one id: {at_fleet} {at_dispatch}"
    );
    assert_eq!(
        more_copies(&mut dispatcher, "emergency_alert", &id).await,
        0
    );
    assert_eq!(more_copies(&mut bob, "emergency_alert", &id).await, 0);
    assert_eq!(
        more_copies(&mut north, "emergency_alert", &id).await,
        0,
        "another fleet's driver hears nothing of it"
    );

    let all = listed(&app, "").await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0], alert, "the list holds what the ack answered");
    assert_eq!(listed(&app, "?open=true").await.len(), 1);

    let path = format!("/api/v1/sos/{}/resolve", id.as_str().unwrap_or_default());
    let (status, body) = app
        .post_json(&path, &json!({}), &app.driver_token("DRV-002", "Bob"))
        .await;
    assert_eq!(status, 403, "a driver may not resolve: {body}");
    let (status, resolved) = app
        .post_json(&path, &json!({}), &app.dispatcher_token())
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["alert_id"], id);
    assert_eq!(resolved["resolved_by"], "dispatcher-1");
    assert!(resolved["resolved_at"].is_string(), "{resolved}");

    let done = dispatcher
        .find(|m| alert_of(m, "emergency_alert_resolved", &id))
        .await;
    assert_eq!(done["room"], "dispatch");
    assert_eq!(done["driver_id"], "DRV-001");
    assert_eq!(done["resolved_by"], "dispatcher-1");
    assert!(done["timestamp"].is_string(), "{done}");
    let done_fleet = bob
        .find(|m| alert_of(m, "emergency_alert_resolved", &id))
        .await;
    assert_eq!(done_fleet["room"], "fleet:default");
    assert_eq!(done_fleet["id"], done["id"], "one publication, one id");
    assert_eq!(
        more_copies(&mut north, "emergency_alert_resolved", &id).await,
        0
    );

    let (status, body) = app.post_json(&path, &json!({}), &app.admin_token()).await;
    assert_eq!(status, 409, "resolved twice: {body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, body) = app
        .post_json(
            "/api/v1/sos/no-such-alert/resolve",
            &json!({}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        more_copies(&mut dispatcher, "emergency_alert_resolved", &id).await,
        0,
        "a refused resolve publishes nothing"
    );

    assert!(listed(&app, "?open=true").await.is_empty());
    let all = listed(&app, "").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0], resolved);
}
on_both_backends!(a_drivers_sos_reaches_dispatch_and_its_fleet_once_and_is_resolved_once);

async fn the_list_is_newest_first_staff_only_and_limited(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = driver_in(&app, "DRV-001", "default").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let ack = sos(&mut alice, json!({"lat":10.0 + f64::from(i),"lng":20.0})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert!(ack["alert"]["message"].is_null(), "the message is optional");
        ids.push(ack["alert"]["alert_id"].clone());
    }
    let all = listed(&app, "").await;
    let got: Vec<Value> = all.iter().map(|a| a["alert_id"].clone()).collect();
    ids.reverse();
    assert_eq!(got, ids, "newest first");
    assert_eq!(listed(&app, "?limit=2").await.len(), 2);
    let (status, _) = app
        .get_json("/api/v1/sos?limit=0", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .get_json("/api/v1/sos", Some(&app.driver_token("DRV-001", "Alice")))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app.get_json("/api/v1/sos", None).await;
    assert_eq!(status, 401);
}
on_both_backends!(the_list_is_newest_first_staff_only_and_limited);

async fn only_a_driver_raises_an_sos_and_its_position_is_checked(db: TestDb) {
    let app = spawn_app(db).await;
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    let err = sos(&mut dispatcher, json!({"lat":1.0,"lng":2.0})).await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "forbidden");
    let mut alice = driver_in(&app, "DRV-001", "default").await;
    for bad in [
        json!({"lat":90.5,"lng":2.0}),
        json!({"lat":1.0,"lng":-180.5}),
        json!({"lat":"north","lng":2.0}),
        json!({"lng":2.0}),
        json!({"lat":1.0,"lng":2.0,"message":"m".repeat(501)}),
    ] {
        let err = sos(&mut alice, bad.clone()).await;
        assert_eq!(err["type"], "error", "{bad}: {err}");
        assert_eq!(err["code"], "bad_request", "{bad}: {err}");
    }
    let ok = sos(
        &mut alice,
        json!({"lat":1.0,"lng":2.0,"message":"m".repeat(500)}),
    )
    .await;
    assert_eq!(ok["type"], "ack", "{ok}");
    alice.assert_alive().await;
    assert_eq!(
        listed(&app, "").await.len(),
        1,
        "only the good one is stored"
    );
}
on_both_backends!(only_a_driver_raises_an_sos_and_its_position_is_checked);

async fn the_same_key_twice_stores_one_alert_and_answers_the_same_ack(db: TestDb) {
    let app = spawn_app(db).await;
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    let mut alice = driver_in(&app, "DRV-001", "default").await;
    let body = json!({"lat":48.85,"lng":2.35,"message":"help","idempotency_key":"sos-1"});
    let first = sos(&mut alice, body.clone()).await;
    assert_eq!(first["type"], "ack", "{first}");
    let again = sos(&mut alice, body).await;
    assert_eq!(again["type"], "ack", "{again}");
    assert_eq!(again["alert"], first["alert"], "the same answer");
    let id = first["alert"]["alert_id"].clone();
    dispatcher
        .find(|m| alert_of(m, "emergency_alert", &id))
        .await;
    let heard = dispatcher.drain_for(QUIET).await;
    assert!(
        !heard.iter().any(|m| m["type"] == "emergency_alert"),
        "announced once: {heard:?}"
    );
    assert_eq!(listed(&app, "").await.len(), 1, "stored once");

    // A resolve under one Idempotency-Key, repeated, answers the first resolve (not 409).
    let path = format!("/api/v1/sos/{}/resolve", id.as_str().unwrap_or_default());
    let (s1, r1) = app
        .post_json_with_key(&path, &json!({}), &app.admin_token(), "res-1")
        .await;
    let (s2, r2) = app
        .post_json_with_key(&path, &json!({}), &app.admin_token(), "res-1")
        .await;
    assert_eq!((s1, s2), (200, 200), "{r1} {r2}");
    assert_eq!(r1, r2);
}
on_both_backends!(the_same_key_twice_stores_one_alert_and_answers_the_same_ack);
