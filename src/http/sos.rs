//! SOS without an order over REST (SPEC 10): `GET /api/v1/sos` and
//! `POST /api/v1/sos/{id}/resolve`, both for staff. Drivers raise an SOS over their socket.

use super::{run, Limit};
use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::{sos, Command};
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::SosAlert;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/sos", web::get().to(list))
        .route("/api/v1/sos/{id}/resolve", web::post().to(resolve));
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    /// `true`: only the alerts not yet resolved.
    #[serde(default)]
    open: bool,
}

/// `GET /api/v1/sos`: newest first (dispatcher, admin).
async fn list(
    hub: web::Data<Hub>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    user.0.require(sos::RESOLVERS, "read SOS alerts")?;
    let limit = Limit { limit: q.limit }.get()?;
    let open = q.open;
    let rows = db::run(&hub.pool, move |c| Ok(queries::sos::list(c, open, limit)?)).await?;
    let alerts: Vec<SosAlert> = rows.into_iter().map(SosAlert::from).collect();
    Ok(HttpResponse::Ok().json(alerts))
}

/// `POST /api/v1/sos/{id}/resolve` (dispatcher, admin): answers the resolved alert; an unknown
/// one is 404, one already resolved 409.
async fn resolve(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let command = Command::ResolveSos(sos::ResolveSos {
        alert_id: path.into_inner(),
    });
    run(hub, user, &req, StatusCode::OK, command).await
}
