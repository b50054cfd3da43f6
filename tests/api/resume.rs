//! Exactly-once reports with an idempotency key, and resuming rooms from `since` on connect.

use crate::helpers::{spawn_app, spawn_app_with, TestDb};
use crate::on_both_backends;
use serde_json::json;

async fn a_report_resent_with_its_key_is_done_once(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    app.post_json(
        "/api/v1/orders",
        &json!({"id":"ORD-I","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
        &app.dispatcher_token(),
    )
    .await;
    alice
        .request(json!({"type":"accept","order_id":"ORD-I"}))
        .await;
    let report = json!({"type":"report","order_id":"ORD-I","kind":"vehicle_breakdown","idempotency_key":"k-1"});
    let first = alice.request(report.clone()).await;
    assert_eq!(first["type"], "ack", "{first}");
    // The phone reconnects and resends twice.
    drop(alice);
    let mut alice = app.ws(&app.driver_token("DRV-001", "Alice")).await;
    for _ in 0..2 {
        let again = alice.request(report.clone()).await;
        assert_eq!(again["type"], "ack", "{again}");
        assert_eq!(
            again["event"], first["event"],
            "the repeat gets the first answer"
        );
    }
    // And over REST with the same key from the same sub: the same answer, nothing new.
    let client = awc::Client::default();
    let mut resp = client
        .post(format!("{}/api/v1/events/delay", app.address))
        .bearer_auth(app.driver_token("DRV-001", "Alice"))
        .insert_header(("Idempotency-Key", "k-1"))
        .send_json(&json!({"order_id":"ORD-I","kind":"vehicle_breakdown"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, first["event"], "REST answers the event itself");
    let (_, incidents) = app
        .get_json("/api/v1/incidents", Some(&app.admin_token()))
        .await;
    assert_eq!(
        incidents.as_array().unwrap().len(),
        1,
        "one incident: {incidents}"
    );
    assert_eq!(bob.expect("order_assigned").await["order_id"], "ORD-I");
    let (_, history) = app
        .get_json(
            "/api/v1/rooms/fleet:default/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    let announced = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "emergency_event")
        .count();
    assert_eq!(announced, 1, "one emergency_event: {history}");
}
on_both_backends!(a_report_resent_with_its_key_is_done_once);

async fn a_driver_reconnecting_with_since_gets_what_it_missed_in_order(db: TestDb) {
    let app = spawn_app(db).await;
    let carol = app.online_driver("DRV-003", "Carol", 48.90, 2.35).await;
    let seq = carol.welcome["rooms"]["fleet:default"].as_i64().unwrap();
    drop(carol);
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    app.post_json(
        "/api/v1/orders",
        &json!({"id":"ORD-S","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
        &app.dispatcher_token(),
    )
    .await;
    alice
        .request(json!({"type":"accept","order_id":"ORD-S"}))
        .await;
    let mut ids = Vec::new();
    for kind in ["traffic_jam", "weather", "vehicle_breakdown"] {
        let ack = alice
            .request(json!({"type":"report","order_id":"ORD-S","kind":kind}))
            .await;
        ids.push(ack["event"]["event_id"].clone());
    }
    let token = app.driver_token("DRV-003", "Carol");
    let mut carol = app
        .ws_query(&format!("token={token}&since=fleet%3Adefault%3A{seq}"))
        .await;
    let joined = carol
        .find(|m| m["type"] == "joined" && m["room"] == "fleet:default")
        .await;
    assert_eq!(joined["recovered"], true);
    let mut got = Vec::new();
    for _ in 0..3 {
        let e = carol.expect("emergency_event").await;
        got.push(e["event_id"].clone());
    }
    assert_eq!(got, ids, "the missed events, in order");
}
on_both_backends!(a_driver_reconnecting_with_since_gets_what_it_missed_in_order);

async fn a_report_resent_with_its_key_after_a_restart_is_done_once(db: TestDb) {
    // The old engine's actors outlive its server in this process: a long grace keeps them from
    // writing "offline" into the database the restarted server uses.
    let app = spawn_app_with(db, |s| s.realtime.offline_grace_ms = 600_000).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    let (status, body) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-K","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-K"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let report = json!({"type":"report","order_id":"ORD-K","kind":"vehicle_breakdown","comment":"smoke","idempotency_key":"k-restart"});
    let first = alice.request(report.clone()).await;
    assert_eq!(first["type"], "ack", "{first}");
    let event = first["event"].clone();
    assert!(event["event_id"].is_string(), "{first}");

    drop(alice);
    let db = app.stop().await;
    let app = spawn_app(db).await;

    // The phone reconnects to the restarted server and resends.
    let mut alice = app.ws(&app.driver_token("DRV-001", "Alice")).await;
    let again = alice.request(report.clone()).await;
    assert_eq!(again["type"], "ack", "{again}");
    assert_eq!(again["event"], event, "the repeat gets the first answer");
    // And over REST with the same key from the same sub.
    let (status, body) = app
        .post_json_with_key(
            "/api/v1/events/delay",
            &json!({"order_id":"ORD-K","kind":"vehicle_breakdown","comment":"smoke"}),
            &app.driver_token("DRV-001", "Alice"),
            "k-restart",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, event, "REST answers the event itself");

    let admin = app.admin_token();
    let (_, incidents) = app.get_json("/api/v1/incidents", Some(&admin)).await;
    let incidents = incidents.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "one incident: {incidents:?}");
    assert_eq!(incidents[0]["event_id"], event["event_id"]);
    let (_, history) = app
        .get_json("/api/v1/rooms/fleet:default/events?since=0", Some(&admin))
        .await;
    let announced: Vec<_> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "emergency_event")
        .collect();
    assert_eq!(announced.len(), 1, "one emergency_event: {history}");
    assert_eq!(announced[0]["event_id"], event["event_id"]);
    // The order moved once, as the first answer said.
    let (_, order) = app.get_json("/api/v1/orders/ORD-K", Some(&admin)).await;
    assert_eq!(
        order["driver_id"], event["new_driver_id"],
        "{order} {event}"
    );
}
on_both_backends!(a_report_resent_with_its_key_after_a_restart_is_done_once);
