//! Health endpoints and the dev login switch.

use crate::helpers::{spawn_app, spawn_app_with, TestDb};
use crate::on_both_backends;
use serde_json::json;

async fn health_reports_the_database_and_connections(db: TestDb) {
    let app = spawn_app(db).await;
    let (status, body) = app.get_json("/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["connections"], 0);
    let _c = app.ws(&app.dispatcher_token()).await;
    let (status, body) = app.get_json("/api/health/socket", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["connections"], 1);
}
on_both_backends!(health_reports_the_database_and_connections);

async fn dev_login_exists_only_when_enabled(db: TestDb) {
    let app = spawn_app(db).await;
    let (status, body) = app
        .post_json("/api/v1/dev/login", &json!({"sub":"a","role":"admin"}), "x")
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let db = app.stop().await;
    let app = spawn_app_with(db, |s| s.auth.dev_login = true).await;
    let (status, body) = app
        .post_json(
            "/api/v1/dev/login",
            &json!({"sub":"alice","role":"driver","driver_id":"DRV-001"}),
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    let c = app.ws(token).await;
    assert_eq!(c.welcome["driver_id"], "DRV-001");
    assert_eq!(c.welcome["role"], "driver");
}
on_both_backends!(dev_login_exists_only_when_enabled);

async fn dev_login_off_is_404_before_its_body_is_read(db: TestDb) {
    let app = spawn_app(db).await;
    let client = awc::Client::default();
    let url = format!("{}/api/v1/dev/login", app.address);
    // Malformed JSON and a body past the JSON limit: were the body read, 400 and 413.
    for body in ["{not json".to_string(), "x".repeat(200 * 1024)] {
        let mut resp = client
            .post(&url)
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("the request is answered");
        assert_eq!(resp.status().as_u16(), 404);
        let body: serde_json::Value = resp.json().await.expect("a JSON error body");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // On, the same malformed body is what it is: a bad request.
    let db = app.stop().await;
    let app = spawn_app_with(db, |s| s.auth.dev_login = true).await;
    let mut resp = client
        .post(format!("{}/api/v1/dev/login", app.address))
        .insert_header(("content-type", "application/json"))
        .send_body("{not json")
        .await
        .expect("the request is answered");
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "bad_request");
}
on_both_backends!(dev_login_off_is_404_before_its_body_is_read);

/// `rallypoint_health_db_checks_total` of this server's `/metrics`.
async fn health_checks_made(app: &crate::helpers::TestApp) -> u64 {
    let mut resp = awc::Client::default()
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("the request is answered");
    let body = resp.body().limit(8 << 20).await.expect("a body");
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("rallypoint_health_db_checks_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rallypoint_health_db_checks_total in /metrics:\n{text}"))
}

async fn health_asks_the_database_at_most_once_a_second(db: TestDb) {
    let app = spawn_app(db).await;
    let started = std::time::Instant::now();
    for _ in 0..50 {
        let (status, body) = app.get_json("/health", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["database"], "ok");
    }
    let elapsed = started.elapsed();
    let checks = health_checks_made(&app).await;
    assert!(checks >= 1, "the first /health asked the database");
    // Checks are at least a second apart, so however slow this machine is, 50 calls over
    // `elapsed` make at most one more check than the whole seconds elapsed (50 without a cache).
    assert!(
        checks <= elapsed.as_secs() + 1,
        "{checks} database checks for 50 /health calls in {elapsed:?}"
    );
}
on_both_backends!(health_asks_the_database_at_most_once_a_second);
