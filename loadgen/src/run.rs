//! One run, phase by phase: connect every client and wait until all are ready, give the reporters
//! orders (Rallypoint's engine, unless `--no-orders`), start the flood clients (`--flood`, flood.rs) and
//! wait until they are set up, send reports at the set rate, stop the flood, wait for the events
//! still on their way, then stop the clients and sum up. The scheduler is this task; the clients
//! are tasks of their own (`client.rs`).

use crate::cli::Args;
use crate::client::{self, ClientSpec, Command, Notice, Role, Shared};
use crate::error::LoadgenError;
use crate::flood::{self, FloodTally};
use crate::net::Target;
use crate::rallypoint::{self, Signer};
use crate::summary::{Measured, Summary};
use crate::tally::Tally;
use crate::{http, sys};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::sleep_until;

/// How often the drain checks whether everything has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// How long stopped clients get to close their sockets.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Dropped connections reported one by one; the rest are only counted.
const DROPS_SHOWN: usize = 10;

/// What the scheduler keeps about the reporters and the clients' news.
struct Scheduler {
    /// Per reporting driver: its command channel and the order it holds.
    reporters: Vec<(mpsc::UnboundedSender<Command>, Option<Arc<str>>)>,
    cursor: usize,
    dropped: usize,
    notices: mpsc::UnboundedReceiver<Notice>,
    notice_tx: mpsc::UnboundedSender<Notice>,
    rest: Option<Rest>,
}

/// What giving an order over REST needs.
#[derive(Clone)]
struct Rest {
    target: Target,
    token: String,
    fleet: String,
    run_id: String,
}

/// Runs the whole load; answers the measurements.
pub async fn run(args: &Args, fd_limit: u64) -> Result<Summary, LoadgenError> {
    let target = Target::resolve(&args.server, args.source_addrs).await?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let total = args.total_reports();
    let tally = Arc::new(Tally::new(total));
    let (notice_tx, notices) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        protocol: args.protocol,
        target: target.clone(),
        run_id: run_id.clone(),
        fleet: args.fleet.clone(),
        kind: args.kind.clone(),
        tally: tally.clone(),
        connect_gate: Semaphore::new(args.connect_concurrency),
        ready: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        notices: notice_tx.clone(),
    });
    let signer = if args.protocol.is_engine() {
        Some(Signer::new(&args.token_secret()?, &args.fleet))
    } else {
        None
    };
    let specs = client_specs(args, signer.as_ref(), &run_id)?;
    let flood_specs = match &signer {
        Some(signer) => flood::specs(args.flood, args.clients, &run_id, signer)?,
        None => Vec::new(),
    };
    let flood = Arc::new(FloodTally::new(
        target.clone(),
        args.flood_rate,
        args.connect_concurrency,
    ));
    let rss_before = args.server_pid.and_then(sys::rss_kib);

    eprintln!(
        "loadgen: run {run_id}: {} {} clients ({} drivers, {} reporting) to {}, {} reports at {}/s",
        args.clients,
        args.protocol.name(),
        args.drivers,
        args.reporter_count(),
        target.server,
        total,
        args.rate
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (flood_stop_tx, flood_stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut reporters = Vec::new();
    for spec in specs {
        let commands = match spec.role {
            Role::Driver(n) if n < args.reporter_count() => {
                let (tx, rx) = mpsc::unbounded_channel();
                reporters.push((tx, None));
                Some(rx)
            }
            _ => None,
        };
        tasks.spawn(client::run(shared.clone(), spec, commands, stop_rx.clone()));
    }
    let progress = tokio::spawn(progress(shared.clone(), flood.clone(), args.clients, total));
    let rest = match (args.no_orders, &signer) {
        (false, Some(signer)) => Some(Rest {
            target: target.clone(),
            token: signer.admin_token(&run_id)?,
            fleet: args.fleet.clone(),
            run_id: run_id.clone(),
        }),
        _ => None,
    };
    let mut scheduler = Scheduler {
        reporters,
        cursor: 0,
        dropped: 0,
        notices,
        notice_tx,
        rest,
    };

    let outcome = async {
        let connect_started = Instant::now();
        scheduler.wait_ready(&shared, args).await?;
        let connect_seconds = connect_started.elapsed().as_secs_f64();
        if let Some(idle) = args.idle {
            // The server settles (set-up answers, presence) before its RSS is read.
            eprintln!(
                "loadgen: idle: holding {} connections for {idle} s",
                args.clients
            );
            tokio::time::sleep(Duration::from_secs_f64(idle)).await;
        }
        let rss_after = args.server_pid.and_then(sys::rss_kib);
        if args.idle.is_none() {
            scheduler.give_orders(args).await?;
        }
        if !flood_specs.is_empty() {
            eprintln!(
                "loadgen: flood: {} clients at {}/s each",
                flood_specs.len(),
                args.flood_rate
            );
            for spec in flood_specs {
                let (failed, flood_stop) = (scheduler.notice_tx.clone(), flood_stop_rx.clone());
                tasks.spawn(flood::run(
                    flood.clone(),
                    spec,
                    failed,
                    flood_stop,
                    stop_rx.clone(),
                ));
            }
            scheduler.wait_flood(&flood, args).await?;
        }
        let recipients = shared.ready.load(Relaxed) as u64;
        let window = Window::open(args.server_pid);
        scheduler.send_reports(&tally, args).await;
        let _ = flood_stop_tx.send(true);
        scheduler.drain(&tally, recipients, args.drain).await;
        let window = window.close(args.server_pid);
        let connections_held = shared.connected.load(Relaxed);
        Ok::<_, LoadgenError>(Measured {
            recipients,
            connections_held,
            connect_seconds,
            rss_before,
            rss_after,
            rss_end: args.server_pid.and_then(sys::rss_kib),
            wall_seconds: window.wall,
            loadgen_cpu_seconds: window.own_cpu,
            server_cpu_seconds: window.server_cpu,
            dropped: scheduler.dropped,
        })
    }
    .await;

    let _ = stop_tx.send(true);
    let closing = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
        tasks.abort_all();
    }
    progress.abort();
    let measured = outcome?;
    Ok(Summary::new(
        args, &run_id, fd_limit, &tally, &flood, measured,
    ))
}

