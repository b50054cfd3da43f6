//! Presence across real network drops: a tab reload within `realtime.offline_grace_ms` changes
//! nothing anyone can see; a longer drop sets the driver offline once, tells `dispatch` and the
//! fleet, and leaves the driver's order where it is.

use crate::helpers::{spawn_app_with, TestDb};
use crate::on_both_backends;
use serde_json::{json, Value};
use std::time::Duration;

const GRACE_MS: u64 = 1000;

fn status_changes<'a>(msgs: &'a [Value], driver: &str) -> Vec<&'a Value> {
    msgs.iter()
        .filter(|m| m["type"] == "driver_status" && m["driver_id"] == driver)
        .collect()
}

fn presence_changes(msgs: &[Value], driver: &str) -> Vec<Value> {
    msgs.iter()
        .filter(|m| m["type"] == "presence")
        .flat_map(|m| m["changes"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["driver_id"] == driver)
        .collect()
}

async fn a_reload_keeps_the_driver_online_and_a_long_drop_sets_it_offline_once(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.realtime.offline_grace_ms = GRACE_MS;
        s.realtime.presence_flush_ms = 50;
    })
    .await;
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    let mut colleague = app.online_driver("DRV-009", "Colleague", 48.90, 2.35).await;
    let alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let online = dispatcher
        .find(|m| m["type"] == "driver_status" && m["driver_id"] == "DRV-001")
        .await;
    assert_eq!(online["status"], "online");
    colleague
        .find(|m| {
            m["type"] == "presence"
                && m["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["driver_id"] == "DRV-001"))
        })
        .await;
    dispatcher.drain_for(Duration::from_millis(200)).await;
    colleague.drain_for(Duration::from_millis(200)).await;

    // A reload: the tab's socket drops and the new one connects at once.
    drop(alice);
    let mut alice = app.ws(&app.driver_token("DRV-001", "Alice")).await;
    assert_eq!(alice.welcome["status"], "online", "{}", alice.welcome);
    let wait = Duration::from_millis(GRACE_MS * 3 / 2);
    let (seen, seen_by_fleet) = tokio::join!(
        dispatcher.drain_for(wait),
        colleague.drain_for(Duration::from_millis(GRACE_MS * 3 / 2))
    );
    assert!(
        status_changes(&seen, "DRV-001").is_empty(),
        "a reload is not a status change: {seen:?}"
    );
    assert!(
        presence_changes(&seen_by_fleet, "DRV-001").is_empty(),
        "a reload is not a presence change: {seen_by_fleet:?}"
    );
    let (_, driver) = app
        .get_json("/api/v1/drivers/DRV-001", Some(&app.admin_token()))
        .await;
    assert_eq!(driver["status"], "online", "{driver}");

    // Alice holds an order, then drops for longer than the grace.
    let (status, _) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-P","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201);
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-P"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    dispatcher.drain_for(Duration::from_millis(200)).await;
    drop(alice);
    let offline = dispatcher
        .find(|m| m["type"] == "driver_status" && m["driver_id"] == "DRV-001")
        .await;
    assert_eq!(offline["status"], "offline", "{offline}");
    let after = dispatcher
        .drain_for(Duration::from_millis(GRACE_MS * 2))
        .await;
    assert!(
        status_changes(&after, "DRV-001").is_empty(),
        "offline once: {after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|m| m["type"] == "order_updated" && m["order_id"] == "ORD-P"),
        "the order does not move: {after:?}"
    );
    let presence = colleague
        .find(|m| {
            m["type"] == "presence"
                && m["changes"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["driver_id"] == "DRV-001" && c["status"] == "offline")
                })
        })
        .await;
    assert_eq!(presence["fleet"], "default");
    let (_, order) = app
        .get_json("/api/v1/orders/ORD-P", Some(&app.admin_token()))
        .await;
    assert_eq!(order["driver_id"], "DRV-001", "{order}");
    assert_eq!(order["status"], "assigned", "{order}");
    let (_, driver) = app
        .get_json("/api/v1/drivers/DRV-001", Some(&app.admin_token()))
        .await;
    assert_eq!(driver["status"], "offline", "{driver}");
    assert_eq!(driver["orders"], json!(["ORD-P"]), "{driver}");
}
on_both_backends!(a_reload_keeps_the_driver_online_and_a_long_drop_sets_it_offline_once);

/// A driver whose going offline cannot be committed (SQLite locked by another writer past the
/// busy timeout, as when thousands of drivers leave at once and the pool is exhausted) is tried
/// again until it is: it never stays online in the database with nobody connected.
#[actix_web::test]
async fn a_failed_offline_commit_is_tried_again_until_the_driver_is_offline() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let app = spawn_app_with(TestDb::sqlite(), |s| {
        s.realtime.offline_grace_ms = 300;
    })
    .await;
    let admin = app.admin_token();
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let (status, body) = app.get_json("/api/v1/drivers/DRV-001", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "online", "{body}");

    // Another writer holds the database for longer than the server's 5 s busy timeout.
    let url = app.db.url.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::SqliteConnection::establish(&url).expect("the test's connection");
        // The server may be writing at this moment (the driver's last commits, the janitor): wait
        // for it as the server's own connections do.
        conn.batch_execute("PRAGMA busy_timeout = 10000; BEGIN EXCLUSIVE")
            .expect("the exclusive lock");
        locked_tx.send(()).expect("the test waits");
        std::thread::sleep(Duration::from_millis(6500));
        conn.batch_execute("COMMIT").expect("the lock released");
    });
    actix_web::rt::task::spawn_blocking(move || locked_rx.recv())
        .await
        .expect("the waiting thread")
        .expect("the lock taken");
    alice.close().await;
    actix_web::rt::task::spawn_blocking(move || holder.join())
        .await
        .expect("the waiting thread")
        .expect("the holder thread");

    // The first commit failed under the lock; a later one sets the driver offline.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.get_json("/api/v1/drivers/DRV-001", Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "offline" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the driver is still {} 15 s after the lock was released",
            body["status"]
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}
