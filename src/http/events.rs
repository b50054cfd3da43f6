//! The emergency path over REST: `POST /api/v1/events/delay` (also `/event/delay`), and
//! `GET /api/v1/incidents`.

use super::{once, to_value, Limit};
use crate::actors::dispatcher::ReportIncident;
use crate::actors::Hub;
use crate::auth::AuthUser;
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
    user.0
        .require(&[Role::Driver, Role::Dispatcher, Role::Admin], "report")?;
    let b = body.into_inner();
    if b.comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > client::MAX_COMMENT_LEN)
    {
        return Err(AppError::bad_request(
            "`comment` is longer than 1000 characters",
        ));
    }
    if let (Some(named), Some(me)) = (&b.driver_id, user.0.driver()) {
        if named != me {
            return Err(AppError::forbidden("a driver reports only as itself"));
        }
    }
    let hub2 = hub.clone();
    let reporter = user.0.clone();
    once(
        &hub,
        &user,
        &req,
        StatusCode::OK,
        move |answer| async move {
            // An unknown or finished order is answered here, outside the Dispatcher (SPEC 4).
            let a = crate::commands::order_actor(&hub2, &b.order_id).await?;
            if let Some(named) = &b.driver_id {
                let current = a
                    .send(crate::actors::order::GetOrder)
                    .await?
                    .order
                    .driver_id;
                if current.as_ref() != Some(named) {
                    return Err(AppError::conflict(format!(
                        "driver {named} does not hold order {}",
                        b.order_id
                    )));
                }
            }
            let event = hub2
                .dispatcher
                .send(ReportIncident {
                    reporter,
                    order_id: b.order_id,
                    kind: b.kind,
                    comment: b.comment,
                    answer,
                })
                .await??;
            to_value(&event)
        },
    )
    .await
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
