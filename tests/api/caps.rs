//! Caps (SPEC 6): rooms per session, connections per `sub`, history reads per `sub`.

use crate::helpers::{spawn_app_with, TestDb, WAIT};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::Role;
use serde_json::json;
use std::time::{Duration, Instant};

/// An observer of every `order:` room, signed by `app`.
fn order_watcher(app: &crate::helpers::TestApp, sub: &str) -> String {
    let mut claims = Claims::new(sub, Role::Observer, None, "default", 3600);
    claims.rooms = Some(vec!["order:*".into()]);
    app.hub.keys.sign(&claims).expect("sign")
}

async fn the_join_past_max_rooms_per_session_is_a_conflict_naming_the_limit(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.client_msgs_per_sec = 100_000).await;
    let mut obs = app.ws(&order_watcher(&app, "watcher")).await;
    for i in 0..128 {
        let ack = obs
            .request(json!({"type":"join","room":format!("order:ORD-{i}")}))
            .await;
        assert_eq!(ack["type"], "ack", "join {i}: {ack}");
    }
    let refused = obs
        .request(json!({"type":"join","room":"order:ORD-128"}))
        .await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "conflict", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("max_rooms_per_session") && message.contains("128"),
        "the message names the limit: {message}"
    );
    // Re-joining a room it is in (with `since`) is not a new room: still fine.
    let again = obs
        .request(json!({"type":"join","room":"order:ORD-7","since":0}))
        .await;
    assert_eq!(again["type"], "ack", "{again}");
    // Leaving one makes room for another.
    let left = obs
        .request(json!({"type":"leave","room":"order:ORD-0"}))
        .await;
    assert_eq!(left["type"], "ack", "{left}");
    let ack = obs
        .request(json!({"type":"join","room":"order:ORD-128"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let refused = obs
        .request(json!({"type":"join","room":"order:ORD-129"}))
        .await;
    assert_eq!(refused["code"], "conflict", "{refused}");
}
on_both_backends!(the_join_past_max_rooms_per_session_is_a_conflict_naming_the_limit);

async fn the_connection_past_max_connections_per_sub_gets_429_until_one_closes(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    assert_eq!(app.settings.limits.max_connections_per_sub, 100);
    let token = app.token_for("tabs", Role::Observer, None);
    let query = format!("token={token}");
    let mut open = Vec::new();
    for _ in 0..100 {
        open.push(app.ws(&token).await);
    }
    let (status, body) = app.ws_refusal(&query).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("max_connections_per_sub"),
        "the message names the limit: {message}"
    );
    assert_eq!(app.try_ws(&query).await.err(), Some(429));
    // Another sub is not held back by this one.
    let mut other = app
        .ws(&app.token_for("someone-else", Role::Observer, None))
        .await;
    other.assert_alive().await;
    open[0].assert_alive().await;
    // One closes: a new one of the same sub gets in once the server has seen it go.
    let mut first = open.remove(0);
    first.close().await;
    drop(first);
    let deadline = Instant::now() + WAIT;
    let mut again = loop {
        match app.try_ws(&query).await {
            Ok(mut c) => {
                c.welcome = c.expect("welcome").await;
                break c;
            }
            Err(429) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => panic!("after a session closed the upgrade still got {s}"),
        }
    };
    again.assert_alive().await;
    assert_eq!(app.try_ws(&query).await.err(), Some(429), "100 again");
}
on_both_backends!(the_connection_past_max_connections_per_sub_gets_429_until_one_closes);

async fn history_reads_past_rest_per_sub_per_sec_get_429(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    assert_eq!(app.settings.limits.rest_per_sub_per_sec, 20);
    let token = app.dispatcher_token();
    // 21 at once: one second holds them all.
    let reads =
        (0..21).map(|_| app.get_json("/api/v1/rooms/dispatch/events?since=0", Some(&token)));
    let answers = futures_util::future::join_all(reads).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(ok, 20, "{answers:?}");
    assert_eq!(limited.len(), 1, "{answers:?}");
    assert_eq!(
        limited[0].1["error"]["code"], "rate_limited",
        "{:?}",
        limited[0]
    );
    // Another sub has its own budget.
    let (status, body) = app
        .get_json(
            "/api/v1/rooms/dispatch/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
on_both_backends!(history_reads_past_rest_per_sub_per_sec_get_429);
