//! Drivers: `POST /api/v1/drivers` (admin), `GET /api/v1/drivers` and
//! `GET /api/v1/drivers/{id}` (admin, dispatcher; a driver itself).

use crate::actors::driver::GetDriver;
use crate::actors::{driver_state, Hub};
use crate::auth::AuthUser;
use crate::commands::{driver::RegisterDriver, Command};
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{Driver, DriverId, Order, OrderId, Role};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/drivers", web::post().to(create))
        .route("/api/v1/drivers", web::get().to(list))
        .route("/api/v1/drivers/{id}", web::get().to(get));
}

#[derive(Debug, Deserialize)]
struct NewDriver {
    id: Option<String>,
    name: String,
    fleet: Option<String>,
    capacity: Option<i32>,
    /// A unit's kind (SPEC 9): only for a driver of a unit fleet.
    unit_type: Option<crate::protocol::UnitType>,
}

/// `POST /api/v1/drivers`: registers a driver (admin).
async fn create(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<NewDriver>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let command = Command::RegisterDriver(RegisterDriver {
        id: b.id,
        name: b.name,
        fleet: b.fleet,
        capacity: b.capacity,
        unit_type: b.unit_type,
    });
    super::run(hub, user, &req, StatusCode::CREATED, command).await
}

/// `GET /api/v1/drivers`: every driver (admin, dispatcher).
async fn list(hub: web::Data<Hub>, user: AuthUser) -> Result<HttpResponse, AppError> {
    user.0
        .require(&[Role::Admin, Role::Dispatcher], "list drivers")?;
    if hub.cluster.forwards() {
        return Ok(HttpResponse::Ok().json(from_database(&hub, None).await?));
    }
    let mut drivers: Vec<Driver> = Vec::new();
    for a in hub.all_drivers() {
        drivers.push(a.send(GetDriver).await?);
    }
    drivers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(HttpResponse::Ok().json(drivers))
}

/// `GET /api/v1/drivers/{id}`: one driver (admin, dispatcher, or the driver itself).
async fn get(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = DriverId(path.into_inner());
    if !user.0.is_staff() && user.0.driver() != Some(&id) {
        return Err(AppError::forbidden("you may read only your own driver"));
    }
    if hub.cluster.forwards() {
        let found = from_database(&hub, Some(id.clone())).await?;
        return match found.into_iter().next() {
            Some(d) => Ok(HttpResponse::Ok().json(d)),
            None => Err(AppError::not_found(format!("driver {id} does not exist"))),
        };
    }
    let addr = hub
        .driver(&id)
        .ok_or_else(|| AppError::not_found(format!("driver {id} does not exist")))?;
    Ok(HttpResponse::Ok().json(addr.send(GetDriver).await?))
}

/// Drivers as the database holds them (`only` one, or all, by id): on a cluster node that does
/// not lead, which runs no driver actors. Availability and orders are committed before they are
/// announced, so this is what the leader's actors hold, the position as of its last write.
async fn from_database(hub: &Hub, only: Option<DriverId>) -> Result<Vec<Driver>, AppError> {
    let (rows, orders) = db::run(&hub.pool, move |c| {
        let rows = match &only {
            Some(id) => queries::drivers::find(c, &id.0)?.into_iter().collect(),
            None => queries::drivers::all(c)?,
        };
        Ok((rows, queries::orders::active(c)?))
    })
    .await?;
    let mut held: HashMap<String, BTreeSet<OrderId>> = HashMap::new();
    for o in orders {
        let order = Order::try_from(o)?;
        if let (Some(d), true) = (&order.driver_id, order.status.holds_driver()) {
            held.entry(d.0.clone())
                .or_default()
                .insert(order.id.clone());
        }
    }
    let mut drivers: Vec<Driver> = rows
        .iter()
        .map(|r| driver_state(r, held.remove(&r.id).unwrap_or_default()).to_driver())
        .collect();
    drivers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(drivers)
}
