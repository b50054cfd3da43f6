//! Emergency units (SPEC 9) on a cluster of two nodes (SPEC 12): the commands of a follower's
//! reporter and unit travel to the leader's emergency desk as JSON and are answered there; the
//! messages reach every node's sessions once. Needs PostgreSQL and Redis, else says it skipped.

use crate::cluster_leader::leader_and_follower;
use crate::units::*;
use serde_json::{json, Value};

#[actix_web::test]
async fn a_followers_reporter_and_unit_are_served_by_the_leaders_desk() {
    let Some((leader, follower)) =
        leader_and_follower("units_cluster::a_followers_reporter_and_unit").await
    else {
        return;
    };
    let mut desk = leader.ws(&leader.dispatcher_token()).await;
    let mut far_desk = follower.ws(&follower.dispatcher_token()).await;
    let mut amb = unit(&follower, "AMB-1", "ambulance", 0.01).await;
    let rep = reporter_token(&follower, "rep-1");
    let mut reporter = follower.ws(&rep).await;

    let (status, e) = create(&follower, &rep, "medical", "critical").await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(
        (e["status"].clone(), e["unit_id"].clone()),
        (json!("ASSIGNED"), json!("AMB-1")),
        "{e}"
    );
    let id = e["request_id"].as_str().unwrap_or_default().to_string();
    for (who, c) in [("leader", &mut desk), ("follower", &mut far_desk)] {
        let made = c.find(|m| about(m, "emergency_created", &id)).await;
        assert_eq!(made["room"], "dispatch", "{who}");
        c.find(|m| about(m, "emergency_updated", &id)).await;
    }
    amb.find(|m| about(m, "emergency_assigned", &id)).await;
    reporter.find(|m| about(m, "emergency_updated", &id)).await;

    let ack = amb
        .request(json!({"type":"complete_emergency","request_id": id}))
        .await;
    assert_eq!(ack["emergency"]["status"], "COMPLETED", "{ack}");
    for c in [&mut desk, &mut far_desk] {
        c.find(|m| about(m, "unit_status_update", &id) && m["data"]["status"] == "AVAILABLE")
            .await;
        let again: Vec<Value> = heard_about(c, &id)
            .await
            .into_iter()
            .filter(|m| m["type"] == "emergency_created")
            .collect();
        assert_eq!(again, Vec::<Value>::new(), "once per session");
    }
    let (status, read) = follower
        .get_json(&format!("/api/v1/emergencies/{id}"), Some(&rep))
        .await;
    assert_eq!(
        (status, read["status"].clone()),
        (200, json!("COMPLETED")),
        "{read}"
    );
}
