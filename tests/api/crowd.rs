//! Crowd operations (SPEC 8) over real sockets, on both backends: events and zones, the camera
//! flow (one open alert per zone, raised past the capacity, resolved once, re-armed only from
//! below), isolation between events, and bad input storing nothing. `crowd_map` has the pings
//! and the live map; `crowd_rooms` the rooms' rights; the helpers are here.

use crate::crowd_rooms::{dashboard, event_token};
use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::protocol::Role;
use serde_json::{json, Value};
use std::time::Duration;

/// How long a socket is watched for a message it must not get.
pub const QUIET: Duration = Duration::from_millis(500);

/// Creates event `id` (as admin) with zones `Z1` (capacity 50, threshold 30) and `Z2`
/// (capacity 20, the default threshold); answers the event.
pub async fn create_event(app: &TestApp, id: &str) -> Value {
    let body = json!({
        "id": id,
        "name": format!("Festival {id}"),
        "zones": [
            {"id": "Z1", "name": "Main stage", "capacity": 50, "threshold": 30,
             "bounds": {"south": 48.8560, "west": 2.3510, "north": 48.8570, "east": 2.3530}},
            {"id": "Z2", "name": "Gate 3", "capacity": 20,
             "bounds": {"south": 48.8570, "west": 2.3510, "north": 48.8580, "east": 2.3530}},
        ]
    });
    let (status, e) = app
        .post_json("/api/v1/events", &body, &app.admin_token())
        .await;
    assert_eq!(status, 201, "{e}");
    e
}

/// `POST /api/v1/cctv/objects` by `token`.
pub async fn count(
    app: &TestApp,
    token: &str,
    event: &str,
    zone: &str,
    cam: &str,
    n: i64,
) -> (u16, Value) {
    let body = json!({"event_id": event, "zone_id": zone, "camera_id": cam, "count": n});
    app.post_json("/api/v1/cctv/objects", &body, token).await
}

