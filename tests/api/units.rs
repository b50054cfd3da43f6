//! Emergency units (SPEC 9) over real sockets, on both backends: creation reaches the right
//! rooms and nobody else's, a dispatch picks the nearest unit of the serving type (or the one
//! named) and tells the unit in its own room, a unit is never dispatched twice at once, and a
//! dispatch with no unit free leaves the emergency pending. `units_lifecycle` has completion,
//! cancel, auto-dispatch, the reporters' rooms, bad input and the reads; the helpers are here.

use crate::helpers::{spawn_app, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::auth::Claims;
use rallypoint::protocol::{DriverId, Role};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a socket is watched for a message it must not get.
pub const QUIET: Duration = Duration::from_millis(500);

/// The scene of most emergencies here.
pub const SCENE: (f64, f64) = (48.8566, 2.3522);

/// A reporter's token.
pub fn reporter_token(app: &TestApp, sub: &str) -> String {
    app.token_for(sub, Role::Reporter, None)
}

/// Registers unit `id` of `unit_type` in fleet `units`, connects it, sets it online at
/// (`lat`, `lng`) off the scene; answers its socket.
pub async fn unit(app: &TestApp, id: &str, unit_type: &str, dlat: f64) -> WsClient {
    let (status, body) = app
        .post_json(
            "/api/v1/drivers",
            &json!({"id": id, "name": format!("Unit {id}"), "fleet": "units", "unit_type": unit_type}),
            &app.admin_token(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["unit_type"], unit_type, "{body}");
    let mut c = unit_socket(app, id).await;
    let ack = c.request(json!({"type":"status","status":"online"})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let at = json!({"type":"location","lat": SCENE.0 + dlat,"lng": SCENE.1});
    let ack = c.request(at).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    c
}

/// A socket of unit `id` (a driver of fleet `units`).
pub async fn unit_socket(app: &TestApp, id: &str) -> WsClient {
    let claims = Claims::new(
        &id.to_lowercase(),
        Role::Driver,
        Some(DriverId::from(id)),
        "units",
        3600,
    );
    app.ws(&app.hub.keys.sign(&claims).expect("sign")).await
}

/// A socket in `unit_tracking` (an observer allowed it), as the tracking map is.
pub async fn tracker(app: &TestApp) -> WsClient {
    let mut claims = Claims::new("map-1", Role::Observer, None, "default", 3600);
    claims.rooms = Some(vec!["unit_tracking".into()]);
    let mut c = app.ws(&app.hub.keys.sign(&claims).expect("sign")).await;
    let joined = c
        .request(json!({"type":"join","room":"unit_tracking"}))
        .await;
    assert_eq!(joined["type"], "ack", "{joined}");
    c
}

/// `POST /api/v1/emergencies` by `token`; answers the status and body.
pub async fn create(app: &TestApp, token: &str, kind: &str, severity: &str) -> (u16, Value) {
    let body = json!({
        "type": kind,
        "description": format!("{kind} at the square"),
        "severity": severity,
        "location": {"lat": SCENE.0, "lng": SCENE.1},
    });
    app.post_json("/api/v1/emergencies", &body, token).await
}

/// A created emergency's id, asserting it was created.
pub async fn created(app: &TestApp, token: &str, kind: &str, severity: &str) -> String {
    let (status, body) = create(app, token, kind, severity).await;
    assert_eq!(status, 201, "{body}");
    body["request_id"].as_str().unwrap_or_default().to_string()
}

/// `POST /api/v1/emergencies/{id}/{step}` by `token` with `body`.
pub async fn step(app: &TestApp, id: &str, step: &str, body: Value, token: &str) -> (u16, Value) {
    app.post_json(&format!("/api/v1/emergencies/{id}/{step}"), &body, token)
        .await
}

/// The emergency as `GET /api/v1/emergencies/{id}` answers it to staff.
pub async fn read(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .get_json(
            &format!("/api/v1/emergencies/{id}"),
            Some(&app.dispatcher_token()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Whether `m` is a `t` about emergency `id` (its payload in `data`).
pub fn about(m: &Value, t: &str, id: &str) -> bool {
    m["type"] == t
        && (m["data"]["request_id"] == id
            || m["data"]["emergency"]["request_id"] == id
            || m["data"]["emergency_id"] == id)
}

/// The messages about `id` that reach `c` within `QUIET`, beside those already taken.
pub async fn heard_about(c: &mut WsClient, id: &str) -> Vec<Value> {
    c.drain_for(QUIET)
        .await
        .into_iter()
        .filter(|m| {
            [
                "emergency_created",
                "emergency_update",
                "emergency_updated",
                "unit_status_update",
                "emergency_assigned",
            ]
            .iter()
            .any(|t| about(m, t, id))
        })
        .collect()
}

async fn a_new_emergency_reaches_dispatch_the_map_and_its_reporter_only(db: TestDb) {
    let app = spawn_app(db).await;
    let mut desk = app.ws(&app.dispatcher_token()).await;
    let mut map = tracker(&app).await;
    let rep1 = reporter_token(&app, "rep-1");
    let mut reporter = app.ws(&rep1).await;
    assert_eq!(
        reporter.welcome["rooms"]["reporter:rep-1"], 0,
        "{}",
        reporter.welcome
    );
    let mut other = app.ws(&reporter_token(&app, "rep-2")).await;
    let mut courier = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut amb = unit(&app, "AMB-1", "ambulance", 0.01).await;

    let (status, e) = create(&app, &rep1, "medical", "high").await;
    assert_eq!(status, 201, "{e}");
    let id = e["request_id"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "{e}");
    assert_eq!(e["type"], "medical");
    assert_eq!(e["severity"], "high");
    assert_eq!(e["status"], "PENDING");
    assert!(e["unit_id"].is_null(), "{e}");
    assert_eq!(e["location"], json!({"lat": SCENE.0, "lng": SCENE.1}));
    assert_eq!(e["description"], "medical at the square");
    assert!(
        e["created_at"].is_string() && e["updated_at"].is_string(),
        "{e}"
    );

    let at_desk = desk.find(|m| about(m, "emergency_created", &id)).await;
    assert_eq!(at_desk["room"], "dispatch");
    assert!(at_desk["seq"].is_i64(), "{at_desk}");
    assert_eq!(
        at_desk["data"], e,
        "the payload is the emergency, in `data`"
    );
    let on_map = map.find(|m| about(m, "emergency_created", &id)).await;
    assert_eq!(on_map["room"], "unit_tracking");
    assert_eq!(on_map["id"], at_desk["id"], "one publication, one id");
    let update = map.find(|m| about(m, "emergency_update", &id)).await;
    assert_eq!(update["data"]["action"], "created");
    assert_eq!(update["data"]["emergency"], e);
    let own = reporter.find(|m| about(m, "emergency_created", &id)).await;
    assert_eq!(own["room"], "reporter:rep-1");

    assert_eq!(
        heard_about(&mut desk, &id).await,
        Vec::<Value>::new(),
        "once"
    );
    assert_eq!(heard_about(&mut other, &id).await, Vec::<Value>::new());
    assert_eq!(heard_about(&mut courier, &id).await, Vec::<Value>::new());
    assert_eq!(
        heard_about(&mut amb, &id).await,
        Vec::<Value>::new(),
        "no unit hears of it before it is dispatched"
    );
    assert_eq!(read(&app, &id).await, e, "stored as answered");
}
on_both_backends!(a_new_emergency_reaches_dispatch_the_map_and_its_reporter_only);

async fn a_dispatch_picks_the_nearest_unit_of_the_serving_type_or_the_one_named(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let mut desk = app.ws(&staff).await;
    let mut map = tracker(&app).await;
    let mut far_amb = unit(&app, "AMB-1", "ambulance", 0.05).await;
    let mut near_amb = unit(&app, "AMB-2", "ambulance", 0.01).await;
    let mut police = unit(&app, "POL-1", "police", 0.001).await;

    // Medical: the nearer ambulance, though the police car is nearer still.
    let medical = created(&app, &staff, "medical", "high").await;
    let (status, e) = step(&app, &medical, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["status"], "ASSIGNED");
    assert_eq!(e["unit_id"], "AMB-2");
    let upd = desk.find(|m| about(m, "emergency_updated", &medical)).await;
    assert_eq!(upd["data"]["action"], "assigned");
    assert_eq!(upd["data"]["emergency"], e);
    assert_eq!(upd["data"]["unit"]["unit_id"], "AMB-2");
    assert_eq!(upd["data"]["unit"]["unit_type"], "ambulance");
    assert_eq!(upd["data"]["unit"]["status"], "DISPATCHED");
    let st = desk
        .find(|m| about(m, "unit_status_update", &medical))
        .await;
    assert_eq!(
        st["data"],
        json!({"unit_id":"AMB-2","status":"DISPATCHED","emergency_id": medical})
    );
    let st_map = map.find(|m| about(m, "unit_status_update", &medical)).await;
    assert_eq!(st_map["id"], st["id"]);
    map.find(|m| about(m, "emergency_updated", &medical)).await;
    let told = near_amb
        .find(|m| about(m, "emergency_assigned", &medical))
        .await;
    assert_eq!(told["room"], "driver:AMB-2");
    assert_eq!(told["data"], e);
    assert_eq!(
        heard_about(&mut far_amb, &medical).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        heard_about(&mut police, &medical).await,
        Vec::<Value>::new()
    );

    // The unit shows busy as a driver, DISPATCHED as a unit.
    let (_, d) = app
        .get_json("/api/v1/drivers/AMB-2", Some(&app.admin_token()))
        .await;
    assert_eq!(d["status"], "busy", "{d}");
    assert_eq!(d["unit_type"], "ambulance", "{d}");

    // An accident takes any type: the nearest.
    let accident = created(&app, &staff, "accident", "medium").await;
    let (status, e) = step(&app, &accident, "dispatch", json!({}), &staff).await;
    assert_eq!((status, e["unit_id"].clone()), (200, json!("POL-1")), "{e}");
    police
        .find(|m| about(m, "emergency_assigned", &accident))
        .await;

    // A fire with no fire unit: the nearest free one (only AMB-1 is left).
    let fire = created(&app, &staff, "fire", "low").await;
    let (status, e) = step(&app, &fire, "dispatch", json!({"unit_id": "AMB-2"}), &staff).await;
    assert_eq!(status, 409, "a named unit already out: {e}");
    assert_eq!(e["error"]["code"], "conflict");
    let (status, e) = step(&app, &fire, "dispatch", json!({"unit_id": "NOPE"}), &staff).await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = step(&app, &fire, "dispatch", json!({"unit_id": "AMB-1"}), &staff).await;
    assert_eq!((status, e["unit_id"].clone()), (200, json!("AMB-1")), "{e}");
    far_amb
        .find(|m| about(m, "emergency_assigned", &fire))
        .await;

    // Not pending any more: 409.
    let (status, e) = step(&app, &medical, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["code"], "conflict");
    let (status, _) = step(&app, "EMG-none", "dispatch", json!({}), &staff).await;
    assert_eq!(status, 404);

    let (status, units) = app.get_json("/api/v1/units", Some(&staff)).await;
    assert_eq!(status, 200, "{units}");
    let got: Vec<(Value, Value, Value)> = units
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            (
                u["unit_id"].clone(),
                u["status"].clone(),
                u["emergency_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("AMB-1"), json!("DISPATCHED"), json!(fire)),
            (json!("AMB-2"), json!("DISPATCHED"), json!(medical)),
            (json!("POL-1"), json!("DISPATCHED"), json!(accident)),
        ]
    );
}
on_both_backends!(a_dispatch_picks_the_nearest_unit_of_the_serving_type_or_the_one_named);

async fn two_dispatches_at_once_get_one_200_and_one_409(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let admin = app.admin_token();
    let mut amb = unit(&app, "AMB-1", "ambulance", 0.01).await;
    let _other = unit(&app, "AMB-2", "ambulance", 0.02).await;

    // The same emergency by two authorities at once.
    let id = created(&app, &staff, "medical", "high").await;
    let (a, b) = tokio::join!(
        step(&app, &id, "dispatch", json!({}), &staff),
        step(&app, &id, "dispatch", json!({}), &admin),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let winner = if a.0 == 200 { a.1 } else { b.1 };
    assert_eq!(winner["unit_id"], "AMB-1");
    let told: Vec<Value> = amb
        .drain_for(QUIET)
        .await
        .into_iter()
        .filter(|m| about(m, "emergency_assigned", &id))
        .collect();
    assert_eq!(told.len(), 1, "one assignment: {told:?}");

    // Two emergencies to one named unit at once: one 200, one 409, the unit on one.
    let x = created(&app, &staff, "medical", "high").await;
    let y = created(&app, &staff, "medical", "high").await;
    let named = json!({"unit_id": "AMB-2"});
    let (a, b) = tokio::join!(
        step(&app, &x, "dispatch", named.clone(), &staff),
        step(&app, &y, "dispatch", named.clone(), &admin),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let pending = if a.0 == 200 { &y } else { &x };
    assert_eq!(read(&app, pending).await["status"], "PENDING");
}
on_both_backends!(two_dispatches_at_once_get_one_200_and_one_409);

async fn with_no_unit_free_a_dispatch_is_409_and_the_emergency_stays_pending(db: TestDb) {
    let app = spawn_app(db).await;
    let staff = app.dispatcher_token();
    let mut desk = app.ws(&staff).await;
    let none_yet = created(&app, &staff, "police", "medium").await;
    let (status, e) = step(&app, &none_yet, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 409, "no unit at all: {e}");
    assert_eq!(e["error"]["code"], "conflict");
    let _pol = unit(&app, "POL-1", "police", 0.01).await;
    let first = created(&app, &staff, "police", "medium").await;
    let (status, _) = step(&app, &first, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 200);
    let (status, e) = step(&app, &none_yet, "dispatch", json!({}), &staff).await;
    assert_eq!(status, 409, "the only unit is out: {e}");
    let still = read(&app, &none_yet).await;
    assert_eq!(still["status"], "PENDING");
    assert!(still["unit_id"].is_null(), "{still}");
    desk.find(|m| about(m, "emergency_updated", &first)).await;
    let heard = heard_about(&mut desk, &none_yet).await;
    assert!(
        heard.iter().all(|m| m["type"] == "emergency_created"),
        "a refused dispatch announces nothing: {heard:?}"
    );
}
on_both_backends!(with_no_unit_free_a_dispatch_is_409_and_the_emergency_stays_pending);
