//! Bad input gets the contract's error and the session survives it.

use crate::helpers::{spawn_app, TestDb};
use crate::on_both_backends;
use rallypoint::auth::{Claims, TokenKeys};
use rallypoint::protocol::{DriverId, Role};
use serde_json::json;

async fn bad_frames_get_bad_request_and_the_session_keeps_working(db: TestDb) {
    let app = spawn_app(db).await;
    let mut c = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    c.send_text("this is not json").await;
    let e = c.expect("error").await;
    assert_eq!(e["code"], "bad_request");
    c.assert_alive().await;
    for (frame, needle) in [
        (json!({"type":"teleport","ref":"a"}), "unknown message type"),
        (json!({"type":"accept","ref":"b"}), "order_id"),
        (
            json!({"type":"location","lat":"north","lng":2.0,"ref":"c"}),
            "invalid",
        ),
        (
            json!({"type":"report","order_id":"O","kind":"alien_abduction","ref":"d"}),
            "alien_abduction",
        ),
    ] {
        c.send(&frame).await;
        let r = frame["ref"].as_str().unwrap().to_string();
        let e = c.find(|m| m["ref"] == r.as_str()).await;
        assert_eq!(e["type"], "error", "{frame}: {e}");
        assert_eq!(e["code"], "bad_request", "{frame}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{frame}: {e}"
        );
        c.assert_alive().await;
    }
}
on_both_backends!(bad_frames_get_bad_request_and_the_session_keeps_working);

async fn a_driver_cannot_report_or_move_someone_elses_order(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    let (status, _) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-A","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.8,"lng":2.3},"driver_id":"DRV-001"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201);
    for frame in [
        json!({"type":"report","order_id":"ORD-A","kind":"accident"}),
        json!({"type":"accept","order_id":"ORD-A"}),
        json!({"type":"order_status","order_id":"ORD-A","status":"delivered"}),
        json!({"type":"join","room":"driver:DRV-001"}),
        json!({"type":"join","room":"dispatch"}),
    ] {
        let e = bob.request(frame.clone()).await;
        assert_eq!(e["type"], "error", "{frame}: {e}");
        assert_eq!(e["code"], "forbidden", "{frame}: {e}");
        bob.assert_alive().await;
    }
    let e = bob
        .request(json!({"type":"report","order_id":"NOPE","kind":"accident"}))
        .await;
    assert_eq!(e["code"], "not_found", "{e}");
    let (status, body) = app
        .get_json("/api/v1/orders/ORD-A", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["driver_id"], "DRV-001", "nothing moved: {body}");
    assert_eq!(body["version"], 1);
}
on_both_backends!(a_driver_cannot_report_or_move_someone_elses_order);

async fn bad_tokens_are_refused_before_the_upgrade(db: TestDb) {
    let app = spawn_app(db).await;
    assert_eq!(app.try_ws("").await.err(), Some(401));
    assert_eq!(app.try_ws("token=garbage").await.err(), Some(401));
    let expired = app
        .hub
        .keys
        .sign(&Claims::new("x", Role::Admin, None, "default", -120))
        .unwrap();
    assert_eq!(
        app.try_ws(&format!("token={expired}")).await.err(),
        Some(401)
    );
    let mut other = app.settings.auth.clone();
    other.secret = "a-completely-different-secret-of-32-bytes".into();
    let forged = TokenKeys::from_settings(&other)
        .unwrap()
        .sign(&Claims::new("x", Role::Admin, None, "default", 600))
        .unwrap();
    assert_eq!(
        app.try_ws(&format!("token={forged}")).await.err(),
        Some(401)
    );
    let (status, body) = app.get_json("/api/v1/orders", Some(&forged)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = app.get_json("/api/v1/orders", Some(&expired)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "token_expired");
    let (status, _) = app.get_json("/api/v1/orders", None).await;
    assert_eq!(status, 401);
}
on_both_backends!(bad_tokens_are_refused_before_the_upgrade);

async fn a_driver_calling_the_admin_override_is_forbidden(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    app.post_json(
        "/api/v1/orders",
        &json!({"id":"ORD-B","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.8,"lng":2.3}}),
        &app.dispatcher_token(),
    )
    .await;
    let token = app.driver_token("DRV-001", "Alice");
    let (status, body) = app
        .post_json(
            "/api/v1/orders/ORD-B/reassign",
            &json!({"driver_id":"DRV-001","reason":"mine"}),
            &token,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = app
        .post_json(
            "/api/v1/orders/ORD-B/reassign",
            &json!({"driver_id":5}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let (status, body) = app
        .post_json(
            "/api/v1/orders/ORD-B/reassign",
            &json!({"driver_id":"DRV-404","reason":"x"}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}
on_both_backends!(a_driver_calling_the_admin_override_is_forbidden);

async fn a_token_expiring_mid_session_closes_with_4001(db: TestDb) {
    let app = spawn_app(db).await;
    let claims = Claims::new(
        "d",
        Role::Driver,
        Some(DriverId::from("DRV-9")),
        "default",
        2,
    );
    let token = app.hub.keys.sign(&claims).unwrap();
    let mut c = app.ws(&token).await;
    let e = c.expect("error").await;
    assert_eq!(e["code"], "token_expired");
    assert_eq!(c.expect_close().await, Some(4001));
}
on_both_backends!(a_token_expiring_mid_session_closes_with_4001);

async fn an_oversized_rest_body_is_413_too_large(db: TestDb) {
    let app = spawn_app(db).await;
    let body = json!({"name": "x".repeat(70 * 1024)});
    let (status, answer) = app
        .post_json("/api/v1/drivers", &body, &app.admin_token())
        .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "too_large", "{answer}");
    let (status, _) = app
        .post_json(
            "/api/v1/drivers",
            &json!({"id":"DRV-OK","name":"Fine"}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 201, "the server goes on");
}
on_both_backends!(an_oversized_rest_body_is_413_too_large);
