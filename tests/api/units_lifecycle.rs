//! Emergency units (SPEC 9), the rest of the lifecycle over real sockets, on both backends:
//! completion from the unit's own session and over REST, cancel, auto-dispatch at creation and
//! when a unit frees or comes online, the reporters' rooms, bad input, the lists, and the units'
//! positions on `unit_tracking`.

use crate::helpers::{spawn_app, TestDb};
use crate::on_both_backends;
use crate::units::*;
use serde_json::{json, Value};

async fn a_unit_completes_from_its_own_session_or_staff_over_rest_and_is_free_again(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let rep = reporter_token(&app, "rep-1");
    let mut desk = app.ws(&staff).await;
    let mut reporter = app.ws(&rep).await;
    let mut amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let mut other = unit(&app, "AMB-2", "ambulance", 0.5).await;

    let id = created(&app, &rep, "medical", "high").await;
    // Completing what is not assigned: 409.
    let (status, e) = step(&app, &id, "complete", json!({}), &staff).await;
    assert_eq!(status, 409, "{e}");
    let (status, _) = step(&app, &id, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 200);
    amb.find(|m| about(m, "emergency_assigned", &id)).await;

    // Another unit may not complete it; the assigned one may.
    let no = other
        .request(json!({"type":"complete_emergency","request_id": id}))
        .await;
    assert_eq!(
        (no["type"].clone(), no["code"].clone()),
        (json!("error"), json!("forbidden")),
        "{no}"
    );
    let ack = amb
        .request(json!({"type":"complete_emergency","request_id": id}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["emergency"]["status"], "COMPLETED", "{ack}");
    let upd = desk
        .find(|m| about(m, "emergency_updated", &id) && m["data"]["action"] == "completed")
        .await;
    assert_eq!(upd["data"]["emergency"]["status"], "COMPLETED");
    assert_eq!(upd["data"]["unit"]["status"], "AVAILABLE");
    let freed = desk
        .find(|m| about(m, "unit_status_update", &id) && m["data"]["status"] == "AVAILABLE")
        .await;
    assert_eq!(freed["data"]["unit_id"], "AMB-1");
    reporter
        .find(|m| about(m, "emergency_updated", &id) && m["data"]["action"] == "completed")
        .await;
    let (status, e) = step(&app, &id, "complete", json!({}), &staff).await;
    assert_eq!(status, 409, "completed already: {e}");
    let (_, d) = app
        .get_json("/api/v1/drivers/AMB-1", Some(&app.admin_token()))
        .await;
    assert_eq!(d["status"], "online", "free again: {d}");

    // Free again: the next one goes to it, and staff complete it over REST.
    let next = created(&app, &staff, "medical", "high").await;
    let (status, e) = step(&app, &next, "dispatch", json!({}), &staff).await;
    assert_eq!((status, e["unit_id"].clone()), (200, json!("AMB-1")), "{e}");
    let (status, e) = step(&app, &next, "complete", json!({}), &rep).await;
    assert_eq!(status, 403, "a reporter does not complete: {e}");
    let (status, e) = step(&app, &next, "complete", json!({}), &staff).await;
    assert_eq!(
        (status, e["status"].clone()),
        (200, json!("COMPLETED")),
        "{e}"
    );
    desk.find(|m| about(m, "unit_status_update", &next) && m["data"]["status"] == "AVAILABLE")
        .await;
    // The unit hears that staff completed it, in its own room, so it stops going there.
    let told = amb
        .find(|m| about(m, "emergency_updated", &next) && m["data"]["action"] == "completed")
        .await;
    assert_eq!(told["room"], "driver:AMB-1", "{told}");
    assert_eq!(read(&app, &next).await["status"], "COMPLETED");
}
on_both_backends!(a_unit_completes_from_its_own_session_or_staff_over_rest_and_is_free_again);

async fn a_cancel_frees_the_unit_and_a_finished_emergency_stays_finished(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let rep = reporter_token(&app, "rep-1");
    let mut desk = app.ws(&staff).await;
    let mut pol = unit(&app, "POL-1", "police", 0.01).await;

    let pending = created(&app, &rep, "police", "low").await;
    let (status, e) = step(&app, &pending, "cancel", json!({}), &rep).await;
    assert_eq!(status, 403, "a reporter does not cancel: {e}");
    let (status, e) = step(&app, &pending, "cancel", json!({}), &staff).await;
    assert_eq!(
        (status, e["status"].clone()),
        (200, json!("CANCELLED")),
        "{e}"
    );
    let upd = desk
        .find(|m| about(m, "emergency_updated", &pending) && m["data"]["action"] == "cancelled")
        .await;
    assert!(upd["data"].get("unit").is_none(), "no unit to free: {upd}");
    let (status, _) = step(&app, &pending, "cancel", json!({}), &staff).await;
    assert_eq!(status, 409, "cancelled already");
    let (status, _) = step(&app, &pending, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 409, "a cancelled emergency is not dispatched");

    let assigned = created(&app, &rep, "police", "low").await;
    let (status, _) = step(&app, &assigned, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 200);
    let (status, e) = step(&app, &assigned, "cancel", json!({}), &app.admin_token()).await;
    assert_eq!(
        (status, e["status"].clone()),
        (200, json!("CANCELLED")),
        "{e}"
    );
    let freed = desk
        .find(|m| about(m, "unit_status_update", &assigned) && m["data"]["status"] == "AVAILABLE")
        .await;
    assert_eq!(freed["data"]["unit_id"], "POL-1");
    // The unit hears of the cancel in its own room, and of nothing about the one it never had.
    let told = pol
        .find(|m| m["type"] == "emergency_updated" && m["room"] == "driver:POL-1")
        .await;
    assert_eq!(
        told["data"]["emergency"]["request_id"],
        json!(assigned),
        "{told}"
    );
    assert_eq!(told["data"]["action"], "cancelled", "{told}");
    let again = created(&app, &staff, "police", "low").await;
    let (status, e) = step(&app, &again, "dispatch", json!({}), &staff).await;
    assert_eq!(
        (status, e["unit_id"].clone()),
        (200, json!("POL-1")),
        "freed: {e}"
    );
}
on_both_backends!(a_cancel_frees_the_unit_and_a_finished_emergency_stays_finished);

async fn a_critical_emergency_is_dispatched_at_creation_without_a_click(db: TestDb) {
    let app = spawn_app(db).await;
    let rep = reporter_token(&app, "rep-1");
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let mut fire = unit(&app, "FIRE-1", "fire", 0.02).await;
    let (status, e) = create(&app, &rep, "hazmat", "critical").await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "ASSIGNED", "dispatched at once: {e}");
    assert_eq!(e["unit_id"], "FIRE-1");
    let id = e["request_id"].as_str().unwrap_or_default().to_string();
    let made = desk.find(|m| about(m, "emergency_created", &id)).await;
    assert_eq!(made["data"]["status"], "PENDING", "created, then assigned");
    let upd = desk.find(|m| about(m, "emergency_updated", &id)).await;
    assert_eq!(upd["data"]["action"], "assigned");
    assert!(upd["seq"].as_i64() > made["seq"].as_i64(), "{made} {upd}");
    fire.find(|m| about(m, "emergency_assigned", &id)).await;

    // A high one is not.
    let high = created(&app, &rep, "fire", "high").await;
    assert_eq!(read(&app, &high).await["status"], "PENDING");
}
on_both_backends!(a_critical_emergency_is_dispatched_at_creation_without_a_click);

