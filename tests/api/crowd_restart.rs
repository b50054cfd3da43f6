//! Crowd operations (SPEC 8) across a restart, on both backends: an event's desk rebuilds from
//! the database when it is next used, so an open alert stays the zone's one (a count still high
//! makes no second), resolves once, and the live pings come back as the map.

use crate::crowd::{count, create_event};
use crate::crowd_rooms::{dashboard, event_token};
use crate::helpers::{spawn_app, TestDb};
use crate::on_both_backends;
use rallypoint::protocol::Role;
use serde_json::json;

async fn an_events_desk_rebuilds_its_alerts_and_pings_after_a_restart(db: TestDb) {
    let app = spawn_app(db).await;
    create_event(&app, "E1").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    let (_, v) = count(&app, &cam, "E1", "Z1", "A", 35).await;
    let id = v["alert"]["id"].as_str().expect("an alert").to_string();
    for i in 0..3 {
        let body = json!({"event_id":"E1","device_id":format!("d{i}"),"lat":48.8565,"lng":2.352});
        assert_eq!(app.post_json("/api/v1/pings", &body, &cam).await.0, 200);
    }
    // The pings are written in the batch after the map update: wait until the database has them.
    let mut stored = false;
    for _ in 0..200 {
        let (_, m) = app.get_json("/api/v1/events/E1/map", Some(&op)).await;
        if m["density"][0]["count"] == 3 {
            stored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(stored, "the pings reach the database");
    let db = app.stop().await;

    let app = spawn_app(db).await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    // The live devices come back as the map, from the database.
    let map = a.expect("map:update").await;
    assert_eq!(map["data"]["density"][0]["count"], 3, "{map}");
    assert_eq!(map["data"]["source"], "snapshot", "{map}");
    // Still high: the open alert is the zone's one; past capacity it is raised.
    let (_, v) = count(&app, &cam, "E1", "Z1", "B", 5).await;
    assert_eq!(
        (v["zoneCount"].as_i64(), v["alert"]["id"].as_str()),
        (Some(40), Some(id.as_str())),
        "{v}"
    );
    count(&app, &cam, "E1", "Z1", "B", 20).await;
    let up = a.expect("alert:updated").await;
    assert_eq!(
        (up["data"]["id"].as_str(), up["data"]["severity"].as_str()),
        (Some(id.as_str()), Some("critical")),
        "{up}"
    );
    let path = format!("/api/v1/alerts/{id}/resolve");
    assert_eq!(app.post_json(&path, &json!({}), &op).await.0, 200);
    assert_eq!(app.post_json(&path, &json!({}), &op).await.0, 409);
    let seen = a.drain_for(crate::crowd::QUIET).await;
    assert!(seen.iter().all(|m| m["type"] != "alert:new"), "{seen:?}");
}
on_both_backends!(an_events_desk_rebuilds_its_alerts_and_pings_after_a_restart);
