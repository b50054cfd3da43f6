//! Rows as the database holds them, and their conversions to the wire objects of `protocol`.
//! Timestamps are stored as UTC without a zone (the portable `TIMESTAMP`).

use super::schema::*;
use crate::error::AppError;
use crate::protocol::*;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

/// A UTC instant as the database stores it.
pub fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// A stored timestamp as a UTC instant.
pub fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Reads an enum column; only our code writes these, so a bad value is an internal error.
fn parse<T: std::str::FromStr<Err = String>>(s: &str, what: &str) -> Result<T, AppError> {
    s.parse()
        .map_err(|e| AppError::internal(format!("unreadable {what} in the database: {e}")))
}

/// A driver row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = drivers)]
pub struct DriverRow {
    pub id: String,
    pub name: String,
    pub fleet: String,
    pub capacity: i32,
    pub status: String,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub speed: Option<f64>,
    pub heading: Option<f64>,
    pub location_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// A unit fleet's driver's kind (SPEC 9), `None` for a delivery driver.
    pub unit_type: Option<String>,
}

impl DriverRow {
    /// A new driver, offline and nowhere yet.
    pub fn new_offline(id: String, name: String, fleet: String, capacity: i32) -> DriverRow {
        let now = to_db(chrono::Utc::now());
        DriverRow {
            id,
            name,
            fleet,
            capacity,
            status: AvailabilityStatus::Offline.as_str().to_string(),
            lat: None,
            lng: None,
            speed: None,
            heading: None,
            location_at: None,
            created_at: now,
            updated_at: now,
            unit_type: None,
        }
    }

    /// The unit's kind, when it is one (an unknown stored value reads as none).
    pub fn unit_type(&self) -> Option<UnitType> {
        self.unit_type.as_deref().and_then(|t| t.parse().ok())
    }

    /// The driver's last location, when it has reported one.
    pub fn location(&self) -> Option<Location> {
        match (self.lat, self.lng, self.location_at) {
            (Some(lat), Some(lng), Some(at)) => Some(Location {
                lat,
                lng,
                speed: self.speed,
                heading: self.heading,
                timestamp: from_db(at),
            }),
            _ => None,
        }
    }

    /// Whether the driver had set itself online.
    pub fn is_online(&self) -> bool {
        self.status == AvailabilityStatus::Online.as_str()
    }
}

/// An order row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = orders, treat_none_as_null = true)]
pub struct OrderRow {
    pub id: String,
    pub status: String,
    pub driver_id: Option<String>,
    pub fleet: String,
    pub priority: String,
    pub pickup_lat: f64,
    pub pickup_lng: f64,
    pub dropoff_lat: f64,
    pub dropoff_lng: f64,
    pub version: i64,
    pub accepted_at: Option<NaiveDateTime>,
    pub eta: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub customer_id: Option<String>,
    pub partner_id: Option<String>,
}

impl TryFrom<OrderRow> for Order {
    type Error = AppError;
    fn try_from(r: OrderRow) -> Result<Order, AppError> {
        Ok(Order {
            status: parse(&r.status, "order status")?,
            priority: parse(&r.priority, "priority")?,
            id: OrderId(r.id),
            driver_id: r.driver_id.map(DriverId),
            fleet: r.fleet,
            pickup: LatLng {
                lat: r.pickup_lat,
                lng: r.pickup_lng,
            },
            dropoff: LatLng {
                lat: r.dropoff_lat,
                lng: r.dropoff_lng,
            },
            version: r.version,
            accepted_at: r.accepted_at.map(from_db),
            eta: r.eta.map(from_db),
            created_at: from_db(r.created_at),
            updated_at: from_db(r.updated_at),
            customer_id: r.customer_id,
            partner_id: r.partner_id,
        })
    }
}

impl From<&Order> for OrderRow {
    fn from(o: &Order) -> OrderRow {
        OrderRow {
            id: o.id.0.clone(),
            status: o.status.as_str().to_string(),
            driver_id: o.driver_id.as_ref().map(|d| d.0.clone()),
            fleet: o.fleet.clone(),
            priority: o.priority.as_str().to_string(),
            pickup_lat: o.pickup.lat,
            pickup_lng: o.pickup.lng,
            dropoff_lat: o.dropoff.lat,
            dropoff_lng: o.dropoff.lng,
            version: o.version,
            accepted_at: o.accepted_at.map(to_db),
            eta: o.eta.map(to_db),
            created_at: to_db(o.created_at),
            updated_at: to_db(o.updated_at),
            customer_id: o.customer_id.clone(),
            partner_id: o.partner_id.clone(),
        }
    }
}

/// One report and what was decided.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: String,
    pub order_id: String,
    pub driver_id: Option<String>,
    pub reported_by: String,
    pub kind: String,
    pub comment: Option<String>,
    pub risk_score: f64,
    pub risk_source: String,
    pub action_taken: String,
    pub old_driver_id: Option<String>,
    pub new_driver_id: Option<String>,
    pub created_at: NaiveDateTime,
}

impl From<&EmergencyEvent> for IncidentRow {
    fn from(e: &EmergencyEvent) -> IncidentRow {
        IncidentRow {
            id: e.event_id.0.clone(),
            order_id: e.order_id.0.clone(),
            driver_id: e.driver_id.as_ref().map(|d| d.0.clone()),
            reported_by: e.reported_by.clone(),
            kind: e.kind.as_str().to_string(),
            comment: e.comment.clone(),
            risk_score: e.risk_score,
            risk_source: e.risk_source.as_str().to_string(),
            action_taken: e.action_taken.as_str().to_string(),
            old_driver_id: e.driver_id.as_ref().map(|d| d.0.clone()),
            new_driver_id: e.new_driver_id.as_ref().map(|d| d.0.clone()),
            created_at: to_db(e.timestamp),
        }
    }
}

