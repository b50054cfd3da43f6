//! Crowd event rooms (SPEC 8) over real sockets, on both backends: `?event_id=` on connect and
//! `join event:<id>` admit the bearers the `events` claim names (staff any event, observers by
//! their patterns); anyone else is `forbidden` and its session goes on.

use crate::helpers::{TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::Role;
use serde_json::json;

/// A token of `role` for `sub`, watching `events`.
pub fn event_token(app: &TestApp, sub: &str, role: Role, events: &[&str]) -> String {
    let mut claims = Claims::new(sub, role, None, "default", 3600);
    claims.events = Some(events.iter().map(|e| e.to_string()).collect());
    app.hub.keys.sign(&claims).expect("sign")
}

/// A socket connected with `?event_id=event`, its `joined` read.
pub async fn dashboard(app: &TestApp, token: &str, event: &str) -> WsClient {
    let mut c = app
        .ws_query(&format!("token={token}&event_id={event}"))
        .await;
    let room = format!("event:{event}");
    let joined = c
        .find(|m| m["type"] == "joined" && m["room"] == room.as_str())
        .await;
    assert!(joined["seq"].is_i64(), "{joined}");
    c
}

async fn event_rooms_admit_the_events_named_and_refuse_the_others(db: TestDb) {
    let app = crate::helpers::spawn_app(db).await;
    let op1 = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let mut a = dashboard(&app, &op1, "E1").await;
    assert_eq!(a.welcome["role"], "operator");
    // Another event's operator: `forbidden`, and its session goes on.
    let op2 = event_token(&app, "op-2", Role::Operator, &["E2"]);
    let mut b = app.ws_query(&format!("token={op2}&event_id=E1")).await;
    let err = b.expect("error").await;
    assert_eq!(err["code"], "forbidden", "{err}");
    b.assert_alive().await;
    let refused = b.request(json!({"type":"join","room":"event:E1"})).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let ok = b.request(json!({"type":"join","room":"event:E2"})).await;
    assert_eq!(ok["type"], "ack", "{ok}");
    // A sensor of every event, staff, and an observer whose patterns match.
    let all = event_token(&app, "cam-1", Role::Sensor, &["*"]);
    dashboard(&app, &all, "E1").await;
    dashboard(&app, &app.dispatcher_token(), "E1").await;
    let mut o = Claims::new("wall", Role::Observer, None, "default", 3600);
    o.rooms = Some(vec!["event:*".into()]);
    dashboard(&app, &app.hub.keys.sign(&o).expect("sign"), "E7").await;
    // A driver without `events` may not.
    let d = app.driver_token("DRV-1", "Ann");
    let mut dc = app.ws(&d).await;
    let refused = dc.request(json!({"type":"join","room":"event:E1"})).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    a.assert_alive().await;
}
on_both_backends!(event_rooms_admit_the_events_named_and_refuse_the_others);

async fn over_socket_io_an_event_room_is_joined_by_query_and_alerts_carry_their_data(db: TestDb) {
    use crate::socketio::{next_text, send, ws_connect};
    let app = crate::helpers::spawn_app(db).await;
    crate::crowd::create_event(&app, "E1").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let mut s = ws_connect(&app, "EIO=4&transport=websocket&eventId=E1").await;
    assert!(next_text(&mut s).await.starts_with('0'), "the open packet");
    send(&mut s, &format!("40{{\"token\":\"{op}\"}}")).await;
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    let mut asked = false;
    let alert = loop {
        let t = next_text(&mut s).await;
        // Once in `event:E1` (its `joined`), a count over the threshold.
        if !asked && t.starts_with("42[\"joined\"") && t.contains("event:E1") {
            asked = true;
            let (status, v) = crate::crowd::count(&app, &cam, "E1", "Z1", "A", 35).await;
            assert_eq!(status, 200, "{v}");
        }
        if let Some(rest) = t.strip_prefix("42") {
            let args: Vec<serde_json::Value> = serde_json::from_str(rest).expect("an event");
            if args[0] == "alert:new" {
                break args[1].clone();
            }
        }
    };
    assert!(asked, "joined before the alert");
    assert_eq!(
        alert["type"], "overcrowding",
        "the payload is `data`: {alert}"
    );
    assert_eq!(alert["zoneId"], "Z1");
    assert_eq!(alert["severity"], "warning");
}
on_both_backends!(over_socket_io_an_event_room_is_joined_by_query_and_alerts_carry_their_data);
