//! `POST /api/v1/orders/bulk` (SPEC 10) over real sockets: a thousand orders stored and each
//! dispatched as a single create would be (the same room messages, no driver past its capacity);
//! one bad order refuses the whole request with its index and stores nothing; an order that
//! cannot be inserted rolls back the others; 1,001 orders, a body over 1 MiB and a non-staff
//! token are refused.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::Role;
use serde_json::{json, Value};
use std::time::Duration;

/// `n` orders around Paris, ids `BLK-<prefix>-<i>`.
fn orders(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let d = i as f64 * 0.0001;
            json!({"id": format!("BLK-{prefix}-{i}"),
                   "pickup": {"lat": 48.85 + d, "lng": 2.35},
                   "dropoff": {"lat": 48.87, "lng": 2.29 + d}})
        })
        .collect()
}

/// Every order stored, newest first.
async fn stored(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .get_json("/api/v1/orders?limit=1000", Some(&app.dispatcher_token()))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

/// The `order_updated`s `c` gets within `d`.
async fn updates(c: &mut WsClient, d: Duration) -> Vec<Value> {
    c.drain_for(d)
        .await
        .into_iter()
        .filter(|m| m["type"] == "order_updated")
        .collect()
}

async fn a_thousand_orders_are_stored_at_once_and_each_dispatched(db: TestDb) {
    // Ten drivers with room for 90 orders each: 900 orders find a driver, 100 wait.
    let app = spawn_app_with(db, |s| {
        s.dispatch.default_capacity = 90;
        s.limits.outbound_queue = 8192;
    })
    .await;
    let mut drivers = Vec::new();
    for k in 0..10 {
        let id = format!("DRV-{k:03}");
        let lat = 48.80 + f64::from(k) * 0.01;
        drivers.push(app.online_driver(&id, &id, lat, 2.33).await);
    }
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let body = json!({ "orders": orders("A", 1000) });
    let (status, created) = app
        .post_json_with_key("/api/v1/orders/bulk", &body, &app.admin_token(), "bulk-1")
        .await;
    assert_eq!(status, 201, "{created}");
    let created = created.as_array().cloned().unwrap_or_default();
    assert_eq!(created.len(), 1000);
    for (i, o) in created.iter().enumerate() {
        assert_eq!(o["id"], format!("BLK-A-{i}"), "in the order given");
        assert_eq!(o["version"], 1, "{o}");
    }
    let assigned = created.iter().filter(|o| o["status"] == "assigned").count();
    assert_eq!(assigned, 900, "every free slot taken, none twice");
    assert_eq!(
        created.iter().filter(|o| o["status"] == "pending").count(),
        100
    );

    // Each driver is given exactly its capacity, each offer as a single create makes it.
    for d in &mut drivers {
        let offers: Vec<Value> = d
            .drain_for(Duration::from_millis(1500))
            .await
            .into_iter()
            .filter(|m| m["type"] == "order_assigned")
            .collect();
        assert_eq!(offers.len(), 90, "a driver is given its capacity");
        for m in &offers {
            assert_eq!(m["reason"], "dispatch", "{m}");
            assert_eq!(m["order"]["version"], 1, "{m}");
            assert_eq!(m["order"]["driver_id"], m["driver_id"], "{m}");
        }
    }
    // The desk hears of every order once, as it was inserted.
    let seen = updates(&mut desk, Duration::from_millis(1500)).await;
    let mut ids: Vec<&str> = seen.iter().filter_map(|m| m["order_id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "one order_updated per order in dispatch");
    assert_eq!(seen.len(), 1000, "and no more");
    assert!(seen.iter().all(|m| m["version"] == 1), "as inserted");
    let seqs: Vec<i64> = seen.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in room order");

    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1000);
    assert_eq!(
        rows.iter().filter(|o| o["status"] == "assigned").count(),
        900
    );

    // The same key again: the first answer, nothing created twice.
    let (status, again) = app
        .post_json_with_key("/api/v1/orders/bulk", &body, &app.admin_token(), "bulk-1")
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again.as_array().map(Vec::len), Some(1000));
    assert_eq!(stored(&app).await.len(), 1000);
    assert!(
        updates(&mut desk, Duration::from_millis(300))
            .await
            .is_empty(),
        "a repeat publishes nothing"
    );
}
on_both_backends!(a_thousand_orders_are_stored_at_once_and_each_dispatched);

/// `POST /api/v1/orders/bulk` as the desk; answers the status and the error's message.
async fn refused(app: &TestApp, body: &Value) -> (u16, String) {
    let (status, answer) = app
        .post_json("/api/v1/orders/bulk", body, &app.dispatcher_token())
        .await;
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("a JSON error body: {answer}"))
        .to_string();
    (status, message)
}

