//! Metrics for `GET /metrics` (Prometheus text).
//!
//! Code records through the `metrics` facade with the helpers below, so every metric name and
//! label lives in this one file. The recorder is process-wide: it is installed by the first
//! engine that starts and shared by any later one (tests start many in one process).
//! `docs/PROTOCOL.md` §13 lists every metric.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Bucket bounds, in seconds, of the two latency histograms: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histogram samples are folded into buckets between scrapes, bounding their memory.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process. Answers `None` when another recorder was installed
/// first (an embedding application's own): then `/metrics` says so instead of rendering.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || loop {
                            std::thread::sleep(UPKEEP);
                            upkeep.run_upkeep();
                        });
                    if let Err(e) = spawned {
                        log::warn!("metrics upkeep thread not started: {e}");
                    }
                    Some(handle)
                }
                Err(e) => {
                    log::warn!("metrics recorder not installed: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// What one node counts itself (the recorder is shared by every engine of the process, so these
/// are written straight into the text, exact for the node asked).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeGauges {
    pub connections: usize,
    /// Room actors running.
    pub room_actors: usize,
    /// Rooms asleep (members kept by the registry, no actor).
    pub rooms_asleep: usize,
    /// Join replays being read outside their room's turn.
    pub room_replays_reading: usize,
}

/// The Prometheus text of every metric, or `None` when the recorder could not be installed.
pub fn render(node: NodeGauges) -> Option<String> {
    use std::fmt::Write;
    let handle = install()?;
    gauge!("rallypoint_connections").set(node.connections as f64);
    let mut text = handle.render();
    let _ = write!(
        text,
        "# HELP rallypoint_room_actors Room actors running on this node (idle ones stop after realtime.room_idle_s, quiet ones sleep after realtime.room_sleep_ms)\n\
         # TYPE rallypoint_room_actors gauge\n\
         rallypoint_room_actors {}\n\
         # HELP rallypoint_rooms_asleep Rooms with members asleep on this node: no actor until their next message\n\
         # TYPE rallypoint_rooms_asleep gauge\n\
         rallypoint_rooms_asleep {}\n\
         # HELP rallypoint_room_replays_reading Join replays being read from the database on this node\n\
         # TYPE rallypoint_room_replays_reading gauge\n\
         rallypoint_room_replays_reading {}\n",
        node.room_actors, node.rooms_asleep, node.room_replays_reading
    );
    Some(text)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "rallypoint_connections",
        "Open WebSocket connections on this node"
    );
    describe_gauge!("rallypoint_sessions", "Open WebSocket sessions, by role");
    describe_counter!(
        "rallypoint_connections_refused_total",
        "WebSocket upgrades refused, by reason (unauthorized, token_expired, max_connections, shutting_down)"
    );
    describe_counter!(
        "rallypoint_messages_in_total",
        "Client messages received, by type (`invalid` when the frame did not decode)"
    );
    describe_counter!(
        "rallypoint_messages_out_total",
        "Messages written to sessions, by type (`replay` for resumed history)"
    );
    describe_counter!(
        "rallypoint_frames_refused_total",
        "Client frames answered with an error or a close, by reason (the error code, too_large, protocol)"
    );
    describe_counter!(
        "rallypoint_sessions_closed_total",
        "Sessions closed, by close code (`client` when the peer closed or vanished)"
    );
    describe_counter!(
        "rallypoint_slow_consumers_total",
        "Sessions told to close with 4008 because their outbound queue was full"
    );
    describe_counter!(
        "rallypoint_connections_cut_off_total",
        "Connections shut down because their session did not close in time (a peer not reading)"
    );
    describe_counter!(
        "rallypoint_room_seq_read_failures_total",
        "A starting room's reads of its seq that failed (each is retried with a backoff)"
    );
    describe_counter!(
        "rallypoint_room_events_published_total",
        "Durable room messages published, by room kind (dispatch, fleet, driver, order)"
    );
    describe_counter!(
        "rallypoint_decisions_total",
        "Emergency decisions, by action_taken"
    );
    describe_counter!(
        "rallypoint_risk_calls_total",
        "Calls to the external risk service, by outcome (ok, timeout, error)"
    );
    describe_histogram!(
        "rallypoint_decision_seconds",
        Unit::Seconds,
        "From a report's arrival at the Dispatcher to its decision (risk scoring included)"
    );
    describe_counter!(
        "rallypoint_batches_total",
        "Batches of reports decided, by solver (nearest, exact, greedy_max_batch, greedy_budget)"
    );
    describe_histogram!(
        "rallypoint_batch_decision_seconds",
        Unit::Seconds,
        "Time to decide one fleet's batch of reports and waiting orders (the solver, not the commit)"
    );
    describe_histogram!(
        "rallypoint_report_to_broadcast_seconds",
        Unit::Seconds,
        "From a report's arrival at the Dispatcher to its messages handed to every session"
    );
}

