//! The external risk service of SPEC 4: its score is used when it answers in time, and the
//! built-in model takes over when it is slow or broken.

use crate::helpers::{spawn_app_with, TestApp, TestDb};
use crate::on_both_backends;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A real HTTP risk service on a random port: answers `score` after `delay`, records requests.
pub fn risk_service(score: f64, delay: Duration) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let server = HttpServer::new(move || {
        let recorded = recorded.clone();
        App::new().route(
            "/score",
            web::post().to(move |body: web::Json<Value>| {
                let recorded = recorded.clone();
                async move {
                    recorded.lock().unwrap().push(body.into_inner());
                    tokio::time::sleep(delay).await;
                    HttpResponse::Ok().json(json!({ "risk_score": score }))
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}/score", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    (url, seen)
}

async fn story(app: &TestApp) -> Value {
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    app.post_json(
        "/api/v1/orders",
        &json!({"id":"ORD-K","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001","priority":"high"}),
        &app.dispatcher_token(),
    )
    .await;
    alice
        .request(json!({"type":"accept","order_id":"ORD-K"}))
        .await;
    let ack = alice
        .request(json!({"type":"report","order_id":"ORD-K","kind":"traffic_jam","comment":"stuck"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack["event"].clone()
}

async fn the_external_service_decides_when_it_answers_in_time(db: TestDb) {
    let (url, seen) = risk_service(0.95, Duration::ZERO);
    let app = spawn_app_with(db, |s| s.risk.url = url).await;
    let event = story(&app).await;
    assert_eq!(event["risk_source"], "service");
    assert_eq!(event["risk_score"], 0.95);
    assert_eq!(
        event["action_taken"], "REASSIGNMENT_INITIATED",
        "a jam the service rates high moves the order"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r["event_id"], event["event_id"]);
    assert_eq!(r["order_id"], "ORD-K");
    assert_eq!(r["driver_id"], "DRV-001");
    assert_eq!(r["kind"], "traffic_jam");
    assert_eq!(r["comment"], "stuck");
    assert_eq!(r["priority"], "high");
    assert!(r["remaining_km"].as_f64().unwrap() > 0.0);
    assert_eq!(r["driver_incidents_24h"], 0);
    assert!(r["hour_of_day"].as_u64().unwrap() < 24);
}
on_both_backends!(the_external_service_decides_when_it_answers_in_time);

async fn a_slow_service_falls_back_to_the_built_in_model(db: TestDb) {
    let (url, seen) = risk_service(0.95, Duration::from_secs(2));
    let app = spawn_app_with(db, |s| {
        s.risk.url = url;
        s.risk.timeout_ms = 100;
    })
    .await;
    let event = story(&app).await;
    assert_eq!(event["risk_source"], "fallback");
    assert!(event["risk_score"].as_f64().unwrap() < 0.7);
    assert_eq!(event["action_taken"], "MAINTAIN");
    assert_eq!(seen.lock().unwrap().len(), 1, "the service was asked");
}
on_both_backends!(a_slow_service_falls_back_to_the_built_in_model);
