//! `POST /api/v1/orders/bulk` (staff): `{"orders":[...]}`, each in the shape of
//! `POST /api/v1/orders`. Its body may reach `BODY_LIMIT` (every other route's is 64 KiB). Each
//! order is decoded here on its own, so one the decoder refuses is named by its index and field
//! (`orders[17].pickup.lat: ...`); the rules are the command's (`commands::bulk`).

use super::orders::NewOrder;
use super::{json_config_limit, run};
use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::{bulk, Command};
use crate::error::AppError;
use crate::protocol::Priority;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

/// The largest body this route reads: 1 MiB (SPEC 10).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/orders/bulk")
            .app_data(json_config_limit(BODY_LIMIT))
            .route(web::post().to(create_bulk)),
    );
}

#[derive(Debug, Deserialize)]
struct Bulk {
    orders: Vec<Value>,
}

/// `POST /api/v1/orders/bulk` (dispatcher, admin): `201` and the created orders, in the order
/// given; nothing is created when one of them is refused.
async fn create_bulk(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    body: web::Json<Bulk>,
) -> Result<HttpResponse, AppError> {
    let values = body.into_inner().orders;
    if values.len() > bulk::MAX_ORDERS {
        // Refused before decoding a thousand orders that cannot be placed anyway.
        return Err(AppError::bad_request(format!(
            "`orders` must hold 1 to {} orders, not {}",
            bulk::MAX_ORDERS,
            values.len()
        )));
    }
    let orders = values
        .iter()
        .enumerate()
        .map(|(i, v)| decode(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    let command = Command::CreateOrders(bulk::CreateOrders { orders });
    run(hub, user, &req, StatusCode::CREATED, command).await
}

/// Decodes `orders[i]`; a refusal names the field at fault when it can be found.
fn decode(i: usize, v: &Value) -> Result<crate::commands::orders::CreateOrder, AppError> {
    match NewOrder::deserialize(v) {
        Ok(o) => Ok(o.into_command()),
        Err(e) => Err(AppError::bad_request(format!(
            "orders[{i}]{}: {e}",
            locate(v)
        ))),
    }
}

/// The path, within an order, of the first field its decoder refuses (`.pickup.lat`), or
/// nothing when it is the order itself.
fn locate(v: &Value) -> String {
    let Some(o) = v.as_object() else {
        return String::new();
    };
    for point in ["pickup", "dropoff"] {
        let Some(p) = o.get(point).and_then(Value::as_object) else {
            return format!(".{point}");
        };
        for coord in ["lat", "lng"] {
            if !p.get(coord).is_some_and(Value::is_number) {
                return format!(".{point}.{coord}");
            }
        }
    }
    for text in ["id", "fleet", "driver_id", "customer_id", "partner_id"] {
        if o.get(text).is_some_and(|t| !t.is_string() && !t.is_null()) {
            return format!(".{text}");
        }
    }
    if o.get("priority")
        .is_some_and(|p| Option::<Priority>::deserialize(p).is_err())
    {
        return ".priority".to_string();
    }
    String::new()
}
