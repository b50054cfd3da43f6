//! An order's life through the drivers' hands: accept, pick up, deliver, decline, cancel; and
//! capacity freed (by a delivery, a report, a driver coming online) going to the orders waiting.

use crate::helpers::{spawn_app, TestApp, TestDb};
use crate::on_both_backends;
use serde_json::{json, Value};

async fn create(app: &TestApp, id: &str, driver: Option<&str>) -> (u16, Value) {
    let mut body =
        json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30}});
    if let Some(d) = driver {
        body["driver_id"] = json!(d);
    }
    app.post_json("/api/v1/orders", &body, &app.dispatcher_token())
        .await
}

async fn a_delivery_frees_the_driver_for_the_order_that_waited(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let (status, first) = create(&app, "ORD-1", None).await;
    assert_eq!(status, 201);
    assert_eq!(
        first["driver_id"], "DRV-001",
        "dispatched to the only driver: {first}"
    );
    // Alice is at capacity (1): the second order waits.
    let (_, second) = create(&app, "ORD-2", None).await;
    assert_eq!(second["status"], "pending");
    assert!(second["driver_id"].is_null());
    let e = alice
        .request(json!({"type":"order_status","order_id":"ORD-1","status":"picked_up"}))
        .await;
    assert_eq!(e["code"], "conflict", "accept first: {e}");
    for (msg, status) in [
        (json!({"type":"accept","order_id":"ORD-1"}), "assigned"),
        (
            json!({"type":"order_status","order_id":"ORD-1","status":"picked_up"}),
            "picked_up",
        ),
        (
            json!({"type":"order_status","order_id":"ORD-1","status":"out_for_delivery"}),
            "out_for_delivery",
        ),
        (
            json!({"type":"order_status","order_id":"ORD-1","status":"delivered"}),
            "delivered",
        ),
    ] {
        let ack = alice.request(msg.clone()).await;
        assert_eq!(ack["type"], "ack", "{msg}: {ack}");
        assert_eq!(ack["order"]["status"], status);
        let update = desk
            .find(|m| {
                m["type"] == "order_updated" && m["order_id"] == "ORD-1" && m["status"] == status
            })
            .await;
        assert_eq!(update["room"], "dispatch");
    }
    let e = alice
        .request(json!({"type":"order_status","order_id":"ORD-1","status":"picked_up"}))
        .await;
    assert_eq!(e["type"], "error", "a delivered order never changes: {e}");
    let assigned = alice.expect("order_assigned").await;
    let assigned = if assigned["order_id"] == "ORD-1" {
        alice.expect("order_assigned").await
    } else {
        assigned
    };
    assert_eq!(assigned["order_id"], "ORD-2");
    assert_eq!(assigned["reason"], "dispatch");
    let (_, o1) = app
        .get_json("/api/v1/orders/ORD-1", Some(&app.admin_token()))
        .await;
    assert_eq!(o1["status"], "delivered");
    assert_eq!(o1["version"], 5);
}
on_both_backends!(a_delivery_frees_the_driver_for_the_order_that_waited);

