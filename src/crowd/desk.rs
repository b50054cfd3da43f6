//! `EventDesk`: the one writer of one crowd event within a node (the leader's, in a cluster).
//!
//! It holds the event's zones with their cameras' latest counts, open alert and whether a new
//! alert may come, and the devices' latest pings; it decides from them (`logic`) and commits
//! every step that others hear of (the rows, the room messages, the answer under the request's
//! key: one transaction through `db::queries::commit`) before the next is looked at. The live
//! map is ephemeral: pings are taken at once, and every `crowd.map_flush_ms` the ones of that
//! interval (and any expiry) make one `map:update`, then are written in one batch (`map`). It is
//! started on first use from the database (`Directory::desk`), so it rebuilds after a restart.

use super::logic::{self, AlertStep, Limits};
use super::store::{self, AlertRow, CountRow, EventRow, PingRow, ZoneRow};
use crate::actors::{publish, Hub};
use crate::db::models::{from_db, to_db};
use crate::db::queries::commit::{self, Publication};
use crate::db::{self, DbConnection};
use crate::error::AppError;
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::crowd::{Alert, AlertSeverity, AlertStatus};
use crate::protocol::{Room, ServerMsg};
use crate::telemetry::q;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// What the desk starts from: the event as stored.
pub struct Loaded {
    pub event: EventRow,
    pub zones: Vec<ZoneRow>,
    pub counts: Vec<CountRow>,
    pub open: Vec<AlertRow>,
    pub pings: Vec<PingRow>,
}

/// Reads event `id` for its desk; `None` when it does not exist.
pub fn load(
    c: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<Option<Loaded>, AppError> {
    let Some(event) = store::find_event(c, id)? else {
        return Ok(None);
    };
    Ok(Some(Loaded {
        zones: store::zones(c, id)?,
        counts: store::live_counts(c, id, now - ttl)?,
        open: store::alerts(c, id, Some("open"), logic::MAX_ZONES as i64)?,
        pings: store::live_pings(c, id, now)?,
        event,
    }))
}

/// The time to stamp, at the databases' precision (microseconds).
pub fn now() -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
}

/// A zone as the desk holds it.
pub(super) struct ZoneLive {
    pub row: ZoneRow,
    /// Each camera's latest count and when it was taken.
    pub cameras: BTreeMap<String, (i64, DateTime<Utc>)>,
    pub open: Option<Alert>,
    /// Whether a new alert may come (see `logic::decide`).
    pub armed: bool,
}

impl ZoneLive {
    fn limits(&self) -> Limits {
        Limits {
            threshold: self.row.threshold,
            capacity: self.row.capacity,
        }
    }
}

/// A device's latest ping.
#[derive(Debug, Clone, Copy)]
pub struct Device {
    pub lat: f64,
    pub lng: f64,
    pub at: DateTime<Utc>,
}

/// One event's desk.
pub struct EventDesk {
    pub(super) hub: Arc<Hub>,
    pub(super) id: String,
    pub(super) zones: BTreeMap<String, ZoneLive>,
    pub(super) devices: HashMap<String, Device>,
    /// Devices that pinged since the last `map:update`, in the order they first did.
    pub(super) fresh: Vec<String>,
    pub(super) fresh_set: HashSet<String>,
    /// Pings not yet written.
    pub(super) unsaved: HashMap<String, PingRow>,
    /// A map is due without new pings (the desk just started with live devices).
    pub(super) map_due: bool,
    /// The zones' loads of the last minutes, oldest first, for the risk model's trend.
    pub(super) samples: std::collections::VecDeque<super::insight::Sample>,
}

type Fut<T> = ResponseActFuture<EventDesk, T>;

fn ready<T: 'static>(v: T) -> Fut<T> {
    Box::pin(fut::ready(v))
}

/// A camera's count for its zone (`POST /api/v1/cctv/objects`); answers what it changed.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, AppError>")]
pub struct Count {
    pub zone_id: String,
    pub camera_id: String,
    pub count: i64,
    pub at: Option<DateTime<Utc>>,
    pub answer: Option<AnswerKey>,
}

/// Resolves an open alert for `by`; `None` when the desk holds no open alert of that id.
#[derive(Message)]
#[rtype(result = "Result<Option<Alert>, AppError>")]
pub struct Resolve {
    pub alert_id: String,
    pub by: String,
    pub answer: Option<AnswerKey>,
}