/// Whether this node's cluster bus is connected (1) or not (0); absent on a node alone.
pub fn cluster_state(up: bool) {
    gauge!("rallypoint_cluster_bus_up").set(if up { 1.0 } else { 0.0 });
    if !up {
        counter!("rallypoint_cluster_bus_lost_total").increment(1);
    }
}

/// A message the bus could not publish (the other nodes read it from the database).
pub fn cluster_publish_failed() {
    counter!("rallypoint_cluster_publish_failed_total").increment(1);
}

pub fn session_opened(role: &'static str) {
    gauge!("rallypoint_sessions", "role" => role).increment(1.0);
}

pub fn session_closed(role: &'static str, code: Option<u16>) {
    gauge!("rallypoint_sessions", "role" => role).decrement(1.0);
    let code = code.map_or_else(|| "client".to_string(), |c| c.to_string());
    counter!("rallypoint_sessions_closed_total", "code" => code).increment(1);
}

pub fn room_seq_read_failed() {
    counter!("rallypoint_room_seq_read_failures_total").increment(1);
}

pub fn slow_consumer() {
    counter!("rallypoint_slow_consumers_total").increment(1);
}

pub fn connection_cut_off() {
    counter!("rallypoint_connections_cut_off_total").increment(1);
}

pub fn connection_refused(reason: &'static str) {
    counter!("rallypoint_connections_refused_total", "reason" => reason).increment(1);
}

pub fn message_in(kind: &'static str) {
    counter!("rallypoint_messages_in_total", "type" => kind).increment(1);
}

pub fn messages_out(kind: &'static str, n: usize) {
    if n > 0 {
        counter!("rallypoint_messages_out_total", "type" => kind).increment(n as u64);
    }
}

pub fn frame_refused(reason: &'static str) {
    counter!("rallypoint_frames_refused_total", "reason" => reason).increment(1);
}

pub fn room_event_published(room_kind: &'static str) {
    counter!("rallypoint_room_events_published_total", "room" => room_kind).increment(1);
}

pub fn decision(action: &'static str, elapsed: Duration) {
    counter!("rallypoint_decisions_total", "action_taken" => action).increment(1);
    histogram!("rallypoint_decision_seconds").record(elapsed.as_secs_f64());
}

/// One batch decided (the solver's work only, not its commit).
pub fn batch_decision(solver: &'static str, elapsed: Duration) {
    counter!("rallypoint_batches_total", "solver" => solver).increment(1);
    histogram!("rallypoint_batch_decision_seconds").record(elapsed.as_secs_f64());
}

pub fn risk_call(outcome: &'static str) {
    counter!("rallypoint_risk_calls_total", "outcome" => outcome).increment(1);
}

pub fn report_broadcast(elapsed: Duration) {
    histogram!("rallypoint_report_to_broadcast_seconds").record(elapsed.as_secs_f64());
}