async fn a_waiting_critical_emergency_goes_to_the_first_unit_freed_or_online(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let rep = reporter_token(&app, "rep-1");
    let mut desk = app.ws(&staff).await;

    // No unit online: it waits, then goes to the first that comes online.
    let waiting = created(&app, &rep, "rescue", "critical").await;
    assert_eq!(read(&app, &waiting).await["status"], "PENDING");
    let mut resc = unit(&app, "RES-1", "rescue", 0.01).await;
    let told = resc
        .find(|m| about(m, "emergency_assigned", &waiting))
        .await;
    assert_eq!(told["data"]["unit_id"], "RES-1");
    desk.find(|m| about(m, "emergency_updated", &waiting)).await;

    // The only unit is out: the next critical one waits until it is freed.
    let next = created(&app, &rep, "rescue", "critical").await;
    assert_eq!(read(&app, &next).await["status"], "PENDING");
    let high = created(&app, &rep, "rescue", "high").await;
    let ack = resc
        .request(json!({"type":"complete_emergency","request_id": waiting}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    resc.find(|m| about(m, "emergency_assigned", &next)).await;
    assert_eq!(read(&app, &next).await["unit_id"], "RES-1");
    assert_eq!(
        read(&app, &high).await["status"],
        "PENDING",
        "only auto-dispatch severities go without a click"
    );
}
on_both_backends!(a_waiting_critical_emergency_goes_to_the_first_unit_freed_or_online);

async fn a_reporter_follows_its_own_emergencies_and_no_one_elses(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let (rep1, rep2) = (reporter_token(&app, "rep-1"), reporter_token(&app, "rep-2"));
    let mut one = app.ws(&rep1).await;
    let mut two = app.ws(&rep2).await;
    let _amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let mine = created(&app, &rep1, "medical", "high").await;
    let theirs = created(&app, &rep2, "other", "low").await;
    let (status, _) = step(&app, &mine, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 200);
    let upd = one.find(|m| about(m, "emergency_updated", &mine)).await;
    assert_eq!(upd["room"], "reporter:rep-1");
    assert_eq!(upd["data"]["emergency"]["status"], "ASSIGNED");
    let heard = heard_about(&mut one, &theirs).await;
    assert_eq!(heard, Vec::<Value>::new(), "not another reporter's");
    two.find(|m| about(m, "emergency_created", &theirs)).await;
    let heard = heard_about(&mut two, &mine).await;
    assert_eq!(heard, Vec::<Value>::new(), "not another reporter's");

    // Their rooms and reads are their own.
    let refused = two
        .request(json!({"type":"join","room":"reporter:rep-1"}))
        .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let refused = two
        .request(json!({"type":"join","room":"unit_tracking"}))
        .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let (status, _) = app
        .get_json(&format!("/api/v1/emergencies/{mine}"), Some(&rep2))
        .await;
    assert_eq!(status, 403);
    let (status, list) = app.get_json("/api/v1/emergencies", Some(&rep1)).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["request_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(mine)], "a reporter lists its own");
}
on_both_backends!(a_reporter_follows_its_own_emergencies_and_no_one_elses);

async fn bad_input_is_a_4xx_json_error_and_stores_nothing(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let rep = reporter_token(&app, "rep-1");
    let good = json!({"type":"fire","description":"smoke","severity":"low","location":{"lat":1.0,"lng":2.0}});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, why) in [
        (with("severity", json!("apocalyptic")), "unknown severity"),
        (with("type", json!("alien")), "unknown type"),
        (
            with("location", json!({"lat": 91.0, "lng": 2.0})),
            "outside the world",
        ),
        (
            with("location", json!({"lat": 1.0, "lng": -181.0})),
            "outside the world",
        ),
        (with("description", json!("  ")), "no description"),
        (json!({"type":"fire"}), "fields missing"),
    ] {
        let (status, e) = app.post_json("/api/v1/emergencies", &body, &rep).await;
        assert_eq!(status, 400, "{why}: {e}");
        assert_eq!(e["error"]["code"], "bad_request", "{why}: {e}");
        assert!(e["error"]["message"].is_string(), "{why}: {e}");
    }
    let courier = app.driver_token("DRV-001", "Alice");
    let (status, e) = app.post_json("/api/v1/emergencies", &good, &courier).await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (403, json!("forbidden")),
        "{e}"
    );
    let (status, list) = app.get_json("/api/v1/emergencies", Some(&staff)).await;
    assert_eq!((status, list), (200, json!([])), "nothing stored");

    let id = created(&app, &rep, "fire", "low").await;
    let (status, e) = step(&app, &id, "dispatch", json!({}), &rep).await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (403, json!("forbidden")),
        "{e}"
    );
    let (status, e) = step(&app, &id, "dispatch", json!({"unit_id": 7}), &staff).await;
    assert_eq!(
        (status, e["error"]["code"].clone()),
        (400, json!("bad_request")),
        "{e}"
    );
    assert_eq!(read(&app, &id).await["status"], "PENDING");
    let (status, e) = app
        .get_json("/api/v1/emergencies?status=LOST", Some(&staff))
        .await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = app.get_json("/api/v1/units", Some(&rep)).await;
    assert_eq!(status, 403);

    // A unit type is one of four, and only for a unit fleet.
    let admin = app.admin_token();
    for body in [
        json!({"id":"U9","name":"U9","fleet":"units","unit_type":"submarine"}),
        json!({"id":"U9","name":"U9","fleet":"default","unit_type":"fire"}),
    ] {
        let (status, e) = app.post_json("/api/v1/drivers", &body, &admin).await;
        assert_eq!(
            (status, e["error"]["code"].clone()),
            (400, json!("bad_request")),
            "{e}"
        );
    }
    let (status, _) = app.get_json("/api/v1/drivers/U9", Some(&admin)).await;
    assert_eq!(status, 404, "no driver stored");
}
on_both_backends!(bad_input_is_a_4xx_json_error_and_stores_nothing);

