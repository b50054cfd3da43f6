//! Room history: a dropped client resumes 50 missed messages in order, then live ones, none
//! missing and none twice, while more are published during its replay; history is trimmed by
//! count and age, and a `since` older than what is kept gets `recovered: false` and `resync`,
//! over WebSocket and over REST polling.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use actix::Actor;
use rallypoint::actors::janitor::{Janitor, TrimNow, Trimmed};
use rallypoint::db::queries;
use serde_json::{json, Value};
use std::time::Duration;

async fn create_order(address: String, token: String, id: String) {
    let body =
        json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30}});
    let resp = awc::Client::default()
        .post(format!("{address}/api/v1/orders"))
        .bearer_auth(token)
        .send_json(&body)
        .await
        .expect("the request is answered");
    assert_eq!(resp.status().as_u16(), 201, "creating {id}");
}

/// Reads `dispatch` messages until every order in `ids` was announced; answers the messages.
async fn read_dispatch_until(c: &mut WsClient, ids: &[String]) -> Vec<Value> {
    let mut got = Vec::new();
    let mut missing: std::collections::HashSet<&String> = ids.iter().collect();
    while !missing.is_empty() {
        let m = c.read().await.expect("the session stays open");
        if m["room"] != "dispatch" {
            continue;
        }
        if m["type"] == "order_updated" {
            missing.remove(&m["order_id"].as_str().unwrap_or_default().to_string());
        }
        got.push(m);
    }
    got
}