async fn a_declined_order_goes_to_the_next_driver_and_a_cancelled_one_is_taken_back(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    let (_, o) = create(&app, "ORD-D", Some("DRV-001")).await;
    assert_eq!(o["driver_id"], "DRV-001");
    alice.expect("order_assigned").await;
    let ack = alice
        .request(json!({"type":"decline","order_id":"ORD-D"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let assigned = bob.expect("order_assigned").await;
    assert_eq!(assigned["reason"], "decline");
    assert_eq!(alice.expect("order_unassigned").await["reason"], "decline");
    // Bob declines too: Alice declined it already, so it waits.
    bob.request(json!({"type":"decline","order_id":"ORD-D"}))
        .await;
    let (_, o) = app
        .get_json("/api/v1/orders/ORD-D", Some(&app.admin_token()))
        .await;
    assert_eq!(o["status"], "pending", "{o}");
    // Cancelled by a dispatcher; a driver may not cancel.
    let (status, _) = app
        .post_json(
            "/api/v1/orders/ORD-D/cancel",
            &json!({}),
            &app.driver_token("DRV-001", "Alice"),
        )
        .await;
    assert_eq!(status, 403);
    let (status, o) = app
        .post_json(
            "/api/v1/orders/ORD-D/cancel",
            &json!({}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["status"], "cancelled");
    let (status, e) = app
        .post_json(
            "/api/v1/orders/ORD-D/cancel",
            &json!({}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["code"], "conflict");
}
on_both_backends!(a_declined_order_goes_to_the_next_driver_and_a_cancelled_one_is_taken_back);

async fn an_override_to_an_offline_driver_is_refused_unless_forced(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let (status, _) = app
        .post_json(
            "/api/v1/drivers",
            &json!({"id":"DRV-009","name":"Nina"}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 201);
    create(&app, "ORD-O", Some("DRV-001")).await;
    let (status, e) = app
        .post_json(
            "/api/v1/orders/ORD-O/reassign",
            &json!({"driver_id":"DRV-009","reason":"try"}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("offline"));
    let (status, o) = app
        .post_json(
            "/api/v1/orders/ORD-O/reassign",
            &json!({"driver_id":"DRV-009","reason":"she is on her way","force":true}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["driver_id"], "DRV-009");
    let (_, audit) = app
        .get_json("/api/v1/audit", Some(&app.admin_token()))
        .await;
    assert_eq!(audit[0]["forced"], true);
}
on_both_backends!(an_override_to_an_offline_driver_is_refused_unless_forced);

async fn a_driver_taken_off_an_order_is_given_one_that_waited(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let (_, held) = create(&app, "ORD-H", None).await;
    assert_eq!(held["driver_id"], "DRV-001", "{held}");
    let (_, waiting) = create(&app, "ORD-W", None).await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    // Nobody else is online: the order is taken off her and she is free again.
    let ack = alice
        .request(json!({"type":"report","order_id":"ORD-H","kind":"vehicle_breakdown"}))
        .await;
    assert_eq!(ack["event"]["action_taken"], "NO_DRIVER_AVAILABLE", "{ack}");
    // ORD-W waited for a free driver: she is one.
    let assigned = alice
        .find(|m| m["type"] == "order_assigned" && m["order_id"] == "ORD-W")
        .await;
    assert_eq!(assigned["reason"], "dispatch", "{assigned}");
    let (_, w) = app
        .get_json("/api/v1/orders/ORD-W", Some(&app.admin_token()))
        .await;
    assert_eq!(w["driver_id"], "DRV-001", "{w}");
}
on_both_backends!(a_driver_taken_off_an_order_is_given_one_that_waited);

async fn orders_created_as_a_driver_comes_online_are_never_refused(db: TestDb) {
    let app = spawn_app(db).await;
    let mut refused = Vec::new();
    for round in 0..6 {
        // A driver connects (a new driver starts offline) while orders wait for one.
        let id = format!("DRV-R{round}");
        let mut driver = app.ws(&app.driver_token(&id, "Rider")).await;
        assert_eq!(driver.welcome["status"], "offline", "{}", driver.welcome);
        let (_, w) = create(&app, &format!("ORD-W{round}"), None).await;
        assert_eq!(w["status"], "pending", "{w}");
        // It goes online while new orders keep coming in.
        let ids: Vec<String> = (0..20).map(|i| format!("ORD-{round}-{i}")).collect();
        let creates = futures_util::future::join_all(ids.iter().map(|id| create(&app, id, None)));
        let online = driver.request(json!({"type":"status","status":"online"}));
        let (created, ack) = tokio::join!(creates, online);
        assert_eq!(ack["type"], "ack", "round {round}: {ack}");
        for (id, (status, body)) in ids.iter().zip(created) {
            if status != 201 {
                refused.push(format!("round {round}: {id}: {status} {body}"));
            }
        }
        // It is given exactly one order (capacity 1).
        let given = driver.expect("order_assigned").await;
        let (_, mine) = app
            .get_json(
                &format!("/api/v1/orders?driver_id={id}"),
                Some(&app.admin_token()),
            )
            .await;
        let mine = mine.as_array().unwrap();
        assert_eq!(mine.len(), 1, "round {round}: {mine:?}");
        assert_eq!(mine[0]["id"], given["order_id"], "round {round}: {mine:?}");
    }
    assert!(
        refused.is_empty(),
        "orders naming no driver were refused: {refused:#?}"
    );
}
on_both_backends!(orders_created_as_a_driver_comes_online_are_never_refused);