/// Client 0 is the admin (rallypoint), then the drivers, then the observers.
fn client_specs(
    args: &Args,
    signer: Option<&Signer>,
    run_id: &str,
) -> Result<Vec<ClientSpec>, LoadgenError> {
    let admins = usize::from(args.protocol.is_engine());
    (0..args.clients)
        .map(|index| {
            let role = if index < admins {
                Role::Admin
            } else if index < admins + args.drivers {
                Role::Driver(index - admins)
            } else {
                Role::Observer
            };
            let token = signer.map(|s| s.token(role, index, run_id)).transpose()?;
            Ok(ClientSpec { index, role, token })
        })
        .collect()
}

impl Scheduler {
    /// Waits until every client is ready; the first client that fails ends the run.
    async fn wait_ready(&mut self, shared: &Shared, args: &Args) -> Result<(), LoadgenError> {
        self.wait_for(&shared.ready, args.clients, args.connect_timeout)
            .await
    }

    /// Waits until every flood client is set up; the first that fails ends the run.
    async fn wait_flood(&mut self, flood: &FloodTally, args: &Args) -> Result<(), LoadgenError> {
        self.wait_for(&flood.ready, args.flood, args.connect_timeout)
            .await
    }

    /// Waits until `ready` reaches `wanted`, handling notices meanwhile; a failed client or
    /// `timeout` seconds end the run.
    async fn wait_for(
        &mut self,
        ready: &AtomicUsize,
        wanted: usize,
        timeout: f64,
    ) -> Result<(), LoadgenError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            if ready.load(Relaxed) == wanted {
                return Ok(());
            }
            tokio::select! {
                _ = tick.tick() => {}
                Some(notice) = self.notices.recv() => {
                    if let Notice::Failed(e) = notice {
                        return Err(e);
                    }
                    self.on_notice(notice);
                }
                _ = sleep_until(deadline) => {
                    return Err(LoadgenError::NotReady {
                        ready: ready.load(Relaxed),
                        wanted,
                        secs: timeout as u64,
                    });
                }
            }
        }
    }

    /// Gives each reporter an order: over REST on our server, a made-up id elsewhere.
    async fn give_orders(&mut self, args: &Args) -> Result<(), LoadgenError> {
        for driver in 0..self.reporters.len() {
            let order_id: Arc<str> = match &self.rest {
                Some(rest) => give_order(rest, driver).await?,
                None if args.protocol.is_engine() => format!("floor-{driver}").into(),
                None => "".into(),
            };
            self.reporters[driver].1 = Some(order_id);
        }
        Ok(())
    }

    /// Sends the reports, one every 1/rate seconds, in turn over the reporters that hold an
    /// order. A report no reporter can send is counted failed.
    async fn send_reports(&mut self, tally: &Tally, args: &Args) {
        let start = tokio::time::Instant::now();
        let interval = Duration::from_secs_f64(1.0 / args.rate);
        for n in 0..tally.reports() {
            let due = start + interval.mul_f64(n as f64);
            loop {
                tokio::select! {
                    _ = sleep_until(due) => break,
                    Some(notice) = self.notices.recv() => self.on_notice(notice),
                }
            }
            match self.next_reporter() {
                Some((tx, order_id)) => {
                    tally.mark_handed(n);
                    if tx.send(Command::Report { n, order_id }).is_err() {
                        tally.mark_answered(n, false);
                    }
                }
                None => {
                    eprintln!("loadgen: report {n} not sent: no reporter holds an order");
                    tally.mark_answered(n, false);
                }
            }
        }
    }

    /// The next reporter in turn that holds an order.
    fn next_reporter(&mut self) -> Option<(mpsc::UnboundedSender<Command>, Arc<str>)> {
        let count = self.reporters.len();
        for _ in 0..count {
            let i = self.cursor % count;
            self.cursor += 1;
            if let (tx, Some(order)) = &self.reporters[i] {
                return Some((tx.clone(), order.clone()));
            }
        }
        None
    }

    /// Waits until every report is answered and every expected event has arrived, or `drain`
    /// seconds have passed.
    async fn drain(&mut self, tally: &Tally, recipients: u64, drain: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(drain);
        let mut tick = tokio::time::interval(DRAIN_POLL);
        loop {
            let counts = tally.report_counts();
            let expected = counts.expecting_events() * recipients;
            if counts.unanswered == 0 && tally.received.load(Relaxed) >= expected {
                return;
            }
            tokio::select! {
                _ = tick.tick() => {}
                Some(notice) = self.notices.recv() => self.on_notice(notice),
                _ = sleep_until(deadline) => return,
            }
        }
    }

    fn on_notice(&mut self, notice: Notice) {
        match notice {
            Notice::Failed(e) | Notice::Dropped(e) => {
                self.dropped += 1;
                if self.dropped <= DROPS_SHOWN {
                    eprintln!("loadgen: connection lost: {e}");
                }
            }
            Notice::OrderLost { driver } => {
                if let Some(slot) = self.reporters.get_mut(driver) {
                    slot.1 = None;
                }
                if let Some(rest) = self.rest.clone() {
                    let tx = self.notice_tx.clone();
                    tokio::spawn(async move {
                        match give_order(&rest, driver).await {
                            Ok(order_id) => {
                                let _ = tx.send(Notice::OrderGiven { driver, order_id });
                            }
                            Err(e) => eprintln!("loadgen: driver {driver} gets no new order: {e}"),
                        }
                    });
                }
            }
            Notice::OrderGiven { driver, order_id } => {
                if let Some(slot) = self.reporters.get_mut(driver) {
                    slot.1 = Some(order_id);
                }
            }
        }
    }
}

