//! The live map of an event (SPEC 8): devices' pings taken at once by the desk, and at most one
//! `map:update` per `crowd.map_flush_ms` batching that interval's pings, or saying that pings
//! expired. Its `points` are the interval's devices (at most `crowd.map_max_points`), its
//! `density` every non-empty cell of the whole event, so the counts add up to the live devices.
//! It is ephemeral: no seq, no history; the latest is kept for a joining session (`Directory`).
//! The interval's pings are then written in one batch, with the event's expired ones deleted.

use super::desk::{now, ttl, Device, EventDesk};
use super::grid::Grid;
use super::store::{self, PingRow};
use crate::actors::registry::PublishEphemeral;
use crate::db::{self, models::to_db};
use crate::error::AppError;
use crate::protocol::crowd::{CrowdMap, Point};
use crate::protocol::{server, ServerMsg};
use crate::telemetry::q;
use actix::prelude::*;
use std::sync::Arc;

/// A device's ping (`POST /api/v1/pings`, `ping_location`); answers it as taken.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, AppError>")]
pub struct Ping {
    pub device_id: String,
    pub lat: f64,
    pub lng: f64,
}

impl Handler<Ping> for EventDesk {
    type Result = Result<serde_json::Value, AppError>;

    fn handle(&mut self, msg: Ping, _: &mut Context<Self>) -> Self::Result {
        let at = now();
        let expires = at + ttl(&self.hub);
        self.devices.insert(
            msg.device_id.clone(),
            Device {
                lat: msg.lat,
                lng: msg.lng,
                at,
            },
        );
        if self.fresh_set.insert(msg.device_id.clone()) {
            self.fresh.push(msg.device_id.clone());
        }
        self.unsaved.insert(
            msg.device_id.clone(),
            PingRow {
                event_id: self.id.clone(),
                device_id: msg.device_id.clone(),
                lat: msg.lat,
                lng: msg.lng,
                at: to_db(at),
                expires_at: to_db(expires),
            },
        );
        Ok(serde_json::json!({
            "eventId": self.id,
            "deviceId": msg.device_id,
            "lat": msg.lat,
            "lng": msg.lng,
            "expiresAt": expires,
        }))
    }
}

/// The map of `devices`, with `points` those of `fresh` (at most `max`).
pub fn build_map<'a>(
    grid: Grid,
    devices: impl Iterator<Item = &'a Device>,
    fresh: impl Iterator<Item = &'a Device>,
    max: usize,
    source: &str,
) -> CrowdMap {
    CrowdMap {
        points: fresh
            .take(max)
            .map(|d| Point {
                lat: d.lat,
                lng: d.lng,
            })
            .collect(),
        density: grid.density(devices.map(|d| (d.lat, d.lng))),
        updated_at: chrono::Utc::now(),
        source: source.to_string(),
    }
}

impl EventDesk {
    /// Drops the expired devices; publishes a `map:update` when pings came or went; writes the
    /// interval's pings.
    pub(super) fn flush_map(&mut self, _: &mut Context<Self>) {
        let at = now();
        let cutoff = at - ttl(&self.hub);
        let before = self.devices.len();
        self.devices.retain(|_, d| d.at > cutoff);
        let expired = self.devices.len() < before;
        if self.fresh.is_empty() && !expired && !self.map_due {
            return;
        }
        self.map_due = false;
        let settings = &self.hub.settings.crowd;
        let source = if !self.fresh.is_empty() {
            "pings"
        } else if expired {
            "expiry"
        } else {
            "snapshot"
        };
        let fresh = self.fresh.iter().filter_map(|id| self.devices.get(id));
        let map = build_map(
            Grid::new(settings.cell_m),
            self.devices.values(),
            fresh,
            settings.map_max_points,
            source,
        );
        log::debug!(
            "[BROADCAST] event={} map:update points={} cells={} live={}",
            q(&self.id),
            map.points.len(),
            map.density.len(),
            self.devices.len()
        );
        self.fresh.clear();
        self.fresh_set.clear();
        let msg = ServerMsg::MapUpdate { data: map };
        publish_latest(&self.hub, &self.id, &msg);
        self.save_pings(at);
    }

    /// Writes the pings taken since the last write, and deletes the expired ones.
    fn save_pings(&mut self, at: chrono::DateTime<chrono::Utc>) {
        let rows: Vec<PingRow> = self.unsaved.drain().map(|(_, r)| r).collect();
        let (pool, id) = (self.hub.pool.clone(), self.id.clone());
        actix::spawn(async move {
            let event = id.clone();
            let saved = db::run(&pool, move |c| {
                diesel::Connection::transaction(c, |c| Ok(store::save_pings(c, &event, &rows, at)?))
            })
            .await;
            if let Err(e) = saved {
                log::error!(
                    "[CROWD] event={} pings not written: {}",
                    q(&id),
                    q(&e.to_string())
                );
            }
        });
    }
}

/// Sends an ephemeral message of event `id` to its room and keeps it as the latest of its type,
/// for a session that joins later.
pub fn publish_latest(hub: &Arc<crate::actors::Hub>, id: &str, msg: &ServerMsg) {
    let room = crate::protocol::Room::Event(id.to_string());
    let text: bytestring::ByteString = server::envelope(
        msg,
        &room.to_string(),
        None,
        &uuid::Uuid::new_v4().to_string(),
    )
    .into();
    hub.crowd.keep_latest(id, msg.kind(), text.clone());
    hub.rooms.do_send(PublishEphemeral {
        room,
        kind: msg.kind(),
        text,
    });
}
