//! Health: `GET /health`, `GET /api/health/socket` and `GET /metrics` (Prometheus text).

use crate::actors::Hub;
use actix_web::{web, HttpResponse, ResponseError};
use std::sync::atomic::Ordering;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/api/health/socket", web::get().to(socket))
        .route("/metrics", web::get().to(metrics));
}

/// `GET /health`: 200 when the database answers, 503 otherwise.
async fn health(hub: web::Data<Hub>) -> HttpResponse {
    let db_ok = crate::db::ping(&hub.pool).await;
    let body = serde_json::json!({
        "status": if db_ok { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": hub.started.elapsed().as_secs(),
        "connections": hub.connections.load(Ordering::Relaxed),
        "database": if db_ok { "ok" } else { "unreachable" },
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
async fn metrics(hub: web::Data<Hub>) -> HttpResponse {
    let node = crate::stats::NodeGauges {
        connections: hub.connections.load(Ordering::Relaxed),
        room_actors: hub.room_actors.load(Ordering::Relaxed),
        room_replays_reading: hub.room_replays_reading.load(Ordering::Relaxed),
    };
    match crate::stats::render(node) {
        Some(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        None => crate::error::AppError::internal(
            "metrics are unavailable: another metrics recorder was installed in this process",
        )
        .error_response(),
    }
}
