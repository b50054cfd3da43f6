//! A driver's own commands (`status`, `location`) and registering a driver
//! (`POST /api/v1/drivers`), with the rule they share: a driver speaks only for itself.

use super::{to_value, Reply};
use crate::actors::driver::{DriverActor, SetAvailability, UpdateLocation};
use crate::actors::{driver_state, start_driver, Hub};
use crate::auth::Claims;
use crate::config::Settings;
use crate::db::{self, models, queries};
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::{client, AvailabilityStatus, DriverId, Location, Role, UnitType};
use actix::Addr;

/// `status`: the sender's driver goes online or offline (a driver; `driver_id`, when given, is
/// its own). Answers the driver's status.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetStatus {
    pub status: AvailabilityStatus,
    pub driver_id: Option<DriverId>,
}

impl SetStatus {
    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let driver = driver_actor(
            hub,
            claims,
            self.driver_id.as_ref(),
            "set a driver's status",
        )?;
        let status = driver
            .send(SetAvailability {
                status: self.status,
                answer,
            })
            .await??;
        to_value(&status)
    }
}

/// `location`: a new position of the sender's driver (a driver; `driver_id`, when given, is its
/// own). Answers `null`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SendLocation {
    pub lat: f64,
    pub lng: f64,
    pub speed: Option<f64>,
    pub heading: Option<f64>,
    pub accuracy: Option<f64>,
    pub driver_id: Option<DriverId>,
}

impl SendLocation {
    pub(super) fn admit(&self) -> Result<(), AppError> {
        client::check_location(self.lat, self.lng, self.speed, self.heading, self.accuracy)
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims) -> Reply {
        let driver = driver_actor(hub, claims, self.driver_id.as_ref(), "send a location")?;
        let location = Location {
            lat: self.lat,
            lng: self.lng,
            speed: self.speed,
            heading: self.heading,
            timestamp: chrono::Utc::now(),
        };
        // Awaited: once acked, the Dispatcher has the position queued before any later report
        // from this client.
        driver.send(UpdateLocation { location }).await?;
        Ok(serde_json::Value::Null)
    }
}

/// `POST /api/v1/drivers` (admin): registers a driver, offline. Answers the driver.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegisterDriver {
    /// `DRV-` and 8 hex digits when not given.
    pub id: Option<String>,
    pub name: String,
    /// `default` when not given.
    pub fleet: Option<String>,
    /// `dispatch.default_capacity` when not given.
    pub capacity: Option<i32>,
    /// A unit's kind (SPEC 9), for a driver of one of `units.fleets` only.
    #[serde(default)]
    pub unit_type: Option<UnitType>,
}

impl RegisterDriver {
    pub(super) fn admit(&self, settings: &Settings, claims: &Claims) -> Result<(), AppError> {
        claims.require(&[Role::Admin], "register drivers")?;
        let bad_id = self
            .id
            .as_ref()
            .is_some_and(|id| id.is_empty() || id.len() > 64);
        if bad_id || self.name.trim().is_empty() {
            return Err(AppError::bad_request(
                "`id` must be 1 to 64 characters and `name` must not be empty",
            ));
        }
        let fleet = self.fleet.as_deref().unwrap_or("default");
        if self.unit_type.is_some() && !settings.units.is_unit_fleet(fleet) {
            return Err(AppError::bad_request(format!(
                "`unit_type` is for drivers of a unit fleet (units.fleets), not of fleet {fleet:?}"
            )));
        }
        if !(1..=100).contains(&self.capacity(settings)) {
            return Err(AppError::bad_request(
                "`capacity` must be between 1 and 100",
            ));
        }
        Ok(())
    }

    fn capacity(&self, settings: &Settings) -> i32 {
        self.capacity.unwrap_or(settings.dispatch.default_capacity)
    }

    pub(super) async fn run(self, hub: &std::sync::Arc<Hub>, answer: Option<AnswerKey>) -> Reply {
        let capacity = self.capacity(&hub.settings);
        let id = self
            .id
            .unwrap_or_else(|| format!("DRV-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        let fleet = self.fleet.unwrap_or_else(|| "default".into());
        let mut row = models::DriverRow::new_offline(id, self.name, fleet, capacity);
        row.unit_type = self.unit_type.map(|t| t.as_str().to_string());
        // The new driver as its actor will answer it, stored with the insert (SPEC 4).
        let driver = driver_state(&row, Default::default()).to_driver();
        let stored = crate::idempotency::answer_ok(answer.as_ref(), &driver);
        let r = row.clone();
        db::run(&hub.pool, move |c| {
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
        start_driver(hub, &row, Default::default());
        to_value(&driver)
    }
}

/// The driver the sender is: only a driver's token speaks for one.
pub fn own_driver(claims: &Claims, what: &str) -> Result<DriverId, AppError> {
    claims
        .driver()
        .cloned()
        .ok_or_else(|| AppError::forbidden(format!("only a driver may {what}")))
}

/// The sender's driver, when a message may name one (`driver_id`): naming another is
/// `forbidden`.
pub fn speaks_as(
    claims: &Claims,
    named: Option<&DriverId>,
    what: &str,
) -> Result<DriverId, AppError> {
    let me = own_driver(claims, what)?;
    if let Some(other) = named.filter(|d| **d != me) {
        return Err(AppError::forbidden(format!(
            "you are driver {me}: you may not {what} for driver {other}"
        )));
    }
    Ok(me)
}

/// The actor of the sender's own driver (`speaks_as`).
fn driver_actor(
    hub: &Hub,
    claims: &Claims,
    named: Option<&DriverId>,
    what: &str,
) -> Result<Addr<DriverActor>, AppError> {
    let me = speaks_as(claims, named, what)?;
    hub.driver(&me)
        .ok_or_else(|| AppError::not_found(format!("driver {me} is not registered")))
}
