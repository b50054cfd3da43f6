//! What `synchronous = FULL` costs a report on SQLite (SPEC 4: an acknowledged change survives a
//! power cut). Each iteration is the commit of one `MAINTAIN` report, as the Dispatcher makes it:
//! the incident, the `emergency_event` to `fleet:default` and `dispatch` (one publication, two
//! seqs), and the answer under the request's idempotency key, in one transaction through
//! `commit::apply`, on a file in the temp folder. The same commit is timed with `NORMAL` (what the
//! engine ran before v1.1) and `FULL` (the default now).

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use rallypoint::db::models::IncidentRow;
use rallypoint::db::queries::commit::{self, Change, Publication};
use rallypoint::db::queries::idempotency::StoredAnswer;
use rallypoint::db::{self, DbPool};
use rallypoint::protocol::server::ServerMsg;
use rallypoint::protocol::{
    Action, DriverId, EmergencyEvent, EventId, IncidentKind, OrderId, RiskSource, Room,
};
use std::time::Duration;

/// A migrated SQLite database in `dir` whose connections use `PRAGMA synchronous = sync`.
fn pool(dir: &std::path::Path, sync: &str) -> DbPool {
    let mut settings = rallypoint::config::Settings::load(None)
        .expect("the default settings")
        .database;
    settings.url = dir.join(format!("{sync}.db")).display().to_string();
    settings.pool_size = 1;
    settings.sqlite_synchronous = sync.into();
    let pool = db::connect(&settings).expect("a pool");
    db::migrate(&pool).expect("migrations");
    pool
}

/// The commit of report `n`: a new incident, its announcement and its stored answer.
fn report(n: u64) -> Change {
    let event = EmergencyEvent {
        event_id: EventId(format!("bench-event-{n}")),
        order_id: OrderId::from("ORD-1001"),
        driver_id: Some(DriverId::from("DRV-001")),
        kind: IncidentKind::TrafficJam,
        reason: "Traffic jam".into(),
        comment: Some(format!("bench {n}")),
        risk_score: 0.31,
        risk_source: RiskSource::Model,
        action_taken: Action::Maintain,
        new_driver_id: None,
        reported_by: "drv-001".into(),
        timestamp: Utc::now(),
    };
    let answer = StoredAnswer {
        sub: "drv-001".into(),
        key: format!("bench-key-{n}"),
        response: serde_json::json!({"ok": &event}).to_string(),
    };
    Change {
        incident: Some(IncidentRow::from(&event)),
        messages: vec![Publication::to_all(
            vec![Room::Fleet("default".into()), Room::Dispatch],
            ServerMsg::EmergencyEvent(event),
        )],
        answer: Some(answer),
        ..Default::default()
    }
}

fn commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut group = c.benchmark_group("commit");
    group
        .sample_size(60)
        .measurement_time(Duration::from_secs(15));
    for sync in ["normal", "full"] {
        let pool = pool(dir.path(), sync);
        let mut conn = pool.get().expect("a connection");
        let mut n = 0u64;
        group.bench_function(format!("report_sqlite_{sync}"), |b| {
            b.iter(|| {
                n += 1;
                let published = commit::apply(&mut conn, report(n), Utc::now()).expect("commits");
                assert_eq!(published.len(), 2);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
