//! Crowd operations (SPEC 8) on a cluster of two nodes (SPEC 12): a follower's sensor and
//! operator are served by the leader's event desk (their commands travel as JSON), and the
//! alert, its resolve and the map reach the dashboards of both nodes. Needs PostgreSQL and
//! Redis, else says it skipped.

use crate::cluster_leader::leader_and_follower;
use crate::crowd::{count, create_event};
use crate::crowd_rooms::{dashboard, event_token};
use rallypoint::protocol::Role;
use serde_json::json;

#[actix_web::test]
async fn a_followers_sensor_and_operator_are_served_by_the_leaders_desk() {
    let Some((leader, follower)) =
        leader_and_follower("crowd_cluster::a_followers_sensor_and_operator").await
    else {
        return;
    };
    create_event(&follower, "E1").await;
    let op = event_token(&follower, "op-1", Role::Operator, &["E1"]);
    let cam = event_token(&follower, "cam-1", Role::Sensor, &["E1"]);
    let mut here = dashboard(&leader, &op, "E1").await;
    let mut there = dashboard(&follower, &op, "E1").await;

    let (status, v) = count(&follower, &cam, "E1", "Z1", "A", 35).await;
    assert_eq!(status, 200, "{v}");
    let id = v["alert"]["id"].as_str().expect("an alert").to_string();
    for c in [&mut here, &mut there] {
        let m = c.expect("alert:new").await;
        assert_eq!(m["data"]["id"], id.as_str(), "{m}");
    }
    let (status, r) = follower
        .post_json(&format!("/api/v1/alerts/{id}/resolve"), &json!({}), &op)
        .await;
    assert_eq!(status, 200, "{r}");
    let (status, _) = follower
        .post_json(&format!("/api/v1/alerts/{id}/resolve"), &json!({}), &op)
        .await;
    assert_eq!(status, 409, "the leader's desk knows it is resolved");
    let mut phone = follower.ws(&cam).await;
    let ack = phone
        .request(json!({"type":"ping_location","event_id":"E1","device_id":"d1","lat":48.8565,"lng":2.352}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    for c in [&mut here, &mut there] {
        c.find(|m| m["type"] == "alert:updated" && m["data"]["status"] == "resolved")
            .await;
        let map = c.expect("map:update").await;
        assert_eq!(map["data"]["density"][0]["count"], 1, "{map}");
    }
}
