//! A restart loses no driver, order, assignment, incident or room history.

use crate::helpers::{spawn_app, TestDb};
use crate::on_both_backends;
use serde_json::json;

async fn a_restart_keeps_orders_incidents_and_history(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.8600, 2.3522).await;
    app.post_json(
        "/api/v1/orders",
        &json!({"id":"ORD-R","pickup":{"lat":48.8566,"lng":2.3522},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
        &app.dispatcher_token(),
    )
    .await;
    alice.expect("order_assigned").await;
    alice
        .request(json!({"type":"accept","order_id":"ORD-R"}))
        .await;
    let ack = alice
        .request(json!({"type":"report","order_id":"ORD-R","kind":"accident"}))
        .await;
    let event_id = ack["event"]["event_id"].as_str().unwrap().to_string();
    let assigned = bob.expect("order_assigned").await;
    let seq = assigned["seq"].as_i64().unwrap();
    drop((alice, bob));

    let db = app.stop().await;
    let app = spawn_app(db).await;

    let admin = app.admin_token();
    let (_, order) = app.get_json("/api/v1/orders/ORD-R", Some(&admin)).await;
    assert_eq!(order["driver_id"], "DRV-002", "{order}");
    assert_eq!(order["status"], "assigned");
    let (_, incidents) = app.get_json("/api/v1/incidents", Some(&admin)).await;
    assert_eq!(incidents[0]["event_id"], event_id.as_str());
    assert_eq!(incidents[0]["new_driver_id"], "DRV-002");
    let (_, drivers) = app.get_json("/api/v1/drivers", Some(&admin)).await;
    assert_eq!(drivers.as_array().unwrap().len(), 2, "{drivers}");
    let (status, history) = app
        .get_json("/api/v1/rooms/driver:DRV-002/events?since=0", Some(&admin))
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["seq"], seq);
    assert_eq!(history["recovered"], true);
    let events = history["events"].as_array().unwrap();
    assert!(events
        .iter()
        .any(|e| e["type"] == "order_assigned" && e["order_id"] == "ORD-R"));

    // Bob reconnects: his welcome carries the order, and a join from seq 0 replays his room.
    let mut bob = app.ws(&app.driver_token("DRV-002", "Bob")).await;
    let orders = bob.welcome["orders"].as_array().unwrap().clone();
    assert_eq!(orders.len(), 1, "{}", bob.welcome);
    assert_eq!(orders[0]["id"], "ORD-R");
    assert_eq!(bob.welcome["rooms"]["driver:DRV-002"], seq);
    let ack = bob
        .request(json!({"type":"join","room":"driver:DRV-002","since":0}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let replayed = bob
        .find(|m| m["type"] == "order_assigned" && m["seq"] == seq)
        .await;
    assert_eq!(replayed["order_id"], "ORD-R");
}
on_both_backends!(a_restart_keeps_orders_incidents_and_history);
