//! Crowd operations' rows and queries (migration `2026-12-03-000007_crowd`): events and zones,
//! cameras' latest counts, alerts, pings with their expiry, actions and reports. The event's desk
//! writes them inside its commit's transaction; REST reads them on any node.

use crate::db::models::{from_db, to_db};
use crate::db::schema::{
    crowd_actions, crowd_alerts, crowd_counts, crowd_events, crowd_pings, crowd_reports,
    crowd_zones,
};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::protocol::crowd::{
    Action, Alert, AlertSeverity, AlertStatus, Bounds, CrowdEvent, Report, Zone,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::QueryResult;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_events)]
pub struct EventRow {
    pub id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_zones)]
pub struct ZoneRow {
    pub event_id: String,
    pub id: String,
    pub name: String,
    pub capacity: i64,
    pub threshold: i64,
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

impl ZoneRow {
    pub fn zone(&self, count: i64) -> Zone {
        Zone {
            id: self.id.clone(),
            name: self.name.clone(),
            capacity: self.capacity,
            threshold: self.threshold,
            bounds: Bounds {
                south: self.south,
                west: self.west,
                north: self.north,
                east: self.east,
            },
            count,
        }
    }

    pub fn of(event_id: &str, z: &Zone) -> ZoneRow {
        ZoneRow {
            event_id: event_id.to_string(),
            id: z.id.clone(),
            name: z.name.clone(),
            capacity: z.capacity,
            threshold: z.threshold,
            south: z.bounds.south,
            west: z.bounds.west,
            north: z.bounds.north,
            east: z.bounds.east,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_counts)]
pub struct CountRow {
    pub event_id: String,
    pub zone_id: String,
    pub camera_id: String,
    pub count: i64,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_alerts)]
pub struct AlertRow {
    pub id: String,
    pub event_id: String,
    pub zone_id: String,
    pub severity: String,
    pub status: String,
    pub message: String,
    pub count: i64,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
}

impl From<&Alert> for AlertRow {
    fn from(a: &Alert) -> AlertRow {
        AlertRow {
            id: a.id.clone(),
            event_id: a.event_id.clone(),
            zone_id: a.zone_id.clone(),
            severity: a.severity.as_str().to_string(),
            status: a.status.as_str().to_string(),
            message: a.message.clone(),
            count: a.count,
            created_at: to_db(a.created_at),
            resolved_at: a.resolved_at.map(to_db),
            resolved_by: a.resolved_by.clone(),
        }
    }
}

impl AlertRow {
    pub fn alert(self) -> Alert {
        Alert {
            id: self.id,
            kind: "overcrowding".into(),
            message: self.message,
            severity: if self.severity == "critical" {
                AlertSeverity::Critical
            } else {
                AlertSeverity::Warning
            },
            status: if self.status == "open" {
                AlertStatus::Open
            } else {
                AlertStatus::Resolved
            },
            event_id: self.event_id,
            zone_id: self.zone_id,
            count: self.count,
            created_at: from_db(self.created_at),
            resolved_at: self.resolved_at.map(from_db),
            resolved_by: self.resolved_by,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_pings)]
pub struct PingRow {
    pub event_id: String,
    pub device_id: String,
    pub lat: f64,
    pub lng: f64,
    pub at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_actions)]
pub struct ActionRow {
    pub id: String,
    pub event_id: String,
    pub command: String,
    pub zone_id: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

impl From<&Action> for ActionRow {
    fn from(a: &Action) -> ActionRow {
        ActionRow {
            id: a.id.clone(),
            event_id: a.event_id.clone(),
            command: a.command.clone(),
            zone_id: a.zone_id.clone(),
            created_by: a.created_by.clone(),
            created_at: to_db(a.created_at),
        }
    }
}

impl From<ActionRow> for Action {
    fn from(r: ActionRow) -> Action {
        Action {
            id: r.id,
            event_id: r.event_id,
            command: r.command,
            zone_id: r.zone_id,
            created_by: r.created_by,
            created_at: from_db(r.created_at),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crowd_reports)]
pub struct ReportRow {
    pub id: String,
    pub event_id: String,
    pub message: String,
    pub kind: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

impl ReportRow {
    pub fn of(event_id: &str, r: &Report) -> ReportRow {
        ReportRow {
            id: r.id.clone(),
            event_id: event_id.to_string(),
            message: r.message.clone(),
            kind: r.kind.clone(),
            created_by: r.created_by.clone(),
            created_at: to_db(r.created_at),
        }
    }
}

impl From<ReportRow> for Report {
    fn from(r: ReportRow) -> Report {
        Report {
            id: r.id,
            message: r.message,
            kind: r.kind,
            created_at: from_db(r.created_at),
            created_by: r.created_by,
        }
    }
}

/// A new event and its zones; `conflict` when the id is taken.
pub fn insert_event(c: &mut DbConnection, e: &EventRow, zones: &[ZoneRow]) -> Result<(), AppError> {
    if find_event(c, &e.id)?.is_some() {
        return Err(AppError::conflict(format!("event {} exists already", e.id)));
    }
    diesel::insert_into(crowd_events::table)
        .values(e)
        .execute(c)?;
    for z in zones {
        diesel::insert_into(crowd_zones::table)
            .values(z)
            .execute(c)?;
    }
    Ok(())
}

pub fn find_event(c: &mut DbConnection, id: &str) -> QueryResult<Option<EventRow>> {
    crowd_events::table
        .filter(crowd_events::id.eq(id))
        .select(EventRow::as_select())
        .first(c)
        .optional()
}

pub fn zones(c: &mut DbConnection, event: &str) -> QueryResult<Vec<ZoneRow>> {
    crowd_zones::table
        .filter(crowd_zones::event_id.eq(event))
        .order(crowd_zones::id.asc())
        .select(ZoneRow::as_select())
        .load(c)
}

/// The cameras' latest counts of `event` taken at or after `since` (older ones no longer count).
pub fn live_counts(
    c: &mut DbConnection,
    event: &str,
    since: DateTime<Utc>,
) -> QueryResult<Vec<CountRow>> {
    crowd_counts::table
        .filter(crowd_counts::event_id.eq(event))
        .filter(crowd_counts::at.ge(to_db(since)))
        .select(CountRow::as_select())
        .load(c)
}

/// A camera's latest count for its zone: updated, or inserted when it is its first.
pub fn save_count(c: &mut DbConnection, r: &CountRow) -> QueryResult<()> {
    let n = diesel::update(
        crowd_counts::table
            .filter(crowd_counts::event_id.eq(&r.event_id))
            .filter(crowd_counts::zone_id.eq(&r.zone_id))
            .filter(crowd_counts::camera_id.eq(&r.camera_id)),
    )
    .set((crowd_counts::count.eq(r.count), crowd_counts::at.eq(r.at)))
    .execute(c)?;
    if n == 0 {
        diesel::insert_into(crowd_counts::table)
            .values(r)
            .execute(c)?;
    }
    Ok(())
}

pub fn insert_alert(c: &mut DbConnection, a: &Alert) -> QueryResult<usize> {
    diesel::insert_into(crowd_alerts::table)
        .values(AlertRow::from(a))
        .execute(c)
}

/// Raises an open alert to `severity` at `count`: answers the rows changed.
pub fn raise_alert(c: &mut DbConnection, a: &Alert) -> QueryResult<usize> {
    diesel::update(
        crowd_alerts::table
            .filter(crowd_alerts::id.eq(&a.id))
            .filter(crowd_alerts::status.eq("open")),
    )
    .set((
        crowd_alerts::severity.eq(a.severity.as_str()),
        crowd_alerts::count.eq(a.count),
    ))
    .execute(c)
}

/// Resolves an open alert: answers the rows changed (0 when it was not open).
pub fn resolve_alert(c: &mut DbConnection, a: &Alert) -> QueryResult<usize> {
    diesel::update(
        crowd_alerts::table
            .filter(crowd_alerts::id.eq(&a.id))
            .filter(crowd_alerts::status.eq("open")),
    )
    .set((
        crowd_alerts::status.eq("resolved"),
        crowd_alerts::resolved_at.eq(a.resolved_at.map(to_db)),
        crowd_alerts::resolved_by.eq(a.resolved_by.as_deref()),
    ))
    .execute(c)
}

pub fn find_alert(c: &mut DbConnection, id: &str) -> QueryResult<Option<AlertRow>> {
    crowd_alerts::table
        .filter(crowd_alerts::id.eq(id))
        .select(AlertRow::as_select())
        .first(c)
        .optional()
}

/// An event's alerts, newest first, of `status` when given.
pub fn alerts(
    c: &mut DbConnection,
    event: &str,
    status: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AlertRow>> {
    let mut q = crowd_alerts::table
        .filter(crowd_alerts::event_id.eq(event))
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(crowd_alerts::status.eq(s.to_string()));
    }
    q.order((crowd_alerts::created_at.desc(), crowd_alerts::id.desc()))
        .limit(limit)
        .select(AlertRow::as_select())
        .load(c)
}

/// The devices' latest pings of `event` not expired at `now`.
pub fn live_pings(
    c: &mut DbConnection,
    event: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<PingRow>> {
    crowd_pings::table
        .filter(crowd_pings::event_id.eq(event))
        .filter(crowd_pings::expires_at.gt(to_db(now)))
        .select(PingRow::as_select())
        .load(c)
}

/// Each device's latest ping, updated or inserted; then the event's expired pings deleted.
pub fn save_pings(
    c: &mut DbConnection,
    event: &str,
    rows: &[PingRow],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    for r in rows {
        let n = diesel::update(
            crowd_pings::table
                .filter(crowd_pings::event_id.eq(&r.event_id))
                .filter(crowd_pings::device_id.eq(&r.device_id)),
        )
        .set((
            crowd_pings::lat.eq(r.lat),
            crowd_pings::lng.eq(r.lng),
            crowd_pings::at.eq(r.at),
            crowd_pings::expires_at.eq(r.expires_at),
        ))
        .execute(c)?;
        if n == 0 {
            diesel::insert_into(crowd_pings::table)
                .values(r)
                .execute(c)?;
        }
    }
    diesel::delete(
        crowd_pings::table
            .filter(crowd_pings::event_id.eq(event))
            .filter(crowd_pings::expires_at.le(to_db(now))),
    )
    .execute(c)?;
    Ok(())
}

pub fn insert_action(c: &mut DbConnection, a: &Action) -> QueryResult<usize> {
    diesel::insert_into(crowd_actions::table)
        .values(ActionRow::from(a))
        .execute(c)
}

pub fn actions(c: &mut DbConnection, event: &str, limit: i64) -> QueryResult<Vec<ActionRow>> {
    crowd_actions::table
        .filter(crowd_actions::event_id.eq(event))
        .order((crowd_actions::created_at.desc(), crowd_actions::id.desc()))
        .limit(limit)
        .select(ActionRow::as_select())
        .load(c)
}

pub fn insert_report(c: &mut DbConnection, event: &str, r: &Report) -> QueryResult<usize> {
    diesel::insert_into(crowd_reports::table)
        .values(ReportRow::of(event, r))
        .execute(c)
}

pub fn reports(c: &mut DbConnection, event: &str, limit: i64) -> QueryResult<Vec<ReportRow>> {
    crowd_reports::table
        .filter(crowd_reports::event_id.eq(event))
        .order((crowd_reports::created_at.desc(), crowd_reports::id.desc()))
        .limit(limit)
        .select(ReportRow::as_select())
        .load(c)
}

/// An event as stored, each zone with its count from the live cameras (`since` on).
pub fn event(
    c: &mut DbConnection,
    id: &str,
    since: DateTime<Utc>,
) -> Result<Option<CrowdEvent>, AppError> {
    let Some(e) = find_event(c, id)? else {
        return Ok(None);
    };
    let counts = live_counts(c, id, since)?;
    let zones = zones(c, id)?
        .iter()
        .map(|z| {
            let n = counts
                .iter()
                .filter(|r| r.zone_id == z.id)
                .map(|r| r.count)
                .sum();
            z.zone(n)
        })
        .collect();
    Ok(Some(CrowdEvent {
        id: e.id,
        name: e.name,
        zones,
        created_by: e.created_by,
        created_at: from_db(e.created_at),
    }))
}
