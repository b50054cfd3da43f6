//! The command line: every flag with its default (docs/LOADGEN.md lists them too), and the checks
//! a flag's type alone cannot make.

use crate::error::LoadgenError;
use clap::{Parser, ValueEnum};

/// The wire protocol the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Rallypoint's JSON protocol at `/ws` (also what the bare floor in bench/floor speaks).
    Rallypoint,
    /// Socket.IO 4 (Engine.IO v4 over the websocket transport) at `/socket.io/`, as the Node
    /// baseline in bench/socketio speaks it.
    Socketio,
    /// Rallypoint's protocol over its own Socket.IO transport at `/socket.io/` (SPEC 11): the
    /// `rallypoint` run (tokens, admin, orders, reports), in Socket.IO's framing.
    RallypointSocketio,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rallypoint => "rallypoint",
            Protocol::Socketio => "socketio",
            Protocol::RallypointSocketio => "rallypoint-socketio",
        }
    }

    /// Whether the server is Rallypoint's engine (or the floor): tokens the loadgen signs, an
    /// admin among the clients, orders over REST.
    pub fn is_engine(self) -> bool {
        matches!(self, Protocol::Rallypoint | Protocol::RallypointSocketio)
    }
}

/// Opens WebSocket clients against a dispatch server, sends emergency reports at a set rate and
/// measures the time from each report's send to each client's receipt of its `emergency_event`.
#[derive(Debug, Parser)]
#[command(name = "rallypoint-loadgen", version)]
pub struct Args {
    /// Server address, host:port.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub server: String,

    /// Protocol the clients speak.
    #[arg(long, value_enum, default_value_t = Protocol::Rallypoint)]
    pub protocol: Protocol,

    /// WebSocket clients in all: drivers, observers and (rallypoint) one admin.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,

    /// How many of the clients are drivers (they go online with a location).
    #[arg(long, default_value_t = 10)]
    pub drivers: usize,

    /// How many drivers send the reports, in turn (default: every driver).
    #[arg(long)]
    pub reporters: Option<usize>,

    /// Reports per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// Seconds of reporting (ignored when --reports is given).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Number of reports to send, instead of rate × duration.
    #[arg(long)]
    pub reports: Option<u64>,

    /// Idle run: hold the connections this many seconds once all are ready, then read the
    /// server's RSS (per connection) and stop; no orders, no reports.
    #[arg(long)]
    pub idle: Option<f64>,

    /// Seconds to wait after the last report for events still on their way.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,

    /// Flood clients that attack while the run measures (rallypoint; not measured): half
    /// (rounded up) drivers sending `decline`s of unknown order ids, the others dispatchers
    /// looping `leave dispatch` / `join dispatch since=…`, each replaying the kept history.
    #[arg(long, default_value_t = 0)]
    pub flood: usize,

    /// Messages per second each flood client sends: just under the server's per-session rate
    /// limit (limits.client_msgs_per_sec, 50), so that it is never closed.
    #[arg(long, default_value_t = 45.0)]
    pub flood_rate: f64,

    /// Incident kind of the reports. The default scores low enough (with low-priority orders a
    /// kilometre long) that the decision is MAINTAIN and the reporter keeps its order.
    #[arg(long, default_value = "traffic_jam")]
    pub kind: String,

    /// Fleet of every client's token (rallypoint).
    #[arg(long, default_value = "default")]
    pub fleet: String,

    /// HS256 secret the tokens are signed with (rallypoint; default: the one the server
    /// generated into `<--data-dir>/secret`).
    #[arg(long, env = "RALLYPOINT_AUTH__SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// The server's `server.data_dir`, whose `secret` file signs the tokens when no --secret is
    /// given (relative to the working directory, as the server's is).
    #[arg(long, env = "RALLYPOINT_SERVER__DATA_DIR", default_value = "data")]
    pub data_dir: String,

    /// Skip the REST step that gives the reporters orders (for a server without the REST API,
    /// such as bench/floor): reports name a made-up order.
    #[arg(long)]
    pub no_orders: bool,

    /// Source addresses 127.0.0.1 .. 127.0.0.K the clients bind to in turn, so that the run is
    /// never short of ephemeral ports; 0 binds none (the kernel chooses).
    #[arg(long, default_value_t = 16)]
    pub source_addrs: u8,

