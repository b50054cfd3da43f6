//! Exactly-once reports with an idempotency key, and resuming rooms from `since` on connect.

use crate::helpers::{spawn_app, TestDb};
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