async fn one_bad_order_refuses_the_whole_request_with_its_index(db: TestDb) {
    let app = spawn_app(db).await;
    let _alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;

    let mut list = orders("B", 40);
    list[17]["pickup"]["lat"] = json!(95.0);
    let (status, message) = refused(&app, &json!({ "orders": list })).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("orders[17].pickup.lat"), "{message}");

    let mut list = orders("B", 40);
    list[3]["dropoff"]["lng"] = json!("east");
    let (status, message) = refused(&app, &json!({ "orders": list })).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.starts_with("orders[3].dropoff.lng"), "{message}");

    let mut list = orders("B", 40);
    list[29]["priority"] = json!("whenever");
    let (status, message) = refused(&app, &json!({ "orders": list })).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.starts_with("orders[29].priority"), "{message}");

    let mut list = orders("B", 40);
    list[31]["id"] = json!("BLK-B-2");
    let (status, message) = refused(&app, &json!({ "orders": list })).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("orders[31].id"), "{message}");

    let mut list = orders("B", 40);
    list[12]["driver_id"] = json!("DRV-404");
    let (status, message) = refused(&app, &json!({ "orders": list })).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("orders[12].driver_id"), "{message}");

    // Two orders named for Alice, whose capacity is one: the commit's capacity check refuses
    // the whole request.
    let mut list = orders("B", 3);
    list[0]["driver_id"] = json!("DRV-001");
    list[2]["driver_id"] = json!("DRV-001");
    let (status, message) = refused(&app, &json!({ "orders": list })).await;
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("capacity"), "{message}");

    assert!(stored(&app).await.is_empty(), "nothing stored");
    // An order that cannot be inserted (its id is taken) rolls back those before it.
    let (status, one) = app
        .post_json(
            "/api/v1/orders",
            &orders("B", 6)[5],
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201, "{one}");
    let (status, message) = refused(&app, &json!({ "orders": orders("B", 10) })).await;
    assert_eq!(status, 409, "{message}");
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1, "only the single order: {rows:?}");
    let seen = updates(&mut desk, Duration::from_millis(500)).await;
    assert!(
        seen.iter().all(|m| m["order_id"] == "BLK-B-5"),
        "nothing announced of a refused request: {seen:?}"
    );
}
on_both_backends!(one_bad_order_refuses_the_whole_request_with_its_index);

fn customer_token(app: &TestApp) -> String {
    let mut c = Claims::new("cust-1", Role::Customer, None, "default", 3600);
    c.customer_id = Some("C-1".into());
    app.hub.keys.sign(&c).expect("sign")
}

async fn too_many_orders_a_body_over_a_mebibyte_and_non_staff_are_refused(db: TestDb) {
    let app = spawn_app(db).await;
    let (status, message) = refused(&app, &json!({ "orders": orders("C", 1001) })).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("1001"), "{message}");
    let (status, message) = refused(&app, &json!({ "orders": [] })).await;
    assert_eq!(status, 400, "{message}");

    // Under 1 MiB passes the limit even though other routes stop at 64 KiB...
    let mut list = orders("C", 2);
    list[0]["customer_id"] = json!("C-1");
    let pad = "x".repeat(200 * 1024);
    let (status, body) = app
        .post_json(
            "/api/v1/orders/bulk",
            &json!({ "orders": list, "note": pad }),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // ...over it is 413, with the contract's body.
    let pad = "x".repeat(1024 * 1024 + 1);
    let (status, body) = app
        .post_json(
            "/api/v1/orders/bulk",
            &json!({ "orders": orders("D", 2), "note": pad }),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large", "{body}");

    let driver = app.driver_token("DRV-001", "Alice");
    for token in [driver, customer_token(&app)] {
        let (status, body) = app
            .post_json(
                "/api/v1/orders/bulk",
                &json!({ "orders": orders("E", 3) }),
                &token,
            )
            .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
    }
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 2, "only the request within the limit: {rows:?}");
}
on_both_backends!(too_many_orders_a_body_over_a_mebibyte_and_non_staff_are_refused);

/// Posted to a cluster's follower, a bulk request is run by the leader (one writer of
/// assignments): one answer, the orders stored once and dispatched, their messages reaching a
/// desk on the follower. Needs PostgreSQL and Redis (skipped loudly without).
#[actix_web::test]
async fn a_bulk_request_to_a_follower_is_run_once_by_the_leader() {
    let Some((leader, follower)) =
        crate::cluster_leader::leader_and_follower("bulk::a_bulk_request_to_a_follower").await
    else {
        return;
    };
    let _alice = leader.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut desk = follower.ws(&follower.dispatcher_token()).await;
    let body = json!({ "orders": orders("F", 20) });
    let (status, created) = follower
        .post_json_with_key(
            "/api/v1/orders/bulk",
            &body,
            &follower.admin_token(),
            "bulk-f",
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let created = created.as_array().cloned().unwrap_or_default();
    assert_eq!(created.len(), 20);
    assert_eq!(
        created.iter().filter(|o| o["status"] == "assigned").count(),
        1,
        "Alice takes one, the others wait"
    );
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let m = desk.expect("order_updated").await;
        seen.push(m["order_id"].as_str().unwrap_or_default().to_string());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "each order announced once: {seen:?}");
    assert!(
        updates(&mut desk, Duration::from_millis(300))
            .await
            .is_empty(),
        "and no more"
    );
    assert_eq!(stored(&leader).await.len(), 20);
    assert_eq!(stored(&follower).await.len(), 20);
}
