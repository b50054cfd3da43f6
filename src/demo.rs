//! `rallypoint demo`: the demo fleet (Alice, Bob and Carol) and a few orders, loaded once into
//! whatever database is configured, so three driver tabs and a dashboard reproduce the emergency
//! story with no set-up; and the emergency units (SPEC 9): four units of the first unit fleet,
//! placed around the city so that a dispatch picks the nearest, and two pending emergencies; and
//! the crowd event of `demo_crowd` (a stadium and its zones).

use crate::actors::dispatcher::CreateOrder;
use crate::actors::{start_driver, Hub};
use crate::auth::Claims;
use crate::db::{self, models, queries};
use crate::error::AppError;
use crate::protocol::*;
use crate::units::commands::CreateEmergency;
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

/// The demo units: id, name, type, where it waits. Offline until someone signs in as one on the
/// driver console and goes online (a unit is dispatched only when online, SPEC 9).
pub const UNITS: [(&str, &str, UnitType, Point); 4] = [
    (
        "UNIT-A1",
        "Ambulance 1",
        UnitType::Ambulance,
        (48.8530, 2.3499),
    ),
    (
        "UNIT-A2",
        "Ambulance 2",
        UnitType::Ambulance,
        (48.8790, 2.3560),
    ),
    (
        "UNIT-F1",
        "Fire engine 1",
        UnitType::Fire,
        (48.8650, 2.3200),
    ),
    ("UNIT-P1", "Police 1", UnitType::Police, (48.8450, 2.3700)),
];

/// The demo reporter, whose two emergencies the demo loads into an empty emergency list.
pub const DEMO_REPORTER: &str = "rep-demo";

/// The demo emergencies: type, severity, description, where.
const EMERGENCIES: [(EmergencyType, Severity, &str, Point); 2] = [
    (
        EmergencyType::Medical,
        Severity::High,
        "Cyclist down at the crossing, conscious, leg injured",
        (48.8580, 2.3470),
    ),
    (
        EmergencyType::Fire,
        Severity::Medium,
        "Smoke from a kitchen window, third floor",
        (48.8700, 2.3610),
    ),
];

/// Loads what is missing of the demo fleet and orders, then of the units and emergencies, then
/// the stadium.
pub async fn seed(hub: &Arc<Hub>) -> Result<(), AppError> {
    seed_deliveries(hub).await?;
    seed_units(hub).await?;
    crate::demo_crowd::seed(hub).await
}

/// The units of the first unit fleet (none when `units.fleets` is empty), and the emergencies
/// when there are none at all yet.
async fn seed_units(hub: &Arc<Hub>) -> Result<(), AppError> {
    let Some(fleet) = hub.settings.units.fleets.first().cloned() else {
        return Ok(());
    };
    let capacity = hub.settings.dispatch.default_capacity;
    let (rows, empty) = db::run(&hub.pool, move |c| {
        let mut created = Vec::new();
        for (id, name, kind, (lat, lng)) in UNITS {
            if queries::drivers::find(c, id)?.is_none() {
                let mut row =
                    models::DriverRow::new_offline(id.into(), name.into(), fleet.clone(), capacity);
                row.unit_type = Some(kind.as_str().to_string());
                row.lat = Some(lat);
                row.lng = Some(lng);
                row.location_at = Some(row.created_at);
                queries::drivers::insert(c, &row)?;
                created.push(row);
            }
        }
        let empty = queries::emergencies::list(c, None, None, 1)?.is_empty();
        Ok((created, empty))
    })
    .await?;
    for row in &rows {
        start_driver(hub, row, Default::default());
    }
    if empty {
        let reporter = Claims::new(
            DEMO_REPORTER,
            Role::Reporter,
            None,
            "default",
            hub.settings.auth.dev_token_ttl_s,
        );
        for (kind, severity, description, (lat, lng)) in EMERGENCIES {
            CreateEmergency {
                kind,
                description: description.into(),
                severity,
                location: LatLng { lat, lng },
            }
            .run(hub, &reporter, None)
            .await?;
        }
    }
    log::info!(
        "[STARTUP] demo units ready: units={} emergencies={}",
        UNITS.len(),
        if empty { EMERGENCIES.len() } else { 0 }
    );
    Ok(())
}

/// The delivery drivers and orders.
async fn seed_deliveries(hub: &Arc<Hub>) -> Result<(), AppError> {
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

/// Tokens for the emergency pages' demo links (`#token=` in the URL, read by the page and never
/// sent to a server): the demo reporter's, and an admin's for the dashboard and the map.
pub fn emergency_tokens(hub: &Hub) -> Result<(String, String), AppError> {
    let ttl = hub.settings.auth.dev_token_ttl_s;
    let reporter = Claims::new(DEMO_REPORTER, Role::Reporter, None, "default", ttl);
    let admin = Claims::new("demo-admin", Role::Admin, None, "default", ttl);
    Ok((hub.keys.sign(&reporter)?, hub.keys.sign(&admin)?))
}
