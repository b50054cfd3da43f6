//! Durable acknowledgements (SPEC 4): a key is claimed before anything is done, so one key sent on
//! many sockets at once is done once; the answer is stored with the effect, so a repeat that
//! arrives the moment the effect is announced gets the first answer; commits are synced
//! (`synchronous = FULL` on SQLite, `synchronous_commit = on` on PostgreSQL).

use crate::helpers::{spawn_app, spawn_peer, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use diesel::prelude::*;
use serde_json::{json, Value};

/// Alice holds `order` (accepted); Bob is online beside her.
async fn an_order_in_progress(app: &TestApp, order: &str) -> (WsClient, WsClient) {
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    app.give_order(&mut alice, "DRV-001", order, true).await;
    (alice, bob)
}

async fn incidents(app: &TestApp) -> Vec<Value> {
    let (status, body) = app
        .get_json("/api/v1/incidents", Some(&app.admin_token()))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

async fn the_same_key_on_ten_sockets_at_once_is_done_once(db: TestDb) {
    let app = spawn_app(db).await;
    let (_alice, _bob) = an_order_in_progress(&app, "ORD-T").await;
    // Two engines on one database (started once the order exists, so both hold it): the claim
    // must hold across processes, not only within one.
    let peer = spawn_peer(&app).await;
    let mut sockets = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { &app } else { &peer };
        sockets.push(node.ws(&app.dispatcher_token()).await);
    }
    let report = |i: usize| json!({"type":"report","order_id":"ORD-T","kind":"traffic_jam","idempotency_key":"k-ten","ref":format!("t{i}")});
    // Every copy is on the wire before any answer is read.
    for (i, s) in sockets.iter_mut().enumerate() {
        s.send(&report(i)).await;
    }
    let mut events = Vec::new();
    for (i, s) in sockets.iter_mut().enumerate() {
        let r = format!("t{i}");
        let answer = s
            .find(|m| m["ref"] == r.as_str() && (m["type"] == "ack" || m["type"] == "error"))
            .await;
        match answer["type"].as_str() {
            Some("ack") => events.push(answer["event"]["event_id"].clone()),
            _ => assert_eq!(answer["code"], "conflict", "{answer}"),
        }
    }
    assert!(
        !events.is_empty(),
        "at least one copy is answered with the event"
    );
    assert!(
        events.iter().all(|e| *e == events[0]),
        "every ack carries the one event: {events:?}"
    );
    let stored = incidents(&app).await;
    assert_eq!(stored.len(), 1, "one effect: {stored:?}");
    assert_eq!(stored[0]["event_id"], events[0]);
}
on_both_backends!(the_same_key_on_ten_sockets_at_once_is_done_once);

async fn a_repeat_sent_the_moment_the_effect_is_announced_gets_the_first_answer(db: TestDb) {
    let app = spawn_app(db).await;
    let (_alice, _bob) = an_order_in_progress(&app, "ORD-R").await;
    let mut reporter = app.ws(&app.dispatcher_token()).await;
    // The same sub, watching `dispatch`: it hears of the effect as soon as it is committed.
    let mut watcher = app.ws(&app.dispatcher_token()).await;
    let mut seen: Vec<Value> = Vec::new();
    for i in 0..5 {
        let key = format!("k-announced-{i}");
        // Low risk: the order stays with Alice, so it can be reported on again.
        let report =
            json!({"type":"report","order_id":"ORD-R","kind":"traffic_jam","idempotency_key":key});
        reporter.send(&report).await;
        // This report's event (a session in two of its rooms gets a copy from each).
        let announced = watcher
            .find(|m| m["type"] == "emergency_event" && !seen.contains(&m["event_id"]))
            .await;
        seen.push(announced["event_id"].clone());
        let repeat = watcher.request(report.clone()).await;
        assert_eq!(
            repeat["type"], "ack",
            "the answer is stored with the effect, before anyone is told: {repeat}"
        );
        assert_eq!(
            repeat["event"]["event_id"], announced["event_id"],
            "{repeat}"
        );
    }
    assert_eq!(incidents(&app).await.len(), 5);
}
on_both_backends!(a_repeat_sent_the_moment_the_effect_is_announced_gets_the_first_answer);

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

async fn commits_are_synced_before_they_are_acknowledged(db: TestDb) {
    let app = spawn_app(db).await;
    let pool = app.hub.pool.clone();
    let value = actix_web::web::block(move || {
        let mut conn = pool.get().unwrap();
        let sql = match &mut *conn {
            rallypoint::db::DbConnection::Sqlite(_) => {
                "SELECT CAST(synchronous AS TEXT) AS value FROM pragma_synchronous"
            }
            rallypoint::db::DbConnection::Pg(_) => {
                "SELECT setting AS value FROM pg_settings WHERE name = 'synchronous_commit'"
            }
        };
        diesel::sql_query(sql).get_result::<Setting>(&mut *conn)
    })
    .await
    .unwrap()
    .unwrap();
    match app.hub.settings.database.url.starts_with("postgres") {
        // SQLite's FULL is 2.
        false => assert_eq!(value.value, "2"),
        true => assert_eq!(value.value, "on"),
    }
}
on_both_backends!(commits_are_synced_before_they_are_acknowledged);

async fn a_claim_abandoned_by_an_earlier_run_is_taken_over_after_its_lease(db: TestDb) {
    let app = crate::helpers::spawn_app_with(db, |s| s.realtime.idempotency_claim_s = 2).await;
    let (_alice, _bob) = an_order_in_progress(&app, "ORD-A").await;
    // What an engine that stopped between claiming a key and committing its work leaves behind.
    let pool = app.hub.pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().unwrap();
        let now = chrono::Utc::now();
        let at = rallypoint::db::queries::idempotency::Horizon {
            now,
            window_start: now - chrono::Duration::seconds(300),
            claim_stale: now - chrono::Duration::seconds(2),
        };
        rallypoint::db::queries::idempotency::claim(
            &mut conn,
            "dispatcher-1",
            "k-abandoned",
            "an-earlier-run",
            at,
        )
    })
    .await
    .unwrap()
    .unwrap();
    let mut dispatcher = app.ws(&app.dispatcher_token()).await;
    let report = json!({"type":"report","order_id":"ORD-A","kind":"traffic_jam","idempotency_key":"k-abandoned"});
    let early = dispatcher.request(report.clone()).await;
    assert_eq!(early["code"], "conflict", "within its lease: {early}");
    assert!(incidents(&app).await.is_empty());
    actix_rt::time::sleep(std::time::Duration::from_millis(2500)).await;
    let late = dispatcher.request(report.clone()).await;
    assert_eq!(
        late["type"], "ack",
        "past its lease the resend does the work: {late}"
    );
    let again = dispatcher.request(report).await;
    assert_eq!(again["event"], late["event"], "then answers as it did");
    assert_eq!(incidents(&app).await.len(), 1);
}
on_both_backends!(a_claim_abandoned_by_an_earlier_run_is_taken_over_after_its_lease);
