//! Start-up: `Application::build(Settings)` opens the pool, runs migrations, starts the room
//! registry and the Dispatcher, rebuilds the driver and order actors from the database, binds,
//! and exposes `port()` and `run_until_stopped()`. `start_engine` is the same engine without
//! HTTP, for tests that drive the actors' mailboxes.

use crate::actors::dispatcher::{Dispatcher, EnqueueOrder};
use crate::actors::order::OrderState;
use crate::actors::registry::{RoomRegistry, SetHub};
use crate::actors::{start_driver, Hub};
use crate::auth::TokenKeys;
use crate::config::Settings;
use crate::db::{self, queries, DbPool};
use crate::error::AppError;
use crate::http;
use crate::protocol::{DriverId, Order, OrderId, OrderStatus};
use crate::units::EmergencyDesk;
use actix::prelude::*;
use actix_web::{dev::Server, web, App, HttpServer};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::TcpListener;
use std::sync::Arc;

/// Starts the engine's actors on the current arbiter and rebuilds them from the database.
pub async fn start_engine(settings: Settings, pool: DbPool) -> Result<Arc<Hub>, AppError> {
    let keys = TokenKeys::from_settings(&settings.auth).map_err(AppError::internal)?;
    crate::stats::install();
    let rooms = RoomRegistry::default().start();
    let mut slot = None;
    Dispatcher::create(|ctx| {
        // The desk's address first, so the Hub it is given holds it too.
        let desk = Context::<EmergencyDesk>::new();
        let hub = Arc::new(Hub::new(
            settings,
            pool,
            keys,
            rooms.clone(),
            ctx.address(),
            desk.address(),
        ));
        desk.run(EmergencyDesk::new(hub.clone()));
        slot = Some(hub.clone());
        Dispatcher::new(hub)
    });
    let hub = slot.ok_or_else(|| AppError::internal("the Dispatcher did not start"))?;
    rooms
        .send(SetHub(Arc::downgrade(&hub)))
        .await
        .map_err(AppError::from)?;
    if hub.settings.cluster.enabled() {
        // The node that takes the leader's lock rebuilds the actors then (`cluster::node`).
        crate::cluster::node::start(&hub, |hub| Box::pin(async move { rebuild(&hub).await }));
    } else {
        rebuild(&hub).await?;
    }
    crate::actors::janitor::Janitor::new(hub.clone()).start();
    crate::actors::tracks::TrackWriter::new(hub.clone()).start();
    Ok(hub)
}

/// Restores every driver and active order from the database: a restart loses nothing.
async fn rebuild(hub: &Arc<Hub>) -> Result<(), AppError> {
    let (drivers, orders, exclusions) = db::run(&hub.pool, |c| {
        Ok((
            queries::drivers::all(c)?,
            queries::orders::active(c)?,
            queries::orders::all_exclusions(c)?,
        ))
    })
    .await?;
    let mut excluded: HashMap<String, HashSet<DriverId>> = HashMap::new();
    for (o, d) in exclusions {
        excluded.entry(o).or_default().insert(DriverId(d));
    }
    let mut held: HashMap<String, BTreeSet<OrderId>> = HashMap::new();
    let mut waiting = Vec::new();
    let mut count = 0;
    for row in orders {
        let id = row.id.clone();
        let order = Order::try_from(row)?;
        if let (Some(d), true) = (&order.driver_id, order.status.holds_driver()) {
            held.entry(d.0.clone())
                .or_default()
                .insert(order.id.clone());
        }
        let state = OrderState {
            order,
            excluded: excluded.remove(&id).unwrap_or_default(),
        };
        if state.order.status == OrderStatus::Pending {
            waiting.push(state.clone());
        }
        hub.spawn_order(state);
        count += 1;
    }
    for row in &drivers {
        start_driver(hub, row, held.remove(&row.id).unwrap_or_default());
    }
    for state in waiting {
        hub.dispatcher.do_send(EnqueueOrder { state });
    }
    // After the drivers: the desk tells the units on an emergency that they are.
    let emergencies = hub.units.send(crate::units::feed::Rebuild).await??;
    log::info!(
        "[STARTUP] rebuilt drivers={} active_orders={count} open_emergencies={emergencies}",
        drivers.len()
    );
    Ok(())
}

/// The running application.
pub struct Application {
    port: u16,
    server: Server,
    hub: Arc<Hub>,
    signals: Signals,
}

