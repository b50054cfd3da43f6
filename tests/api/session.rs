//! Session mechanics: heartbeats and the location batches dispatchers see.

use crate::helpers::{spawn_app, spawn_app_with, TestDb};
use crate::on_both_backends;
use serde_json::json;

async fn a_silent_peer_is_dropped_after_two_and_a_half_heartbeats(db: TestDb) {
    let app = spawn_app_with(db, |s| s.realtime.heartbeat_ms = 200).await;
    let mut silent = app.ws(&app.dispatcher_token()).await;
    assert_eq!(silent.welcome["heartbeat_ms"], 200);
    assert_eq!(silent.expect_close_silently().await, Some(1001));
    let (_, health) = app.get_json("/api/health/socket", None).await;
    assert_eq!(
        health["connections"], 0,
        "the dropped session is gone: {health}"
    );
}
on_both_backends!(a_silent_peer_is_dropped_after_two_and_a_half_heartbeats);

async fn dispatchers_get_driver_locations_in_batches(db: TestDb) {
    let app = spawn_app(db).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    // Several quick updates: the batch carries the newest.
    for lng in [2.351, 2.352, 2.353] {
        bob.request(json!({"type":"location","lat":48.86,"lng":lng,"heading":180.0}))
            .await;
    }
    let batch = desk
        .find(|m| {
            m["type"] == "locations"
                && m["drivers"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|x| x["driver_id"] == "DRV-002" && x["lng"] == 2.353)
                })
        })
        .await;
    assert_eq!(batch["room"], "dispatch");
    assert!(
        batch.get("seq").is_none(),
        "locations are ephemeral: {batch}"
    );
    let entries: Vec<_> = batch["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["driver_id"] == "DRV-002")
        .collect();
    assert_eq!(entries.len(), 1, "one entry per driver per batch: {batch}");
    let (_, driver) = app
        .get_json("/api/v1/drivers/DRV-002", Some(&app.admin_token()))
        .await;
    assert_eq!(driver["location"]["lng"], 2.353);
    assert_eq!(driver["status"], "online");
}
on_both_backends!(dispatchers_get_driver_locations_in_batches);

async fn a_shutdown_closes_every_session_with_1012(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    app.shutdown().await;
    assert_eq!(alice.expect_close().await, Some(1012));
    assert_eq!(desk.expect_close().await, Some(1012));
    assert_eq!(
        app.hub
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
on_both_backends!(a_shutdown_closes_every_session_with_1012);
