//! Crowd operations over REST (SPEC 8): the state changes are commands (`POST /api/v1/events`,
//! `/api/v1/cctv/objects`, `/api/v1/alerts/{id}/resolve`, `/api/v1/pings`); the reads, the
//! dashboards' polling fallback, come from the database on any node: `GET /api/v1/events/{id}`
//! (each zone with its latest count) and its `/alerts?status=`, `/actions`, `/reports` and
//! `/map`. Actions, reports, insights and predictions are commands too.

use super::{run, Limit};
use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::Command;
use crate::crowd::commands::{self as crowd, require_event};
use crate::crowd::{desk, grid::Grid, map, records, store};
use crate::db;
use crate::error::AppError;
use crate::protocol::crowd::{Action, Report};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `POST /api/v1/events/delay` (deliveries' emergency path) is its own route, registered
    // before these; `GET /api/v1/events/{id}` is a GET only.
    cfg.route("/api/v1/events", web::post().to(create))
        .route("/api/v1/events/{id}", web::get().to(get))
        .route("/api/v1/events/{id}/alerts", web::get().to(alerts))
        .route("/api/v1/events/{id}/map", web::get().to(get_map))
        .route("/api/v1/cctv/objects", web::post().to(count))
        .route("/api/v1/alerts/{id}/resolve", web::post().to(resolve))
        .route("/api/v1/pings", web::post().to(ping))
        .route("/api/v1/events/{id}/actions", web::get().to(actions))
        .route("/api/v1/events/{id}/reports", web::get().to(reports))
        .route("/api/v1/actions", web::post().to(create_action))
        .route("/api/v1/reports", web::post().to(create_report))
        .route("/api/v1/ai/insights", web::post().to(ask_insight))
        .route("/api/v1/ai/predictions", web::post().to(ask_prediction));
}

/// `POST /api/v1/actions`: `201` the action.
async fn create_action(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<records::CreateAction>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CreateAction(body.into_inner());
    run(hub, user, &req, StatusCode::CREATED, command).await
}

/// `POST /api/v1/reports`: `201` the report.
async fn create_report(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<records::CreateReport>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CreateReport(body.into_inner());
    run(hub, user, &req, StatusCode::CREATED, command).await
}

/// `POST /api/v1/ai/insights`: `200` the insight.
async fn ask_insight(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<records::AskInsight>,
) -> Result<HttpResponse, AppError> {
    let command = Command::AskInsight(body.into_inner());
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `POST /api/v1/ai/predictions`: `200` the prediction.
async fn ask_prediction(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<records::AskPrediction>,
) -> Result<HttpResponse, AppError> {
    let command = Command::AskPrediction(body.into_inner());
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `GET /api/v1/events/{id}/actions?limit=`: newest first.
async fn actions(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<Limit>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let limit = q.get()?;
    readable(&hub, &user, &id).await?;
    let rows = db::run(&hub.pool, move |c| Ok(store::actions(c, &id, limit)?)).await?;
    let out: Vec<Action> = rows.into_iter().map(Action::from).collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /api/v1/events/{id}/reports?limit=`: newest first.
async fn reports(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<Limit>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let limit = q.get()?;
    readable(&hub, &user, &id).await?;
    let rows = db::run(&hub.pool, move |c| Ok(store::reports(c, &id, limit)?)).await?;
    let out: Vec<Report> = rows.into_iter().map(Report::from).collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `POST /api/v1/events` (admin): `201` the event.
async fn create(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<crowd::CreateEvent>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CreateEvent(body.into_inner());
    run(hub, user, &req, StatusCode::CREATED, command).await
}

/// `POST /api/v1/cctv/objects`: `200` `{eventId, zoneId, cameraId, count, zoneCount, alert}`.
async fn count(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<crowd::CameraCount>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CameraCount(body.into_inner());
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `POST /api/v1/alerts/{id}/resolve`: `200` the resolved alert; `409` when it was already.
async fn resolve(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let command = Command::ResolveAlert(crowd::ResolveAlert {
        alert_id: path.into_inner(),
    });
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `POST /api/v1/pings`: `200` the ping as taken.
async fn ping(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<crowd::PingLocation>,
) -> Result<HttpResponse, AppError> {
    let command = Command::PingLocation(body.into_inner());
    run(hub, user, &req, StatusCode::OK, command).await
}

/// Refuses a caller that may not watch event `id`, and an event that does not exist.
async fn readable(hub: &Hub, user: &AuthUser, id: &str) -> Result<(), AppError> {
    require_event(&user.0, id)?;
    let key = id.to_string();
    let found = db::run(&hub.pool, move |c| Ok(store::find_event(c, &key)?)).await?;
    match found {
        Some(_) => Ok(()),
        None => Err(AppError::not_found(format!("event {id} does not exist"))),
    }
}

/// `GET /api/v1/events/{id}`: the event, each zone with its latest count.
async fn get(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    require_event(&user.0, &id)?;
    let since = desk::now() - desk::ttl(&hub);
    let key = id.clone();
    let event = db::run(&hub.pool, move |c| store::event(c, &key, since)).await?;
    match event {
        Some(e) => Ok(HttpResponse::Ok().json(e)),
        None => Err(AppError::not_found(format!("event {id} does not exist"))),
    }
}

#[derive(Debug, Deserialize)]
struct AlertsQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/events/{id}/alerts?status=open|resolved&limit=`: newest first.
async fn alerts(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<AlertsQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let status = match q.status.as_deref() {
        None => None,
        Some(s @ ("open" | "resolved")) => Some(s.to_string()),
        Some(_) => return Err(AppError::bad_request("`status` must be open or resolved")),
    };
    let limit = Limit { limit: q.limit }.get()?;
    readable(&hub, &user, &id).await?;
    let rows = db::run(&hub.pool, move |c| {
        Ok(store::alerts(c, &id, status.as_deref(), limit)?)
    })
    .await?;
    let alerts: Vec<_> = rows.into_iter().map(store::AlertRow::alert).collect();
    Ok(HttpResponse::Ok().json(alerts))
}

/// `GET /api/v1/events/{id}/map`: the live map as stored (the desk writes its pings every
/// `crowd.map_flush_ms`), `points` empty: `{points, density, updatedAt, source:"snapshot"}`.
async fn get_map(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    readable(&hub, &user, &id).await?;
    let at = desk::now();
    let rows = db::run(&hub.pool, move |c| Ok(store::live_pings(c, &id, at)?)).await?;
    let devices: Vec<desk::Device> = rows
        .iter()
        .map(|r| desk::Device {
            lat: r.lat,
            lng: r.lng,
            at: db::models::from_db(r.at),
        })
        .collect();
    let m = map::build_map(
        Grid::new(hub.settings.crowd.cell_m),
        devices.iter(),
        std::iter::empty(),
        0,
        "snapshot",
    );
    Ok(HttpResponse::Ok().json(m))
}