/// `POST /api/v1/orders` for driver `driver`: a low-priority order from where the driver is to
/// a kilometre north, so that a `traffic_jam` report on it scores well below the threshold.
async fn give_order(rest: &Rest, driver: usize) -> Result<Arc<str>, LoadgenError> {
    let (lat, lng) = client::driver_location(driver);
    let body = json!({
        "pickup": {"lat": lat, "lng": lng},
        "dropoff": {"lat": lat + 0.009, "lng": lng},
        "priority": "low",
        "fleet": rest.fleet,
        "driver_id": rallypoint::driver_id(&rest.run_id, driver),
    });
    let path = "/api/v1/orders";
    let (status, answer) = http::post_json(&rest.target, path, &rest.token, &body).await?;
    match (status, answer["id"].as_str()) {
        (201, Some(id)) => Ok(id.into()),
        _ => Err(LoadgenError::Http {
            method: "POST",
            path: path.into(),
            detail: format!("status {status}: {answer}"),
        }),
    }
}

/// Wall and CPU time over the measured phase (reports and drain).
struct Window {
    started: Instant,
    own_cpu: f64,
    server_cpu: Option<f64>,
}

/// What a closed window measured.
struct Closed {
    wall: f64,
    own_cpu: f64,
    server_cpu: Option<f64>,
}

impl Window {
    fn open(server_pid: Option<u32>) -> Window {
        Window {
            started: Instant::now(),
            own_cpu: sys::own_cpu_seconds(),
            server_cpu: server_pid.and_then(sys::process_cpu_seconds),
        }
    }

    fn close(self, server_pid: Option<u32>) -> Closed {
        let server_now = server_pid.and_then(sys::process_cpu_seconds);
        Closed {
            wall: self.started.elapsed().as_secs_f64(),
            own_cpu: sys::own_cpu_seconds() - self.own_cpu,
            server_cpu: self.server_cpu.zip(server_now).map(|(a, b)| b - a),
        }
    }
}

/// Prints a progress line to stderr once a second until aborted.
async fn progress(shared: Arc<Shared>, flood: Arc<FloodTally>, clients: usize, reports: u64) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let tally = &shared.tally;
        let sent = tally.sent.load(Relaxed);
        let received = tally.received.load(Relaxed);
        let recipients = shared.ready.load(Relaxed) as u64;
        let expected = tally.report_counts().expecting_events() * recipients;
        let flooding = match flood.ready.load(Relaxed) {
            0 => String::new(),
            n => format!("  flood {n}: sent {}", flood.sent.load(Relaxed)),
        };
        eprintln!(
            "[{:>6.1} s] connected {}/{clients}  sent {sent}/{reports}  received {received}/{expected}  missing {}{flooding}",
            started.elapsed().as_secs_f64(),
            shared.connected.load(Relaxed),
            expected.saturating_sub(received),
        );
    }
}