impl EventDesk {
    pub fn new(hub: Arc<Hub>, loaded: Loaded) -> EventDesk {
        let id = loaded.event.id.clone();
        let since = now() - ttl(&hub);
        let mut zones: BTreeMap<String, ZoneLive> = loaded
            .zones
            .into_iter()
            .map(|row| {
                let z = ZoneLive {
                    row,
                    cameras: BTreeMap::new(),
                    open: None,
                    armed: true,
                };
                (z.row.id.clone(), z)
            })
            .collect();
        for c in loaded.counts {
            if let Some(z) = zones.get_mut(&c.zone_id) {
                z.cameras.insert(c.camera_id, (c.count, from_db(c.at)));
            }
        }
        for a in loaded.open {
            if let Some(z) = zones.get_mut(&a.zone_id) {
                z.open = Some(a.alert());
            }
        }
        for z in zones.values_mut() {
            // Without an open alert, a zone over its threshold had its alert resolved while high.
            z.armed = logic::zone_count(&z.cameras, since) <= z.row.threshold || z.open.is_some();
        }
        let devices: HashMap<String, Device> = loaded
            .pings
            .into_iter()
            .map(|p| {
                let d = Device {
                    lat: p.lat,
                    lng: p.lng,
                    at: from_db(p.at),
                };
                (p.device_id, d)
            })
            .collect();
        EventDesk {
            hub,
            id,
            zones,
            map_due: !devices.is_empty(),
            devices,
            fresh: Vec::new(),
            fresh_set: HashSet::new(),
            unsaved: HashMap::new(),
            samples: Default::default(),
        }
    }

    pub(super) fn room(&self) -> Room {
        Room::Event(self.id.clone())
    }

    /// Commits `write` with `messages` and the answer `value` under `answer`, then publishes.
    pub(super) fn commit<W>(
        &mut self,
        what: &'static str,
        write: W,
        messages: Vec<Publication>,
        value: serde_json::Value,
        answer: Option<AnswerKey>,
    ) -> Fut<Result<serde_json::Value, AppError>>
    where
        W: FnOnce(&mut DbConnection) -> Result<(), AppError> + Send + 'static,
    {
        let change = commit::Change {
            messages,
            answer: answer_ok(answer.as_ref(), &value),
            ..Default::default()
        };
        let pool = self.hub.pool.clone();
        let at = now();
        let job = async move {
            db::run(&pool, move |c| {
                diesel::Connection::transaction(c, |c| {
                    write(c)?;
                    commit::apply(c, change, at)
                })
            })
            .await
        };
        Box::pin(job.into_actor(self).map(move |res, act, _| {
            let published = res?;
            let hub = act.hub.clone();
            actix::spawn(async move { publish(&hub, what, published).await });
            Ok(value)
        }))
    }
}

/// `crowd.ping_ttl_s` as a chrono duration.
pub fn ttl(hub: &Hub) -> chrono::Duration {
    chrono::Duration::seconds(hub.settings.crowd.ping_ttl_s as i64)
}

impl Actor for EventDesk {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        log::info!(
            "[CROWD] event={} desk started zones={} live_devices={}",
            q(&self.id),
            self.zones.len(),
            self.devices.len()
        );
        ctx.run_interval(self.hub.settings.crowd.map_flush(), Self::flush_map);
        ctx.run_interval(
            self.hub.settings.crowd.insight_interval(),
            Self::push_insights,
        );
    }
}

impl Handler<Count> for EventDesk {
    type Result = AtomicResponse<Self, Result<serde_json::Value, AppError>>;

