//! Exactly once when the connection drops mid-request: the work a client started finishes and is
//! recorded under its idempotency key even though its session is gone, so the resend after the
//! reconnect gets the first answer and nothing is done twice.

use crate::helpers::{spawn_app_with, TestDb};
use crate::on_both_backends;
use crate::risk_service::risk_service;
use serde_json::{json, Value};
use std::time::Duration;

async fn a_report_whose_connection_drops_mid_request_is_done_once(db: TestDb) {
    // A risk service that takes 500 ms: the report is still being worked on when the client drops.
    let (url, seen) = risk_service(0.95, Duration::from_millis(500));
    let app = spawn_app_with(db, |s| {
        s.risk.url = url;
        s.risk.timeout_ms = 5000;
    })
    .await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    let (status, _) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-D","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201);
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-D"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let report = json!({"type":"report","order_id":"ORD-D","kind":"vehicle_breakdown","idempotency_key":"k-drop"});
    // Sent, and the phone loses its connection before any answer.
    alice.send(&report).await;
    while seen.lock().unwrap().is_empty() {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    drop(alice);

    let mut alice = app.ws(&app.driver_token("DRV-001", "Alice")).await;
    let mut answer = Value::Null;
    for _ in 0..200 {
        answer = alice.request(report.clone()).await;
        // `conflict` only while the first attempt is still running.
        if answer["type"] == "ack" {
            break;
        }
        assert_eq!(answer["code"], "conflict", "{answer}");
        // Well under the rate limit (50 a second).
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer["type"], "ack", "the resend gets an answer: {answer}");
    let again = alice.request(report.clone()).await;
    assert_eq!(
        again["event"], answer["event"],
        "and the same one each time"
    );
    let (_, incidents) = app
        .get_json("/api/v1/incidents", Some(&app.admin_token()))
        .await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["event_id"], answer["event"]["event_id"]);
}
on_both_backends!(a_report_whose_connection_drops_mid_request_is_done_once);