impl TryFrom<IncidentRow> for EmergencyEvent {
    type Error = AppError;
    fn try_from(r: IncidentRow) -> Result<EmergencyEvent, AppError> {
        let kind: IncidentKind = parse(&r.kind, "incident kind")?;
        Ok(EmergencyEvent {
            event_id: EventId(r.id),
            order_id: OrderId(r.order_id),
            driver_id: r.old_driver_id.or(r.driver_id).map(DriverId),
            kind,
            reason: kind_reason(kind).to_string(),
            comment: r.comment,
            risk_score: r.risk_score,
            risk_source: parse(&r.risk_source, "risk source")?,
            action_taken: parse(&r.action_taken, "action")?,
            new_driver_id: r.new_driver_id.map(DriverId),
            reported_by: r.reported_by,
            timestamp: from_db(r.created_at),
        })
    }
}

/// One admin override.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit)]
pub struct AuditRow {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub order_id: String,
    pub from_driver_id: Option<String>,
    pub to_driver_id: Option<String>,
    pub reason: String,
    pub forced: i32,
    pub created_at: NaiveDateTime,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> AuditEntry {
        AuditEntry {
            id: r.id,
            actor: r.actor,
            action: r.action,
            order_id: OrderId(r.order_id),
            from_driver_id: r.from_driver_id.map(DriverId),
            to_driver_id: r.to_driver_id.map(DriverId),
            reason: r.reason,
            forced: r.forced != 0,
            created_at: from_db(r.created_at),
        }
    }
}

/// One published room message, as sent.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_events)]
pub struct RoomEventRow {
    pub room: String,
    pub seq: i64,
    pub id: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
}

/// One driver's SOS.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sos_alerts)]
pub struct SosRow {
    pub alert_id: String,
    pub driver_id: String,
    pub fleet: String,
    pub lat: f64,
    pub lng: f64,
    pub message: Option<String>,
    pub created_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub resolved_by: Option<String>,
}

impl From<&SosAlert> for SosRow {
    fn from(a: &SosAlert) -> SosRow {
        SosRow {
            alert_id: a.alert_id.clone(),
            driver_id: a.driver_id.0.clone(),
            fleet: a.fleet.clone(),
            lat: a.lat,
            lng: a.lng,
            message: a.message.clone(),
            created_at: to_db(a.created_at),
            resolved_at: a.resolved_at.map(to_db),
            resolved_by: a.resolved_by.clone(),
        }
    }
}

impl From<SosRow> for SosAlert {
    fn from(r: SosRow) -> SosAlert {
        SosAlert {
            alert_id: r.alert_id,
            driver_id: DriverId(r.driver_id),
            fleet: r.fleet,
            lat: r.lat,
            lng: r.lng,
            message: r.message,
            created_at: from_db(r.created_at),
            resolved_at: r.resolved_at.map(from_db),
            resolved_by: r.resolved_by,
        }
    }
}

/// One sampled position of a driver's track.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = track_points)]
#[diesel(treat_none_as_default_value = false)]
pub struct TrackPointRow {
    pub driver_id: String,
    pub at: NaiveDateTime,
    pub lat: f64,
    pub lng: f64,
    pub speed: Option<f64>,
    pub heading: Option<f64>,
}

impl TrackPointRow {
    /// `driver`'s position `loc`, sampled.
    pub fn sample(driver: &DriverId, loc: &Location) -> TrackPointRow {
        TrackPointRow {
            driver_id: driver.0.clone(),
            at: to_db(loc.timestamp),
            lat: loc.lat,
            lng: loc.lng,
            speed: loc.speed,
            heading: loc.heading,
        }
    }

    /// The position as the track answers it.
    pub fn to_location(&self) -> Location {
        Location {
            lat: self.lat,
            lng: self.lng,
            speed: self.speed,
            heading: self.heading,
            timestamp: from_db(self.at),
        }
    }
}
/// One emergency (SPEC 9).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = emergencies)]
pub struct EmergencyRow {
    pub request_id: String,
    pub kind: String,
    pub description: String,
    pub severity: String,
    pub lat: f64,
    pub lng: f64,
    pub status: String,
    pub unit_id: Option<String>,
    pub reported_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl From<&Emergency> for EmergencyRow {
    fn from(e: &Emergency) -> EmergencyRow {
        EmergencyRow {
            request_id: e.request_id.clone(),
            kind: e.kind.as_str().to_string(),
            description: e.description.clone(),
            severity: e.severity.as_str().to_string(),
            lat: e.location.lat,
            lng: e.location.lng,
            status: e.status.as_str().to_string(),
            unit_id: e.unit_id.as_ref().map(|u| u.0.clone()),
            reported_by: e.reported_by.clone(),
            created_at: to_db(e.created_at),
            updated_at: to_db(e.updated_at),
        }
    }
}

impl TryFrom<EmergencyRow> for Emergency {
    type Error = AppError;
    fn try_from(r: EmergencyRow) -> Result<Emergency, AppError> {
        Ok(Emergency {
            request_id: r.request_id,
            kind: parse(&r.kind, "emergency type")?,
            description: r.description,
            severity: parse(&r.severity, "severity")?,
            location: LatLng {
                lat: r.lat,
                lng: r.lng,
            },
            status: parse(&r.status, "emergency status")?,
            unit_id: r.unit_id.map(DriverId),
            reported_by: r.reported_by,
            created_at: from_db(r.created_at),
            updated_at: from_db(r.updated_at),
        })
    }
}
