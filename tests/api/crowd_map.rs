//! Pings and the live map (SPEC 8) over real sockets, on both backends: REST and `ping_location`
//! pings batched into at most one `map:update` per `crowd.map_flush_ms`, `points` capped at
//! `crowd.map_max_points`, a device counted once, the density adding up to the live devices, a
//! joining dashboard given the current map at once, and an update when pings expire.

use crate::crowd::create_event;
use crate::crowd_rooms::{dashboard, event_token};
use crate::helpers::{spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::protocol::Role;
use serde_json::{json, Value};

/// The devices a `map:update`'s density counts.
fn density_total(m: &Value) -> u64 {
    m["data"]["density"]
        .as_array()
        .expect("density")
        .iter()
        .map(|c| c["count"].as_u64().expect("count"))
        .sum()
}

/// `POST /api/v1/pings` of device `i`, somewhere on the main stage.
async fn ping(app: &TestApp, token: &str, i: usize) -> u16 {
    let body = json!({
        "event_id": "E1",
        "device_id": format!("dev-{i}"),
        "lat": 48.8560 + (i % 20) as f64 * 0.00005,
        "lng": 2.3510 + (i / 20) as f64 * 0.0001,
    });
    app.post_json("/api/v1/pings", &body, token).await.0
}

/// The `map:update`s a socket gets until one counts `want` devices; answers them all.
async fn maps_until(c: &mut WsClient, want: u64) -> Vec<Value> {
    let mut maps = Vec::new();
    loop {
        let m = c.expect("map:update").await;
        let total = density_total(&m);
        maps.push(m);
        if total == want {
            return maps;
        }
    }
}

async fn pings_are_batched_into_map_updates_whose_density_adds_up(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.crowd.map_max_points = 50;
    })
    .await;
    create_event(&app, "E1").await;
    create_event(&app, "E2").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let sensor = event_token(&app, "phones", Role::Sensor, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    let other = event_token(&app, "op-2", Role::Operator, &["E2"]);
    let mut b = dashboard(&app, &other, "E2").await;

    // 200 devices ping at once.
    let started = std::time::Instant::now();
    let pings = (0..200).map(|i| ping(&app, &sensor, i));
    let statuses = futures_util::future::join_all(pings).await;
    let took = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let maps = maps_until(&mut a, 200).await;
    eprintln!(
        "crowd_map: 200 pings sent in {:.0} ms reached the dashboard in {} map:update(s)",
        took.as_secs_f64() * 1000.0,
        maps.len()
    );
    if took < std::time::Duration::from_millis(app.settings.crowd.map_flush_ms) {
        assert!(
            maps.len() <= 2,
            "{} updates for one interval's pings",
            maps.len()
        );
    }
    for m in &maps {
        assert!(m.get("seq").is_none(), "ephemeral: {m}");
        assert_eq!(m["room"], "event:E1");
        assert!(m["data"]["points"].as_array().unwrap().len() <= 50, "{m}");
        assert!(
            m["data"]["updatedAt"].is_string() && m["data"]["source"] == "pings",
            "{m}"
        );
    }
    let points: usize = maps
        .iter()
        .map(|m| m["data"]["points"].as_array().unwrap().len())
        .sum();
    assert!(points >= 50, "{points}");

    // One device counts once, at its latest ping; over the WebSocket too.
    let mut phone = app.ws(&sensor).await;
    let ack = phone
        .request(json!({"type":"ping_location","event_id":"E1","device_id":"dev-0","lat":48.8575,"lng":2.3520}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let m = a.expect("map:update").await;
    assert_eq!(density_total(&m), 200, "{m}");
    assert_eq!(
        m["data"]["points"],
        json!([{"lat":48.8575,"lng":2.3520}]),
        "{m}"
    );

    // A dashboard joining now gets the current map at once, right after `joined`.
    let mut late = app.ws(&op).await;
    let joined = late.request(json!({"type":"join","room":"event:E1"})).await;
    assert_eq!(joined["type"], "ack", "{joined}");
    let now = late.expect("map:update").await;
    assert_eq!(density_total(&now), 200, "{now}");

    // The polling fallback reads the same map; another event saw none of it.
    let (status, polled) = app.get_json("/api/v1/events/E1/map", Some(&op)).await;
    assert_eq!(status, 200, "{polled}");
    let total: u64 = polled["density"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 200, "{polled}");
    let seen = b.drain_for(crate::crowd::QUIET).await;
    assert!(seen.iter().all(|m| m["type"] != "map:update"), "{seen:?}");

    // Bad pings: 4xx, nothing taken.
    for (body, want) in [
        (
            json!({"event_id":"E1","device_id":"x","lat":91.0,"lng":0.0}),
            400,
        ),
        (
            json!({"event_id":"E1","device_id":"x","lat":0.0,"lng":181.0}),
            400,
        ),
        (
            json!({"event_id":"E2","device_id":"x","lat":0.0,"lng":0.0}),
            403,
        ),
        (
            json!({"event_id":"E1","device_id":"","lat":0.0,"lng":0.0}),
            400,
        ),
    ] {
        let (status, err) = app.post_json("/api/v1/pings", &body, &sensor).await;
        assert_eq!(status, want, "{body}: {err}");
        assert!(err["error"]["message"].is_string(), "{err}");
    }
    let all = event_token(&app, "phones-2", Role::Sensor, &["*"]);
    let (status, _) = app
        .post_json(
            "/api/v1/pings",
            &json!({"event_id":"E404","device_id":"x","lat":0.0,"lng":0.0}),
            &all,
        )
        .await;
    assert_eq!(status, 404);
    let (_, polled) = app.get_json("/api/v1/events/E1/map", Some(&op)).await;
    assert_eq!(
        polled["density"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["count"].as_u64().unwrap())
            .sum::<u64>(),
        200
    );
}
on_both_backends!(pings_are_batched_into_map_updates_whose_density_adds_up);

async fn expired_pings_leave_the_map_with_an_update(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.crowd.ping_ttl_s = 1;
        s.crowd.map_flush_ms = 200;
    })
    .await;
    create_event(&app, "E1").await;
    let op = event_token(&app, "op-1", Role::Operator, &["E1"]);
    let sensor = event_token(&app, "phones", Role::Sensor, &["E1"]);
    let mut a = dashboard(&app, &op, "E1").await;
    for i in 0..3 {
        assert_eq!(ping(&app, &sensor, i).await, 200);
    }
    maps_until(&mut a, 3).await;
    // Once every ping has expired: one more update, its density empty.
    let gone = a
        .find(|m| m["type"] == "map:update" && m["data"]["density"] == json!([]))
        .await;
    assert_eq!(gone["data"]["source"], "expiry", "{gone}");
    assert_eq!(gone["data"]["points"], json!([]), "{gone}");
    let (_, polled) = app.get_json("/api/v1/events/E1/map", Some(&op)).await;
    assert_eq!(polled["density"], json!([]), "{polled}");
}
on_both_backends!(expired_pings_leave_the_map_with_an_update);