/// Counts that must be taken: answers the answer.
async fn counted(app: &TestApp, token: &str, zone: &str, cam: &str, n: i64) -> Value {
    let (status, v) = count(app, token, "E1", zone, cam, n).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// The crowd messages (`alert:*`) a socket got within `QUIET`.
async fn alerts_seen(c: &mut WsClient) -> Vec<Value> {
    c.drain_for(QUIET)
        .await
        .into_iter()
        .filter(|m| m["type"].as_str().is_some_and(|t| t.starts_with("alert:")))
        .collect()
}

async fn events_take_zones_with_thresholds_and_refuse_one_above_capacity(db: TestDb) {
    let app = spawn_app(db).await;
    let e = create_event(&app, "E1").await;
    assert_eq!(e["zones"][0]["threshold"], 30, "{e}");
    assert_eq!(
        e["zones"][1]["threshold"], 20,
        "the smaller of 30 and the capacity: {e}"
    );
    assert_eq!(e["createdBy"], "admin-1");
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let (status, got) = app.get_json("/api/v1/events/E1", Some(&op)).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["zones"][0]["count"], 0);
    assert_eq!(got["zones"][1]["bounds"]["north"], 48.858);
    // A threshold above the capacity: 400, nothing stored.
    let bad = json!({"id": "E9", "name": "x", "zones": [{"id": "Z", "name": "z", "capacity": 10,
        "threshold": 11, "bounds": {"south": 1.0, "west": 1.0, "north": 2.0, "east": 2.0}}]});
    let (status, err) = app
        .post_json("/api/v1/events", &bad, &app.admin_token())
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("threshold"),
        "{err}"
    );
    let (status, _) = app
        .get_json("/api/v1/events/E9", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 404);
    // Bounds outside the world or upside down, a zone named twice, no zone: 400, nothing stored.
    let zone = |id: &str, south: f64, north: f64| {
        json!({"id": id, "name": "z", "capacity": 10,
               "bounds": {"south": south, "west": 1.0, "north": north, "east": 2.0}})
    };
    for zones in [
        json!([zone("Z", 1.0, 95.0)]),
        json!([zone("Z", 2.0, 1.0)]),
        json!([zone("Z", 1.0, 2.0), zone("Z", 1.0, 2.0)]),
        json!([]),
    ] {
        let body = json!({"id": "E9", "name": "x", "zones": zones});
        let (status, err) = app
            .post_json("/api/v1/events", &body, &app.admin_token())
            .await;
        assert_eq!(status, 400, "{body}: {err}");
    }
    let (status, _) = app
        .get_json("/api/v1/events/E9", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 404);
    // The same id twice: 409. Only admins create; another event's operator may not read.
    let (status, _) = app
        .post_json(
            "/api/v1/events",
            &json!({"id":"E1","name":"again","zones":e["zones"]}),
            &app.admin_token(),
        )
        .await;
    assert!(status == 400 || status == 409, "{status}");
    let (status, _) = app.post_json("/api/v1/events", &bad, &op).await;
    assert_eq!(status, 403);
    let other = event_token(&app, "op-2", Role::Operator, &["E2"]);
    let (status, _) = app.get_json("/api/v1/events/E1", Some(&other)).await;
    assert_eq!(status, 403);
    // The emergency path's `POST /api/v1/events/delay` is still its own route.
    let (status, v) = app
        .post_json(
            "/api/v1/events/delay",
            &json!({"order_id":"NOPE","kind":"accident"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 404, "{v}");
}
on_both_backends!(events_take_zones_with_thresholds_and_refuse_one_above_capacity);

async fn the_camera_flow_opens_raises_resolves_and_rearms_one_alert_per_zone(db: TestDb) {
    let app = spawn_app(db).await;
    create_event(&app, "E1").await;
    create_event(&app, "E2").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    let mut b = dashboard(&app, &op, "E1").await;
    let other_op = event_token(&app, "op-2", Role::Operator, &["E2"]);
    let mut other = dashboard(&app, &other_op, "E2").await;

    // 20 + 15 = 35 > 30: one alert, `warning`, to every dashboard of E1.
    assert!(counted(&app, &cam, "Z1", "A", 20).await["alert"].is_null());
    let v = counted(&app, &cam, "Z1", "B", 15).await;
    assert_eq!(v["zoneCount"], 35, "{v}");
    let new = a.expect("alert:new").await;
    assert_eq!(new["room"], "event:E1");
    assert!(new["seq"].as_i64().unwrap() > 0, "{new}");
    let d = &new["data"];
    assert_eq!(
        (
            d["type"].as_str(),
            d["severity"].as_str(),
            d["zoneId"].as_str()
        ),
        (Some("overcrowding"), Some("warning"), Some("Z1")),
        "{new}"
    );
    assert!(
        d["createdAt"].is_string() && d["message"].is_string(),
        "{new}"
    );
    assert_ne!(d["id"], new["id"], "the alert's id is not the envelope's");
    let id = d["id"].as_str().unwrap().to_string();
    assert_eq!(b.expect("alert:new").await["data"]["id"], id.as_str());
    // Still high: no new alert. Past the capacity: raised to critical.
    assert_eq!(
        counted(&app, &cam, "Z1", "A", 25).await["alert"]["id"],
        id.as_str()
    );
    counted(&app, &cam, "Z1", "A", 40).await;
    let up = a.expect("alert:updated").await;
    assert_eq!(
        (up["data"]["id"].as_str(), up["data"]["severity"].as_str()),
        (Some(id.as_str()), Some("critical")),
        "{up}"
    );
    // Resolved by the operator: alert:updated resolved; twice is 409.
    let path = format!("/api/v1/alerts/{id}/resolve");
    let (status, r) = app.post_json(&path, &json!({}), &op).await;
    assert_eq!(status, 200, "{r}");
    let up = a
        .find(|m| m["type"] == "alert:updated" && m["data"]["status"] == "resolved")
        .await;
    assert_eq!(up["data"]["resolvedBy"], "op-1", "{up}");
    assert!(up["data"]["resolvedAt"].is_string(), "{up}");
    let (status, r) = app.post_json(&path, &json!({}), &op).await;
    assert_eq!(status, 409, "{r}");
    // Still high after the resolve: no alert until the count crosses from below.
    assert!(counted(&app, &cam, "Z1", "A", 41).await["alert"].is_null());
    assert!(alerts_seen(&mut a).await.is_empty());
    counted(&app, &cam, "Z1", "A", 5).await;
    assert!(counted(&app, &cam, "Z1", "B", 5).await["alert"].is_null());
    let v = counted(&app, &cam, "Z1", "A", 30).await;
    assert_eq!(v["zoneCount"], 35, "{v}");
    let again = a.expect("alert:new").await;
    assert_ne!(again["data"]["id"], id.as_str(), "{again}");
    // Another event's dashboard heard none of it.
    assert!(alerts_seen(&mut other).await.is_empty());
    // The room's history has them all, for resume and polling.
    let (status, h) = app
        .get_json("/api/v1/rooms/event:E1/events?since=0", Some(&op))
        .await;
    assert_eq!(status, 200, "{h}");
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["alert:new", "alert:updated", "alert:updated", "alert:new"],
        "{h}"
    );
    // The polling fallback.
    let (status, open) = app
        .get_json("/api/v1/events/E1/alerts?status=open", Some(&op))
        .await;
    assert_eq!(status, 200);
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    let (_, all) = app.get_json("/api/v1/events/E1/alerts", Some(&op)).await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let (_, e) = app.get_json("/api/v1/events/E1", Some(&op)).await;
    assert_eq!(e["zones"][0]["count"], 35, "{e}");
}
on_both_backends!(the_camera_flow_opens_raises_resolves_and_rearms_one_alert_per_zone);

