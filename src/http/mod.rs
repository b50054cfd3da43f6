//! REST and the WebSocket upgrade: one file per resource, each with `configure`.
//! Extractor failures (bad JSON, bad query, bad path) become the contract's error body here.

pub mod audit;
pub mod conn;
pub mod dev;
pub mod drivers;
pub mod events;
pub mod health;
pub mod listener;
pub mod orders;
pub mod pages;
pub mod rooms;
pub mod ws;

use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::error::AppError;
use crate::idempotency::{self, Outcome};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use std::future::Future;

/// Attaches every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(ws::configure)
        .configure(drivers::configure)
        .configure(orders::configure)
        .configure(events::configure)
        .configure(audit::configure)
        .configure(rooms::configure)
        .configure(dev::configure)
        .configure(pages::configure);
}

/// JSON bodies: a bad one is `bad_request` saying what was wrong.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(64 * 1024)
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

/// Runs a state-changing REST request once per `Idempotency-Key`, answering `status` on success.
/// `work` is given the claimed key, to pass to the actor that commits its effect (the answer is
/// stored in that transaction).
pub async fn once<W, F>(
    hub: &web::Data<Hub>,
    user: &AuthUser,
    req: &HttpRequest,
    status: StatusCode,
    work: W,
) -> Result<HttpResponse, AppError>
where
    W: FnOnce(Option<idempotency::AnswerKey>) -> F + 'static,
    F: Future<Output = Result<serde_json::Value, AppError>> + 'static,
{
    let key = idempotency_key(req)?;
    let outcome = idempotency::once(hub.clone().into_inner(), user.0.sub.clone(), key, work).await;
    Ok(match outcome {
        Outcome::Ok(v) => HttpResponse::build(status).json(v),
        Outcome::Error { code, message } => HttpResponse::build(code.status())
            .json(serde_json::json!({"error": {"code": code, "message": message}})),
    })
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

/// Serializes a value for an idempotent answer.
pub fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(v).map_err(|e| AppError::internal(format!("encoding an answer: {e}")))
}
