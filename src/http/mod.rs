//! REST and the WebSocket upgrade: one file per resource, each with `configure`.
//! Extractor failures (bad JSON, bad query, bad path) become the contract's error body here.
//!
//! A state-changing route only reads its request into a `commands::Command` and answers what
//! `run` (here) gets from `commands::run`: the roles, the input rules and idempotency are the
//! command layer's. The reads check their own roles.

pub mod audit;
pub mod bulk;
pub mod conn;
pub mod crowd;
pub mod dev;
pub mod drivers;
pub mod emergencies;
pub mod events;
pub mod health;
pub mod listener;
pub mod orders;
pub mod pages;
pub mod rooms;
pub mod socketio;
pub mod sos;
pub mod stats;
pub mod tracks;
pub mod ws;

use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::{self, Command};
use crate::error::AppError;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};

/// Attaches every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(ws::configure)
        .configure(socketio::configure)
        .configure(drivers::configure)
        // Before `orders`: its `/api/v1/orders/{id}` would take `bulk` for an id.
        .configure(bulk::configure)
        .configure(orders::configure)
        .configure(events::configure)
        .configure(audit::configure)
        .configure(rooms::configure)
        .configure(sos::configure)
        .configure(stats::configure)
        .configure(tracks::configure)
        .configure(emergencies::configure)
        // After `events`: its `POST /api/v1/events/delay` is not an event's id.
        .configure(crowd::configure)
        .configure(dev::configure)
        .configure(pages::configure);
}

/// CORS by `server.cors_origins` (SPEC 11): those origins may call REST and Socket.IO polling
/// from their pages, with any method and header (tokens travel in `Authorization`); with none
/// configured nothing is added, and browsers keep same-origin only. WebSockets are authorized by
/// their token, not by `Origin`.
pub fn cors(origins: &[String]) -> actix_web::middleware::Condition<actix_cors::Cors> {
    let mut cors = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_any_header()
        .supports_credentials()
        .max_age(3600);
    for o in origins {
        cors = cors.allowed_origin(o);
    }
    actix_web::middleware::Condition::new(!origins.is_empty(), cors)
}

/// JSON bodies of at most 64 KiB: a bad one is `bad_request` saying what was wrong.
pub fn json_config() -> web::JsonConfig {
    json_config_limit(64 * 1024)
}

/// JSON bodies of at most `limit` bytes: a larger one is `too_large` (413), a bad one
/// `bad_request` saying what was wrong.
pub fn json_config_limit(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| match e {
            actix_web::error::JsonPayloadError::Overflow { .. }
            | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => {
                AppError::TooLarge(format!("the JSON body is too large: {e}")).into()
            }
            e => AppError::bad_request(format!("invalid JSON body: {e}")).into(),
        })
}

/// Query strings: a bad one is `bad_request`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|e, _| AppError::bad_request(format!("invalid query: {e}")).into())
}

/// Path segments: a bad one is `bad_request`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|e, _| AppError::bad_request(format!("invalid path: {e}")).into())
}

/// The request's `Idempotency-Key` header, checked like the WebSocket field.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, AppError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= crate::protocol::client::MAX_REF_LEN => {
                Ok(Some(k.to_string()))
            }
            _ => Err(AppError::bad_request(
                "Idempotency-Key must be 1 to 64 visible ASCII characters",
            )),
        },
    }
}

/// Runs a state-changing REST request's command (`commands::run`, with the request's
/// `Idempotency-Key`) and answers its value with `status`, or its error.
pub async fn run(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: &HttpRequest,
    status: StatusCode,
    command: Command,
) -> Result<HttpResponse, AppError> {
    let key = idempotency_key(req);
    let answer = commands::run(hub.into_inner(), user.0, command, key).await?;
    Ok(HttpResponse::build(status).json(answer.value))
}

/// `?limit=`: newest first, 100 by default, at most 1000.
#[derive(Debug, serde::Deserialize)]
pub struct Limit {
    pub limit: Option<i64>,
}

impl Limit {
    pub fn get(&self) -> Result<i64, AppError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=1000).contains(&n) => Ok(n),
            Some(_) => Err(AppError::bad_request("limit must be between 1 and 1000")),
        }
    }
}
