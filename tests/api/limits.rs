//! Limits (SPEC 6) and the graceful shutdown: 503 at `max_connections`, 1009 for an oversized
//! frame (the rate limit is in `rate_limit`), and a shutdown that loses nothing acknowledged.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb, WAIT};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::{DriverId, Role};
use serde_json::json;
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn the_connection_past_max_connections_gets_503_until_one_closes(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.max_connections = 2).await;
    let token = app.dispatcher_token();
    let mut first = app.ws(&token).await;
    let mut second = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    assert_eq!(app.try_ws(&format!("token={token}")).await.err(), Some(503));
    let (status, body) = app.ws_refusal(&format!("token={token}")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    // The refusal did not disturb the two sessions.
    first.assert_alive().await;
    second.assert_alive().await;
    // One leaves: a new session gets in once the server has seen it go.
    drop(first);
    let deadline = Instant::now() + WAIT;
    let mut third = loop {
        match app.try_ws(&format!("token={token}")).await {
            Ok(mut c) => {
                c.welcome = c.expect("welcome").await;
                break c;
            }
            Err(503) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("after a session closed the upgrade still got {s}"),
        }
    };
    assert_eq!(third.welcome["role"], "dispatcher");
    third.assert_alive().await;
    second.assert_alive().await;
    assert_eq!(app.try_ws(&format!("token={token}")).await.err(), Some(503));
}
on_both_backends!(the_connection_past_max_connections_gets_503_until_one_closes);

