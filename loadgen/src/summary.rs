//! `Summary`: a run's results, as the table printed on stdout and as the JSON of `--json`.
//! Latencies are in milliseconds, sizes in KiB, CPU in seconds over the measured phase (from the
//! first report to the end of the drain). The flood's counts (`--flood`) are its own: flood
//! clients are in none of the other figures.

use crate::cli::Args;
use crate::flood::FloodTally;
use crate::tally::{new_histogram, Tally};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// What the run measured besides the tally.
pub struct Measured {
    pub recipients: u64,
    pub connections_held: usize,
    pub connect_seconds: f64,
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    pub rss_end: Option<u64>,
    pub wall_seconds: f64,
    pub loadgen_cpu_seconds: f64,
    pub server_cpu_seconds: Option<f64>,
    pub dropped: usize,
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The distribution for plots: `[percentile, ms]` at every whole percentile and at 99.9.
    pub percentiles: Vec<(f64, f64)>,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            percentiles: (0..=99)
                .map(f64::from)
                .chain([99.9, 100.0])
                .map(|p| (p, ms(h.value_at_quantile(p / 100.0))))
                .collect(),
        }
    }
}

/// A run's results.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub label: String,
    pub protocol: &'static str,
    pub server: String,
    pub run_id: String,
    pub clients: usize,
    pub drivers: usize,
    pub reporters: usize,
    pub connections_held: usize,
    pub connections_dropped: usize,
    pub connect_seconds: f64,
    pub rate_per_s: f64,
    pub reports_planned: u64,
    pub reports_sent: u64,
    pub reports_refused: u64,
    pub reports_unanswered: u64,
    pub reports_not_sent: u64,
    pub events_expected: u64,
    pub events_received: u64,
    pub events_missing: u64,
    pub duplicates_ignored: u64,
    pub foreign_events: u64,
    /// Latency from a report's send to the last client that got its event (complete reports).
    pub last_recipient: Latency,
    /// Reports whose event did not reach every client.
    pub incomplete_reports: u64,
    /// Latency of every delivery.
    pub all_deliveries: Latency,
    /// Latency from each acked report's send to its `ack` (the Dispatcher's decision, committed).
    pub report_ack: Latency,
    pub deliveries_per_s: f64,
    pub measured_seconds: f64,
    pub server_pid: Option<u32>,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_connect_kib: Option<u64>,
    pub server_rss_end_kib: Option<u64>,
    pub server_rss_per_connection_kib: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub loadgen_cpu_seconds: f64,
    pub loadgen_cpu_percent: f64,
    pub loadgen_file_limit: u64,
    /// `--flood`: its clients, their rate, and what they sent and got back.
    pub flood_clients: usize,
    pub flood_rate_per_s: f64,
    pub flood_sent: u64,
    pub flood_acked: u64,
    pub flood_errors: u64,
    pub flood_errors_by_code: BTreeMap<String, u64>,
    /// Joins answered `recovered: true`, and the room messages their replays brought.
    pub flood_replays: u64,
    pub flood_replayed_messages: u64,
    pub flood_resyncs: u64,
    pub flood_connections_dropped: u64,
}

impl Summary {
    pub fn new(
        args: &Args,
        run_id: &str,
        fd_limit: u64,
        tally: &Tally,
        flood: &FloodTally,
        m: Measured,
    ) -> Summary {
        let flood_errors_by_code = flood.errors();
        let counts = tally.report_counts();
        let events_expected = counts.expecting_events() * m.recipients;
        let events_received = tally.received.load(Relaxed);
        let mut last = new_histogram();
        let mut incomplete = 0;
        let mut first_sent = None::<u64>;
        for n in 0..tally.reports() {
            let Some(sent) = tally.sent_at_us(n) else {
                continue;
            };
            first_sent = Some(first_sent.map_or(sent, |f| f.min(sent)));
            let (received, last_us) = tally.report_outcome(n);
            if received >= m.recipients {
                last.saturating_record(last_us.max(1));
            } else if tally.state(n) != crate::tally::ReportState::Failed {
                incomplete += 1;
            }
        }
        let span_s = first_sent
            .map(|f| tally.last_receipt_us().saturating_sub(f) as f64 / 1e6)
            .unwrap_or(0.0);
        // RSS after connecting was read when every client was ready.
        let per_conn = m.rss_before.zip(m.rss_after).and_then(|(b, a)| {
            (m.recipients > 0).then(|| (a.saturating_sub(b)) as f64 / m.recipients as f64)
        });
        let percent = |cpu: f64| {
            if m.wall_seconds > 0.0 {
                100.0 * cpu / m.wall_seconds
            } else {
                0.0
            }
        };
        Summary {
            label: args
                .label
                .clone()
                .unwrap_or_else(|| args.protocol.name().to_string()),
            protocol: args.protocol.name(),
            server: args.server.clone(),
            run_id: run_id.to_string(),
            clients: args.clients,
            drivers: args.drivers,
            reporters: args.reporter_count(),
            connections_held: m.connections_held,
            connections_dropped: m.dropped,
            connect_seconds: m.connect_seconds,
            rate_per_s: args.rate,
            reports_planned: tally.reports(),
            reports_sent: tally.sent.load(Relaxed),
            reports_refused: counts.refused,
            reports_unanswered: counts.unanswered,
            reports_not_sent: counts.not_sent,
            events_expected,
            events_received,
            events_missing: events_expected.saturating_sub(events_received),
            duplicates_ignored: tally.duplicates.load(Relaxed),
            foreign_events: tally.foreign.load(Relaxed),
            last_recipient: Latency::of(&last),
            incomplete_reports: incomplete,
            all_deliveries: Latency::of(&tally.all_deliveries()),
            report_ack: Latency::of(&tally.report_acks()),
            deliveries_per_s: if span_s > 0.0 {
                events_received as f64 / span_s
            } else {
                0.0
            },
            measured_seconds: m.wall_seconds,
            server_pid: args.server_pid,
            server_rss_before_kib: m.rss_before,
            server_rss_after_connect_kib: m.rss_after,
            server_rss_end_kib: m.rss_end,
            server_rss_per_connection_kib: per_conn,
            server_cpu_seconds: m.server_cpu_seconds,
            server_cpu_percent: m.server_cpu_seconds.map(percent),
            loadgen_cpu_seconds: m.loadgen_cpu_seconds,
            loadgen_cpu_percent: percent(m.loadgen_cpu_seconds),
            loadgen_file_limit: fd_limit,
            flood_clients: args.flood,
            flood_rate_per_s: args.flood_rate,
            flood_sent: flood.sent.load(Relaxed),
            flood_acked: flood.acked.load(Relaxed),
            flood_errors: flood_errors_by_code.values().sum(),
            flood_errors_by_code,
            flood_replays: flood.replays.load(Relaxed),
            flood_replayed_messages: flood.replayed.load(Relaxed),
            flood_resyncs: flood.resyncs.load(Relaxed),
            flood_connections_dropped: flood.dropped.load(Relaxed),
        }
    }