async fn the_list_filters_by_status_newest_first(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let _amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let a = created(&app, &staff, "medical", "low").await;
    let b = created(&app, &staff, "medical", "low").await;
    let c = created(&app, &staff, "other", "low").await;
    assert_eq!(step(&app, &a, "dispatch", json!({}), &staff).await.0, 200);
    assert_eq!(step(&app, &c, "cancel", json!({}), &staff).await.0, 200);
    let ids = |v: Value| -> Vec<Value> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| e["request_id"].clone())
            .collect()
    };
    for (query, want) in [
        ("", vec![&c, &b, &a]),
        ("?status=PENDING", vec![&b]),
        ("?status=ASSIGNED", vec![&a]),
        ("?status=cancelled", vec![&c]),
        ("?status=COMPLETED", vec![]),
        ("?limit=1", vec![&c]),
    ] {
        let (status, list) = app
            .get_json(&format!("/api/v1/emergencies{query}"), Some(&staff))
            .await;
        assert_eq!(status, 200, "{query}: {list}");
        let want: Vec<Value> = want.into_iter().map(|s| json!(s)).collect();
        assert_eq!(ids(list), want, "{query}");
    }
}
on_both_backends!(the_list_filters_by_status_newest_first);

async fn unit_tracking_gets_the_units_positions_batched(db: TestDb) {
    let app = spawn_app(db).await;
    let mut map = tracker(&app).await;
    let mut amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let _courier = app.online_driver("DRV-001", "Alice", 48.0, 2.0).await;
    for i in 1..=3 {
        let ack = amb
            .request(json!({"type":"location","lat": 48.0 + f64::from(i) / 100.0,"lng": 2.5}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let batch = map
        .find(|m| {
            m["type"] == "locations"
                && m["drivers"].as_array().is_some_and(|d| {
                    d.iter()
                        .any(|d| d["driver_id"] == "AMB-1" && d["lat"] == 48.03)
                })
        })
        .await;
    assert_eq!(batch["room"], "unit_tracking");
    assert!(batch.get("seq").is_none(), "ephemeral: {batch}");
    let drivers = batch["drivers"].as_array().cloned().unwrap_or_default();
    assert!(
        drivers.iter().all(|d| d["driver_id"] == "AMB-1"),
        "units only, one entry each: {drivers:?}"
    );
    assert_eq!(drivers.len(), 1, "{drivers:?}");
}
on_both_backends!(unit_tracking_gets_the_units_positions_batched);
