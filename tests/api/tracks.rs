//! Drivers' tracks (SPEC 10) over real sockets: a simulated route of many location updates
//! gives its positions sampled every `tracking.sample_s`, in order, far fewer rows than updates;
//! `since`/`until` narrow it, bad ones are 400; samples past `tracking.retention_h` are purged by
//! the janitor; an unknown driver is 404 and a driver's token 403.

use crate::helpers::{spawn_app_with, TestApp, TestDb};
use crate::on_both_backends;
use actix::Actor;
use chrono::{DateTime, Utc};
use rallypoint::actors::janitor::{Janitor, TrimNow};
use rallypoint::actors::tracks;
use rallypoint::protocol::Role;
use serde_json::{json, Value};
use std::time::Duration;

/// Route updates sent, one per `STEP`.
const UPDATES: usize = 35;
const STEP: Duration = Duration::from_millis(100);

fn lat_of(i: usize) -> f64 {
    48.80 + i as f64 * 0.001
}

/// `GET /api/v1/drivers/{id}/track{query}` as `token`.
async fn track(app: &TestApp, id: &str, query: &str, token: &str) -> (u16, Value) {
    app.get_json(&format!("/api/v1/drivers/{id}/track{query}"), Some(token))
        .await
}

fn points(body: &Value) -> Vec<Value> {
    body["points"].as_array().cloned().unwrap_or_default()
}

fn at(p: &Value) -> DateTime<Utc> {
    p["timestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a timestamp: {p}"))
}

async fn a_simulated_route_is_kept_sampled_in_order_and_purged_after_its_retention(db: TestDb) {
    let app = spawn_app_with(db, |s| s.tracking.sample_s = 1).await;
    let desk = app.dispatcher_token();
    let mut driver = app.online_driver("DRV-001", "Alice", lat_of(0), 2.35).await;
    for i in 1..UPDATES {
        let ack = driver
            .request(json!({"type":"location","lat":lat_of(i),"lng":2.35,"speed":8.0,"heading":0}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        tokio::time::sleep(STEP).await;
    }
    // What the writer has not written yet goes now, in one batch.
    tracks::flush(&app.hub).await.expect("the batch write");
    assert!(app.hub.tracks.is_empty());

    let (status, body) = track(&app, "DRV-001", "", &desk).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["driver_id"], "DRV-001", "{body}");
    assert_eq!(body["sample_s"], 1, "{body}");
    let got = points(&body);
    // About 3.5 s of route at one sample a second: a handful of rows, never one per update.
    assert!(
        (3..=6).contains(&got.len()),
        "{} samples of {UPDATES} updates: {got:?}",
        got.len()
    );
    assert_eq!(
        got[0]["lat"],
        lat_of(0),
        "the first position is kept: {got:?}"
    );
    let sent: Vec<f64> = (0..UPDATES).map(lat_of).collect();
    let mut last_index = None;
    for w in got.windows(2) {
        let gap = at(&w[1]) - at(&w[0]);
        assert!(
            gap >= chrono::Duration::seconds(1),
            "at most one sample per second: {w:?}"
        );
    }
    for p in &got {
        let lat = p["lat"].as_f64().unwrap_or(f64::NAN);
        let i = sent
            .iter()
            .position(|s| *s == lat)
            .unwrap_or_else(|| panic!("a position that was sent: {p}"));
        assert!(last_index < Some(i), "in the route's order: {got:?}");
        last_index = Some(i);
        assert_eq!(p["lng"], 2.35, "{p}");
        assert_eq!(p["speed"], 8.0, "{p}");
    }

    // `since` and `until` (RFC 3339) bound it, both included.
    let range = format!(
        "?since={}&until={}",
        got[1]["timestamp"].as_str().unwrap_or_default(),
        got[2]["timestamp"].as_str().unwrap_or_default()
    );
    let (status, body) = track(&app, "DRV-001", &range, &desk).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(points(&body), got[1..3].to_vec(), "{body}");
    for bad in [
        "?since=yesterday",
        "?until=2026-13-01T00:00:00Z",
        "?since=2026-12-03T10:00:00Z&until=2026-12-03T09:00:00Z",
    ] {
        let (status, body) = track(&app, "DRV-001", bad, &desk).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }

    // The first two samples age past the retention: the janitor purges them, and only them.
    let (first, second) = (at(&got[0]).naive_utc(), at(&got[1]).naive_utc());
    let old = (Utc::now() - chrono::Duration::hours(25)).naive_utc();
    rallypoint::db::run(&app.hub.pool, move |c| {
        use diesel::prelude::*;
        use rallypoint::db::schema::track_points::dsl;
        for (k, t) in [first, second].into_iter().enumerate() {
            diesel::update(dsl::track_points.filter(dsl::at.eq(t)))
                .set(dsl::at.eq(old + chrono::Duration::seconds(k as i64)))
                .execute(c)?;
        }
        Ok(())
    })
    .await
    .expect("aging two samples");
    let trimmed = Janitor::new(app.hub.clone())
        .start()
        .send(TrimNow)
        .await
        .expect("the janitor answers")
        .expect("the trim");
    assert_eq!(trimmed.tracks, 2, "{trimmed:?}");
    let (_, body) = track(&app, "DRV-001", "?since=2000-01-01T00:00:00Z", &desk).await;
    assert_eq!(points(&body), got[2..].to_vec(), "{body}");

    // Unknown drivers and non-staff.
    let (status, body) = track(&app, "DRV-404", "", &desk).await;
    assert_eq!(status, 404, "{body}");
    let mine = app.driver_token("DRV-001", "Alice");
    let (status, body) = track(&app, "DRV-001", "", &mine).await;
    assert_eq!(status, 403, "{body}");
    let observer = app.token_for("obs-1", Role::Observer, None);
    let (status, _) = track(&app, "DRV-001", "", &observer).await;
    assert_eq!(status, 403);
}
on_both_backends!(a_simulated_route_is_kept_sampled_in_order_and_purged_after_its_retention);

/// A cluster's follower hands its drivers' locations to the leader, whose driver actor samples
/// them: one sample per interval however many updates, none kept by the follower, and the same
/// track read on either node. Needs PostgreSQL and Redis (skipped loudly without).
#[actix_web::test]
async fn a_followers_driver_is_sampled_once_by_the_leader() {
    let Some((leader, follower)) =
        crate::cluster_leader::leader_and_follower("tracks::a_followers_driver_is_sampled_once")
            .await
    else {
        return;
    };
    let sample_s = follower.settings.tracking.sample_s;
    assert!(sample_s >= 10, "the default interval: {sample_s}");
    let mut driver = follower
        .online_driver("DRV-001", "Alice", lat_of(0), 2.35)
        .await;
    for i in 1..20 {
        let ack = driver
            .request(json!({"type":"location","lat":lat_of(i),"lng":2.35}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert!(follower.hub.tracks.is_empty(), "the follower keeps none");
    }
    tracks::flush(&leader.hub)
        .await
        .expect("the leader's write");
    assert_eq!(tracks::flush(&follower.hub).await.ok(), Some(0));
    for node in [&leader, &follower] {
        let (status, body) = track(node, "DRV-001", "", &node.dispatcher_token()).await;
        assert_eq!(status, 200, "{body}");
        let got = points(&body);
        assert_eq!(
            got.len(),
            1,
            "one sample of 20 updates within {sample_s} s: {got:?}"
        );
        assert_eq!(got[0]["lat"], lat_of(0), "{got:?}");
    }
}