    /// A clean run: every report answered with an ack, every event delivered, no connection lost
    /// (a flood client's either: a run whose flood stopped early measured less than it says).
    pub fn is_clean(&self) -> bool {
        self.events_missing == 0
            && self.flood_connections_dropped == 0
            && self.reports_refused == 0
            && self.reports_unanswered == 0
            && self.reports_not_sent == 0
            && self.connections_dropped == 0
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
        let optk = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} KiB"));
        let lat = |l: &Latency| {
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2} ms (n={})",
                l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.count
            )
        };
        let mut rows: Vec<(&str, String)> = vec![
            (
                "run",
                format!("{} ({}, {})", self.label, self.protocol, self.run_id),
            ),
            ("server", self.server.clone()),
            (
                "clients",
                format!(
                    "{} ({} drivers, {} reporting)",
                    self.clients, self.drivers, self.reporters
                ),
            ),
            (
                "connections held",
                format!(
                    "{} ({} dropped)",
                    self.connections_held, self.connections_dropped
                ),
            ),
            ("connect time", format!("{:.1} s", self.connect_seconds)),
            (
                "reports sent",
                format!(
                    "{} of {} at {}/s ({} refused, {} unanswered, {} not sent)",
                    self.reports_sent,
                    self.reports_planned,
                    self.rate_per_s,
                    self.reports_refused,
                    self.reports_unanswered,
                    self.reports_not_sent
                ),
            ),
            ("events expected", self.events_expected.to_string()),
            (
                "events received",
                format!(
                    "{} ({} duplicates ignored)",
                    self.events_received, self.duplicates_ignored
                ),
            ),
            ("events missing", self.events_missing.to_string()),
            ("last recipient p50/p95/p99/max", lat(&self.last_recipient)),
            ("all deliveries p50/p95/p99/max", lat(&self.all_deliveries)),
            ("report ack p50/p95/p99/max", lat(&self.report_ack)),
            (
                "deliveries per second",
                format!("{:.0}", self.deliveries_per_s),
            ),
            (
                "server RSS before / after connect",
                format!(
                    "{} / {}",
                    optk(self.server_rss_before_kib),
                    optk(self.server_rss_after_connect_kib)
                ),
            ),
            (
                "server RSS per connection",
                opt(self.server_rss_per_connection_kib, " KiB"),
            ),
            (
                "server CPU",
                format!(
                    "{} s ({})",
                    self.server_cpu_seconds
                        .map_or("-".into(), |s| format!("{s:.2}")),
                    opt(self.server_cpu_percent, " % of a core"),
                ),
            ),
            (
                "loadgen CPU",
                format!(
                    "{:.2} s ({:.1} % of a core)",
                    self.loadgen_cpu_seconds, self.loadgen_cpu_percent
                ),
            ),
            ("measured over", format!("{:.1} s", self.measured_seconds)),
        ];
        if self.flood_clients > 0 {
            rows.extend(self.flood_rows());
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }

    /// The flood's rows of the table.
    fn flood_rows(&self) -> Vec<(&'static str, String)> {
        let decliners = self.flood_clients.div_ceil(2);
        let by_code: Vec<String> = self
            .flood_errors_by_code
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        vec![
            (
                "flood",
                format!(
                    "{} clients at {}/s each ({decliners} declining unknown ids, {} leave/join dispatch)",
                    self.flood_clients,
                    self.flood_rate_per_s,
                    self.flood_clients - decliners
                ),
            ),
            (
                "flood messages sent",
                format!(
                    "{} ({} acked, {} errors{}{})",
                    self.flood_sent,
                    self.flood_acked,
                    self.flood_errors,
                    if by_code.is_empty() { "" } else { ": " },
                    by_code.join(", ")
                ),
            ),
            (
                "flood replays",
                format!(
                    "{} joins replayed {} messages ({} resync)",
                    self.flood_replays, self.flood_replayed_messages, self.flood_resyncs
                ),
            ),
            (
                "flood connections dropped",
                self.flood_connections_dropped.to_string(),
            ),
        ]
    }
}
