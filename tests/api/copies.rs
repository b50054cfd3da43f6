//! One publication, one `id` (SPEC 3): a message published to several rooms carries the same
//! `id` in every room's copy, each with that room's `room` and `seq`; dispatchers and admins are
//! joined to `dispatch` alone, so a dashboard gets each emergency once.

use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use serde_json::{json, Value};

/// Alice online with ORD-1 accepted, Bob online 1 km away.
async fn with_an_order(app: &TestApp) -> (WsClient, WsClient) {
    let mut alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    let bob = app.online_driver("DRV-002", "Bob", 48.8656, 2.3522).await;
    app.give_order(&mut alice, "DRV-001", "ORD-1", true).await;
    (alice, bob)
}

/// `who` reports `kind` on ORD-1; answers the `emergency_event`.
async fn report(who: &mut WsClient, kind: &str) -> Value {
    let ack = who
        .request(json!({"type":"report","order_id":"ORD-1","kind":kind}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ack["event"].clone()
}

fn is_event(m: &Value, event_id: &Value) -> bool {
    m["type"] == "emergency_event" && m["event_id"] == *event_id
}

/// A room's history after `since`, as REST serves it.
async fn history(app: &TestApp, room: &str, since: i64) -> Vec<Value> {
    let (status, page) = app
        .get_json(
            &format!("/api/v1/rooms/{room}/events?since={since}"),
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().cloned().unwrap_or_default()
}

/// Reads `c` until it has the messages of `room` up to `upto`'s last seq; answers them.
async fn read_room(c: &mut WsClient, room: &str, upto: &[Value]) -> Vec<Value> {
    let last = upto.last().map_or(0, |m| m["seq"].as_i64().unwrap());
    let mut got = Vec::new();
    while got.last().map_or(0, |m: &Value| m["seq"].as_i64().unwrap()) < last {
        got.push(c.find(|m| m["room"] == room && m["id"].is_string()).await);
    }
    got
}

fn seqs_and_ids(msgs: &[Value]) -> Vec<(i64, String)> {
    msgs.iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn a_dispatcher_gets_each_emergency_once_unless_it_joins_the_fleet_room(db: TestDb) {
    let app = spawn_app(db).await;
    let (mut alice, _bob) = with_an_order(&app).await;
    let mut plain = app.ws(&app.dispatcher_token()).await;
    let rooms: Vec<&String> = plain.welcome["rooms"].as_object().unwrap().keys().collect();
    assert_eq!(
        rooms,
        ["dispatch"],
        "a dispatcher's default rooms: {}",
        plain.welcome
    );
    let admin = app.ws(&app.admin_token()).await;
    let rooms: Vec<&String> = admin.welcome["rooms"].as_object().unwrap().keys().collect();
    assert_eq!(
        rooms,
        ["dispatch"],
        "an admin's default rooms: {}",
        admin.welcome
    );

    let mut both = app
        .ws(&app.token_for("dispatcher-2", rallypoint::protocol::Role::Dispatcher, None))
        .await;
    let dispatch_at = both.welcome["rooms"]["dispatch"].as_i64().unwrap();
    let joined = both
        .request(json!({"type":"join","room":"fleet:default"}))
        .await;
    assert_eq!(joined["type"], "ack", "{joined}");
    let fleet_at = joined["seq"].as_i64().unwrap();

    // A breakdown: reassigned to Bob, announced to `fleet:default` and `dispatch` at once.
    let event = report(&mut alice, "vehicle_breakdown").await;
    let event_id = event["event_id"].clone();

    let copy = plain.find(|m| is_event(m, &event_id)).await;
    assert_eq!(copy["room"], "dispatch", "{copy}");
    // A second report (by the dispatcher itself), and its copy: the first never came again.
    let ack = plain
        .request(json!({"type":"report","order_id":"ORD-1","kind":"traffic_jam"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let second_id = ack["event"]["event_id"].clone();
    plain.find(|m| is_event(m, &second_id)).await;
    let repeats: Vec<Value> = plain
        .kept("emergency_event")
        .into_iter()
        .filter(|m| m["event_id"] == event_id)
        .collect();
    assert!(
        repeats.is_empty(),
        "one copy per session: {copy} and {repeats:?}"
    );

    let first = both.find(|m| is_event(m, &event_id)).await;
    let other = both.find(|m| is_event(m, &event_id)).await;
    assert_eq!(
        first["id"], other["id"],
        "one id for every copy: {first} {other}"
    );
    let mut by_room = std::collections::BTreeMap::new();
    for c in [&first, &other] {
        by_room.insert(
            c["room"].as_str().unwrap().to_string(),
            c["seq"].as_i64().unwrap(),
        );
    }
    let rooms: Vec<&String> = by_room.keys().collect();
    assert_eq!(rooms, ["dispatch", "fleet:default"], "one copy per room");
    assert!(by_room["dispatch"] > dispatch_at && by_room["fleet:default"] > fleet_at);

    // Everything it got since, room by room, is what each room's history holds.
    let d_hist = history(&app, "dispatch", dispatch_at).await;
    let f_hist = history(&app, "fleet:default", fleet_at).await;
    let stored: Vec<&Value> = d_hist
        .iter()
        .chain(f_hist.iter())
        .filter(|m| m["type"] == "emergency_event" && m["event_id"] == event_id)
        .collect();
    assert_eq!(stored.len(), 2, "stored once per room: {stored:?}");
    assert!(stored.iter().all(|m| m["id"] == first["id"]), "{stored:?}");

    // A reconnect from the positions it had: both rooms replay exactly.
    both.close().await;
    let token = app.token_for("dispatcher-2", rallypoint::protocol::Role::Dispatcher, None);
    let mut again = app
        .ws_query(&format!(
            "token={token}&since={}",
            urlencode(&format!("dispatch:{dispatch_at}"))
        ))
        .await;
    let d_replay = read_room(&mut again, "dispatch", &d_hist).await;
    assert_eq!(
        seqs_and_ids(&d_replay),
        seqs_and_ids(&d_hist),
        "dispatch replays exactly"
    );
    let ack = again
        .request(json!({"type":"join","room":"fleet:default","since":fleet_at}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let f_replay = read_room(&mut again, "fleet:default", &f_hist).await;
    assert_eq!(
        seqs_and_ids(&f_replay),
        seqs_and_ids(&f_hist),
        "fleet:default replays exactly"
    );
    let replayed: Vec<&Value> = d_replay
        .iter()
        .chain(f_replay.iter())
        .filter(|m| is_event(m, &event_id))
        .collect();
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    assert_eq!(replayed[0]["id"], replayed[1]["id"]);
    assert_eq!(replayed[0]["seq"], by_room["dispatch"]);
    assert_eq!(replayed[1]["seq"], by_room["fleet:default"]);
}
on_both_backends!(a_dispatcher_gets_each_emergency_once_unless_it_joins_the_fleet_room);

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace(',', "%2C")
}
