//! `POST /api/v1/dev/login`: a token for anyone, only when `auth.dev_login` is on (the demo).

use crate::actors::Hub;
use crate::auth::Claims;
use crate::error::AppError;
use crate::protocol::{DriverId, Role};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/dev/login", web::post().to(login));
}

#[derive(Debug, Deserialize)]
struct Login {
    sub: String,
    role: Role,
    driver_id: Option<DriverId>,
    fleet: Option<String>,
    name: Option<String>,
    customer_id: Option<String>,
    partner_id: Option<String>,
    /// Crowd events the token may watch (SPEC 8).
    events: Option<Vec<String>>,
}

/// `POST /api/v1/dev/login` `{"sub","role","driver_id"?,"fleet"?,"customer_id"?,"partner_id"?,
/// "events"?}`
/// → `{"token"}`; 404 when off, before the body is read (the route must not tell a probe more
/// than any unknown path does).
async fn login(
    hub: web::Data<Hub>,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    if !hub.settings.auth.dev_login {
        return Err(AppError::not_found("not found").into());
    }
    // The JSON extractor, with the app's JsonConfig (its limit; `bad_request` on bad JSON).
    let body = web::Json::<Login>::from_request(&req, &mut payload.into_inner()).await?;
    Ok(issue(&hub, body.into_inner())?)
}

/// Signs the token a login asks for.
fn issue(hub: &Hub, b: Login) -> Result<HttpResponse, AppError> {
    if b.sub.trim().is_empty() {
        return Err(AppError::bad_request("`sub` must not be empty"));
    }
    let needs = match b.role {
        Role::Driver if b.driver_id.is_none() => Some("a driver needs `driver_id`"),
        Role::Customer if b.customer_id.is_none() => Some("a customer needs `customer_id`"),
        Role::Partner if b.partner_id.is_none() => Some("a partner needs `partner_id`"),
        _ => None,
    };
    if let Some(what) = needs {
        return Err(AppError::bad_request(what));
    }
    let mut claims = Claims::new(
        &b.sub,
        b.role,
        b.driver_id,
        b.fleet.as_deref().unwrap_or("default"),
        hub.settings.auth.dev_token_ttl_s,
    );
    claims.name = b.name;
    claims.customer_id = b.customer_id;
    claims.partner_id = b.partner_id;
    claims.events = b.events;
    if b.role == Role::Observer {
        claims.rooms = Some(vec!["fleet:*".into(), "order:*".into()]);
    }
    let token = hub.keys.sign(&claims)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "token": token })))
}