/// A text frame of exactly `len` bytes holding a `ping`.
fn ping_of_len(len: usize) -> String {
    let head = r#"{"type":"ping","pad":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

async fn a_frame_over_max_frame_bytes_closes_that_session_with_1009(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.max_frame_bytes = 1024).await;
    let mut big = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut other = app.ws(&app.dispatcher_token()).await;
    // Up to the limit is fine.
    big.send_text(&ping_of_len(1024)).await;
    big.expect("pong").await;
    big.send_text(&ping_of_len(2000)).await;
    assert_eq!(big.expect_close().await, Some(1009));
    assert!(
        big.kept("pong").is_empty(),
        "the oversized frame was handled: {:?}",
        big.kept("pong")
    );
    other.assert_alive().await;
    let ack = other
        .request(json!({"type":"join","room":"driver:DRV-001"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}
on_both_backends!(a_frame_over_max_frame_bytes_closes_that_session_with_1009);

/// What the clients were told was done before the shutdown cut them off.
#[derive(Default)]
struct Acked {
    /// Orders created over REST (2xx).
    orders: Vec<String>,
    /// `event_id`s of acked reports.
    events: Vec<String>,
    /// Versions of ORD-P1 acked to `accept` / `order_status`.
    versions: Vec<i64>,
    /// DRV-003's acked status changes, in order.
    statuses: Vec<String>,
    /// Order creations refused with a 4xx (none should be).
    refused: Vec<String>,
}

async fn create_order(app: &TestApp, id: &str, driver: Option<&str>) {
    let mut body =
        json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.8,"lng":2.3}});
    if let Some(d) = driver {
        body["driver_id"] = json!(d);
    }
    let (status, body) = app
        .post_json("/api/v1/orders", &body, &app.dispatcher_token())
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn a_graceful_shutdown_loses_nothing_that_was_acknowledged(db: TestDb) {
    // The old engine's actors outlive its server in this process: a long grace keeps them from
    // writing "offline" into the database the restarted server uses.
    // This test is about the shutdown, not the rate limit: the clients go as fast as they can.
    // No report moves an order (threshold 1): no driver is freed while orders are created, which
    // would run into the race of lifecycle::orders_created_as_a_driver_comes_online_...
    let app = spawn_app_with(db, |s| {
        s.realtime.offline_grace_ms = 600_000;
        s.limits.client_msgs_per_sec = 1_000_000;
        s.dispatch.reassign_threshold = 1.0;
    })
    .await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    // Carol works in another fleet, so no order of this story goes to her and her status
    // answers stay `online` / `offline`.
    let north = Claims::new(
        "drv-003",
        Role::Driver,
        Some(DriverId::from("DRV-003")),
        "north",
        3600,
    );
    let mut carol = app.ws(&app.hub.keys.sign(&north).unwrap()).await;
    let ack = carol
        .request(json!({"type":"status","status":"online"}))
        .await;
    assert_eq!(ack["status"], "online", "{ack}");
    let mut desk = app.ws(&app.dispatcher_token()).await;
    create_order(&app, "ORD-P1", Some("DRV-001")).await;
    create_order(&app, "ORD-P2", Some("DRV-002")).await;
    let (_, before) = app
        .get_json(
            "/api/v1/rooms/dispatch/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    let dispatch_seq = before["seq"].as_i64().unwrap();

    let acked = RefCell::new(Acked::default());
    let closes = RefCell::new(Vec::new());

    // Alice accepts her order, then moves it along and reports traffic on it.
    let alice_work = async {
        let steps = [
            json!({"type":"accept","order_id":"ORD-P1"}),
            json!({"type":"order_status","order_id":"ORD-P1","status":"picked_up"}),
        ];
        for s in steps {
            match alice.try_request(s).await {
                Some(a) if a["type"] == "ack" => {
                    acked
                        .borrow_mut()
                        .versions
                        .push(a["order"]["version"].as_i64().unwrap());
                }
                Some(e) => panic!("alice: {e}"),
                None => break,
            }
        }
        for i in 0.. {
            let r = json!({"type":"report","order_id":"ORD-P1","kind":"traffic_jam","comment":format!("jam {i}")});
            match alice.try_request(r).await {
                Some(a) if a["type"] == "ack" => {
                    acked
                        .borrow_mut()
                        .events
                        .push(a["event"]["event_id"].as_str().unwrap().to_string());
                }
                Some(e) => panic!("alice: {e}"),
                None => break,
            }
        }
        closes
            .borrow_mut()
            .push(alice.closed.clone().flatten().map(|r| u16::from(r.code)));
    };
    // Carol goes offline and online again and again.
    let carol_work = async {
        loop {
            let last = acked.borrow().statuses.last().cloned();
            let want = if last.as_deref() == Some("offline") {
                "online"
            } else {
                "offline"
            };
            match carol
                .try_request(json!({"type":"status","status":want}))
                .await
            {
                Some(a) if a["type"] == "ack" => {
                    assert_eq!(a["status"], want, "{a}");
                    acked.borrow_mut().statuses.push(want.to_string());
                }
                Some(e) => panic!("carol: {e}"),
                None => break,
            }
        }
        closes
            .borrow_mut()
            .push(carol.closed.clone().flatten().map(|r| u16::from(r.code)));
    };
    // The dispatcher reports on Bob's order over the socket.
    // Four at a time, so that several are in flight when the shutdown comes.
    let desk_work = async {
        'batches: for b in 0.. {
            let refs: Vec<String> = (0..4).map(|i| format!("desk-{b}-{i}")).collect();
            for r in &refs {
                let report = json!({"type":"report","order_id":"ORD-P2","kind":"weather","comment":r,"ref":r});
                if !desk.try_send(&report).await {
                    break 'batches;
                }
            }
            // A message that arrives while the session waits to close with 1012 is refused
            // (`internal`, "the server is restarting"): not acknowledged, so nothing is owed. The
            // others of the batch still get their answers.
            let mut restarting = false;
            for r in &refs {
                let answer = desk
                    .try_find(|m| {
                        m["ref"] == r.as_str() && (m["type"] == "ack" || m["type"] == "error")
                    })
                    .await;
                match answer {
                    Some(a) if a["type"] == "ack" => {
                        acked
                            .borrow_mut()
                            .events
                            .push(a["event"]["event_id"].as_str().unwrap().to_string());
                    }
                    Some(e)
                        if e["code"] == "internal"
                            && e["message"]
                                .as_str()
                                .is_some_and(|m| m.contains("restarting")) =>
                    {
                        restarting = true;
                    }
                    Some(e) => panic!("desk: {e}"),
                    None => break 'batches,
                }
            }
            if restarting {
                // The 1012 follows once the session's pending work has answered.
                desk.expect_close().await;
                break 'batches;
            }
        }
        closes
            .borrow_mut()
            .push(desk.closed.clone().flatten().map(|r| u16::from(r.code)));
    };
    // And creates orders over REST, two at a time, until the server stops answering.
    let rest_work = |lane: &'static str| {
        let (app, acked) = (&app, &acked);
        async move {
            let token = app.dispatcher_token();
            for i in 0..10_000 {
                let id = format!("ORD-{lane}{i}");
                let body = json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.8,"lng":2.3}});
                match app.try_post_json("/api/v1/orders", &body, &token).await {
                    Some((201, _)) => acked.borrow_mut().orders.push(id),
                    Some((s, b)) if s >= 500 => eprintln!("order {id} during shutdown: {s} {b}"),
                    Some((s, b)) => acked.borrow_mut().refused.push(format!("{id}: {s} {b}")),
                    None => break,
                }
            }
        }
    };
    // The shutdown starts once every kind of work has been acknowledged at least once.
    let shutdown = async {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let a = acked.borrow();
                if !a.orders.is_empty()
                    && a.events.len() >= 2
                    && !a.versions.is_empty()
                    && a.statuses.len() >= 2
                {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "no work was acknowledged");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        app.shutdown().await;
    };
    tokio::join!(
        alice_work,
        carol_work,
        desk_work,
        rest_work("A"),
        rest_work("B"),
        shutdown
    );
    assert_eq!(
        closes.borrow().as_slice(),
        &[Some(1012), Some(1012), Some(1012)],
        "every session is told to restart"
    );
    let acked = acked.into_inner();
    eprintln!(
        "acknowledged before the shutdown: {} orders, {} reports, {} order moves, {} statuses",
        acked.orders.len(),
        acked.events.len(),
        acked.versions.len(),
        acked.statuses.len()
    );

    let db = app.stop().await;
    let app = spawn_app(db).await;
    let admin = app.admin_token();
    if !acked.refused.is_empty() {
        let (_, bob) = app
            .get_json("/api/v1/orders?driver_id=DRV-002&limit=1000", Some(&admin))
            .await;
        let (_, incidents) = app.get_json("/api/v1/incidents", Some(&admin)).await;
        panic!(
            "orders without a driver named were refused: {:?}\nDRV-002 holds {bob}\nincidents {incidents}",
            acked.refused
        );
    }
    for id in &acked.orders {
        let (status, body) = app
            .get_json(&format!("/api/v1/orders/{id}"), Some(&admin))
            .await;
        assert_eq!(status, 200, "acknowledged order {id} is gone: {body}");
    }
    let (_, incidents) = app
        .get_json("/api/v1/incidents?limit=1000", Some(&admin))
        .await;
    let stored: Vec<&str> = incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_id"].as_str().unwrap())
        .collect();
    let (_, fleet) = app
        .get_json(
            "/api/v1/rooms/fleet:default/events?since=0&limit=10000",
            Some(&admin),
        )
        .await;
    let announced: Vec<&str> = fleet["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "emergency_event")
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    for e in &acked.events {
        assert!(
            stored.contains(&e.as_str()),
            "acked report {e} has no incident"
        );
        assert!(
            announced.contains(&e.as_str()),
            "acked report {e} is not in fleet:default's history"
        );
    }
    let (_, order_room) = app
        .get_json("/api/v1/rooms/order:ORD-P1/events?since=0", Some(&admin))
        .await;
    for v in &acked.versions {
        assert!(
            order_room["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "order_updated" && e["version"] == *v),
            "acked version {v} of ORD-P1 is not in its history: {order_room}"
        );
    }
    let (_, p1) = app.get_json("/api/v1/orders/ORD-P1", Some(&admin)).await;
    assert!(
        p1["version"].as_i64().unwrap() >= acked.versions.iter().copied().max().unwrap(),
        "{p1}"
    );
    let (_, dispatch) = app
        .get_json(
            &format!("/api/v1/rooms/dispatch/events?since={dispatch_seq}&limit=10000"),
            Some(&admin),
        )
        .await;
    let carol_changes: Vec<&str> = dispatch["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "driver_status" && e["driver_id"] == "DRV-003")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(
        carol_changes.len() >= acked.statuses.len()
            && carol_changes[..acked.statuses.len()] == acked.statuses[..],
        "acked {:?}, stored {carol_changes:?}",
        acked.statuses
    );
}
on_both_backends!(a_graceful_shutdown_loses_nothing_that_was_acknowledged);

async fn simultaneous_upgrades_never_exceed_max_connections(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.max_connections = 2).await;
    let token = app.dispatcher_token();
    let query = format!("token={token}");
    // A race shows only sometimes: try rounds of 100 upgrades at once.
    for round in 0..20 {
        let attempts = (0..100).map(|_| app.try_ws_or_gone(&query));
        let results = futures_util::future::join_all(attempts).await;
        let mut admitted = Vec::new();
        for r in results {
            match r {
                Some(Ok(mut c)) => {
                    c.welcome = c.expect("welcome").await;
                    admitted.push(c);
                }
                Some(Err(status)) => assert_eq!(status, 503),
                None => panic!("a connection failed outright"),
            }
        }
        let (_, health) = app.get_json("/health", None).await;
        assert!(
            admitted.len() <= 2,
            "round {round}: {} sessions admitted with max_connections = 2; /health says {health}",
            admitted.len()
        );
        assert!(!admitted.is_empty(), "round {round}: nobody got in");
        drop(admitted);
        let deadline = Instant::now() + WAIT;
        while app.hub.connections.load(Ordering::Relaxed) > 0 {
            assert!(Instant::now() < deadline, "the sessions never closed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
on_both_backends!(simultaneous_upgrades_never_exceed_max_connections);

async fn a_client_reconnecting_during_the_shutdown_is_refused_or_told_to_restart(db: TestDb) {
    let app = spawn_app_with(db, |s| s.realtime.offline_grace_ms = 600_000).await;
    let token = app.dispatcher_token();
    let query = format!("token={token}");
    let mut desk = app.ws(&token).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    // The client does what 1012 tells it to: reconnect at once, and again until it cannot.
    let client = async {
        assert_eq!(desk.ending().await, Ok(Some(1012)));
        let mut outcomes = Vec::new();
        for _ in 0..500 {
            match app.try_ws_or_gone(&query).await {
                None => return outcomes,
                Some(Err(status)) => outcomes.push(Err(status)),
                Some(Ok(mut c)) => outcomes.push(Ok(c.ending().await)),
            }
        }
        outcomes
    };
    let (outcomes, ()) = tokio::join!(client, app.shutdown());
    for o in &outcomes {
        match o {
            Err(status) => assert!(*status >= 500, "refused with {status}"),
            Ok(ending) => assert_eq!(
                ending,
                &Ok(Some(1012)),
                "a session opened during the shutdown ended without 1012 (all: {outcomes:?})"
            ),
        }
    }
}
on_both_backends!(a_client_reconnecting_during_the_shutdown_is_refused_or_told_to_restart);