    fn handle(&mut self, msg: Count, _: &mut Context<Self>) -> Self::Result {
        let Some(z) = self.zones.get(&msg.zone_id) else {
            return AtomicResponse::new(ready(Err(AppError::not_found(format!(
                "event {} has no zone {}",
                self.id, msg.zone_id
            )))));
        };
        let at_now = now();
        let at = msg.at.unwrap_or(at_now);
        let mut cameras = z.cameras.clone();
        cameras.insert(msg.camera_id.clone(), (msg.count, at));
        let total = logic::zone_count(&cameras, at_now - ttl(&self.hub));
        let limits = z.limits();
        let (step, armed) =
            logic::decide(limits, total, z.open.as_ref().map(|a| a.severity), z.armed);
        let room = self.room();
        let (alert, messages, alert_write) = match (step, z.open.clone()) {
            (AlertStep::Open(severity), _) => {
                let a = Alert {
                    id: format!("ALR-{}", uuid::Uuid::new_v4().simple()),
                    kind: "overcrowding".into(),
                    message: logic::alert_message(&z.row.name, total, limits, severity),
                    severity,
                    status: AlertStatus::Open,
                    event_id: self.id.clone(),
                    zone_id: z.row.id.clone(),
                    count: total,
                    created_at: at_now,
                    resolved_at: None,
                    resolved_by: None,
                };
                let m = Publication::to(room, ServerMsg::AlertNew { data: a.clone() });
                (Some(a.clone()), vec![m], Some((a, true)))
            }
            (AlertStep::Raise, Some(mut a)) => {
                a.severity = AlertSeverity::Critical;
                a.count = total;
                a.message = logic::alert_message(&z.row.name, total, limits, a.severity);
                let m = Publication::to(room, ServerMsg::AlertUpdated { data: a.clone() });
                (Some(a.clone()), vec![m], Some((a, false)))
            }
            (_, open) => (open, Vec::new(), None),
        };
        let value = serde_json::json!({
            "eventId": self.id,
            "zoneId": msg.zone_id,
            "cameraId": msg.camera_id,
            "count": msg.count,
            "zoneCount": total,
            "alert": alert,
        });
        let row = CountRow {
            event_id: self.id.clone(),
            zone_id: msg.zone_id.clone(),
            camera_id: msg.camera_id.clone(),
            count: msg.count,
            at: to_db(at),
        };
        let write = move |c: &mut DbConnection| -> Result<(), AppError> {
            store::save_count(c, &row)?;
            match &alert_write {
                Some((a, true)) => {
                    store::insert_alert(c, a)?;
                }
                Some((a, false)) if store::raise_alert(c, a)? == 0 => {
                    return Err(AppError::conflict(format!(
                        "alert {} is no longer open",
                        a.id
                    )));
                }
                _ => {}
            }
            Ok(())
        };
        let zone_id = msg.zone_id;
        let committed = self
            .commit("crowd_count", write, messages, value, msg.answer)
            .map(move |res, act, _| {
                let v = res?;
                if let Some(z) = act.zones.get_mut(&zone_id) {
                    z.cameras = cameras;
                    z.armed = armed;
                    if step != AlertStep::Nothing {
                        log::info!(
                            "[CROWD] event={} zone={} count={total} alert={:?}",
                            q(&act.id),
                            q(&zone_id),
                            step
                        );
                        z.open = alert;
                    }
                }
                Ok(v)
            });
        AtomicResponse::new(Box::pin(committed))
    }
}

impl Handler<Resolve> for EventDesk {
    type Result = AtomicResponse<Self, Result<Option<Alert>, AppError>>;

    fn handle(&mut self, msg: Resolve, _: &mut Context<Self>) -> Self::Result {
        let found = self
            .zones
            .values()
            .find(|z| z.open.as_ref().is_some_and(|a| a.id == msg.alert_id));
        let Some((zone_id, mut a)) = found.and_then(|z| Some((z.row.id.clone(), z.open.clone()?)))
        else {
            return AtomicResponse::new(ready(Ok(None)));
        };
        a.status = AlertStatus::Resolved;
        a.resolved_at = Some(now());
        a.resolved_by = Some(msg.by);
        let messages = vec![Publication::to(
            self.room(),
            ServerMsg::AlertUpdated { data: a.clone() },
        )];
        let value = match crate::commands::to_value(&a) {
            Ok(v) => v,
            Err(e) => return AtomicResponse::new(ready(Err(e))),
        };
        let row = a.clone();
        let write = move |c: &mut DbConnection| -> Result<(), AppError> {
            if store::resolve_alert(c, &row)? == 0 {
                return Err(AppError::conflict(format!(
                    "alert {} is resolved already",
                    row.id
                )));
            }
            Ok(())
        };
        let since = now() - ttl(&self.hub);
        let committed = self
            .commit("crowd_resolve", write, messages, value, msg.answer)
            .map(move |res, act, _| {
                res?;
                if let Some(z) = act.zones.get_mut(&zone_id) {
                    z.open = None;
                    // The next alert comes when the count crosses the threshold from below.
                    z.armed = logic::zone_count(&z.cameras, since) <= z.row.threshold;
                }
                log::info!(
                    "[CROWD] event={} alert={} resolved by={}",
                    q(&act.id),
                    q(&a.id),
                    q(a.resolved_by.as_deref().unwrap_or(""))
                );
                Ok(Some(a))
            });
        AtomicResponse::new(Box::pin(committed))
    }
}
