//! Rooms never wedge and never leak (SPEC 3, 6): idle rooms stop and are made again on demand,
//! a room whose seq read fails retries it, a trimmed gap leads to `resync`, `recovered` is true
//! only for a contiguous replay, and a big replay never holds up the room's live delivery.

use crate::helpers::{spawn_app_with, TestApp, TestDb, WsClient, WAIT};
use crate::on_both_backends;
use diesel::RunQueryDsl;
use rallypoint::actors::registry::Publish;
use rallypoint::auth::Claims;
use rallypoint::db::queries::commit::Published;
use rallypoint::db::{self, DbConnection};
use rallypoint::protocol::{Role, Room};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// An observer of every `order:` room.
fn watcher_token(app: &TestApp, sub: &str) -> String {
    let mut claims = Claims::new(sub, Role::Observer, None, "default", 3600);
    claims.rooms = Some(vec!["order:*".into()]);
    app.hub.keys.sign(&claims).expect("sign")
}

/// The value of an unlabelled metric in `GET /metrics` (0 when absent).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let mut resp = awc::Client::default()
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("/metrics answers");
    let body = resp.body().limit(1 << 24).await.expect("the metrics text");
    let text = String::from_utf8_lossy(&body).to_string();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// Polls `/metrics` until `name` satisfies `ok`, within `WAIT`; answers the last value.
async fn metric_until(app: &TestApp, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = metric(app, name).await;
        if ok(v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection of the test's own to the app's database.
async fn own_conn(app: &TestApp) -> diesel::r2d2::PooledConnection<db::Manager> {
    let url = app.db.url.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut settings = rallypoint::config::Settings::load(None)
            .expect("default settings")
            .database;
        settings.url = url;
        settings.pool_size = 1;
        settings.connect_timeout_ms = 10_000;
        let pool = db::connect(&settings).expect("a pool");
        pool.get().expect("a connection")
    })
    .await
    .expect("the blocking task")
}

/// Runs `f` on `conn` off the async thread (diesel is synchronous); hands both back.
async fn on_conn<C, T>(
    mut conn: C,
    f: impl FnOnce(&mut DbConnection) -> T + Send + 'static,
) -> (C, T)
where
    C: std::ops::DerefMut<Target = DbConnection> + Send + 'static,
    T: Send + 'static,
{
    actix_web::rt::task::spawn_blocking(move || {
        let out = f(&mut conn);
        (conn, out)
    })
    .await
    .expect("the blocking task")
}

/// The frame of message `seq` of `room`, as the engine stores and sends it.
fn frame(room: &str, seq: i64) -> String {
    json!({"type":"order_updated","room":room,"seq":seq,"id":format!("m-{room}-{seq}"),
        "order_id":"X","status":"picked_up","driver_id":null,"version":seq,"eta":null,
        "timestamp":"2026-01-01T00:00:00Z"})
    .to_string()
}

/// Stores messages `1..=n` of `room` (through the engine's own seq reservation and insert).
fn store(conn: &mut DbConnection, room: &str, n: i64) -> Vec<Published> {
    use diesel::Connection;
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        let mut out = Vec::new();
        for _ in 0..n {
            let seq = rallypoint::db::queries::rooms::reserve(c, room, 1)?;
            let row = rallypoint::db::queries::rooms::insert(
                c,
                room,
                seq,
                &uuid::Uuid::new_v4().to_string(),
                chrono::Utc::now(),
                |seq| frame(room, seq),
            )?;
            out.push(Published {
                room: Room::parse(room).expect("a room"),
                seq: row.seq,
                id: row.id,
                kind: "order_updated",
                text: row.payload,
                taken_off: None,
            });
        }
        Ok(out)
    })
    .expect("stored")
}

/// Whether `m` is a message published to `room` (not the `joined` or `ack` naming it).
fn published_in(m: &Value, room: &str) -> bool {
    m["room"] == room && m["seq"].is_i64() && m["type"] != "joined" && m["type"] != "ack"
}

/// Joins `room` (from `since` when given); answers `joined` (the ack is taken too).
async fn join(c: &mut WsClient, room: &str, since: Option<i64>) -> Value {
    let mut msg = json!({"type":"join","room":room});
    if let Some(s) = since {
        msg["since"] = json!(s);
    }
    let ack = c.request(msg).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    c.find(|m| m["type"] == "joined" && m["room"] == room).await
}

