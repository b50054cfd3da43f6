//! `rallypoint demo`: the demo fleet (Alice, Bob and Carol) and a few orders, loaded once into
//! whatever database is configured, so three driver tabs and a dashboard reproduce the emergency
//! story with no set-up.

use crate::actors::dispatcher::CreateOrder;
use crate::actors::{start_driver, Hub};
use crate::db::{self, models, queries};
use crate::error::AppError;
use crate::protocol::*;
use std::sync::Arc;

/// The demo drivers: id, name.
pub const DRIVERS: [(&str, &str); 3] = [
    ("DRV-001", "Alice"),
    ("DRV-002", "Bob"),
    ("DRV-003", "Carol"),
];

/// A point as (lat, lng).
type Point = (f64, f64);

/// The demo orders: id, pickup, dropoff, priority, driver. Alice and Carol each hold one and Bob
/// is free, so Alice's breakdown report moves her order to Bob whatever their positions.
const ORDERS: [(&str, Point, Point, Priority, &str); 2] = [
    (
        "ORD-1001",
        (48.8566, 2.3522),
        (48.8738, 2.2950),
        Priority::Normal,
        "DRV-001",
    ),
    (
        "ORD-1002",
        (48.8760, 2.3880),
        (48.8462, 2.3371),
        Priority::High,
        "DRV-003",
    ),
];

/// The demo order whose customer follows it, and that customer's id.
pub const DEMO_TRACKED: &str = "ORD-1001";
pub const DEMO_CUSTOMER: &str = "C-100";

/// Loads what is missing of the demo fleet and orders.
pub async fn seed(hub: &Arc<Hub>) -> Result<(), AppError> {
    let capacity = hub.settings.dispatch.default_capacity;
    let rows = db::run(&hub.pool, move |c| {
        let mut created = Vec::new();
        for (id, name) in DRIVERS {
            if queries::drivers::find(c, id)?.is_none() {
                let row = models::DriverRow::new_offline(
                    id.into(),
                    name.into(),
                    "default".into(),
                    capacity,
                );
                queries::drivers::insert(c, &row)?;
                created.push(row);
            }
        }
        Ok(created)
    })
    .await?;
    for row in &rows {
        start_driver(hub, row, Default::default());
    }
    for (id, p, d, priority, driver) in ORDERS {
        let key = id.to_string();
        let exists = db::run(&hub.pool, move |c| {
            Ok(queries::orders::find(c, &key)?.is_some())
        })
        .await?;
        if exists {
            continue;
        }
        let now = chrono::Utc::now();
        let order = Order {
            id: OrderId(id.into()),
            status: OrderStatus::Pending,
            driver_id: None,
            fleet: "default".into(),
            priority,
            pickup: LatLng { lat: p.0, lng: p.1 },
            dropoff: LatLng { lat: d.0, lng: d.1 },
            version: 1,
            accepted_at: None,
            eta: None,
            created_at: now,
            updated_at: now,
            // ORD-1001's customer follows it on /track/ORD-1001.
            customer_id: (id == DEMO_TRACKED).then(|| DEMO_CUSTOMER.to_string()),
            partner_id: None,
        };
        hub.dispatcher
            .send(CreateOrder {
                order,
                driver: Some(DriverId(driver.into())),
                answer: None,
            })
            .await??;
    }
    log::info!(
        "[STARTUP] demo data ready: drivers={} orders={}",
        DRIVERS.len(),
        ORDERS.len()
    );
    Ok(())
}
