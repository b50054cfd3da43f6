//! Crowd operations' commands (SPEC 8), called by every transport through `commands::run`:
//! `POST /api/v1/events`, `POST /api/v1/cctv/objects`, `POST /api/v1/alerts/{id}/resolve`, and
//! `POST /api/v1/pings` (also the WebSocket's `ping_location`). Each checks its role, the event
//! its bearer may act on and its input before anything is stored, then hands the step to the
//! event's desk, which commits it with the answer under the request's key.

use super::desk::{self, Count, Resolve};
use super::logic;
use super::map::Ping;
use super::store::{self, EventRow, ZoneRow};
use crate::actors::Hub;
use crate::auth::Claims;
use crate::db::{self, models::to_db, queries::commit};
use crate::error::AppError;
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::crowd::{Bounds, CrowdEvent, Zone};
use crate::protocol::Role;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;

type Reply = Result<serde_json::Value, AppError>;

/// Who posts cameras' counts.
pub const COUNTERS: &[Role] = &[Role::Sensor, Role::Operator, Role::Admin];
/// Who acts on an event: resolves alerts, creates actions.
pub const OPERATORS: &[Role] = &[Role::Operator, Role::Admin];

/// Refuses unless `claims` may watch event `id` (SPEC 8: staff any, others by their claims).
pub fn require_event(claims: &Claims, id: &str) -> Result<(), AppError> {
    if claims.may_watch_event(id) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "this token may not act on event {id}: its `events` claim does not name it"
        )))
    }
}

/// A zone as `POST /api/v1/events` takes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneIn {
    pub id: String,
    pub name: String,
    pub capacity: i64,
    #[serde(default)]
    pub threshold: Option<i64>,
    pub bounds: Bounds,
}

/// `POST /api/v1/events` (admin) `{id?, name, zones}`: `201` the event, each zone at count 0.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub zones: Vec<ZoneIn>,
}

impl CreateEvent {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(&[Role::Admin], "create events")?;
        if let Some(id) = &self.id {
            logic::check_id("id", id)?;
        }
        logic::check_text("name", &self.name)?;
        if self.zones.is_empty() || self.zones.len() > logic::MAX_ZONES {
            return Err(AppError::bad_request(format!(
                "an event has 1 to {} zones",
                logic::MAX_ZONES
            )));
        }
        let mut ids = BTreeSet::new();
        for z in &self.zones {
            logic::check_id("zones[].id", &z.id)?;
            logic::check_text("zones[].name", &z.name)?;
            logic::check_bounds(&z.bounds)?;
            // The default threshold is never above the capacity; a given one is checked here.
            logic::threshold(z.threshold, z.capacity, 0)?;
            if !ids.insert(z.id.as_str()) {
                return Err(AppError::bad_request(format!(
                    "zone {} is named twice",
                    z.id
                )));
            }
        }
        Ok(())
    }

    pub(crate) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let at = desk::now();
        let id = self
            .id
            .unwrap_or_else(|| format!("EVT-{}", uuid::Uuid::new_v4().simple()));
        let default = hub.settings.crowd.default_threshold;
        let zones = self
            .zones
            .into_iter()
            .map(|z| {
                Ok(Zone {
                    threshold: logic::threshold(z.threshold, z.capacity, default)?,
                    id: z.id,
                    name: z.name,
                    capacity: z.capacity,
                    bounds: z.bounds,
                    count: 0,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let event = CrowdEvent {
            id: id.clone(),
            name: self.name,
            zones,
            created_by: claims.sub.clone(),
            created_at: at,
        };
        let value = crate::commands::to_value(&event)?;
        let row = EventRow {
            id: id.clone(),
            name: event.name.clone(),
            created_by: event.created_by.clone(),
            created_at: to_db(at),
        };
        let zone_rows: Vec<ZoneRow> = event.zones.iter().map(|z| ZoneRow::of(&id, z)).collect();
        let change = commit::Change {
            answer: answer_ok(answer.as_ref(), &value),
            ..Default::default()
        };
        db::run(&hub.pool, move |c| {
            diesel::Connection::transaction(c, |c| {
                store::insert_event(c, &row, &zone_rows)?;
                commit::apply(c, change, at)
            })
        })
        .await?;
        log::info!(
            "[CROWD] event={} created zones={} by={}",
            crate::telemetry::q(&id),
            event.zones.len(),
            crate::telemetry::q(&claims.sub)
        );
        Ok(value)
    }
}

/// `POST /api/v1/cctv/objects` `{event_id, zone_id, camera_id, count, at?}` (sensor, operator,
/// admin of the event).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraCount {
    pub event_id: String,
    pub zone_id: String,
    pub camera_id: String,
    pub count: i64,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// How far ahead of the server's clock a count's `at` may be.
const MAX_CLOCK_AHEAD_S: i64 = 60;

impl CameraCount {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(COUNTERS, "post camera counts")?;
        logic::check_id("event_id", &self.event_id)?;
        require_event(claims, &self.event_id)?;
        logic::check_id("zone_id", &self.zone_id)?;
        logic::check_id("camera_id", &self.camera_id)?;
        logic::check_count(self.count)?;
        if let Some(at) = self.at {
            if at > Utc::now() + chrono::Duration::seconds(MAX_CLOCK_AHEAD_S) {
                return Err(AppError::bad_request("`at` is in the future"));
            }
        }
        Ok(())
    }

    pub(crate) async fn run(self, hub: &Arc<Hub>, answer: Option<AnswerKey>) -> Reply {
        let desk = hub.crowd.desk(hub, &self.event_id).await?;
        desk.send(Count {
            zone_id: self.zone_id,
            camera_id: self.camera_id,
            count: self.count,
            at: self.at,
            answer,
        })
        .await?
    }
}

/// `POST /api/v1/alerts/{id}/resolve` (operator of the alert's event, admin).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResolveAlert {
    pub alert_id: String,
}