async fn a_silent_camera_no_longer_counts_and_bad_counts_store_nothing(db: TestDb) {
    let app = spawn_app(db).await;
    create_event(&app, "E1").await;
    create_event(&app, "E2").await;
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    // A count taken longer ago than `crowd.ping_ttl_s` is stored but no longer counts.
    let old = (chrono::Utc::now() - chrono::Duration::seconds(1000)).to_rfc3339();
    let body = json!({"event_id":"E1","zone_id":"Z1","camera_id":"OLD","count":100,"at":old});
    let (status, v) = app.post_json("/api/v1/cctv/objects", &body, &cam).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["zoneCount"], 0, "{v}");
    assert!(v["alert"].is_null(), "{v}");
    // Bad input: 4xx with a JSON error, nothing stored.
    let other = event_token(&app, "cam-2", Role::Sensor, &["E2"]);
    for (token, event, zone, n, want) in [
        (&other, "E1", "Z1", 40, 403),
        (&cam, "E1", "NOPE", 40, 404),
        (&cam, "E404", "Z1", 40, 403),
        (&cam, "E1", "Z1", -1, 400),
        (&cam, "E1", "Z1", 1_000_000_000, 400),
    ] {
        let (status, err) = count(&app, token, event, zone, "A", n).await;
        assert_eq!(status, want, "{event}/{zone}/{n}: {err}");
        assert!(err["error"]["code"].is_string(), "{err}");
    }
    let all = event_token(&app, "cam-3", Role::Sensor, &["*"]);
    let (status, err) = count(&app, &all, "E404", "Z1", "A", 1).await;
    assert_eq!(status, 404, "{err}");
    let driver = app.driver_token("DRV-1", "Ann");
    let (status, _) = count(&app, &driver, "E1", "Z1", "A", 1).await;
    assert_eq!(status, 403);
    let (_, e) = app
        .get_json("/api/v1/events/E1", Some(&app.admin_token()))
        .await;
    assert_eq!(e["zones"][0]["count"], 0, "{e}");
    let (_, h) = app
        .get_json(
            "/api/v1/rooms/event:E1/events?since=0",
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(h["events"], json!([]), "{h}");
    let (status, _) = app
        .post_json(
            "/api/v1/alerts/ALR-nope/resolve",
            &json!({}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 404);
}
on_both_backends!(a_silent_camera_no_longer_counts_and_bad_counts_store_nothing);
