//! Emergency units over REST (SPEC 9): `POST /api/v1/emergencies` and its steps
//! (`/{id}/dispatch`, `/{id}/complete`, `/{id}/cancel`), which are commands like every state
//! change, and the polling fallback's reads: `GET /api/v1/emergencies?status=`,
//! `GET /api/v1/emergencies/{id}`, `GET /api/v1/units`, from the database.

use super::{run, Limit};
use crate::actors::Hub;
use crate::auth::{AuthUser, Claims};
use crate::commands::Command;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{DriverId, Emergency, EmergencyStatus, Role, Unit};
use crate::units::commands::{self as units, AUTHORITIES};
use crate::units::plan::unit_status_of;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/emergencies", web::post().to(create))
        .route("/api/v1/emergencies", web::get().to(list))
        .route("/api/v1/emergencies/{id}", web::get().to(get))
        .route(
            "/api/v1/emergencies/{id}/dispatch",
            web::post().to(dispatch),
        )
        .route(
            "/api/v1/emergencies/{id}/complete",
            web::post().to(complete),
        )
        .route("/api/v1/emergencies/{id}/cancel", web::post().to(cancel))
        .route("/api/v1/units", web::get().to(list_units));
}

/// `POST /api/v1/emergencies` (reporter, dispatcher, admin): `201` the emergency.
async fn create(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<units::CreateEmergency>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CreateEmergency(body.into_inner());
    run(hub, user, &req, StatusCode::CREATED, command).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchBody {
    unit_id: Option<DriverId>,
}

/// `POST /api/v1/emergencies/{id}/dispatch` `{unit_id?}` (dispatcher, admin): the emergency,
/// `ASSIGNED`; `409` when it is not pending or no unit is free.
async fn dispatch(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // The body is optional: none (or `{}`) dispatches the nearest available unit.
    let body: DispatchBody = if body.iter().all(u8::is_ascii_whitespace) {
        DispatchBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let command = Command::DispatchEmergency(units::DispatchEmergency {
        request_id: path.into_inner(),
        unit_id: body.unit_id,
    });
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `POST /api/v1/emergencies/{id}/complete` (dispatcher, admin, the assigned unit).
async fn complete(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CompleteEmergency(units::CompleteEmergency {
        request_id: path.into_inner(),
    });
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `POST /api/v1/emergencies/{id}/cancel` (dispatcher, admin).
async fn cancel(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CancelEmergency(units::CancelEmergency {
        request_id: path.into_inner(),
    });
    run(hub, user, &req, StatusCode::OK, command).await
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/emergencies?status=&limit=`: newest first; staff see all, a reporter its own.
async fn list(
    hub: web::Data<Hub>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let c = &user.0;
    let reporter = match c.role {
        Role::Admin | Role::Dispatcher => None,
        Role::Reporter => Some(c.sub.clone()),
        _ => {
            return Err(AppError::forbidden(format!(
                "role `{}` may not list emergencies",
                c.role
            )))
        }
    };
    let limit = Limit { limit: q.limit }.get()?;
    let status = match &q.status {
        Some(s) => Some(
            s.to_ascii_uppercase()
                .parse::<EmergencyStatus>()
                .map_err(AppError::BadRequest)?,
        ),
        None => None,
    };
    let rows = db::run(&hub.pool, move |c| {
        Ok(queries::emergencies::list(
            c,
            status.map(|s| s.as_str()),
            reporter.as_deref(),
            limit,
        )?)
    })
    .await?;
    let list = rows
        .into_iter()
        .map(Emergency::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /api/v1/emergencies/{id}`: staff, its reporter, its unit.
async fn get(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let key = id.clone();
    let row = db::run(&hub.pool, move |c| Ok(queries::emergencies::find(c, &key)?)).await?;
    let e = match row {
        Some(r) => Emergency::try_from(r)?,
        None => {
            return Err(AppError::not_found(format!(
                "emergency {id} does not exist"
            )))
        }
    };
    if !may_read(&user.0, &e) {
        return Err(AppError::forbidden(format!(
            "you may not read emergency {id}"
        )));
    }
    Ok(HttpResponse::Ok().json(e))
}

fn may_read(c: &Claims, e: &Emergency) -> bool {
    match c.role {
        Role::Admin | Role::Dispatcher => true,
        Role::Reporter => e.reported_by == c.sub,
        Role::Driver => c.driver().is_some() && c.driver() == e.unit_id.as_ref(),
        _ => false,
    }
}

/// `GET /api/v1/units` (dispatcher, admin): the units of `units.fleets`, by id, with their
/// status (`AVAILABLE`, `DISPATCHED`, `OFFLINE`) and emergency, as the database holds them.
async fn list_units(hub: web::Data<Hub>, user: AuthUser) -> Result<HttpResponse, AppError> {
    user.0.require(AUTHORITIES, "list units")?;
    let fleets = hub.settings.units.fleets.clone();
    let (rows, open) = db::run(&hub.pool, move |c| {
        Ok((
            queries::emergencies::units(c, &fleets)?,
            queries::emergencies::active(c)?,
        ))
    })
    .await?;
    let on: HashMap<String, String> = open
        .into_iter()
        .filter(|e| e.status == EmergencyStatus::Assigned.as_str())
        .filter_map(|e| Some((e.unit_id?, e.request_id)))
        .collect();
    let list: Vec<Unit> = rows
        .iter()
        .map(|r| {
            let emergency = on.get(&r.id).cloned();
            Unit {
                unit_id: DriverId(r.id.clone()),
                name: r.name.clone(),
                fleet: r.fleet.clone(),
                unit_type: r.unit_type(),
                status: unit_status_of(r.is_online(), emergency.as_deref()),
                location: r.location(),
                emergency_id: emergency,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(list))
}