impl ResolveAlert {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(OPERATORS, "resolve alerts")
    }

    pub(crate) async fn run(
        self,
        hub: &Arc<Hub>,
        claims: &Claims,
        answer: Option<AnswerKey>,
    ) -> Reply {
        let key = self.alert_id.clone();
        let row = db::run(&hub.pool, move |c| Ok(store::find_alert(c, &key)?)).await?;
        let Some(row) = row else {
            return Err(AppError::not_found(format!(
                "alert {} does not exist",
                self.alert_id
            )));
        };
        require_event(claims, &row.event_id)?;
        let desk = hub.crowd.desk(hub, &row.event_id).await?;
        let resolved = desk
            .send(Resolve {
                alert_id: self.alert_id.clone(),
                by: claims.sub.clone(),
                answer,
            })
            .await??;
        match resolved {
            Some(a) => crate::commands::to_value(&a),
            None => Err(AppError::conflict(format!(
                "alert {} is resolved already",
                self.alert_id
            ))),
        }
    }
}

/// `ping_location` and `POST /api/v1/pings` `{event_id, lat, lng, device_id}`: sensors and
/// anyone who may watch the event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingLocation {
    pub event_id: String,
    pub device_id: String,
    pub lat: f64,
    pub lng: f64,
}

impl PingLocation {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        logic::check_id("event_id", &self.event_id)?;
        require_event(claims, &self.event_id)?;
        logic::check_id("device_id", &self.device_id)?;
        logic::check_position(self.lat, self.lng)
    }

    pub(crate) async fn run(self, hub: &Arc<Hub>) -> Reply {
        let desk = hub.crowd.desk(hub, &self.event_id).await?;
        desk.send(Ping {
            device_id: self.device_id,
            lat: self.lat,
            lng: self.lng,
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{default_rooms, may_join, OrderParties};
    use crate::protocol::Room;

    #[test]
    fn event_rooms_are_the_staffs_the_matching_observers_and_the_named_events_bearers() {
        let none = OrderParties::default();
        let e1 = Room::Event("E1".into());
        let e2 = Room::Event("E2".into());
        let mut op = Claims::new("op", Role::Operator, None, "default", 60);
        assert!(default_rooms(&op).is_empty());
        assert!(!may_join(&op, &e1, none));
        op.events = Some(vec!["E1".into()]);
        assert!(may_join(&op, &e1, none) && !may_join(&op, &e2, none));
        assert!(!may_join(&op, &Room::Dispatch, none));
        let mut sensor = Claims::new("cam", Role::Sensor, None, "default", 60);
        sensor.events = Some(vec!["*".into()]);
        assert!(may_join(&sensor, &e2, none));
        let mut driver = Claims::new("d", Role::Driver, Some("D1".into()), "default", 60);
        driver.events = Some(vec!["E2".into()]);
        assert!(may_join(&driver, &e2, none) && !may_join(&driver, &e1, none));
        for role in [Role::Admin, Role::Dispatcher] {
            assert!(Claims::new("s", role, None, "default", 60).may_watch_event("E9"));
        }
        let mut o = Claims::new("o", Role::Observer, None, "default", 60);
        o.events = Some(vec!["E1".into()]);
        assert!(!may_join(&o, &e1, none), "an observer goes by its patterns");
        o.rooms = Some(vec!["event:*".into()]);
        assert!(may_join(&o, &e2, none));
    }

    #[test]
    fn acting_on_an_event_needs_the_right_to_watch_it() {
        let mut cam = Claims::new("cam", Role::Sensor, None, "default", 60);
        cam.events = Some(vec!["E1".into()]);
        assert!(require_event(&cam, "E1").is_ok());
        let e = require_event(&cam, "E2").unwrap_err();
        assert_eq!(e.code(), crate::error::ErrorCode::Forbidden);
    }
}
