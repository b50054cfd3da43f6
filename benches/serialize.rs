//! Serializing one `emergency_event` room message for N recipients: once, with its envelope, into
//! a `ByteString` whose clones every recipient shares (what the room does), against serializing
//! it again for each recipient (what a per-session encoder would do).
//!
//! Each variant ends with what a room hands its members: one `Deliver::Frame` per recipient.

use bytestring::ByteString;
use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rallypoint::actors::Deliver;
use rallypoint::protocol::server::{self, ServerMsg};
use rallypoint::protocol::{
    Action, DriverId, EmergencyEvent, EventId, IncidentKind, OrderId, RiskSource,
};
use std::time::Duration;

const ROOM: &str = "fleet:default";
const MESSAGE_ID: &str = "6f1c2a8e-0d4b-4c1e-9a57-3b2f0e7d5c11";

/// A realistic `emergency_event`: a reassignment with a comment.
fn event() -> ServerMsg {
    ServerMsg::EmergencyEvent(EmergencyEvent {
        event_id: EventId("3f8e9a4c-51d2-4b7a-8c06-2e9d1f7a0b43".into()),
        order_id: OrderId::from("ORD-1001"),
        driver_id: Some(DriverId::from("DRV-001")),
        kind: IncidentKind::VehicleBreakdown,
        reason: "vehicle breakdown".into(),
        comment: Some("flat tyre on the ring road, waiting for the tow truck".into()),
        risk_score: 0.87,
        risk_source: RiskSource::Model,
        action_taken: Action::ReassignmentInitiated,
        new_driver_id: Some(DriverId::from("DRV-002")),
        reported_by: "driver:DRV-001".into(),
        timestamp: Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .unwrap_or_default(),
    })
}

/// Once for all: one envelope, one `ByteString`, a refcount bump per recipient.
fn once(msg: &ServerMsg, recipients: usize) -> Vec<Deliver> {
    let text: ByteString = server::envelope(msg, ROOM, Some(42), MESSAGE_ID).into();
    (0..recipients)
        .map(|_| Deliver::Frame(text.clone()))
        .collect()
}

/// Per recipient: the envelope serialized again for every one.
fn per_recipient(msg: &ServerMsg, recipients: usize) -> Vec<Deliver> {
    (0..recipients)
        .map(|_| Deliver::Frame(server::envelope(msg, ROOM, Some(42), MESSAGE_ID).into()))
        .collect()
}

fn bench_serialize(c: &mut Criterion) {
    let msg = event();
    let mut group = c.benchmark_group("serialize");
    for recipients in [1usize, 1_000, 10_000] {
        group.throughput(Throughput::Elements(recipients as u64));
        group.bench_with_input(
            BenchmarkId::new("once_shared", recipients),
            &recipients,
            |b, &n| b.iter(|| black_box(once(&msg, n))),
        );
        group.bench_with_input(
            BenchmarkId::new("per_recipient", recipients),
            &recipients,
            |b, &n| b.iter(|| black_box(per_recipient(&msg, n))),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_serialize
}
criterion_main!(benches);
