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