/// Reads the seqs of `room`'s messages until `want` of them came; asserts no `resync` of that
/// room came between.
async fn seqs_of(c: &mut WsClient, room: &str, want: usize) -> Vec<i64> {
    let mut got = Vec::new();
    while got.len() < want {
        let m = c
            .find(|m| published_in(m, room) || (m["type"] == "resync" && m["room"] == room))
            .await;
        assert_ne!(m["type"], "resync", "no resync expected: {m}");
        got.push(m["seq"].as_i64().unwrap_or_default());
    }
    got
}

async fn ten_thousand_rooms_joined_and_left_leave_no_room_actors_behind(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.realtime.room_idle_s = 1;
        // Retiring is counted here: the room still joined keeps its actor (sleeping is tested
        // below).
        s.realtime.room_sleep_ms = 0;
        s.limits.client_msgs_per_sec = 1_000_000;
    })
    .await;
    let mut obs = app.ws(&watcher_token(&app, "watcher")).await;
    let ack = obs
        .request(json!({"type":"join","room":"order:HOLD"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Joins and leaves go in batches of 100, each answered.
    for batch in 0..100 {
        for i in 0..100 {
            let room = format!("order:ORD-{batch}-{i}");
            obs.send(&json!({"type":"join","room":room,"ref":format!("j{batch}-{i}")}))
                .await;
            obs.send(&json!({"type":"leave","room":room,"ref":format!("l{batch}-{i}")}))
                .await;
        }
        let last = format!("l{batch}-99");
        let m = obs.find(|m| m["ref"] == last.as_str()).await;
        assert_eq!(m["type"], "ack", "{m}");
        let refused: Vec<Value> = obs.kept("error");
        assert!(refused.is_empty(), "{refused:?}");
        obs.drain_for(Duration::ZERO).await;
    }
    // The room still joined keeps its actor; the 10,000 others retire.
    let left = metric_until(&app, "rallypoint_room_actors", |v| v <= 1.0).await;
    assert_eq!(left, 1.0, "only order:HOLD is left");
    let leave = obs
        .request(json!({"type":"leave","room":"order:HOLD"}))
        .await;
    assert_eq!(leave["type"], "ack", "{leave}");
    metric_until(&app, "rallypoint_room_actors", |v| v == 0.0).await;
    assert_eq!(
        app.hub
            .room_actors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
on_both_backends!(ten_thousand_rooms_joined_and_left_leave_no_room_actors_behind);

/// Publishes `n` more messages of `room` through the registry, as a commit does.
async fn publish_more<C>(app: &TestApp, conn: C, room: &'static str, n: i64) -> (C, Vec<i64>)
where
    C: std::ops::DerefMut<Target = DbConnection> + Send + 'static,
{
    let (conn, published) = on_conn(conn, move |c| store(c, room, n)).await;
    let seqs = published.iter().map(|p| p.seq).collect();
    app.hub
        .rooms
        .send(Publish {
            messages: published,
        })
        .await
        .expect("the registry answers");
    (conn, seqs)
}

async fn a_quiet_room_sleeps_and_wakes_for_its_next_message_missing_nothing(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.realtime.room_sleep_ms = 200;
        s.realtime.room_idle_s = 1;
    })
    .await;
    let conn = own_conn(&app).await;
    let mut a = app.ws(&watcher_token(&app, "a")).await;
    let mut b = app.ws(&watcher_token(&app, "b")).await;
    assert_eq!(join(&mut a, "order:Z", None).await["seq"], 0);
    assert_eq!(join(&mut b, "order:Z", None).await["seq"], 0);
    let (conn, seqs) = publish_more(&app, conn, "order:Z", 2).await;
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(seqs_of(&mut a, "order:Z", 2).await, vec![1, 2]);
    assert_eq!(seqs_of(&mut b, "order:Z", 2).await, vec![1, 2]);

    // Quiet: it sleeps, with no actor.
    metric_until(&app, "rallypoint_rooms_asleep", |v| v == 1.0).await;
    metric_until(&app, "rallypoint_room_actors", |v| v == 0.0).await;
    // The next messages wake it; both members get them once and in order.
    let (conn, seqs) = publish_more(&app, conn, "order:Z", 3).await;
    assert_eq!(seqs, vec![3, 4, 5]);
    assert_eq!(seqs_of(&mut a, "order:Z", 3).await, vec![3, 4, 5]);
    assert_eq!(seqs_of(&mut b, "order:Z", 3).await, vec![3, 4, 5]);
    assert_eq!(metric(&app, "rallypoint_rooms_asleep").await, 0.0, "woken");

    // Asleep again, b leaves without waking it, and only a hears of the next message.
    metric_until(&app, "rallypoint_rooms_asleep", |v| v == 1.0).await;
    let left = b.request(json!({"type":"leave","room":"order:Z"})).await;
    assert_eq!(left["type"], "ack", "{left}");
    assert_eq!(metric(&app, "rallypoint_room_actors").await, 0.0);
    let (conn, seqs) = publish_more(&app, conn, "order:Z", 1).await;
    assert_eq!(seqs, vec![6]);
    assert_eq!(seqs_of(&mut a, "order:Z", 1).await, vec![6]);
    let to_b: Vec<Value> = b
        .drain_for(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|m| published_in(m, "order:Z"))
        .collect();
    assert!(to_b.is_empty(), "b left: {to_b:?}");

    // A resume into a sleeping room wakes it and replays from the record's seq.
    metric_until(&app, "rallypoint_rooms_asleep", |v| v == 1.0).await;
    let joined = join(&mut b, "order:Z", Some(4)).await;
    assert_eq!(joined["seq"], 6, "{joined}");
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(seqs_of(&mut b, "order:Z", 2).await, vec![5, 6]);

    // Left by everyone while asleep: forgotten; made again from the stored seq.
    metric_until(&app, "rallypoint_rooms_asleep", |v| v == 1.0).await;
    for c in [&mut a, &mut b] {
        let left = c.request(json!({"type":"leave","room":"order:Z"})).await;
        assert_eq!(left["type"], "ack", "{left}");
    }
    metric_until(&app, "rallypoint_rooms_asleep", |v| v == 0.0).await;
    assert_eq!(metric(&app, "rallypoint_room_actors").await, 0.0);
    let (_, seqs) = publish_more(&app, conn, "order:Z", 1).await;
    assert_eq!(seqs, vec![7]);
    let joined = join(&mut a, "order:Z", Some(6)).await;
    assert_eq!(joined["seq"], 7, "{joined}");
    assert_eq!(seqs_of(&mut a, "order:Z", 1).await, vec![7]);
}
on_both_backends!(a_quiet_room_sleeps_and_wakes_for_its_next_message_missing_nothing);

async fn a_retired_room_is_made_again_from_its_stored_seq(db: TestDb) {
    let app = spawn_app_with(db, |s| s.realtime.room_idle_s = 1).await;
    let mut conn = own_conn(&app).await;
    let mut published;
    (conn, published) = on_conn(conn, |c| store(c, "order:R", 3)).await;
    let mut obs = app.ws(&watcher_token(&app, "watcher")).await;
    assert_eq!(join(&mut obs, "order:R", None).await["seq"], 3);
    app.hub
        .rooms
        .send(Publish {
            messages: published.split_off(0),
        })
        .await
        .unwrap();
    obs.request(json!({"type":"leave","room":"order:R"})).await;
    metric_until(&app, "rallypoint_room_actors", |v| v == 0.0).await;
    // Published while no actor runs: stored, routed nowhere.
    (_, published) = on_conn(conn, |c| store(c, "order:R", 2)).await;
    assert_eq!(
        published.iter().map(|p| p.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    app.hub
        .rooms
        .send(Publish {
            messages: published,
        })
        .await
        .unwrap();
    // Made again on demand: its seq is the stored one, and a resume gets what it missed.
    obs.send(&json!({"type":"join","room":"order:R","since":3}))
        .await;
    let joined = obs.expect("joined").await;
    assert_eq!(joined["seq"], 5, "{joined}");
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(seqs_of(&mut obs, "order:R", 2).await, vec![4, 5]);
}
on_both_backends!(a_retired_room_is_made_again_from_its_stored_seq);

async fn a_room_whose_seq_read_fails_retries_it_before_it_answers_a_join(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    let conn = own_conn(&app).await;
    let (conn, _) = on_conn(conn, |c| store(c, "order:S", 4)).await;
    let mut obs = app.ws(&watcher_token(&app, "watcher")).await;
    let failures = metric(&app, "rallypoint_room_seq_read_failures_total").await;
    let (conn, renamed) = on_conn(conn, |c| {
        diesel::sql_query("ALTER TABLE room_seqs RENAME TO room_seqs_away").execute(c)
    })
    .await;
    renamed.expect("room_seqs renamed");
    obs.send(&json!({"type":"join","room":"order:S","ref":"j"}))
        .await;
    metric_until(&app, "rallypoint_room_seq_read_failures_total", |v| {
        v > failures
    })
    .await;
    let (_, back) = on_conn(conn, |c| {
        diesel::sql_query("ALTER TABLE room_seqs_away RENAME TO room_seqs").execute(c)
    })
    .await;
    back.expect("room_seqs back");
    let joined = obs.expect("joined").await;
    assert_eq!(joined["seq"], 4, "the stored seq, not 0: {joined}");
    let ack = obs.find(|m| m["ref"] == "j").await;
    assert_eq!(ack["seq"], 4, "{ack}");
}
on_both_backends!(a_room_whose_seq_read_fails_retries_it_before_it_answers_a_join);

async fn a_gap_whose_rows_were_trimmed_is_skipped_with_resync(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    let mut obs = app.ws(&watcher_token(&app, "watcher")).await;
    assert_eq!(join(&mut obs, "order:G", None).await["seq"], 0);
    // Seq 3 arrives, but 1 and 2 are nowhere: trimmed before they were delivered.
    let ahead = |seq| Published {
        room: Room::parse("order:G").unwrap(),
        seq,
        id: format!("g{seq}"),
        kind: "order_updated",
        text: frame("order:G", seq),
        taken_off: None,
    };
    app.hub
        .rooms
        .send(Publish {
            messages: vec![ahead(3)],
        })
        .await
        .unwrap();
    let resync = obs.expect("resync").await;
    assert_eq!(resync["room"], "order:G");
    let m = obs.find(|m| published_in(m, "order:G")).await;
    assert_eq!(m["seq"], 3, "delivery goes on after the gap: {m}");
    app.hub
        .rooms
        .send(Publish {
            messages: vec![ahead(4)],
        })
        .await
        .unwrap();
    assert_eq!(seqs_of(&mut obs, "order:G", 1).await, vec![4]);
}
on_both_backends!(a_gap_whose_rows_were_trimmed_is_skipped_with_resync);

async fn two_gaps_at_once_are_both_filled_from_the_database(db: TestDb) {
    // Messages 2 and 4 arrive, 1, 3 and 5 are late (committed, still on their way): the gap read
    // fills both gaps, not only the first, and nothing is taken for trimmed.
    let app = spawn_app_with(db, |_| {}).await;
    let mut obs = app.ws(&watcher_token(&app, "watcher")).await;
    assert_eq!(join(&mut obs, "order:T", None).await["seq"], 0);
    let conn = own_conn(&app).await;
    let (_, published) = on_conn(conn, |c| store(c, "order:T", 5)).await;
    let only = |seqs: &[i64]| -> Vec<Published> {
        published
            .iter()
            .filter(|p| seqs.contains(&p.seq))
            .cloned()
            .collect()
    };
    for seq in [4, 2] {
        app.hub
            .rooms
            .send(Publish {
                messages: only(&[seq]),
            })
            .await
            .unwrap();
    }
    assert_eq!(seqs_of(&mut obs, "order:T", 4).await, vec![1, 2, 3, 4]);
    app.hub
        .rooms
        .send(Publish {
            messages: only(&[5]),
        })
        .await
        .unwrap();
    assert_eq!(seqs_of(&mut obs, "order:T", 1).await, vec![5]);
}
on_both_backends!(two_gaps_at_once_are_both_filled_from_the_database);

async fn a_replay_with_a_hole_is_not_recovered(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    let conn = own_conn(&app).await;
    let (conn, _) = on_conn(conn, |c| store(c, "order:H", 5)).await;
    let (_, deleted) = on_conn(conn, |c| {
        diesel::sql_query("DELETE FROM room_events WHERE room = 'order:H' AND seq = 3").execute(c)
    })
    .await;
    assert_eq!(deleted.expect("deleted"), 1);
    let mut obs = app.ws(&watcher_token(&app, "watcher")).await;
    let joined = join(&mut obs, "order:H", Some(0)).await;
    assert_eq!(
        joined["recovered"], false,
        "rows 1, 2, 4, 5 are not every message: {joined}"
    );
    let resync = obs.expect("resync").await;
    assert_eq!(resync["room"], "order:H");
    let replayed: Vec<Value> = obs
        .drain_for(Duration::from_millis(200))
        .await
        .into_iter()
        .filter(|m| published_in(m, "order:H"))
        .collect();
    assert!(
        replayed.is_empty(),
        "nothing replayed with a hole: {replayed:?}"
    );
    // Since past the hole: complete again.
    let joined = join(&mut obs, "order:H", Some(3)).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(seqs_of(&mut obs, "order:H", 2).await, vec![4, 5]);
}
on_both_backends!(a_replay_with_a_hole_is_not_recovered);

async fn a_big_replay_never_holds_up_live_delivery_and_the_seam_is_exact(db: TestDb) {
    const HISTORY: i64 = 2000;
    let app = spawn_app_with(db, |s| {
        s.realtime.history_per_room = 5000;
        s.database.pool_size = 2;
        s.database.connect_timeout_ms = 60_000;
    })
    .await;
    let conn = own_conn(&app).await;
    let (_, _) = on_conn(conn, |c| store(c, "order:BIG", HISTORY)).await;
    let mut live_member = app.ws(&watcher_token(&app, "live")).await;
    assert_eq!(
        join(&mut live_member, "order:BIG", None).await["seq"],
        HISTORY
    );
    let mut joiner = app.ws(&watcher_token(&app, "joiner")).await;
    // Every connection of the engine's pool is taken: the replay read waits for one.
    let pool = app.hub.pool.clone();
    let held = actix_web::rt::task::spawn_blocking(move || {
        (0..2)
            .map(|_| pool.get().expect("a pooled connection"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    joiner
        .send(&json!({"type":"join","room":"order:BIG","since":0,"ref":"j"}))
        .await;
    let deadline = Instant::now() + WAIT;
    while app
        .hub
        .room_replays_reading
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(Instant::now() < deadline, "the replay read never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Live messages while the replay is being read: the other member gets every one.
    let mut held = held;
    let conn = held.pop().unwrap();
    let (conn, live) = on_conn(conn, |c| store(c, "order:BIG", 20)).await;
    for p in live {
        app.hub
            .rooms
            .send(Publish { messages: vec![p] })
            .await
            .unwrap();
    }
    let want: Vec<i64> = (HISTORY + 1..=HISTORY + 20).collect();
    assert_eq!(seqs_of(&mut live_member, "order:BIG", 20).await, want);
    assert_eq!(
        app.hub
            .room_replays_reading
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "delivered while the replay was still waiting for the database"
    );
    drop(held);
    let (conn, after) = on_conn(conn, |c| store(c, "order:BIG", 5)).await;
    drop(conn);
    for p in after {
        app.hub
            .rooms
            .send(Publish { messages: vec![p] })
            .await
            .unwrap();
    }
    let joined = joiner.expect("joined").await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let total = (HISTORY + 25) as usize;
    let got = seqs_of(&mut joiner, "order:BIG", total).await;
    let want: Vec<i64> = (1..=HISTORY + 25).collect();
    assert!(
        got == want,
        "the joiner gets 1..={} once each, in order; got {} messages, first out of place at {:?}",
        HISTORY + 25,
        got.len(),
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    let rest: Vec<Value> = joiner
        .drain_for(Duration::from_millis(200))
        .await
        .into_iter()
        .filter(|m| published_in(m, "order:BIG"))
        .collect();
    assert!(rest.is_empty(), "nothing twice: {rest:?}");
    let want: Vec<i64> = (HISTORY + 21..=HISTORY + 25).collect();
    assert_eq!(seqs_of(&mut live_member, "order:BIG", 5).await, want);
}
on_both_backends!(a_big_replay_never_holds_up_live_delivery_and_the_seam_is_exact);
