//! Several nodes on one PostgreSQL database and one Redis (SPEC 12, issue 15): the broker seam.
//! Two engines in this process, each its own node (its own hub, rooms, sessions and bus
//! connections), share a database schema and a Redis namespace of their own. What either commits
//! reaches the sessions of both once and in `seq` order; Redis stopped and started again loses
//! nothing (the rooms re-read what they missed from the database).
//!
//! They need PostgreSQL (RALLYPOINT_TEST_DATABASE_URL) and Redis (RALLYPOINT_TEST_REDIS_URL; the
//! Redis-restart test starts a `redis-server` of its own): without them they say loudly that
//! they were skipped.

use crate::helpers::{say_skipped, spawn_app_with, spawn_peer, TestApp, TestDb, WsClient};
use rallypoint::cluster::ClusterState;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn redis_url() -> Option<String> {
    std::env::var("RALLYPOINT_TEST_REDIS_URL").ok()
}

/// Two nodes on a fresh schema, their bus at `redis`, in a namespace of their own.
async fn two_nodes(redis: &str) -> Option<(TestApp, TestApp)> {
    let db = TestDb::postgres()?;
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let redis = redis.to_string();
    let a = spawn_app_with(db, move |s| {
        s.cluster.redis_url = redis;
        s.cluster.namespace = namespace;
        s.cluster.reconnect_max_ms = 300;
    })
    .await;
    let b = spawn_peer(&a).await;
    Some((a, b))
}

async fn wait_for_state(app: &TestApp, want: ClusterState) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.hub.broker.state() != want {
        assert!(Instant::now() < deadline, "the bus did not become {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tick(app: &TestApp, n: i64) {
    let (status, body) = app
        .post_json(
            "/api/v1/rooms/dispatch/messages",
            &json!({"type": "tick", "data": {"n": n}}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Publishes warm-ups on `from` until `to` hears one: `to`'s node listens to `dispatch` then.
async fn until_heard(from: &TestApp, to: &mut WsClient) {
    for n in 0..100 {
        tick(from, -1 - n).await;
        if to
            .try_find_within(|m| m["type"] == "tick", Duration::from_millis(200))
            .await
            .is_some()
        {
            return;
        }
    }
    panic!("the other node never heard the room");
}

/// The ticks `c` receives until it has those numbered `want` (warm-ups skipped); asserts each
/// arrives once, with the room's seqs one after the other.
async fn ticks(c: &mut WsClient, want: &[i64]) -> Vec<i64> {
    let mut got = Vec::new();
    let mut last_seq: Option<i64> = None;
    while got.len() < want.len() {
        let m = c
            .find(|m| m["type"] == "tick" || m["type"] == "resync")
            .await;
        assert_ne!(m["type"], "resync", "a gap nobody filled: {m}");
        let seq = m["seq"].as_i64().expect("seq");
        if let Some(prev) = last_seq {
            assert_eq!(
                seq,
                prev + 1,
                "seqs in order, none twice, none missing: {m}"
            );
        }
        last_seq = Some(seq);
        let n = m["data"]["n"].as_i64().expect("n");
        if n >= 0 {
            got.push(n);
        }
    }
    got
}

#[actix_web::test]
async fn what_either_node_commits_reaches_both_nodes_sessions_once_and_in_order() {
    let Some(redis) = redis_url() else {
        return say_skipped("cluster::what_either_node_commits (RALLYPOINT_TEST_REDIS_URL unset)");
    };
    let Some((a, b)) = two_nodes(&redis).await else {
        return say_skipped("cluster::what_either_node_commits");
    };
    wait_for_state(&a, ClusterState::Up).await;
    wait_for_state(&b, ClusterState::Up).await;
    let mut on_a = a.ws(&a.dispatcher_token()).await;
    let mut on_b = b.ws(&b.dispatcher_token()).await;
    until_heard(&a, &mut on_b).await;
    until_heard(&b, &mut on_a).await;
    // Drain the warm-ups each has, so the counts below start clean.
    on_a.drain_for(Duration::from_millis(500)).await;
    on_b.drain_for(Duration::from_millis(500)).await;

    let want: Vec<i64> = (1..=40).collect();
    for n in &want {
        // Alternating nodes: the seqs come from the database, strictly increasing across both.
        let node = if n % 2 == 0 { &a } else { &b };
        tick(node, *n).await;
    }
    assert_eq!(ticks(&mut on_a, &want).await, want, "node A's session");
    assert_eq!(ticks(&mut on_b, &want).await, want, "node B's session");
    let extra = on_b.drain_for(Duration::from_millis(500)).await;
    assert!(
        extra.iter().all(|m| m["type"] != "tick"),
        "nothing twice: {extra:?}"
    );
    let (status, health) = a.get_json("/health", None).await;
    assert_eq!(
        (status, health["cluster"].clone()),
        (200, Value::from("up"))
    );
}

/// A `redis-server` of the test's own, on a free port, so stopping it touches no other test.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Option<OwnRedis> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis {
            port,
            child: Some(child),
        })
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[actix_web::test]
async fn redis_stopped_and_started_again_loses_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let Some(mut redis) = OwnRedis::start(port) else {
        return say_skipped("cluster::redis_stopped_and_started_again (no redis-server binary)");
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let Some((a, b)) = two_nodes(&url).await else {
        return say_skipped("cluster::redis_stopped_and_started_again");
    };
    wait_for_state(&a, ClusterState::Up).await;
    wait_for_state(&b, ClusterState::Up).await;
    let mut on_b = b.ws(&b.dispatcher_token()).await;
    until_heard(&a, &mut on_b).await;
    on_b.drain_for(Duration::from_millis(500)).await;
    for n in 1..=5 {
        tick(&a, n).await;
    }
    assert_eq!(ticks(&mut on_b, &[1, 2, 3, 4, 5]).await, [1, 2, 3, 4, 5]);

    redis.stop();
    wait_for_state(&a, ClusterState::Degraded).await;
    let (status, health) = a.get_json("/health", None).await;
    assert_eq!(
        (status, health["cluster"].clone()),
        (200, Value::from("degraded")),
        "a node without its bus still serves: {health}"
    );
    // Committed while the bus is away: node B's session must still get them.
    for n in 6..=10 {
        tick(&a, n).await;
    }
    let mut redis = OwnRedis::start(port).expect("redis-server starts again");
    wait_for_state(&a, ClusterState::Up).await;
    wait_for_state(&b, ClusterState::Up).await;
    assert_eq!(ticks(&mut on_b, &[6, 7, 8, 9, 10]).await, [6, 7, 8, 9, 10]);
    for n in 11..=13 {
        tick(&a, n).await;
    }
    assert_eq!(ticks(&mut on_b, &[11, 12, 13]).await, [11, 12, 13]);
    redis.stop();
}
