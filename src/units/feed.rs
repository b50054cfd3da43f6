//! What the emergency desk hears of units and the open emergencies: each unit's availability,
//! type and position from its driver actor (the same actors, presence and locations deliveries
//! use), the open emergencies rebuilt from the database at start, and the units' positions
//! batched to `unit_tracking` like `locations` to `dispatch` (at most once per
//! `realtime.location_flush_ms`, newest wins, ephemeral).

use super::desk::{EmergencyDesk, UnitLive};
use crate::actors::driver::{DriverState, EmergencyTaken};
use crate::actors::Hub;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::server::DriverLocation;
use crate::protocol::*;
use actix::prelude::*;

/// A unit's availability, type or registration (from its driver actor).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct UnitChanged {
    pub id: DriverId,
    pub name: String,
    pub fleet: String,
    pub unit_type: Option<UnitType>,
    pub online: bool,
    pub location: Option<Location>,
}

/// A unit moved.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct UnitMoved {
    pub id: DriverId,
    pub location: Location,
}

/// Reloads the open emergencies from the database (at start, and when this node takes the
/// lead), telling each assigned unit's driver actor it is on one.
#[derive(Message)]
#[rtype(result = "Result<usize, AppError>")]
pub struct Rebuild;

/// Tells the desk of a unit's state, when `state` is a unit fleet's driver.
pub fn unit_changed(hub: &Hub, state: &DriverState) {
    if hub.settings.units.is_unit_fleet(&state.fleet) {
        hub.units.do_send(UnitChanged {
            id: state.id.clone(),
            name: state.name.clone(),
            fleet: state.fleet.clone(),
            unit_type: state.unit_type,
            online: state.online,
            location: state.location,
        });
    }
}

/// Tells the desk a unit moved, when `state` is a unit fleet's driver.
pub fn unit_moved(hub: &Hub, state: &DriverState, location: Location) {
    if hub.settings.units.is_unit_fleet(&state.fleet) {
        hub.units.do_send(UnitMoved {
            id: state.id.clone(),
            location,
        });
    }
}

/// Tells unit `id`'s driver actor the emergency it is on now (`None`: free), so its driver
/// shows `busy` meanwhile.
pub(super) fn tell_driver(hub: &Hub, id: &DriverId, emergency: Option<String>) {
    if let Some(a) = hub.driver(id) {
        a.do_send(EmergencyTaken { emergency });
    }
}

impl EmergencyDesk {
    /// At most once per `location_flush_ms`: one `locations` batch to `unit_tracking`.
    pub(super) fn flush_locations(&mut self, _: &mut Context<Self>) {
        if self.moved.is_empty() {
            return;
        }
        let drivers: Vec<_> = std::mem::take(&mut self.moved).into_values().collect();
        let msg = ServerMsg::Locations { drivers };
        crate::actors::publish_ephemeral(&self.hub, Room::UnitTracking, &msg);
    }
}

impl Handler<UnitChanged> for EmergencyDesk {
    type Result = ();

    fn handle(&mut self, msg: UnitChanged, ctx: &mut Context<Self>) {
        let came_online = msg.online && !self.units.get(&msg.id).is_some_and(|u| u.online);
        self.units.insert(
            msg.id,
            UnitLive {
                name: msg.name,
                fleet: msg.fleet,
                unit_type: msg.unit_type,
                online: msg.online,
                location: msg.location,
            },
        );
        if came_online {
            self.queue_dispatch(ctx);
        }
    }
}

impl Handler<UnitMoved> for EmergencyDesk {
    type Result = ();

    fn handle(&mut self, msg: UnitMoved, _: &mut Context<Self>) {
        if let Some(u) = self.units.get_mut(&msg.id) {
            u.location = Some(msg.location);
        }
        let l = msg.location;
        self.moved.insert(
            msg.id.clone(),
            DriverLocation {
                driver_id: msg.id,
                lat: l.lat,
                lng: l.lng,
                speed: l.speed,
                heading: l.heading,
                timestamp: l.timestamp,
            },
        );
    }
}

impl Handler<Rebuild> for EmergencyDesk {
    type Result = AtomicResponse<Self, Result<usize, AppError>>;

    fn handle(&mut self, _: Rebuild, _: &mut Context<Self>) -> Self::Result {
        let pool = self.hub.pool.clone();
        let load = async move { db::run(&pool, |c| Ok(queries::emergencies::active(c)?)).await };
        AtomicResponse::new(Box::pin(load.into_actor(self).map(|res, act, ctx| {
            let mut open = std::collections::BTreeMap::new();
            for row in res? {
                let e = Emergency::try_from(row)?;
                open.insert(e.request_id.clone(), e);
            }
            for e in open.values() {
                if let (EmergencyStatus::Assigned, Some(u)) = (e.status, &e.unit_id) {
                    tell_driver(&act.hub, u, Some(e.request_id.clone()));
                }
            }
            let n = open.len();
            act.open = open;
            act.queue_dispatch(ctx);
            Ok(n)
        })))
    }
}
