//! One leader for the cluster (SPEC 12, issue 15), two engines in this process on one PostgreSQL
//! schema and one Redis namespace: the node holding the advisory lock runs the Dispatcher and the
//! driver and order actors; the other hands it its commands and its drivers' sessions. A report
//! on either node moves the order to a driver on the other, who hears it through its own node;
//! every session of both nodes gets the `emergency_event` once.
//!
//! They need PostgreSQL and Redis (RALLYPOINT_TEST_DATABASE_URL, RALLYPOINT_TEST_REDIS_URL):
//! without them they say loudly that they were skipped.

use crate::helpers::{say_skipped, spawn_app_with, spawn_peer, TestApp, TestDb, WsClient};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Two nodes of one cluster, the leader first, once one leads and both buses are up.
pub async fn leader_and_follower(test: &str) -> Option<(TestApp, TestApp)> {
    let Ok(redis) = std::env::var("RALLYPOINT_TEST_REDIS_URL") else {
        say_skipped(&format!("{test} (RALLYPOINT_TEST_REDIS_URL unset)"));
        return None;
    };
    let Some(db) = TestDb::postgres() else {
        say_skipped(test);
        return None;
    };
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let a = spawn_app_with(db, move |s| {
        s.cluster.redis_url = redis;
        s.cluster.namespace = namespace;
        s.cluster.reconnect_max_ms = 300;
        s.cluster.leader_poll_ms = 100;
        s.cluster.heartbeat_ms = 200;
    })
    .await;
    let b = spawn_peer(&a).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let knows = |x: &TestApp, y: &TestApp| {
            x.hub.cluster.leader().as_deref() == Some(y.hub.node_id.as_str())
        };
        if a.hub.cluster.leading() && knows(&b, &a) {
            return Some((a, b));
        }
        if b.hub.cluster.leading() && knows(&a, &b) {
            return Some((b, a));
        }
        assert!(Instant::now() < deadline, "no node took the lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn emergency_once(c: &mut WsClient, who: &str, event_id: &str) {
    let e = c.expect("emergency_event").await;
    assert_eq!(e["event_id"], event_id, "{who}: {e}");
    let more = c.drain_for(Duration::from_millis(300)).await;
    assert!(
        more.iter()
            .all(|m| m["type"] != "emergency_event" || m["event_id"] != event_id),
        "{who} got the emergency twice: {more:?}"
    );
}

/// Each of `sessions` got the emergency `event_id`, once.
async fn everyone_once<const N: usize>(sessions: [(&str, &mut WsClient); N], event_id: &str) {
    for (who, c) in sessions {
        emergency_once(c, who, event_id).await;
    }
}

#[actix_web::test]
async fn a_report_on_either_node_moves_the_order_to_a_driver_on_the_other() {
    let Some((leader, follower)) =
        leader_and_follower("cluster_leader::a_report_on_either_node").await
    else {
        return;
    };
    assert!(!follower.hub.cluster.leading(), "one leader");
    // Alice and Carol on the follower, Bob on the leader; Bob is nearest Alice's pickup.
    let mut alice = follower
        .online_driver("DRV-001", "Alice", 48.8566, 2.3522)
        .await;
    let mut bob = leader
        .online_driver("DRV-002", "Bob", 48.8656, 2.3522)
        .await;
    let mut carol = follower
        .online_driver("DRV-003", "Carol", 48.9016, 2.3522)
        .await;
    let mut desk_l = leader.ws(&leader.dispatcher_token()).await;
    let mut desk_f = follower.ws(&follower.dispatcher_token()).await;

    // Created through the follower, for Alice: the leader's Dispatcher places it.
    let (status, order) = follower
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-C1","pickup":{"lat":48.8566,"lng":2.3522},
                    "dropoff":{"lat":48.8738,"lng":2.2950},"driver_id":"DRV-001"}),
            &follower.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let assigned = alice.expect("order_assigned").await;
    assert_eq!(assigned["order_id"], "ORD-C1");
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-C1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");

    // Alice reports on the follower: the order goes to Bob, on the leader.
    let ack = alice
        .request(json!({"type":"report","order_id":"ORD-C1","kind":"vehicle_breakdown"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(
        ack["event"]["action_taken"], "REASSIGNMENT_INITIATED",
        "{ack}"
    );
    assert_eq!(ack["event"]["new_driver_id"], "DRV-002", "{ack}");
    let event = ack["event"]["event_id"]
        .as_str()
        .expect("event_id")
        .to_string();
    let moved = bob.expect("order_assigned").await;
    assert_eq!(
        (
            moved["order_id"].clone(),
            moved["previous_driver_id"].clone()
        ),
        (Value::from("ORD-C1"), Value::from("DRV-001"))
    );
    let off = alice.expect("order_unassigned").await;
    assert_eq!(off["order_id"], "ORD-C1");
    everyone_once(
        [
            ("alice", &mut alice),
            ("bob", &mut bob),
            ("carol", &mut carol),
            ("leader's desk", &mut desk_l),
            ("follower's desk", &mut desk_f),
        ],
        &event,
    )
    .await;

    // Bob reports on the leader: Alice is out of it, so the order goes to Carol, on the
    // follower, who hears it through the follower.
    let ack = bob
        .request(json!({"type":"accept","order_id":"ORD-C1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let ack = bob
        .request(json!({"type":"report","order_id":"ORD-C1","kind":"accident"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["event"]["new_driver_id"], "DRV-003", "{ack}");
    let event = ack["event"]["event_id"]
        .as_str()
        .expect("event_id")
        .to_string();
    let moved = carol.expect("order_assigned").await;
    assert_eq!(moved["previous_driver_id"], "DRV-002", "{moved}");
    everyone_once(
        [
            ("alice", &mut alice),
            ("bob", &mut bob),
            ("carol", &mut carol),
            ("leader's desk", &mut desk_l),
            ("follower's desk", &mut desk_f),
        ],
        &event,
    )
    .await;

    // The leader's truth is the database's, read on either node.
    let (status, order) = follower
        .get_json("/api/v1/orders/ORD-C1", Some(&follower.admin_token()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(order["driver_id"], "DRV-003", "{order}");
    let (_, incidents) = follower
        .get_json("/api/v1/incidents", Some(&follower.dispatcher_token()))
        .await;
    assert_eq!(incidents.as_array().map(Vec::len), Some(2), "{incidents}");
    let (_, health) = follower.get_json("/health", None).await;
    assert_eq!(health["leader"], leader.hub.node_id.as_str(), "{health}");
}

#[actix_web::test]
async fn a_follower_s_driver_is_online_on_the_leader_and_offline_after_its_grace() {
    let Some((leader, follower)) =
        leader_and_follower("cluster_leader::a_follower_s_driver_is_online").await
    else {
        return;
    };
    let mut dana = follower
        .online_driver("DRV-010", "Dana", 48.8566, 2.3522)
        .await;
    let admin = leader.admin_token();
    let (status, d) = leader
        .get_json("/api/v1/drivers/DRV-010", Some(&admin))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["status"], "online", "{d}");
    // A second tab on the leader, then the follower's closes: still online.
    let tab = leader.ws(&leader.driver_token("DRV-010", "Dana")).await;
    dana.close().await;
    tokio::time::sleep(Duration::from_millis(
        leader.settings.realtime.offline_grace_ms + 500,
    ))
    .await;
    let (_, d) = leader
        .get_json("/api/v1/drivers/DRV-010", Some(&admin))
        .await;
    assert_eq!(d["status"], "online", "the leader's tab holds it: {d}");
    drop(tab);
    let deadline =
        Instant::now() + Duration::from_millis(leader.settings.realtime.offline_grace_ms + 10_000);
    loop {
        let (_, d) = follower
            .get_json("/api/v1/drivers/DRV-010", Some(&admin))
            .await;
        if d["status"] == "offline" {
            break;
        }
        assert!(Instant::now() < deadline, "never offline: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