impl Application {
    /// Builds everything and binds `server.bind` (port 0 picks a free port).
    pub async fn build(mut settings: Settings) -> Result<Application, AppError> {
        // `main` has done this already (a failure there exits 2); an embedding caller may not.
        crate::secret::resolve(&mut settings).map_err(|e| AppError::internal(e.to_string()))?;
        if settings.auth.dev_login {
            log::warn!(
                "[STARTUP] auth.dev_login is on: POST /api/v1/dev/login hands any token to anyone \
                 who can reach this server; never in production"
            );
        }
        let pool = db::connect(&settings.database)?;
        let p = pool.clone();
        let ran = web::block(move || db::migrate(&p)).await??;
        log::info!(
            "[STARTUP] database backend={} migrations_run={ran} sqlite_synchronous={}",
            db::Backend::from_url(&settings.database.url).name(),
            settings.database.sqlite_synchronous().unwrap_or("?")
        );
        raise_open_files_limit(settings.limits.max_connections as u64);
        let listener = crate::http::listener::bind(&settings.server.bind).map_err(|e| {
            AppError::internal(format!(
                "cannot listen on {} ({e}): is another server running there? set server.bind or RALLYPOINT_SERVER__BIND",
                settings.server.bind
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| AppError::internal(format!("reading the bound address: {e}")))?
            .port();
        let hub = start_engine(settings.clone(), pool).await?;
        let server = Self::serve(listener, hub.clone(), &settings)?;
        // Taken before "listening" is said: from then on a SIGTERM is a graceful shutdown, never
        // the default action (a supervisor may send one the moment it reads that line).
        let signals = Signals::take();
        log::info!(
            "[STARTUP] listening on http://{}:{port}",
            listener_host(&settings)
        );
        Ok(Application {
            port,
            server,
            hub,
            signals,
        })
    }

    fn serve(
        listener: TcpListener,
        hub: Arc<Hub>,
        settings: &Settings,
    ) -> Result<Server, AppError> {
        let keys = web::Data::new(hub.keys.clone());
        let health = web::Data::new(http::health::HealthCache::default());
        let hub_data = web::Data::from(hub);
        let cors_origins = settings.server.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(hub_data.clone())
                .app_data(keys.clone())
                .app_data(health.clone())
                .app_data(http::json_config())
                .app_data(http::query_config())
                .app_data(http::path_config())
                .wrap(
                    // Not /ws: a WebSocket's response lives as long as the session, and the
                    // logger would keep a copy of its format per session (sessions log their own
                    // `[WEBSOCKET]` lines).
                    actix_web::middleware::Logger::new("[HTTP] %U status=%s %Dms")
                        .exclude("/ws")
                        .exclude("/socket.io/")
                        .log_target("rallypoint::http"),
                )
                .wrap(http::cors(&cors_origins))
                .configure(http::configure)
        })
        .on_connect(http::conn::on_connect)
        .shutdown_timeout(settings.server.shutdown_timeout_s)
        // Signals are ours: sessions are told to go (1012) before the server stops.
        .disable_signals();
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|e| AppError::internal(format!("cannot start the server: {e}")))?
            .run();
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn hub(&self) -> Arc<Hub> {
        self.hub.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Runs until SIGINT/SIGTERM, then shuts down gracefully (see `shutdown`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (hub, handle) = (self.hub.clone(), self.server.handle());
        let signals = self.signals;
        actix_web::rt::spawn(async move {
            signals.wait().await;
            shutdown(&hub, &handle).await;
        });
        self.server.await
    }
}

/// SIGINT and SIGTERM, taken from their default action (ending the process) as soon as this is
/// made.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn take() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => None,
            };
            Signals { streams }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// Waits for SIGINT or SIGTERM.
    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = self.streams {
            tokio::select! {
                _ = int.recv() => log::info!("[STARTUP] SIGINT: shutting down"),
                _ = term.recv() => log::info!("[STARTUP] SIGTERM: shutting down"),
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The graceful shutdown: every session is closed with 1012 ("service restart": reconnect and
/// resume), the sessions get up to `server.shutdown_timeout_s` to go, then the server stops,
/// finishing the requests in flight. Everything acknowledged was committed before its ack.
pub async fn shutdown(hub: &Hub, handle: &actix_web::dev::ServerHandle) {
    // No new connections from here on; those open are told to go.
    handle.pause().await;
    let told = hub.close_all_sessions(crate::protocol::close::SERVICE_RESTART, "server restart");
    log::info!("[WEBSOCKET] shutdown: closing {told} sessions with 1012");
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(hub.settings.server.shutdown_timeout_s);
    // Sessions close once the work they started has answered; work whose client is gone
    // still finishes, and is recorded under its idempotency key.
    while (hub.connections.load(std::sync::atomic::Ordering::Acquire) > 0
        || hub
            .actions_running
            .load(std::sync::atomic::Ordering::Acquire)
            > 0)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Sessions whose peers do not read never get their close frame out: cut them off.
    let stuck = hub.cut_off(&hub.open_sessions());
    if stuck > 0 {
        log::warn!("[WEBSOCKET] shutdown: {stuck} sessions did not close in time");
    }
    // The track samples still buffered are written before the process goes.
    let _ = crate::actors::tracks::flush(hub).await;
    handle.stop(true).await;
}

/// Raises this process's soft limit on open files to its hard limit (each connection is a file),
/// logs the result, and warns when `limits.max_connections` cannot be reached under it.
pub fn raise_open_files_limit(max_connections: u64) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        log::warn!(
            "[STARTUP] cannot read the open-files limit: {}",
            std::io::Error::last_os_error()
        );
        return None;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        } else {
            log::warn!(
                "[STARTUP] cannot raise the open-files limit from {before} to {}: {}",
                lim.rlim_max,
                std::io::Error::last_os_error()
            );
        }
    }
    let now: u64 = lim.rlim_cur;
    log::info!(
        "[STARTUP] open files limit={now} (was {before}, hard {})",
        lim.rlim_max
    );
    // Database connections, the listener, logs and the like need a few files beyond sessions.
    const SPARE: u64 = 64;
    if max_connections + SPARE > now {
        log::warn!(
            "[STARTUP] limits.max_connections={max_connections} exceeds what {now} open files allow \
             (about {} sessions): raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower \
             limits.max_connections",
            now.saturating_sub(SPARE)
        );
    }
    Some(now)
}

fn listener_host(settings: &Settings) -> String {
    settings
        .server
        .bind
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|| "127.0.0.1".into())
}
