//! Operators' actions, field reports, and the crowd risk insight and prediction (SPEC 8) over
//! real sockets, on both backends: `action:created` and `report:new` to the event's dashboards
//! only, with a seq (resumed like every room message) and in the polling fallback;
//! `insight:update` and `prediction:update` from the built-in model, the service at
//! `crowd.risk_url`, or the model again when the service is late (`mlStatus`), pushed every
//! `crowd.insight_interval_s` to a watched event, and given to a joining dashboard.

use crate::crowd::{count, create_event, QUIET};
use crate::crowd_rooms::{dashboard, event_token};
use crate::helpers::{spawn_app, spawn_app_with, TestDb};
use crate::on_both_backends;
use actix_web::{web, App, HttpResponse, HttpServer};
use rallypoint::protocol::Role;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A real HTTP crowd risk service on a random port: answers `answer` after `delay`, records
/// what it was asked.
fn crowd_service(answer: Value, delay: Duration) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let server = HttpServer::new(move || {
        let (recorded, answer) = (recorded.clone(), answer.clone());
        App::new().route(
            "/crowd",
            web::post().to(move |body: web::Json<Value>| {
                let (recorded, answer) = (recorded.clone(), answer.clone());
                async move {
                    recorded.lock().unwrap().push(body.into_inner());
                    tokio::time::sleep(delay).await;
                    HttpResponse::Ok().json(answer)
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let url = format!("http://{}/crowd", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    (url, seen)
}

async fn actions_and_reports_reach_the_events_dashboards_and_resume(db: TestDb) {
    let app = spawn_app(db).await;
    create_event(&app, "E1").await;
    create_event(&app, "E2").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    let other = event_token(&app, "op-2", Role::Operator, &["E2"]);
    let mut b = dashboard(&app, &other, "E2").await;

    let body = json!({"event_id":"E1","command":"Open Gate 3","zone_id":"Z2"});
    let (status, action) = app.post_json("/api/v1/actions", &body, &op).await;
    assert_eq!(status, 201, "{action}");
    let m = a.expect("action:created").await;
    assert!(m["seq"].as_i64().unwrap() > 0, "{m}");
    assert_eq!(m["data"], action, "{m}");
    assert_eq!(
        (
            m["data"]["command"].as_str(),
            m["data"]["zoneId"].as_str(),
            m["data"]["createdBy"].as_str(),
            m["data"]["eventId"].as_str()
        ),
        (Some("Open Gate 3"), Some("Z2"), Some("op-1"), Some("E1"))
    );
    let first_seq = m["seq"].as_i64().unwrap();
    // A camera posts a report: anyone who may watch the event may.
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    let body =
        json!({"event_id":"E1","message":"Crowd surge at the north fence","type":"incident"});
    let (status, report) = app.post_json("/api/v1/reports", &body, &cam).await;
    assert_eq!(status, 201, "{report}");
    let m = a.expect("report:new").await;
    assert_eq!(m["data"]["type"], "incident", "{m}");
    assert_eq!(m["data"]["createdBy"], "cam-1");
    assert!(
        m["data"]["createdAt"].is_string() && m["data"]["id"].is_string(),
        "{m}"
    );
    let seen = b.drain_for(QUIET).await;
    assert!(
        seen.iter()
            .all(|m| m["type"] != "action:created" && m["type"] != "report:new"),
        "{seen:?}"
    );

    // Refused: a sensor acting, an unknown zone, another event, an empty message.
    for (token, path, body, want) in [
        (
            &cam,
            "/api/v1/actions",
            json!({"event_id":"E1","command":"x"}),
            403,
        ),
        (
            &op,
            "/api/v1/actions",
            json!({"event_id":"E1","command":"x","zone_id":"Z9"}),
            404,
        ),
        (
            &op,
            "/api/v1/actions",
            json!({"event_id":"E2","command":"x"}),
            403,
        ),
        (
            &op,
            "/api/v1/actions",
            json!({"event_id":"E1","command":" "}),
            400,
        ),
        (
            &cam,
            "/api/v1/reports",
            json!({"event_id":"E1","message":"","type":"x"}),
            400,
        ),
        (
            &cam,
            "/api/v1/reports",
            json!({"event_id":"E2","message":"m","type":"x"}),
            403,
        ),
    ] {
        let (status, err) = app.post_json(path, &body, token).await;
        assert_eq!(status, want, "{path} {body}: {err}");
    }

    // The polling fallback, and a resume from before the action.
    let (_, actions) = app.get_json("/api/v1/events/E1/actions", Some(&op)).await;
    assert_eq!(actions, json!([action]), "{actions}");
    let (_, reports) = app.get_json("/api/v1/events/E1/reports", Some(&op)).await;
    assert_eq!(reports, json!([report]), "{reports}");
    let (status, _) = app
        .get_json("/api/v1/events/E1/reports", Some(&other))
        .await;
    assert_eq!(status, 403);
    let since = format!("event%3AE1%3A{}", first_seq - 1);
    let mut again = app
        .ws_query(&format!("token={op}&event_id=E1&since={since}"))
        .await;
    let joined = again
        .find(|m| m["type"] == "joined" && m["room"] == "event:E1")
        .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(
        again.expect("action:created").await["data"]["id"],
        action["id"]
    );
    assert_eq!(again.expect("report:new").await["data"]["id"], report["id"]);
}
on_both_backends!(actions_and_reports_reach_the_events_dashboards_and_resume);

async fn the_built_in_model_reads_load_against_capacity(db: TestDb) {
    let app = spawn_app(db).await;
    create_event(&app, "E1").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let cam = event_token(&app, "cam-1", Role::Sensor, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    // Main stage: 45 of 50, no history yet (trend 0): (0.9 - 0.5) / 0.5 = 0.8.
    assert_eq!(count(&app, &cam, "E1", "Z1", "A", 45).await.0, 200);
    let (status, i) = app
        .post_json("/api/v1/ai/insights", &json!({"event_id":"E1"}), &op)
        .await;
    assert_eq!(status, 200, "{i}");
    assert_eq!(i["riskScore"], 0.8, "{i}");
    assert_eq!(i["mlStatus"], "model");
    assert_eq!(i["confidence"], 0.4, "{i}");
    assert!(
        i["recommendation"]
            .as_str()
            .unwrap()
            .starts_with("Critical"),
        "{i}"
    );
    assert_eq!(i["factors"][0]["zoneId"], "Z1");
    assert_eq!(i["factors"][0]["occupancy"], 45);
    let m = a.expect("insight:update").await;
    assert!(m.get("seq").is_none(), "ephemeral: {m}");
    assert_eq!(m["data"], i);
    let body = json!({"event_id":"E1","horizon_minutes":30});
    let (status, p) = app
        .post_json("/api/v1/ai/predictions", &body, &app.dispatcher_token())
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["horizonMinutes"], 30);
    assert_eq!(
        p["predictions"],
        json!([{"zoneId":"Z1","risk":0.8},{"zoneId":"Z2","risk":0.0}]),
        "{p}"
    );
    assert_eq!(a.expect("prediction:update").await["data"], p);
    // A dashboard joining now gets the latest of both at once.
    let mut late = dashboard(&app, &op, "E1").await;
    assert_eq!(late.expect("insight:update").await["data"], i);
    assert_eq!(late.expect("prediction:update").await["data"], p);
    // Who may not ask, and a bad horizon; the room's history holds neither.
    for (token, body, want) in [
        (&cam, json!({"event_id":"E1"}), 403),
        (&op, json!({"event_id":"E1","horizon_minutes":0}), 400),
        (&op, json!({"event_id":"E2"}), 403),
    ] {
        let (status, err) = app.post_json("/api/v1/ai/predictions", &body, token).await;
        assert_eq!(status, want, "{body}: {err}");
    }
    let (_, h) = app
        .get_json("/api/v1/rooms/event:E1/events?since=0", Some(&op))
        .await;
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["type"].as_str())
        .collect();
    assert_eq!(kinds, ["alert:new"], "{h}");
}
on_both_backends!(the_built_in_model_reads_load_against_capacity);

async fn the_service_decides_in_time_and_the_model_takes_over_when_late(db: TestDb) {
    let answer = json!({"riskScore":0.33,"recommendation":"Send stewards to Z1","confidence":0.9,
        "predictions":[{"zoneId":"Z1","risk":0.5},{"zoneId":"Z2","risk":0.1}]});
    let (url, seen) = crowd_service(answer.clone(), Duration::ZERO);
    let app = spawn_app_with(db.shared(), |s| s.crowd.risk_url = url).await;
    create_event(&app, "E1").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let (_, i) = app
        .post_json("/api/v1/ai/insights", &json!({"event_id":"E1"}), &op)
        .await;
    assert_eq!(
        (i["mlStatus"].as_str(), i["riskScore"].as_f64()),
        (Some("service"), Some(0.33)),
        "{i}"
    );
    assert_eq!(i["recommendation"], "Send stewards to Z1");
    let (_, p) = app
        .post_json("/api/v1/ai/predictions", &json!({"event_id":"E1"}), &op)
        .await;
    assert_eq!(p["mlStatus"], "service", "{p}");
    assert_eq!(p["predictions"], answer["predictions"], "{p}");
    let asked = seen.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(
        (asked[0]["kind"].as_str(), asked[1]["kind"].as_str()),
        (Some("insight"), Some("prediction"))
    );
    assert_eq!(asked[1]["horizonMinutes"], 15);
    assert_eq!(asked[0]["zones"][0]["zoneId"], "Z1", "{asked:?}");
    assert_eq!(asked[0]["zones"][0]["capacity"], 50);

    let (slow, _) = crowd_service(answer, Duration::from_secs(2));
    let late = spawn_app_with(db, |s| {
        s.crowd.risk_url = slow;
        s.crowd.risk_timeout_ms = 100;
    })
    .await;
    // The same database: E1 is there already, read by this node's desk.
    let (_, i) = late
        .post_json(
            "/api/v1/ai/insights",
            &json!({"event_id":"E1"}),
            &op_of(&late),
        )
        .await;
    assert_eq!(
        (i["mlStatus"].as_str(), i["riskScore"].as_f64()),
        (Some("fallback"), Some(0.0)),
        "{i}"
    );
    let (_, p) = late
        .post_json(
            "/api/v1/ai/predictions",
            &json!({"event_id":"E1"}),
            &op_of(&late),
        )
        .await;
    assert_eq!(p["mlStatus"], "fallback", "{p}");
    assert_eq!(
        p["predictions"][0],
        json!({"zoneId":"Z1","risk":0.0}),
        "{p}"
    );
}
on_both_backends!(the_service_decides_in_time_and_the_model_takes_over_when_late);

fn op_of(app: &crate::helpers::TestApp) -> String {
    event_token(app, "op-1", Role::Operator, &["E1"])
}

async fn insights_are_pushed_while_the_event_is_watched(db: TestDb) {
    let app = spawn_app_with(db, |s| s.crowd.insight_interval_s = 1).await;
    create_event(&app, "E1").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    // Nobody asks: the desk pushes both on its own.
    let i = a.expect("insight:update").await;
    assert_eq!(i["data"]["mlStatus"], "model", "{i}");
    let p = a.expect("prediction:update").await;
    assert_eq!(p["data"]["horizonMinutes"], 15, "{p}");
    assert!(i.get("seq").is_none() && p.get("seq").is_none());
}
on_both_backends!(insights_are_pushed_while_the_event_is_watched);
