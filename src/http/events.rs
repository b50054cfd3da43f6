//! The emergency path over REST: `POST /api/v1/events/delay` (also `/event/delay`), and
//! `GET /api/v1/incidents`.

use super::{run, Limit};
use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::{report::ReportDelay, Command};
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::*;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/events/delay", web::post().to(delay))
        .route("/event/delay", web::post().to(delay))
        .route("/api/v1/incidents", web::get().to(incidents));
}

#[derive(Debug, Deserialize)]
struct Delay {
    order_id: OrderId,
    driver_id: Option<DriverId>,
    kind: IncidentKind,
    comment: Option<String>,
}

/// `POST /api/v1/events/delay`: answers the `emergency_event` (the order's driver, dispatcher,
/// admin). A `driver_id`, when given, must be the order's current driver.
async fn delay(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<Delay>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let command = Command::ReportDelay(ReportDelay {
        order_id: b.order_id,
        driver_id: b.driver_id,
        kind: b.kind,
        comment: b.comment,
    });
    run(hub, user, &req, StatusCode::OK, command).await
}

#[derive(Debug, Deserialize)]
struct IncidentQuery {
    limit: Option<i64>,
    order_id: Option<String>,
}

/// `GET /api/v1/incidents`: newest first (dispatcher, admin).
async fn incidents(
    hub: web::Data<Hub>,
    user: AuthUser,
    q: web::Query<IncidentQuery>,
) -> Result<HttpResponse, AppError> {
    user.0
        .require(&[Role::Dispatcher, Role::Admin], "read incidents")?;
    let limit = Limit { limit: q.limit }.get()?;
    let order = q.order_id.clone();
    let rows = db::run(&hub.pool, move |c| {
        Ok(queries::incidents::list(c, order.as_deref(), limit)?)
    })
    .await?;
    let events = rows
        .into_iter()
        .map(EmergencyEvent::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(events))
}