    /// Connections being opened at once. Kept below 128, the listen backlog a server bound with
    /// std's TcpListener gets: a burst past it loses SYNs, retried a second later.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,

    /// Seconds for every client to connect and be ready.
    #[arg(long, default_value_t = 120.0)]
    pub connect_timeout: f64,

    /// PID of the server process, to report its RSS and CPU from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<String>,

    /// A name for this run in the table and the JSON (default: the protocol).
    #[arg(long)]
    pub label: Option<String>,

    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Rallypoint lets a session send 50 messages a second (limits.client_msgs_per_sec); a reporter
/// is kept well below it.
const MAX_REPORTS_PER_REPORTER_PER_SEC: f64 = 40.0;

impl Args {
    /// The number of reports the run sends.
    pub fn total_reports(&self) -> u64 {
        if self.idle.is_some() {
            return 0;
        }
        match self.reports {
            Some(n) => n,
            None => (self.rate * self.duration).round() as u64,
        }
    }

    /// The number of drivers that report.
    pub fn reporter_count(&self) -> usize {
        self.reporters.unwrap_or(self.drivers)
    }

    /// The secret for tokens: the flag (or RALLYPOINT_AUTH__SECRET), else the file the server
    /// generated in `--data-dir`. An empty flag counts as none, as an empty `auth.secret` does.
    pub fn token_secret(&self) -> Result<String, LoadgenError> {
        if let Some(secret) = self.secret.as_ref().filter(|s| !s.is_empty()) {
            return Ok(secret.clone());
        }
        let path = rallypoint::secret::path_in(std::path::Path::new(&self.data_dir));
        rallypoint::secret::read(&path).map_err(|e| {
            LoadgenError::Args(format!(
                "no --secret, and {e}; start the server first (it writes that file) from the same \
                 folder, or pass --data-dir or --secret"
            ))
        })
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let bad = |m: String| Err(LoadgenError::Args(m));
        if self.clients == 0 {
            return bad("--clients must be at least 1".into());
        }
        let staff = usize::from(self.protocol.is_engine());
        if self.drivers == 0 || self.drivers + staff > self.clients {
            return bad(format!(
                "--drivers must be between 1 and {} (the clients{})",
                self.clients - staff,
                if staff == 1 { " less the admin" } else { "" }
            ));
        }
        let reporters = self.reporter_count();
        if reporters == 0 || reporters > self.drivers {
            return bad(format!(
                "--reporters must be between 1 and --drivers ({})",
                self.drivers
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("--rate must be a positive number of reports per second".into());
        }
        if self.rate / reporters as f64 > MAX_REPORTS_PER_REPORTER_PER_SEC {
            return bad(format!(
                "--rate {} over {reporters} reporters is more than {MAX_REPORTS_PER_REPORTER_PER_SEC} \
                 reports per second each (the server's per-session rate limit is 50): raise --reporters",
                self.rate
            ));
        }
        if self.reports.is_none() && !(self.duration.is_finite() && self.duration > 0.0) {
            return bad("--duration must be a positive number of seconds".into());
        }
        if let Some(idle) = self.idle {
            if !(idle.is_finite() && idle >= 0.0) {
                return bad("--idle must be 0 or more seconds".into());
            }
        } else if self.total_reports() == 0 {
            return bad(
                "the run would send no report (for an idle run, pass --idle SECONDS)".into(),
            );
        }
        if self.flood > 0 {
            if self.protocol != Protocol::Rallypoint || self.idle.is_some() {
                return bad(
                    "--flood needs a rallypoint run with reports (--protocol rallypoint, no --idle)"
                        .into(),
                );
            }
            if !(self.flood_rate.is_finite() && self.flood_rate > 0.0) {
                return bad("--flood-rate must be a positive number of messages per second".into());
            }
        }
        if !(self.drain.is_finite() && self.drain >= 0.0) {
            return bad("--drain must be 0 or more seconds".into());
        }
        if !(self.connect_timeout.is_finite() && self.connect_timeout > 0.0) {
            return bad("--connect-timeout must be a positive number of seconds".into());
        }
        if self.connect_concurrency == 0 {
            return bad("--connect-concurrency must be at least 1".into());
        }
        if self.threads == Some(0) {
            return bad("--threads must be at least 1".into());
        }
        Ok(())
    }
}