async fn fifty_missed_messages_then_live_ones_none_missing_none_twice(db: TestDb) {
    let app = spawn_app(db).await;
    let token = app.dispatcher_token();
    let watcher = app.ws(&token).await;
    let seq = watcher.welcome["rooms"]["dispatch"].as_i64().unwrap();
    drop(watcher);

    let missed: Vec<String> = (0..50).map(|i| format!("ORD-MISSED-{i:02}")).collect();
    for id in &missed {
        create_order(app.address.clone(), token.clone(), id.clone()).await;
    }
    // More orders while the client reconnects and its replay runs.
    let live: Vec<String> = (0..30).map(|i| format!("ORD-LIVE-{i:02}")).collect();
    let background = {
        let (address, token, live) = (app.address.clone(), token.clone(), live.clone());
        actix_rt::spawn(async move {
            for id in live {
                create_order(address.clone(), token.clone(), id).await;
            }
        })
    };
    let mut client = app
        .ws_query(&format!("token={token}&since=dispatch%3A{seq}"))
        .await;
    let joined = client
        .find(|m| m["type"] == "joined" && m["room"] == "dispatch")
        .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let all: Vec<String> = missed.iter().chain(&live).cloned().collect();
    let got = read_dispatch_until(&mut client, &all).await;
    background.await.unwrap();

    // Every dispatch message after `seq`, each once, in seq order.
    let seqs: Vec<i64> = got.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (seq + 1..=seq + seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "consecutive seqs: none missing, none twice");
    let announced: Vec<&str> = got
        .iter()
        .filter(|m| m["type"] == "order_updated")
        .map(|m| m["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(announced.len(), 80, "each order once: {announced:?}");
    assert_eq!(&announced[..50], &missed[..], "the 50 missed, in order");
    for id in &live {
        assert_eq!(
            announced.iter().filter(|a| **a == id.as_str()).count(),
            1,
            "{id} exactly once"
        );
    }
    // Nothing more comes: no duplicate after the seam either.
    let rest: Vec<Value> = client
        .drain_for(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|m| m["room"] == "dispatch")
        .collect();
    assert!(rest.is_empty(), "nothing twice: {rest:?}");
    let replayed = joined["seq"].as_i64().unwrap() - seq;
    eprintln!(
        "resume: {} dispatch messages after seq {seq}: {replayed} replayed (50 missed + {} published while reconnecting), {} live after the seam",
        got.len(),
        replayed - 50,
        got.len() as i64 - replayed
    );
}
on_both_backends!(fifty_missed_messages_then_live_ones_none_missing_none_twice);

async fn trim(app: &TestApp) -> Trimmed {
    Janitor::new(app.hub.clone())
        .start()
        .send(TrimNow)
        .await
        .unwrap()
        .unwrap()
}

async fn history_is_trimmed_and_a_since_older_than_it_gets_resync(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.realtime.history_per_room = 10;
    })
    .await;
    let token = app.dispatcher_token();
    for i in 0..30 {
        create_order(app.address.clone(), token.clone(), format!("ORD-T{i:02}")).await;
    }
    let (_, before) = app
        .get_json(
            "/api/v1/rooms/dispatch/events?since=0&limit=1000",
            Some(&token),
        )
        .await;
    let current = before["seq"].as_i64().unwrap();
    assert!(current >= 30, "{before}");
    let removed = trim(&app).await.events;
    assert_eq!(
        removed as i64,
        current - 10,
        "all but the last 10 are trimmed"
    );

    // Within what is kept: recovered, and exactly the messages after `since`.
    let since = current - 5;
    let mut c = app
        .ws_query(&format!("token={token}&since=dispatch%3A{since}"))
        .await;
    let joined = c
        .find(|m| m["type"] == "joined" && m["room"] == "dispatch")
        .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    for s in since + 1..=current {
        let m = c.find(|m| m["room"] == "dispatch").await;
        assert_eq!(m["seq"], s);
    }
    let (status, page) = app
        .get_json(
            &format!("/api/v1/rooms/dispatch/events?since={since}"),
            Some(&token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["recovered"], true);
    assert_eq!(page["events"].as_array().unwrap().len(), 5);

    // Older than what is kept: not recovered, resync, and no partial replay.
    let mut c = app
        .ws_query(&format!("token={token}&since=dispatch%3A3"))
        .await;
    let joined = c
        .find(|m| m["type"] == "joined" && m["room"] == "dispatch")
        .await;
    assert_eq!(joined["recovered"], false, "{joined}");
    let next = c
        .find(|m| m["room"] == "dispatch" || m["type"] == "resync")
        .await;
    assert_eq!(next["type"], "resync", "{next}");
    assert_eq!(next["room"], "dispatch");
    let (_, page) = app
        .get_json("/api/v1/rooms/dispatch/events?since=3", Some(&token))
        .await;
    assert_eq!(page["recovered"], false, "{page}");

    // A join over the socket with an old `since` says the same.
    let ack = c
        .request(json!({"type":"join","room":"order:ORD-T00","since":0}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let joined = c
        .find(|m| m["type"] == "joined" && m["room"] == "order:ORD-T00")
        .await;
    assert_eq!(
        joined["recovered"], true,
        "order:ORD-T00 has 1 message, kept"
    );

    // Seqs keep growing after a trim.
    create_order(app.address.clone(), token.clone(), "ORD-AFTER".into()).await;
    let m = c
        .find(|m| m["room"] == "dispatch" && m["order_id"] == "ORD-AFTER")
        .await;
    assert!(m["seq"].as_i64().unwrap() > current);
}
on_both_backends!(history_is_trimmed_and_a_since_older_than_it_gets_resync);

async fn history_and_idempotency_keys_expire_with_age(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.realtime.history_ttl_s = 1;
        s.realtime.idempotency_window_s = 1;
        s.socketio.recovery_s = 1;
    })
    .await;
    // A Socket.IO socket dropped now, and one still held by its connection.
    rallypoint::db::run(&app.hub.pool, |c| {
        let now = chrono::Utc::now();
        queries::sockets::create(c, "dropped", "driver-1", now)?;
        queries::sockets::mark_disconnected(c, "dropped", 0, now)?;
        queries::sockets::create(c, "held", "driver-1", now)
    })
    .await
    .unwrap();
    let token = app.dispatcher_token();
    create_order(app.address.clone(), token.clone(), "ORD-OLD".into()).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let ack = alice
        .request(json!({"type":"status","status":"online","idempotency_key":"k-old"}))
        .await;
    assert_eq!(ack["type"], "ack");
    actix_rt::time::sleep(Duration::from_millis(1100)).await;
    let Trimmed {
        events,
        keys,
        sockets,
        tracks: _,
    } = trim(&app).await;
    assert!(events >= 1, "old room messages are trimmed");
    assert!(keys >= 1, "old idempotency keys are purged");
    assert_eq!(
        sockets, 1,
        "a socket dropped beyond the recovery window is purged"
    );
    let left = rallypoint::db::run(&app.hub.pool, |c| {
        Ok((
            queries::sockets::load(c, "dropped")?,
            queries::sockets::load(c, "held")?,
        ))
    })
    .await
    .unwrap();
    assert!(left.0.is_none() && left.1.is_some(), "{left:?}");
    let (_, page) = app
        .get_json("/api/v1/rooms/dispatch/events?since=0", Some(&token))
        .await;
    assert_eq!(page["recovered"], false, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
}
on_both_backends!(history_and_idempotency_keys_expire_with_age);
