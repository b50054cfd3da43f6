//! Health: `GET /health`, `GET /api/health/socket` and `GET /metrics` (Prometheus text).
//! `/health` asks the database at most once per `HealthCache::MAX_AGE`, however often it is
//! asked: a probe storm never becomes a database storm.

use crate::actors::Hub;
use actix_web::{web, HttpResponse, ResponseError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The last database check of `/health` and when it was made, shared by every HTTP worker of
/// one server (registered as app data by `startup`).
#[derive(Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
    /// Database checks made: `rallypoint_health_db_checks_total` in `/metrics`.
    checks: AtomicU64,
}

impl HealthCache {
    /// A result younger than this is answered again without asking the database.
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    /// Whether the database answers, from a check at most `MAX_AGE` old. Callers arriving while
    /// a check runs wait for it rather than starting their own.
    async fn database_ok(&self, hub: &Hub) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last {
            if at.elapsed() < Self::MAX_AGE {
                return ok;
            }
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let ok = crate::db::ping(&hub.pool).await;
        *last = Some((Instant::now(), ok));
        ok
    }

    /// The Prometheus text of this server's check counter (per server, not per process).
    fn render(&self) -> String {
        format!(
            "# HELP rallypoint_health_db_checks_total Database checks made by GET /health (at most one per second)\n\
             # TYPE rallypoint_health_db_checks_total counter\n\
             rallypoint_health_db_checks_total {}\n",
            self.checks.load(Ordering::Relaxed)
        )
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/api/health/socket", web::get().to(socket))
        .route("/metrics", web::get().to(metrics));
}

/// `GET /health`: 200 when the database answered its latest check, 503 otherwise.
async fn health(hub: web::Data<Hub>, cache: web::Data<HealthCache>) -> HttpResponse {
    let db_ok = cache.database_ok(&hub).await;
    let body = serde_json::json!({
        "status": if db_ok { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": hub.started.elapsed().as_secs(),
        "connections": hub.connections.load(Ordering::Relaxed),
        "database": if db_ok { "ok" } else { "unreachable" },
        // `off` alone, `up`, or `degraded` while Redis is away (still 200: this node serves).
        "cluster": hub.broker.state().as_str(),
        // This node's id, and the node that leads (itself alone; `null` while none is known).
        "node": hub.node_id,
        "leader": hub.cluster.leader().or_else(|| hub.cluster.leading().then(|| hub.node_id.clone())),
    });
    if db_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /api/health/socket`: the WebSocket side.
async fn socket(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "connections": hub.connections.load(Ordering::Relaxed),
        "uptime": hub.started.elapsed().as_secs(),
    }))
}

/// `GET /metrics`: every metric in Prometheus text format (see `crate::stats`).
async fn metrics(hub: web::Data<Hub>, cache: web::Data<HealthCache>) -> HttpResponse {
    let node = crate::stats::NodeGauges {
        connections: hub.connections.load(Ordering::Relaxed),
        room_actors: hub.room_actors.load(Ordering::Relaxed),
        rooms_asleep: hub.rooms_asleep.load(Ordering::Relaxed),
        room_replays_reading: hub.room_replays_reading.load(Ordering::Relaxed),
    };
    match crate::stats::render(node) {
        Some(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text + &cache.render()),
        None => crate::error::AppError::internal(
            "metrics are unavailable: another metrics recorder was installed in this process",
        )
        .error_response(),
    }
}
