//! Rights re-checked when they change: a driver taken off an order (emergency, override, cancel,
//! decline) leaves `order:<id>`, told with `left` after its `order_unassigned`; a `refresh` whose
//! claims no longer admit a joined room leaves it. Nothing of a room follows its `left`.

use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::Role;
use serde_json::{json, Value};

struct Fleet {
    app: TestApp,
    alice: WsClient,
    bob: WsClient,
    carol: WsClient,
    desk: WsClient,
}

/// Alice, Bob (1 km) and Carol (5 km) online; ORD-1 given to Alice (accepted when `accept`),
/// and Alice in `order:ORD-1`.
async fn set_up(db: TestDb, accept: bool) -> Fleet {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let bob = app.online_driver("DRV-002", "Bob", 48.8656, 2.3522).await;
    let carol = app.online_driver("DRV-003", "Carol", 48.9016, 2.3522).await;
    let desk = app.ws(&app.dispatcher_token()).await;
    app.give_order(&mut alice, "DRV-001", "ORD-1", accept).await;
    let ack = alice
        .request(json!({"type":"join","room":"order:ORD-1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    Fleet {
        app,
        alice,
        bob,
        carol,
        desk,
    }
}

/// Every message, in order, up to and including the first that matches `pred`.
async fn until(c: &mut WsClient, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let m = c.find(|_| true).await;
        let done = pred(&m);
        out.push(m);
        if done {
            return out;
        }
    }
}

fn is_left(m: &Value, room: &str) -> bool {
    m["type"] == "left" && m["room"] == room
}

/// Alice gets `order_unassigned` (with `reason`), then `left` for `order:ORD-1`, and may not
/// join it again.
async fn assert_alice_left(alice: &mut WsClient, reason: &str) {
    let read = until(alice, |m| is_left(m, "order:ORD-1")).await;
    let unassigned = read
        .iter()
        .position(|m| m["type"] == "order_unassigned" && m["order_id"] == "ORD-1")
        .unwrap_or_else(|| panic!("no order_unassigned before the left: {read:?}"));
    assert_eq!(read[unassigned]["reason"], reason, "{read:?}");
    let left = read.last().unwrap();
    assert_eq!(left["reason"], "unassigned", "{left}");
    assert!(
        left.get("seq").is_none(),
        "`left` is to one session: {left}"
    );
    let again = alice
        .request(json!({"type":"join","room":"order:ORD-1"}))
        .await;
    assert_eq!(again["code"], "forbidden", "{again}");
}

/// `driver` accepts ORD-1 (an `order_updated` to `order:ORD-1`); then an emergency reported by
/// the desk reaches Alice in `fleet:default`, and no update of ORD-1 came to her before it.
async fn assert_no_more_updates_for_alice(f: &mut Fleet, driver: &str) {
    let c = match driver {
        "bob" => &mut f.bob,
        _ => &mut f.carol,
    };
    c.expect("order_assigned").await;
    let ack = c.request(json!({"type":"accept","order_id":"ORD-1"})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let version = ack["order"]["version"].clone();
    f.desk
        .find(|m| m["type"] == "order_updated" && m["version"] == version)
        .await;
    let ack = f
        .desk
        .request(json!({"type":"report","order_id":"ORD-1","kind":"traffic_jam"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let event_id = ack["event"]["event_id"].clone();
    let read = until(&mut f.alice, |m| {
        m["type"] == "emergency_event" && m["event_id"] == event_id
    })
    .await;
    let updates: Vec<&Value> = read
        .iter()
        .filter(|m| m["order_id"] == "ORD-1" && m["type"] == "order_updated")
        .collect();
    assert!(updates.is_empty(), "Alice left order:ORD-1: {updates:?}");
}

async fn a_driver_taken_off_by_an_emergency_leaves_the_orders_room(db: TestDb) {
    let mut f = set_up(db, true).await;
    let ack = f
        .alice
        .request(json!({"type":"report","order_id":"ORD-1","kind":"vehicle_breakdown"}))
        .await;
    assert_eq!(ack["event"]["new_driver_id"], "DRV-002", "{ack}");
    assert_alice_left(&mut f.alice, "emergency").await;
    assert_no_more_updates_for_alice(&mut f, "bob").await;
}
on_both_backends!(a_driver_taken_off_by_an_emergency_leaves_the_orders_room);

async fn a_driver_taken_off_by_an_override_leaves_the_orders_room(db: TestDb) {
    let mut f = set_up(db, true).await;
    let (status, body) = f
        .app
        .post_json(
            "/api/v1/orders/ORD-1/reassign",
            &json!({"driver_id":"DRV-003","reason":"closer to the drop-off"}),
            &f.app.admin_token(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_alice_left(&mut f.alice, "override").await;
    assert_no_more_updates_for_alice(&mut f, "carol").await;
}
on_both_backends!(a_driver_taken_off_by_an_override_leaves_the_orders_room);

async fn a_driver_whose_order_is_cancelled_leaves_the_orders_room(db: TestDb) {
    let mut f = set_up(db, true).await;
    let (status, body) = f
        .app
        .post_json(
            "/api/v1/orders/ORD-1/cancel",
            &json!({}),
            &f.app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_alice_left(&mut f.alice, "cancelled").await;
}
on_both_backends!(a_driver_whose_order_is_cancelled_leaves_the_orders_room);

async fn a_driver_that_declines_leaves_the_orders_room(db: TestDb) {
    let mut f = set_up(db, false).await;
    let ack = f
        .alice
        .request(json!({"type":"decline","order_id":"ORD-1"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_alice_left(&mut f.alice, "decline").await;
    assert_no_more_updates_for_alice(&mut f, "bob").await;
}
on_both_backends!(a_driver_that_declines_leaves_the_orders_room);

fn observer_token(app: &TestApp, rooms: &[&str]) -> String {
    let mut claims = Claims::new("watcher-1", Role::Observer, None, "default", 3600);
    claims.rooms = Some(rooms.iter().map(|r| r.to_string()).collect());
    app.hub.keys.sign(&claims).expect("sign")
}

async fn an_observer_whose_refresh_narrows_its_rooms_leaves_the_rooms_it_lost(db: TestDb) {
    let app = spawn_app(db).await;
    for id in ["ORD-1", "ORD-2"] {
        let (status, order) = app
            .post_json(
                "/api/v1/orders",
                &json!({"id":id,"pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.29}}),
                &app.dispatcher_token(),
            )
            .await;
        assert_eq!(status, 201, "{order}");
    }
    let mut watcher = app.ws(&observer_token(&app, &["order:*"])).await;
    for room in ["order:ORD-1", "order:ORD-2"] {
        let ack = watcher.request(json!({"type":"join","room":room})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let ack = watcher
        .request(json!({"type":"refresh","token":observer_token(&app, &["order:ORD-1"])}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let left = watcher.find(|m| m["type"] == "left").await;
    assert_eq!(left["room"], "order:ORD-2", "{left}");
    assert_eq!(left["reason"], "rights_changed", "{left}");

    // ORD-2 changes, then ORD-1: the watcher hears of ORD-1 only.
    for id in ["ORD-2", "ORD-1"] {
        let (status, body) = app
            .post_json(
                &format!("/api/v1/orders/{id}/cancel"),
                &json!({}),
                &app.dispatcher_token(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let read = until(&mut watcher, |m| {
        m["type"] == "order_updated" && m["order_id"] == "ORD-1"
    })
    .await;
    assert!(
        read.iter()
            .all(|m| m["order_id"] != "ORD-2" && !is_left(m, "order:ORD-1")),
        "nothing of order:ORD-2 after its left, order:ORD-1 kept: {read:?}"
    );
    let gone = watcher
        .request(json!({"type":"leave","room":"order:ORD-2"}))
        .await;
    assert_eq!(gone["code"], "not_found", "no longer in it: {gone}");
}
on_both_backends!(an_observer_whose_refresh_narrows_its_rooms_leaves_the_rooms_it_lost);
