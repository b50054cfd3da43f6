//! Plain data shared by actors, the database layer and HTTP: id newtypes, enums of the contract,
//! and the order, driver, emergency and SOS objects as REST returns them and messages embed them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A driver's id, as the token's `driver_id` names it (e.g. `DRV-001`).
    DriverId
);
string_id!(
    /// An order's id (e.g. `ORD-1001`).
    OrderId
);
string_id!(
    /// An emergency event's id (a UUID), also the incident's primary key.
    EventId
);

/// One WebSocket session, unique within a node's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            /// The contract's spelling, also what the database stores.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Every value, in the contract's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{}` is not a valid {}; expected one of: {}",
                        other, stringify!($name), [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Who a token speaks for.
    Role {
        Admin = "admin",
        Dispatcher = "dispatcher",
        Driver = "driver",
        Observer = "observer",
        Customer = "customer",
        Partner = "partner",
        Reporter = "reporter",
        Operator = "operator",
        Sensor = "sensor",
    }
);
wire_enum!(
    /// An order's lifecycle.
    OrderStatus {
        Pending = "pending",
        Assigned = "assigned",
        PickedUp = "picked_up",
        OutForDelivery = "out_for_delivery",
        Delivered = "delivered",
        Cancelled = "cancelled",
    }
);
wire_enum!(
    /// How urgent an order is.
    Priority { Low = "low", Normal = "normal", High = "high", Critical = "critical" }
);
wire_enum!(
    /// A driver's availability as others see it: `busy` is online and at capacity.
    DriverStatus { Online = "online", Offline = "offline", Busy = "busy" }
);
wire_enum!(
    /// What a driver may set with `status`.
    AvailabilityStatus { Online = "online", Offline = "offline" }
);
wire_enum!(
    /// What a driver may set with `order_status`.
    DeliveryStatus { PickedUp = "picked_up", OutForDelivery = "out_for_delivery", Delivered = "delivered" }
);
wire_enum!(
    /// The kind of emergency a report names.
    IncidentKind {
        VehicleBreakdown = "vehicle_breakdown",
        Accident = "accident",
        Medical = "medical",
        TrafficJam = "traffic_jam",
        Weather = "weather",
        RoadClosure = "road_closure",
        Other = "other",
    }
);
wire_enum!(
    /// What the Dispatcher did about a report.
    Action {
        ReassignmentInitiated = "REASSIGNMENT_INITIATED",
        Maintain = "MAINTAIN",
        NoDriverAvailable = "NO_DRIVER_AVAILABLE",
    }
);
wire_enum!(
    /// Which model produced a risk score.
    RiskSource { Model = "model", Service = "service", Fallback = "fallback" }
);
wire_enum!(
    /// Why an order changed hands.
    AssignReason { Dispatch = "dispatch", Emergency = "emergency", Override = "override", Decline = "decline", Cancelled = "cancelled", Rematch = "rematch" }
);
wire_enum!(
    /// Why a session was taken out of a room (`left`): its driver was taken off the order, or a
    /// `refresh` gave it claims that no longer admit the room.
    LeftReason { Unassigned = "unassigned", RightsChanged = "rights_changed" }
);

wire_enum!(
    /// What kind of unit a unit fleet's driver is (SPEC 9).
    UnitType { Ambulance = "ambulance", Fire = "fire", Police = "police", Rescue = "rescue" }
);
wire_enum!(
    /// What an emergency is (its `type`).
    EmergencyType {
        Medical = "medical",
        Fire = "fire",
        Police = "police",
        Accident = "accident",
        Hazmat = "hazmat",
        Rescue = "rescue",
        Other = "other",
    }
);
wire_enum!(
    /// How grave an emergency is.
    Severity { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
);
wire_enum!(
    /// An emergency's lifecycle: `PENDING` → `ASSIGNED` → `COMPLETED`, or `CANCELLED`.
    EmergencyStatus {
        Pending = "PENDING",
        Assigned = "ASSIGNED",
        Completed = "COMPLETED",
        Cancelled = "CANCELLED",
    }
);
wire_enum!(
    /// A unit as the emergency dashboards show it.
    UnitStatus { Available = "AVAILABLE", Dispatched = "DISPATCHED", Offline = "OFFLINE" }
);
wire_enum!(
    /// What happened to an emergency (`emergency_update`, `emergency_updated`).
    EmergencyAction {
        Created = "created",
        Assigned = "assigned",
        Completed = "completed",
        Cancelled = "cancelled",
    }
);

impl From<DeliveryStatus> for OrderStatus {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::PickedUp => OrderStatus::PickedUp,
            DeliveryStatus::OutForDelivery => OrderStatus::OutForDelivery,
            DeliveryStatus::Delivered => OrderStatus::Delivered,
        }
    }
}

