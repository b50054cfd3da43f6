//! Races the database must settle (issue 12, item 8) and clients that must not stall the
//! Dispatcher (item 4): two first connections of one new driver, the first messages of a new
//! room from several writers at once, cancels and assignments of one driver's orders at once
//! (a deadlock on PostgreSQL when room counters were taken in different orders), and a report
//! answered while another client floods the engine with unknown ids and replays.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb};
use crate::on_both_backends;
use futures_util::future::join_all;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn two_first_connections_of_a_new_driver_at_once_both_succeed(db: TestDb) {
    let app = spawn_app(db).await;
    for i in 0..5 {
        let id = format!("DRV-NEW-{i}");
        let token = app.driver_token(&id, "New");
        let query = format!("token={token}");
        let (a, b) = tokio::join!(app.try_ws(&query), app.try_ws(&query));
        let (mut a, mut b) = (
            a.expect("the first connects"),
            b.expect("the second connects"),
        );
        // The welcome comes once the driver is registered and attached: both get theirs.
        for c in [&mut a, &mut b] {
            let welcome = c
                .find(|m| m["type"] == "welcome" || m["type"] == "error")
                .await;
            assert_eq!(welcome["type"], "welcome", "{welcome}");
            assert_eq!(welcome["driver_id"], id.as_str());
        }
    }
    let (status, drivers) = app
        .get_json("/api/v1/drivers", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(drivers.as_array().map(Vec::len), Some(5), "{drivers}");
}
on_both_backends!(two_first_connections_of_a_new_driver_at_once_both_succeed);

async fn the_first_messages_of_a_new_room_from_many_writers_at_once_all_commit(db: TestDb) {
    let app = spawn_app(db).await;
    // Six drivers, each its own actor and its own commit; nothing was published yet, so their
    // `driver_status` messages are the first of `dispatch`.
    let mut drivers = Vec::new();
    for i in 0..6 {
        let id = format!("DRV-{i:03}");
        drivers.push(app.ws(&app.driver_token(&id, &id)).await);
    }
    for (i, d) in drivers.iter_mut().enumerate() {
        d.send(&json!({"type":"status","status":"online","ref":format!("s{i}")}))
            .await;
    }
    for (i, d) in drivers.iter_mut().enumerate() {
        let r = format!("s{i}");
        let answer = d
            .find(|m| m["ref"] == r.as_str() && (m["type"] == "ack" || m["type"] == "error"))
            .await;
        assert_eq!(answer["type"], "ack", "{answer}");
    }
    let (status, page) = app
        .get_json(
            "/api/v1/rooms/dispatch/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let seqs: Vec<i64> = page["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|m| m["seq"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>(), "{page}");
}
on_both_backends!(the_first_messages_of_a_new_room_from_many_writers_at_once_all_commit);

async fn create_for(app: &TestApp, id: &str, driver: &str) -> u16 {
    app.post_json(
        "/api/v1/orders",
        &json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":driver}),
        &app.admin_token(),
    )
    .await
    .0
}

async fn cancel(app: &TestApp, id: &str) -> u16 {
    app.post_json(
        &format!("/api/v1/orders/{id}/cancel"),
        &json!({}),
        &app.admin_token(),
    )
    .await
    .0
}

async fn cancels_and_assignments_of_one_drivers_orders_at_once_never_fail(db: TestDb) {
    let app = spawn_app(db).await;
    let (status, body) = app
        .post_json(
            "/api/v1/drivers",
            &json!({"id":"DRV-CAP","name":"Cap","capacity":3}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let _cap = app.online_driver("DRV-CAP", "Cap", 48.85, 2.35).await;
    for round in 0..8 {
        let (a, b) = (format!("ORD-A{round}"), format!("ORD-B{round}"));
        assert_eq!(create_for(&app, &a, "DRV-CAP").await, 201);
        // The cancel (order actor: order:, dispatch, driver: rooms) and the assignment
        // (Dispatcher: driver:, order:, dispatch rooms) commit at the same moment.
        let (cancelled, created) = tokio::join!(cancel(&app, &a), create_for(&app, &b, "DRV-CAP"));
        assert_eq!(cancelled, 200, "round {round}: the cancel");
        assert_eq!(created, 201, "round {round}: the assignment");
        assert_eq!(cancel(&app, &b).await, 200);
    }
}
on_both_backends!(cancels_and_assignments_of_one_drivers_orders_at_once_never_fail);

async fn a_report_is_answered_while_a_client_floods_unknown_ids_and_replays(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.client_msgs_per_sec = 200).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    app.give_order(&mut alice, "DRV-001", "ORD-F", true).await;
    // Some history in `dispatch` for the replays to read.
    for i in 0..20 {
        let id = format!("ORD-H{i}");
        app.post_json(
            "/api/v1/orders",
            &json!({"id":id,"pickup":{"lat":1.0,"lng":1.0},"dropoff":{"lat":1.1,"lng":1.1},"fleet":"other"}),
            &app.dispatcher_token(),
        )
        .await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut flooders = Vec::new();
    // A driver declining orders that do not exist, at its rate limit...
    let mut mallory = app.ws(&app.driver_token("DRV-666", "Mallory")).await;
    let s = stop.clone();
    flooders.push(actix_rt::spawn(async move {
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            let frame = json!({"type":"decline","order_id":format!("NOPE-{n}")});
            if !mallory.try_send(&frame).await {
                break;
            }
            n += 1;
            actix_rt::time::sleep(Duration::from_millis(6)).await;
        }
        n
    }));
    // ...and a dispatcher leaving and re-joining `dispatch` from the start.
    let mut replayer = app.ws(&app.dispatcher_token()).await;
    let s = stop.clone();
    flooders.push(actix_rt::spawn(async move {
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            let ok = replayer
                .try_send(&json!({"type":"leave","room":"dispatch"}))
                .await
                && replayer
                    .try_send(&json!({"type":"join","room":"dispatch","since":0}))
                    .await;
            if !ok {
                break;
            }
            n += 1;
            actix_rt::time::sleep(Duration::from_millis(12)).await;
        }
        n
    }));
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let answer = alice
        .request(json!({"type":"report","order_id":"ORD-F","kind":"accident"}))
        .await;
    stop.store(true, Ordering::Relaxed);
    let sent: Vec<u64> = join_all(flooders)
        .await
        .into_iter()
        .map(|r| r.unwrap_or(0))
        .collect();
    assert_eq!(answer["type"], "ack", "the report is answered: {answer}");
    assert_eq!(answer["event"]["order_id"], "ORD-F");
    assert!(sent.iter().all(|n| *n > 0), "both floods ran: {sent:?}");
}
on_both_backends!(a_report_is_answered_while_a_client_floods_unknown_ids_and_replays);
