//! Orders: create (dispatched when no driver is given), list, read, the admin reassign override
//! (audited), and cancel. Partners create and cancel their own; customers read their own.

use super::{run, Limit};
use crate::actors::order::GetOrder;
use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::{orders, Command};
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::*;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/orders", web::post().to(create))
        .route("/api/v1/orders", web::get().to(list))
        .route("/api/v1/orders/{id}", web::get().to(get))
        .route("/api/v1/orders/{id}/reassign", web::post().to(reassign))
        .route("/api/v1/orders/{id}/cancel", web::post().to(cancel));
}

/// A new order as `POST /api/v1/orders` and each of `POST /api/v1/orders/bulk`'s take it.
#[derive(Debug, Deserialize)]
pub(super) struct NewOrder {
    id: Option<String>,
    pickup: LatLng,
    dropoff: LatLng,
    priority: Option<Priority>,
    fleet: Option<String>,
    driver_id: Option<DriverId>,
    customer_id: Option<String>,
    partner_id: Option<String>,
}

/// `POST /api/v1/orders` (dispatcher, admin, partner: its `partner_id` from its token).
async fn create(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<NewOrder>,
) -> Result<HttpResponse, AppError> {
    let command = Command::CreateOrder(body.into_inner().into_command());
    run(hub, user, &req, StatusCode::CREATED, command).await
}

impl NewOrder {
    pub(super) fn into_command(self) -> orders::CreateOrder {
        orders::CreateOrder {
            id: self.id,
            pickup: self.pickup,
            dropoff: self.dropoff,
            priority: self.priority,
            fleet: self.fleet,
            driver_id: self.driver_id,
            customer_id: self.customer_id,
            partner_id: self.partner_id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    status: Option<String>,
    driver_id: Option<String>,
}

/// `GET /api/v1/orders`: newest first (dispatcher, admin; a driver, a customer or a partner sees
/// its own).
async fn list(
    hub: web::Data<Hub>,
    user: AuthUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = Limit { limit: q.limit }.get()?;
    let status = match &q.status {
        Some(s) => Some(s.parse::<OrderStatus>().map_err(AppError::BadRequest)?),
        None => None,
    };
    let c = &user.0;
    let whose = match c.role {
        Role::Admin | Role::Dispatcher => queries::orders::Whose {
            driver: q.driver_id.clone(),
            ..Default::default()
        },
        Role::Driver => queries::orders::Whose {
            driver: c.driver().map(|d| d.0.clone()),
            ..Default::default()
        },
        Role::Customer => queries::orders::Whose {
            customer: c.customer().map(str::to_string),
            ..Default::default()
        },
        Role::Partner => queries::orders::Whose {
            partner: c.partner().map(str::to_string),
            ..Default::default()
        },
        Role::Observer | Role::Reporter | Role::Operator | Role::Sensor => {
            return Err(AppError::forbidden(format!(
                "role `{}` may not list orders",
                c.role
            )))
        }
    };
    let rows = db::run(&hub.pool, move |c| {
        Ok(queries::orders::list(c, &whose, status, limit)?)
    })
    .await?;
    let orders = rows
        .into_iter()
        .map(Order::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(orders))
}

/// Reads an order: from its actor while active, else from the database.
async fn read_order(hub: &Hub, id: &OrderId) -> Result<Order, AppError> {
    if let Some(a) = hub.order(id) {
        return Ok(a.send(GetOrder).await?.order);
    }
    let key = id.0.clone();
    let row = db::run(&hub.pool, move |c| Ok(queries::orders::find(c, &key)?)).await?;
    row.map(Order::try_from)
        .transpose()?
        .ok_or_else(|| AppError::not_found(format!("order {id} does not exist")))
}

/// `GET /api/v1/orders/{id}` (dispatcher, admin; a driver its own; a customer or a partner its
/// own, and another's is a 404 like an unknown one, so that ids cannot be probed).
async fn get(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = OrderId(path.into_inner());
    let c = &user.0;
    if c.role == Role::Observer {
        return Err(AppError::forbidden(format!("you may not read order {id}")));
    }
    let order = read_order(&hub, &id).await?;
    match c.role {
        Role::Admin | Role::Dispatcher => {}
        Role::Driver if order.driver_id.as_ref() == c.driver() => {}
        Role::Customer
            if c.customer().is_some() && order.customer_id.as_deref() == c.customer() => {}
        Role::Partner if c.partner().is_some() && order.partner_id.as_deref() == c.partner() => {}
        Role::Customer | Role::Partner => {
            return Err(AppError::not_found(format!("order {id} does not exist")))
        }
        _ => return Err(AppError::forbidden(format!("you may not read order {id}"))),
    }
    Ok(HttpResponse::Ok().json(order))
}

#[derive(Debug, Deserialize)]
struct Reassign {
    driver_id: DriverId,
    reason: String,
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/orders/{id}/reassign` (admin): the override, audited.
async fn reassign(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Reassign>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let command = Command::Reassign(orders::Reassign {
        order_id: OrderId(path.into_inner()),
        driver_id: b.driver_id,
        reason: b.reason,
        force: b.force,
    });
    run(hub, user, &req, StatusCode::OK, command).await
}

/// `POST /api/v1/orders/{id}/cancel` (dispatcher, admin; a partner its own pending orders).
async fn cancel(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let order_id = OrderId(path.into_inner());
    let command = Command::Cancel(orders::Cancel { order_id });
    run(hub, user, &req, StatusCode::OK, command).await
}