impl OrderStatus {
    /// Delivered and cancelled orders never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }
    /// Statuses in which the order is with a driver and counts against its capacity.
    pub fn holds_driver(self) -> bool {
        matches!(
            self,
            OrderStatus::Assigned | OrderStatus::PickedUp | OrderStatus::OutForDelivery
        )
    }
}

/// A point on the map, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

impl LatLng {
    /// Whether this is a point on Earth.
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lng.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lng)
    }
}

/// A driver's last reported position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
    pub speed: Option<f64>,
    pub heading: Option<f64>,
    pub timestamp: DateTime<Utc>,
}

impl Location {
    pub fn point(&self) -> LatLng {
        LatLng {
            lat: self.lat,
            lng: self.lng,
        }
    }
}

/// An order as REST returns it and messages embed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub driver_id: Option<DriverId>,
    pub fleet: String,
    pub priority: Priority,
    pub pickup: LatLng,
    pub dropoff: LatLng,
    pub version: i64,
    pub accepted_at: Option<DateTime<Utc>>,
    pub eta: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The customer it is delivered to (SPEC 10), or null.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// The partner (restaurant, shipper) that placed it, or null.
    #[serde(default)]
    pub partner_id: Option<String>,
}

/// A driver as REST returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub id: DriverId,
    pub name: String,
    pub fleet: String,
    pub capacity: i32,
    pub status: DriverStatus,
    pub location: Option<Location>,
    pub orders: Vec<OrderId>,
    /// A unit fleet's driver's kind (SPEC 9); absent for a delivery driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_type: Option<UnitType>,
}

/// An emergency (SPEC 9), as REST returns it and the emergency messages carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emergency {
    pub request_id: String,
    #[serde(rename = "type")]
    pub kind: EmergencyType,
    pub description: String,
    pub severity: Severity,
    pub location: LatLng,
    pub status: EmergencyStatus,
    pub unit_id: Option<DriverId>,
    /// The `sub` of whoever created it: its `reporter:<sub>` room follows it.
    pub reported_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A unit (a unit fleet's driver) as `GET /api/v1/units` and `emergency_updated` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub unit_id: DriverId,
    pub name: String,
    pub fleet: String,
    pub unit_type: Option<UnitType>,
    pub status: UnitStatus,
    pub location: Option<Location>,
    /// The emergency it is dispatched to, or null.
    pub emergency_id: Option<String>,
}

/// What the Dispatcher decided about one report: the `emergency_event` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmergencyEvent {
    pub event_id: EventId,
    pub order_id: OrderId,
    pub driver_id: Option<DriverId>,
    pub kind: IncidentKind,
    pub reason: String,
    pub comment: Option<String>,
    pub risk_score: f64,
    pub risk_source: RiskSource,
    pub action_taken: Action,
    pub new_driver_id: Option<DriverId>,
    pub reported_by: String,
    pub timestamp: DateTime<Utc>,
}

/// A driver's SOS without an order (SPEC 10), as the `sos` ack, `GET /api/v1/sos` and its
/// resolve return it: open while `resolved_at` is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SosAlert {
    pub alert_id: String,
    pub driver_id: DriverId,
    pub fleet: String,
    pub lat: f64,
    pub lng: f64,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The `sub` of the staff member who resolved it.
    pub resolved_by: Option<String>,
}

/// One override, as `GET /api/v1/audit` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub order_id: OrderId,
    pub from_driver_id: Option<DriverId>,
    pub to_driver_id: Option<DriverId>,
    pub reason: String,
    pub forced: bool,
    pub created_at: DateTime<Utc>,
}

/// The human reason text of an incident kind, as notifications show it.
pub fn kind_reason(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::VehicleBreakdown => "Vehicle breakdown",
        IncidentKind::Accident => "Accident",
        IncidentKind::Medical => "Medical emergency",
        IncidentKind::TrafficJam => "Traffic jam",
        IncidentKind::Weather => "Severe weather",
        IncidentKind::RoadClosure => "Road closure",
        IncidentKind::Other => "Other issue",
    }
}
