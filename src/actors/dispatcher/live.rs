//! What the Dispatcher batches for the dashboards: presence (`fleet:<f>`, at most once per
//! `realtime.presence_flush_ms`) and locations (`dispatch`, at most once per
//! `realtime.location_flush_ms`, newest position wins). Both are ephemeral: no seq, no history.

use super::*;
use crate::protocol::server::{DriverLocation, PresenceChange};

/// A driver moved.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DriverMoved {
    pub id: DriverId,
    pub location: Location,
}

impl Dispatcher {
    pub(super) fn record_presence(
        &mut self,
        fleet: &str,
        id: &DriverId,
        name: &str,
        status: DriverStatus,
    ) {
        self.presence.entry(fleet.to_string()).or_default().insert(
            id.clone(),
            PresenceChange {
                driver_id: id.clone(),
                name: name.to_string(),
                status,
            },
        );
    }

    /// At most once per `presence_flush_ms`: one `presence` batch per fleet that changed.
    pub(super) fn flush_presence(&mut self, _: &mut Context<Self>) {
        for (fleet, changes) in std::mem::take(&mut self.presence) {
            let online = self.index.online_in(&fleet);
            let total = changes.len();
            let changes: Vec<_> = changes.into_values().take(50).collect();
            let msg = ServerMsg::Presence {
                fleet: fleet.clone(),
                online,
                changes,
                truncated: (total > 50).then(|| total - 50),
            };
            crate::actors::publish_ephemeral(&self.hub, Room::Fleet(fleet), &msg);
        }
    }

    /// At most once per `location_flush_ms`: one `locations` batch to `dispatch`, newest wins.
    pub(super) fn flush_locations(&mut self, _: &mut Context<Self>) {
        if self.moved.is_empty() {
            return;
        }
        let drivers: Vec<_> = std::mem::take(&mut self.moved).into_values().collect();
        let msg = ServerMsg::Locations { drivers };
        crate::actors::publish_ephemeral(&self.hub, Room::Dispatch, &msg);
    }
}

impl Handler<DriverMoved> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: DriverMoved, _: &mut Context<Self>) {
        self.index.set_location(&msg.id, msg.location.point());
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
