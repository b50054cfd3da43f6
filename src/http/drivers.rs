//! Drivers: `POST /api/v1/drivers` (admin), `GET /api/v1/drivers` and
//! `GET /api/v1/drivers/{id}` (admin, dispatcher; a driver itself).

use super::once;
use crate::actors::driver::GetDriver;
use crate::actors::{driver_state, start_driver, Hub};
use crate::auth::AuthUser;
use crate::db::{self, models, queries};
use crate::error::AppError;
use crate::protocol::{Driver, DriverId, Role};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

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
}

/// `POST /api/v1/drivers`: registers a driver (admin).
async fn create(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<NewDriver>,
) -> Result<HttpResponse, AppError> {
    user.0.require(&[Role::Admin], "register drivers")?;
    let b = body.into_inner();
    let id =
        b.id.unwrap_or_else(|| format!("DRV-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    if id.is_empty() || id.len() > 64 || b.name.trim().is_empty() {
        return Err(AppError::bad_request(
            "`id` must be 1 to 64 characters and `name` must not be empty",
        ));
    }
    let capacity = b.capacity.unwrap_or(hub.settings.dispatch.default_capacity);
    if !(1..=100).contains(&capacity) {
        return Err(AppError::bad_request(
            "`capacity` must be between 1 and 100",
        ));
    }
    let hub2 = hub.clone();
    once(
        &hub,
        &user,
        &req,
        StatusCode::CREATED,
        move |answer| async move {
            let fleet = b.fleet.unwrap_or_else(|| "default".into());
            let row = models::DriverRow::new_offline(id, b.name, fleet, capacity);
            // The new driver as its actor will answer it, stored with the insert (SPEC 4).
            let driver = driver_state(&row, Default::default()).to_driver();
            let stored = crate::idempotency::answer_ok(answer.as_ref(), &driver);
            let r = row.clone();
            db::run(&hub2.pool, move |c| {
                diesel::Connection::transaction(c, |c| {
                    // The insert first (a write: SQLite's write lock before anything is read).
                    if !queries::drivers::insert_new(c, &r)? {
                        return Err(AppError::conflict(format!(
                            "driver {} exists already",
                            r.id
                        )));
                    }
                    if let Some(a) = &stored {
                        queries::idempotency::answer(c, a, chrono::Utc::now())?;
                    }
                    Ok(())
                })
            })
            .await?;
            let hub = hub2.into_inner();
            start_driver(&hub, &row, Default::default());
            super::to_value(&driver)
        },
    )
    .await
}

/// `GET /api/v1/drivers`: every driver (admin, dispatcher).
async fn list(hub: web::Data<Hub>, user: AuthUser) -> Result<HttpResponse, AppError> {
    user.0
        .require(&[Role::Admin, Role::Dispatcher], "list drivers")?;
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
    let addr = hub
        .driver(&id)
        .ok_or_else(|| AppError::not_found(format!("driver {id} does not exist")))?;
    Ok(HttpResponse::Ok().json(addr.send(GetDriver).await?))
}
