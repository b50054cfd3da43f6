//! Crowd operations' wire types (SPEC 8): camelCase, as the dashboards built for the CrowdShield
//! system read them, carried in a message's `data` (and returned as they are by REST).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A zone's bounds, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

/// A zone of an event, with its latest count (the sum of its live cameras' latest counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub capacity: i64,
    pub threshold: i64,
    pub bounds: Bounds,
    pub count: i64,
}

/// A crowd event: `POST /api/v1/events`, `GET /api/v1/events/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrowdEvent {
    pub id: String,
    pub name: String,
    pub zones: Vec<Zone>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// How bad an overcrowding alert is: `warning` above the threshold, `critical` above the
/// capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    Warning,
    Critical,
}

impl AlertSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// An overcrowding alert: `alert:new` and `alert:updated`'s `data`, and what REST returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    /// Always `overcrowding`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub severity: AlertSeverity,
    pub status: AlertStatus,
    pub event_id: String,
    pub zone_id: String,
    /// The zone's count that raised (or last raised) the alert.
    pub count: i64,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

/// A point of a `map:update`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub lat: f64,
    pub lng: f64,
}

/// A non-empty cell of the density grid: its centre and its live devices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub lat: f64,
    pub lng: f64,
    pub count: u32,
}

/// `map:update`'s `data` (ephemeral).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrowdMap {
    /// The devices that pinged since the last update (at most `crowd.map_max_points`).
    pub points: Vec<Point>,
    /// Every non-empty cell of the whole event: its counts add up to the live devices.
    pub density: Vec<Cell>,
    pub updated_at: DateTime<Utc>,
    /// `pings` (a batch of pings), `expiry` (pings expired), `snapshot` (a read).
    pub source: String,
}

/// `action:created`'s `data`: an operator's command ("Open Gate 3").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub id: String,
    pub event_id: String,
    pub command: String,
    pub zone_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// `report:new`'s `data`: a report from the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// One zone as the crowd risk model reads it: an insight's `factors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneFactor {
    pub zone_id: String,
    pub name: String,
    /// The larger of its cameras' count and the live devices within its bounds.
    pub occupancy: i64,
    pub capacity: i64,
    /// `occupancy / capacity`.
    pub load: f64,
    /// The load's change per minute over the last minutes.
    pub trend_per_min: f64,
}

/// Where an insight or a prediction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlStatus {
    /// The built-in model (no service configured).
    Model,
    /// The service at `crowd.risk_url`.
    Service,
    /// The built-in model, the service having failed or been late.
    Fallback,
}

/// `insight:update`'s `data` (ephemeral).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Insight {
    pub event_id: String,
    pub risk_score: f64,
    pub recommendation: String,
    pub confidence: f64,
    pub factors: Vec<ZoneFactor>,
    pub ml_status: MlStatus,
    pub generated_at: DateTime<Utc>,
}

/// One zone's predicted risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneRisk {
    pub zone_id: String,
    pub risk: f64,
}

/// `prediction:update`'s `data` (ephemeral).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    pub event_id: String,
    pub horizon_minutes: u32,
    pub predictions: Vec<ZoneRisk>,
    pub ml_status: MlStatus,
    pub generated_at: DateTime<Utc>,
}
