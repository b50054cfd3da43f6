//! Customers and partners (SPEC 10): a customer follows its own orders in `customer:<id>` and
//! `order:<id>`, a partner its own in `partner:<id>`; each leak is tried and refused: another
//! customer's order or room, the staff's and the drivers' rooms, another's order over REST, a
//! token without its id claim. Partners place orders as themselves and cancel their own pending
//! ones.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::Role;
use serde_json::{json, Value};
use std::time::Duration;

fn customer_token(app: &TestApp, id: &str) -> String {
    let mut c = Claims::new(&format!("cust-{id}"), Role::Customer, None, "default", 3600);
    c.customer_id = Some(id.to_string());
    app.hub.keys.sign(&c).expect("sign")
}

fn partner_token(app: &TestApp, id: &str) -> String {
    let mut c = Claims::new(&format!("shop-{id}"), Role::Partner, None, "default", 3600);
    c.partner_id = Some(id.to_string());
    app.hub.keys.sign(&c).expect("sign")
}

/// Creates `id` over REST as `token` with `extra` fields merged into the body; answers the order.
async fn create(app: &TestApp, token: &str, id: &str, extra: Value) -> Value {
    let mut body = json!({"id":id,"pickup":{"lat":48.8566,"lng":2.3522},
                          "dropoff":{"lat":48.8738,"lng":2.2950}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, order) = app.post_json("/api/v1/orders", &body, token).await;
    assert_eq!(status, 201, "{order}");
    order
}

/// The next `order_updated` of `order` in `room` with `status`.
async fn updated(c: &mut WsClient, room: &str, order: &str, status: &str) -> Value {
    c.find(|m| {
        m["type"] == "order_updated"
            && m["room"] == room
            && m["order_id"] == order
            && m["status"] == status
    })
    .await
}

/// Everything `c` got besides what it asked for: only `order_updated`, and none of `other`'s.
async fn only_own_updates(c: &mut WsClient, other: &str) {
    for m in c.drain_for(Duration::from_millis(300)).await {
        let kind = m["type"].as_str().unwrap_or_default();
        assert!(
            matches!(
                kind,
                "order_updated" | "courier_location" | "ack" | "joined" | "pong"
            ),
            "a customer or partner got {m}"
        );
        assert_ne!(m["order_id"], other, "another's order leaked: {m}");
    }
}

async fn a_customer_follows_its_order_through_a_whole_delivery(db: TestDb) {
    let app = spawn_app(db).await;
    let mut driver = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let mut carol = app.ws(&customer_token(&app, "C-1")).await;
    let mut dave = app.ws(&customer_token(&app, "C-2")).await;
    assert_eq!(carol.welcome["role"], "customer", "{}", carol.welcome);
    assert!(
        carol.welcome["rooms"].get("customer:C-1").is_some(),
        "{}",
        carol.welcome
    );
    let order = create(
        &app,
        &app.dispatcher_token(),
        "ORD-C1",
        json!({"customer_id":"C-1","driver_id":"DRV-001"}),
    )
    .await;
    assert_eq!(order["customer_id"], "C-1", "{order}");
    assert_eq!(order["partner_id"], Value::Null, "{order}");
    driver.expect("order_assigned").await;
    let first = updated(&mut carol, "customer:C-1", "ORD-C1", "assigned").await;
    assert!(
        first["seq"].as_i64().is_some() && first["id"].is_string(),
        "{first}"
    );
    // Its own order's room is open to it, and carries the same publications.
    let ack = carol
        .request(json!({"type":"join","room":"order:ORD-C1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let ack = driver
        .request(json!({"type":"accept","order_id":"ORD-C1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // The driver moves: a location the customer must not see as `locations`.
    let ack = driver
        .request(json!({"type":"location","lat":48.86,"lng":2.34,"speed":9.0}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for status in ["picked_up", "out_for_delivery", "delivered"] {
        let ack = driver
            .request(json!({"type":"order_status","order_id":"ORD-C1","status":status}))
            .await;
        assert_eq!(ack["type"], "ack", "{status}: {ack}");
        let in_own = updated(&mut carol, "customer:C-1", "ORD-C1", status).await;
        let in_order = updated(&mut carol, "order:ORD-C1", "ORD-C1", status).await;
        assert_eq!(in_own["id"], in_order["id"], "one publication, one id");
    }
    // Past a location flush: still nothing but its order's updates.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    only_own_updates(&mut carol, "none").await;
    // The other customer saw nothing of it.
    for m in dave.drain_for(Duration::from_millis(300)).await {
        assert_eq!(m["type"], "joined", "a second customer got {m}");
    }
}
on_both_backends!(a_customer_follows_its_order_through_a_whole_delivery);

async fn a_customer_follows_its_order_through_a_reassignment_and_learns_nothing_of_the_incident(
    db: TestDb,
) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.8570, 2.3530).await;
    let mut carol = app.ws(&customer_token(&app, "C-1")).await;
    create(
        &app,
        &app.dispatcher_token(),
        "ORD-R",
        json!({"customer_id":"C-1","driver_id":"DRV-001"}),
    )
    .await;
    alice.expect("order_assigned").await;
    let first = updated(&mut carol, "customer:C-1", "ORD-R", "assigned").await;
    assert_eq!(first["driver_id"], "DRV-001", "{first}");
    let ack = carol
        .request(json!({"type":"join","room":"order:ORD-R"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Alice's van breaks down: the order moves to Bob.
    let ack = alice
        .request(
            json!({"type":"report","order_id":"ORD-R","kind":"vehicle_breakdown",
                        "comment":"engine smoke near the customer's street"}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(
        ack["event"]["action_taken"], "REASSIGNMENT_INITIATED",
        "{ack}"
    );
    bob.find(|m| m["type"] == "order_assigned" && m["order_id"] == "ORD-R")
        .await;
    // The customer sees a new courier and a new ETA, in both of its rooms, once each.
    let moved = updated(&mut carol, "customer:C-1", "ORD-R", "assigned").await;
    assert_eq!(moved["driver_id"], "DRV-002", "{moved}");
    assert!(moved["eta"].is_string(), "a new ETA: {moved}");
    let in_order = updated(&mut carol, "order:ORD-R", "ORD-R", "assigned").await;
    assert_eq!(in_order["id"], moved["id"], "one publication");
    // Both couriers move: only the new one is the customer's courier now.
    for (d, lat) in [(&mut alice, 48.8600), (&mut bob, 48.8590)] {
        let ack = d
            .request(json!({"type":"location","lat":lat,"lng":2.3500,"speed":6.0}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let flush = Duration::from_millis(app.settings.realtime.location_flush_ms);
    let seen = carol
        .drain_for(flush * 2 + Duration::from_millis(300))
        .await;
    let couriers: Vec<&Value> = seen
        .iter()
        .filter(|m| m["type"] == "courier_location")
        .collect();
    assert!(!couriers.is_empty(), "the new courier is heard: {seen:?}");
    for m in &couriers {
        assert_eq!(
            m["lat"],
            json!(48.8590),
            "Bob's position only, never Alice's: {m}"
        );
        assert_eq!(m["order_id"], "ORD-R", "{m}");
    }
    // Nothing of the incident, ever: no emergency, no risk, no reason, no comment.
    for m in &seen {
        let kind = m["type"].as_str().unwrap_or_default();
        assert!(
            matches!(
                kind,
                "order_updated" | "courier_location" | "joined" | "ack" | "pong"
            ),
            "a customer got {m}"
        );
        let text = m.to_string();
        for word in [
            "risk",
            "breakdown",
            "smoke",
            "incident",
            "event_id",
            "reason",
        ] {
            assert!(!text.contains(word), "{word} leaked to the customer: {m}");
        }
    }
}
on_both_backends!(
    a_customer_follows_its_order_through_a_reassignment_and_learns_nothing_of_the_incident
);

/// The `courier_location`s `c` gets within `d`.
async fn courier_locations(c: &mut WsClient, d: Duration) -> Vec<Value> {
    c.drain_for(d)
        .await
        .into_iter()
        .filter(|m| m["type"] == "courier_location")
        .collect()
}

async fn a_customer_sees_its_courier_move_and_nothing_of_the_couriers_other_orders(db: TestDb) {
    let app = spawn_app_with(db, |s| s.dispatch.default_capacity = 2).await;
    let mut driver = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let mut carol = app.ws(&customer_token(&app, "C-1")).await;
    let mut dave = app.ws(&customer_token(&app, "C-2")).await;
    let mut erin = app.ws(&customer_token(&app, "C-3")).await;
    for (order, customer) in [("ORD-A", "C-1"), ("ORD-B", "C-2")] {
        create(
            &app,
            &app.dispatcher_token(),
            order,
            json!({"customer_id": customer, "driver_id": "DRV-001"}),
        )
        .await;
        driver.expect("order_assigned").await;
    }
    // Ten positions at once: each customer hears of its own order only, coalesced, the newest
    // last (realtime.location_flush_ms).
    let last_lat = 48.8566 + 10.0 * 0.001;
    for i in 1..=10 {
        let lat = 48.8566 + f64::from(i) * 0.001;
        let ack = driver
            .request(json!({"type":"location","lat":lat,"lng":2.3522,"speed":7.5,"heading":90}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let flush = Duration::from_millis(app.settings.realtime.location_flush_ms);
    for (c, own, other) in [
        (&mut carol, "ORD-A", "ORD-B"),
        (&mut dave, "ORD-B", "ORD-A"),
    ] {
        let got = courier_locations(c, flush * 2 + Duration::from_millis(500)).await;
        assert!(!got.is_empty(), "{own}'s customer hears its courier");
        assert!(got.len() < 10, "coalesced per flush interval: {got:?}");
        for m in &got {
            assert_eq!(
                m["order_id"], own,
                "never the courier's other order ({other}): {m}"
            );
            assert_eq!(
                m["room"].as_str().map(|r| r.starts_with("customer:")),
                Some(true),
                "{m}"
            );
            assert!(m.get("seq").is_none_or(Value::is_null), "ephemeral: {m}");
        }
        let newest = got.last().map(|m| m["lat"].as_f64());
        assert_eq!(
            newest,
            Some(Some(last_lat)),
            "the newest position wins: {got:?}"
        );
        assert_eq!(got.last().map(|m| m["speed"].clone()), Some(json!(7.5)));
    }
    assert!(
        courier_locations(&mut erin, Duration::from_millis(300))
            .await
            .is_empty(),
        "a customer with no order here hears no courier"
    );
    // Delivered: the order no longer holds the driver, its customer hears no more.
    let ack = driver
        .request(json!({"type":"accept","order_id":"ORD-A"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for status in ["picked_up", "out_for_delivery", "delivered"] {
        let ack = driver
            .request(json!({"type":"order_status","order_id":"ORD-A","status":status}))
            .await;
        assert_eq!(ack["type"], "ack", "{status}: {ack}");
    }
    tokio::time::sleep(flush).await;
    carol.drain_for(Duration::from_millis(200)).await;
    let ack = driver
        .request(json!({"type":"location","lat":48.9,"lng":2.3522}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let after = courier_locations(&mut carol, flush * 2).await;
    assert!(after.is_empty(), "after delivery: {after:?}");
    assert!(!courier_locations(&mut dave, flush * 2).await.is_empty());
}
on_both_backends!(a_customer_sees_its_courier_move_and_nothing_of_the_couriers_other_orders);

/// Sends a `join` of `room` and asserts `forbidden`.
async fn join_refused(c: &mut WsClient, room: &str) {
    let e = c.request(json!({"type":"join","room":room})).await;
    assert_eq!(e["type"], "error", "{room}: {e}");
    assert_eq!(e["code"], "forbidden", "{room}: {e}");
}

async fn a_customer_may_join_nothing_but_its_own(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let _bob = app.online_driver("DRV-002", "Bob", 48.8566, 2.3522).await;
    create(
        &app,
        &app.dispatcher_token(),
        "ORD-MINE",
        json!({"customer_id":"C-1","driver_id":"DRV-001"}),
    )
    .await;
    create(
        &app,
        &app.dispatcher_token(),
        "ORD-THEIRS",
        json!({"customer_id":"C-2","driver_id":"DRV-002"}),
    )
    .await;
    let token = customer_token(&app, "C-1");
    let mut carol = app.ws(&token).await;
    for room in [
        "order:ORD-THEIRS",
        "order:ORD-NOPE",
        "customer:C-2",
        "partner:C-1",
        "dispatch",
        "fleet:default",
        "driver:DRV-001",
    ] {
        join_refused(&mut carol, room).await;
        let (status, body) = app
            .get_json(
                &format!("/api/v1/rooms/{room}/events?since=0"),
                Some(&token),
            )
            .await;
        assert_eq!(status, 403, "history of {room}: {body}");
    }
    let ack = carol
        .request(json!({"type":"join","room":"order:ORD-MINE"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // REST: its own order, never another's (a 404, as for an order that does not exist).
    let (status, mine) = app.get_json("/api/v1/orders/ORD-MINE", Some(&token)).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["customer_id"], "C-1");
    for id in ["ORD-THEIRS", "ORD-NOPE"] {
        let (status, body) = app
            .get_json(&format!("/api/v1/orders/{id}"), Some(&token))
            .await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    let (status, list) = app.get_json("/api/v1/orders", Some(&token)).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, ["ORD-MINE"]);
    only_own_updates(&mut carol, "ORD-THEIRS").await;
}
on_both_backends!(a_customer_may_join_nothing_but_its_own);

async fn a_partner_places_follows_and_cancels_its_own_orders(db: TestDb) {
    let app = spawn_app(db).await;
    let shop = partner_token(&app, "P-1");
    let other = partner_token(&app, "P-2");
    let mut p1 = app.ws(&shop).await;
    let mut p2 = app.ws(&other).await;
    assert!(
        p1.welcome["rooms"].get("partner:P-1").is_some(),
        "{}",
        p1.welcome
    );
    // No driver is online: the orders stay pending. The body's partner_id is not the token's.
    let order = create(
        &app,
        &shop,
        "ORD-P1",
        json!({"partner_id":"P-2","customer_id":"C-9"}),
    )
    .await;
    assert_eq!(order["partner_id"], "P-1", "{order}");
    assert_eq!(order["status"], "pending", "{order}");
    updated(&mut p1, "partner:P-1", "ORD-P1", "pending").await;
    create(&app, &other, "ORD-P2", json!({})).await;
    // Another partner's order: refused, and untouched.
    let (status, body) = app
        .post_json("/api/v1/orders/ORD-P2/cancel", &json!({}), &shop)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app.get_json("/api/v1/orders/ORD-P2", Some(&shop)).await;
    assert_eq!(status, 404, "{body}");
    let (status, cancelled) = app
        .post_json("/api/v1/orders/ORD-P1/cancel", &json!({}), &shop)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    updated(&mut p1, "partner:P-1", "ORD-P1", "cancelled").await;
    let (status, body) = app
        .post_json("/api/v1/orders/ORD-P2/cancel", &json!({}), &other)
        .await;
    assert_eq!(status, 200, "{body}");
    updated(&mut p2, "partner:P-2", "ORD-P2", "cancelled").await;
    // Once given to a driver, the order is no longer the partner's to cancel.
    let mut driver = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    create(&app, &shop, "ORD-P3", json!({"driver_id":"DRV-001"})).await;
    driver.expect("order_assigned").await;
    updated(&mut p1, "partner:P-1", "ORD-P3", "assigned").await;
    let (status, body) = app
        .post_json("/api/v1/orders/ORD-P3/cancel", &json!({}), &shop)
        .await;
    assert_eq!(status, 409, "{body}");
    // A partner lists only its own orders.
    let (status, list) = app.get_json("/api/v1/orders", Some(&shop)).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list.as_array()
            .expect("a list")
            .iter()
            .all(|o| o["partner_id"] == "P-1"),
        "{list}"
    );
    only_own_updates(&mut p1, "ORD-P2").await;
    only_own_updates(&mut p2, "ORD-P1").await;
    join_refused(&mut p1, "partner:P-2").await;
    join_refused(&mut p1, "order:ORD-P3").await;
    join_refused(&mut p1, "dispatch").await;
}
on_both_backends!(a_partner_places_follows_and_cancels_its_own_orders);

async fn a_customer_or_partner_token_without_its_id_is_refused(db: TestDb) {
    let app = spawn_app(db).await;
    for role in [Role::Customer, Role::Partner] {
        let token = app.token_for("nobody", role, None);
        let (status, body) = app.ws_refusal(&format!("token={token}")).await;
        assert_eq!(status, 401, "{role}: {body}");
        let (status, body) = app.get_json("/api/v1/orders", Some(&token)).await;
        assert_eq!(status, 401, "{role}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("_id"), "{role}: {body}");
    }
}
on_both_backends!(a_customer_or_partner_token_without_its_id_is_refused);

async fn the_dev_login_signs_customers_and_partners_with_their_id(db: TestDb) {
    let app = spawn_app_with(db, |s| s.auth.dev_login = true).await;
    let anyone = app.admin_token();
    for (role, field) in [("customer", "customer_id"), ("partner", "partner_id")] {
        let (status, body) = app
            .post_json(
                "/api/v1/dev/login",
                &json!({"sub":"x","role":role}),
                &anyone,
            )
            .await;
        assert_eq!(status, 400, "{role}: {body}");
        let mut login = json!({"sub":"x","role":role});
        login[field] = json!("X-1");
        let (status, body) = app.post_json("/api/v1/dev/login", &login, &anyone).await;
        assert_eq!(status, 200, "{role}: {body}");
        let token = body["token"].as_str().expect("a token");
        let c = app.ws(token).await;
        let room = format!("{role}:X-1");
        assert!(c.welcome["rooms"].get(&room).is_some(), "{}", c.welcome);
    }
}
on_both_backends!(the_dev_login_signs_customers_and_partners_with_their_id);
