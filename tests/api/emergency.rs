//! The emergency story end to end over real sockets: Alice, Bob and Carol online; Alice's
//! breakdown moves her order to Bob (nearest); an admin then overrides it to Carol.

use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use serde_json::{json, Value};

/// Pickup point of the story's order; Alice is at it, Bob 1 km away, Carol 5 km away.
const PICKUP: (f64, f64) = (48.8566, 2.3522);

struct Story {
    app: TestApp,
    alice: WsClient,
    bob: WsClient,
    carol: WsClient,
    order_id: String,
}

/// Three drivers online, an order created for Alice and accepted by her.
async fn set_up(db: TestDb) -> Story {
    let app = spawn_app(db).await;
    let mut alice = app
        .online_driver("DRV-001", "Alice", PICKUP.0, PICKUP.1)
        .await;
    let bob = app.online_driver("DRV-002", "Bob", 48.8656, 2.3522).await;
    let carol = app.online_driver("DRV-003", "Carol", 48.9016, 2.3522).await;
    let (status, order) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-1","pickup":{"lat":PICKUP.0,"lng":PICKUP.1},
                    "dropoff":{"lat":48.8738,"lng":2.2950},"driver_id":"DRV-001"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["driver_id"], "DRV-001");
    assert_eq!(order["status"], "assigned");
    let assigned = alice.expect("order_assigned").await;
    assert_eq!(assigned["order_id"], "ORD-1");
    assert_eq!(assigned["reason"], "dispatch");
    let ack = alice
        .request(json!({"type":"accept","order_id":"ORD-1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert!(ack["order"]["accepted_at"].is_string(), "{ack}");
    Story {
        app,
        alice,
        bob,
        carol,
        order_id: "ORD-1".into(),
    }
}

/// What every driver must see after Alice's breakdown, checked from each socket.
async fn assert_breakdown_moved_to_bob(s: &mut Story, event_id: &str) {
    for (who, c) in [
        ("alice", &mut s.alice),
        ("bob", &mut s.bob),
        ("carol", &mut s.carol),
    ] {
        let e = c.expect("emergency_event").await;
        assert_eq!(e["event_id"], event_id, "{who}: {e}");
        assert_eq!(e["action_taken"], "REASSIGNMENT_INITIATED", "{who}");
        assert_eq!(e["new_driver_id"], "DRV-002", "{who}");
        assert_eq!(e["driver_id"], "DRV-001", "{who}");
        assert_eq!(e["kind"], "vehicle_breakdown");
        assert_eq!(e["room"], "fleet:default");
        assert!(
            e["seq"].as_i64().is_some(),
            "room messages carry a seq: {e}"
        );
        assert!(e["risk_score"].as_f64().unwrap() > 0.7);
        assert_eq!(e["risk_source"], "model");
    }
    let assigned = s.bob.expect("order_assigned").await;
    assert_eq!(assigned["order_id"], s.order_id.as_str());
    assert_eq!(assigned["driver_id"], "DRV-002");
    assert_eq!(assigned["previous_driver_id"], "DRV-001");
    assert_eq!(assigned["reason"], "emergency");
    assert_eq!(assigned["event_id"], event_id);
    assert_eq!(assigned["order"]["status"], "assigned");
    let unassigned = s.alice.expect("order_unassigned").await;
    assert_eq!(unassigned["order_id"], s.order_id.as_str());
    assert_eq!(unassigned["driver_id"], "DRV-001");
    // Carol is informed and unaffected.
    s.carol.assert_alive().await;
    assert!(s.carol.kept("order_assigned").is_empty());
    assert!(s.carol.kept("order_unassigned").is_empty());
    let (status, order) = s
        .app
        .get_json(
            &format!("/api/v1/orders/{}", s.order_id),
            Some(&s.app.admin_token()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        order["driver_id"], "DRV-002",
        "the database holds Bob: {order}"
    );
    assert_eq!(order["status"], "assigned");
    assert!(
        order["accepted_at"].is_null(),
        "Bob must accept it: {order}"
    );
}

/// The admin override moves the order on to Carol, and is audited.
async fn assert_override_to_carol(s: &mut Story) {
    let (status, body) = s
        .app
        .post_json(
            &format!("/api/v1/orders/{}/reassign", s.order_id),
            &json!({"driver_id":"DRV-003","reason":"Carol is closer to the drop-off"}),
            &s.app.admin_token(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["driver_id"], "DRV-003");
    let assigned = s.carol.expect("order_assigned").await;
    assert_eq!(assigned["reason"], "override");
    assert_eq!(assigned["previous_driver_id"], "DRV-002");
    let unassigned = s.bob.expect("order_unassigned").await;
    assert_eq!(unassigned["reason"], "override");
    let (status, audit) = s
        .app
        .get_json("/api/v1/audit", Some(&s.app.dispatcher_token()))
        .await;
    assert_eq!(status, 200);
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(rows[0]["order_id"], s.order_id.as_str());
    assert_eq!(rows[0]["from_driver_id"], "DRV-002");
    assert_eq!(rows[0]["to_driver_id"], "DRV-003");
    assert_eq!(rows[0]["actor"], "admin-1");
    assert_eq!(rows[0]["reason"], "Carol is closer to the drop-off");
}

async fn breakdown_over_websocket_moves_the_order_to_the_nearest_driver(db: TestDb) {
    let mut s = set_up(db).await;
    let ack = s
        .alice
        .request(
            json!({"type":"report","order_id":"ORD-1","kind":"vehicle_breakdown",
                        "comment":"Vehicle breakdown - cannot continue"}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let event: &Value = &ack["event"];
    assert_eq!(event["action_taken"], "REASSIGNMENT_INITIATED");
    let event_id = event["event_id"].as_str().unwrap().to_string();
    assert_breakdown_moved_to_bob(&mut s, &event_id).await;
    let (_, incidents) = s
        .app
        .get_json("/api/v1/incidents", Some(&s.app.dispatcher_token()))
        .await;
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    assert_eq!(incidents[0]["event_id"], event_id.as_str());
    assert_override_to_carol(&mut s).await;
}
on_both_backends!(breakdown_over_websocket_moves_the_order_to_the_nearest_driver);

async fn breakdown_over_rest_moves_the_order_to_the_nearest_driver(db: TestDb) {
    let mut s = set_up(db).await;
    let alice_token = s.app.driver_token("DRV-001", "Alice");
    let (status, event) = s
        .app
        .post_json(
            "/api/v1/events/delay",
            &json!({"order_id":"ORD-1","driver_id":"DRV-001","kind":"vehicle_breakdown"}),
            &alice_token,
        )
        .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["action_taken"], "REASSIGNMENT_INITIATED");
    let event_id = event["event_id"].as_str().unwrap().to_string();
    assert_breakdown_moved_to_bob(&mut s, &event_id).await;
    // The legacy path answers too: a traffic jam on Bob's order changes nothing.
    let (status, event) = s
        .app
        .post_json(
            "/event/delay",
            &json!({"order_id":"ORD-1","kind":"traffic_jam"}),
            &s.app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["action_taken"], "MAINTAIN");
    assert!(event["new_driver_id"].is_null());
    assert_override_to_carol(&mut s).await;
}
on_both_backends!(breakdown_over_rest_moves_the_order_to_the_nearest_driver);

async fn a_driver_going_online_is_announced_to_the_fleet(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    let presence = alice
        .find(|m| {
            m["type"] == "presence"
                && m["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|x| x["driver_id"] == "DRV-002"))
        })
        .await;
    assert_eq!(presence["fleet"], "default");
    assert_eq!(presence["online"], 2);
    let change = presence["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["driver_id"] == "DRV-002")
        .unwrap()
        .clone();
    assert_eq!(change["name"], "Bob");
    assert_eq!(change["status"], "online");
    let status = dispatcher
        .find(|m| m["type"] == "driver_status" && m["driver_id"] == "DRV-002")
        .await;
    assert_eq!(status["status"], "online");
    assert_eq!(status["room"], "dispatch");
}
on_both_backends!(a_driver_going_online_is_announced_to_the_fleet);
