//! Emergency units (SPEC 9) are as durable as deliveries, on both backends: their messages have
//! seqs a reporter resumes from, a repeated `Idempotency-Key` creates once, and a restart keeps
//! the open emergencies, which unit is on which, and the one waiting for a unit.

use crate::helpers::{spawn_app, TestDb};
use crate::on_both_backends;
use crate::units::*;
use serde_json::{json, Value};

async fn a_reporter_resumes_what_it_missed_and_a_repeated_key_creates_once(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let rep = reporter_token(&app, "rep-1");
    let _amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let mut reporter = app.ws(&rep).await;
    let body = json!({"type":"medical","description":"fall","severity":"high",
        "location":{"lat": SCENE.0, "lng": SCENE.1}});
    let (s1, first) = app
        .post_json_with_key("/api/v1/emergencies", &body, &rep, "emg-1")
        .await;
    let (s2, again) = app
        .post_json_with_key("/api/v1/emergencies", &body, &rep, "emg-1")
        .await;
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(first, again, "the first answer, again");
    let id = first["request_id"].as_str().unwrap_or_default().to_string();
    let (_, list) = app.get_json("/api/v1/emergencies", Some(&staff)).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "created once: {list}"
    );
    let made = reporter.find(|m| about(m, "emergency_created", &id)).await;
    let seq = made["seq"].as_i64().unwrap_or_default();
    reporter.close().await;

    let (status, _) = step(&app, &id, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 200);
    let mut back = app
        .ws_query(&format!("token={rep}&since=reporter%3Arep-1%3A{seq}"))
        .await;
    let missed = back.find(|m| about(m, "emergency_updated", &id)).await;
    assert_eq!(missed["seq"].as_i64(), Some(seq + 1), "{missed}");
    assert_eq!(missed["room"], "reporter:rep-1");
    assert_eq!(missed["data"]["action"], "assigned");
    let heard = heard_about(&mut back, &id).await;
    assert_eq!(heard, Vec::<Value>::new(), "none twice");
}
on_both_backends!(a_reporter_resumes_what_it_missed_and_a_repeated_key_creates_once);

async fn a_restart_keeps_open_emergencies_their_units_and_the_waiting_one(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let out = created(&app, &staff, "medical", "high").await;
    assert_eq!(step(&app, &out, "dispatch", json!({}), &staff).await.0, 200);
    let waiting = created(&app, &staff, "medical", "critical").await;
    assert_eq!(read(&app, &waiting).await["status"], "PENDING");
    drop(amb);

    let db = app.stop().await;
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let mut amb = unit_socket(&app, "AMB-1").await;
    // Online again (it may have gone offline past the grace period before the stop).
    let ack = amb
        .request(json!({"type":"status","status":"online"}))
        .await;
    assert_eq!(ack["status"], "busy", "on its emergency still: {ack}");
    assert_eq!(read(&app, &out).await["unit_id"], "AMB-1");
    let (_, units) = app.get_json("/api/v1/units", Some(&staff)).await;
    assert_eq!(units[0]["status"], "DISPATCHED", "{units}");
    assert_eq!(units[0]["emergency_id"], json!(out), "{units}");
    let (status, e) = step(
        &app,
        &waiting,
        "dispatch",
        json!({"unit_id":"AMB-1"}),
        &staff,
    )
    .await;
    assert_eq!(status, 409, "still on its emergency after the restart: {e}");

    let ack = amb
        .request(json!({"type":"complete_emergency","request_id": out}))
        .await;
    assert_eq!(ack["emergency"]["status"], "COMPLETED", "{ack}");
    amb.find(|m| about(m, "emergency_assigned", &waiting)).await;
    assert_eq!(read(&app, &waiting).await["status"], "ASSIGNED");
}
on_both_backends!(a_restart_keeps_open_emergencies_their_units_and_the_waiting_one);

async fn the_database_refusing_an_auto_dispatch_still_creates_the_emergency_waiting(db: TestDb) {
    let app = spawn_app(db).await;
    let rep = reporter_token(&app, "rep-1");
    let _amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    // Behind the desk's back, the unit is on an emergency the database holds (as after a
    // leader change the desk has not caught up with).
    let now = rallypoint::db::models::to_db(chrono::Utc::now());
    let row = rallypoint::db::models::EmergencyRow {
        request_id: "EMG-elsewhere".into(),
        kind: "fire".into(),
        description: "elsewhere".into(),
        severity: "high".into(),
        lat: 1.0,
        lng: 2.0,
        status: "ASSIGNED".into(),
        unit_id: Some("AMB-1".into()),
        reported_by: "other".into(),
        created_at: now,
        updated_at: now,
    };
    let mut c = app.hub.pool.get().expect("a connection");
    rallypoint::db::queries::emergencies::insert(&mut c, &row).expect("inserted");
    drop(c);

    let (status, e) = create(&app, &rep, "medical", "critical").await;
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "PENDING", "created, not assigned: {e}");
    assert!(e["unit_id"].is_null(), "{e}");
    let id = e["request_id"].as_str().unwrap_or_default().to_string();
    assert_eq!(read(&app, &id).await["status"], "PENDING");
}
on_both_backends!(the_database_refusing_an_auto_dispatch_still_creates_the_emergency_waiting);
