//! Room names, parsed at the edge into a typed `Room`.

use super::types::{DriverId, OrderId};
use std::fmt;

/// A room a session may join: `dispatch`, `fleet:<f>`, `driver:<id>`, `order:<id>`, and a
/// customer's `customer:<id>` and a partner's `partner:<id>` (SPEC 10), and the emergency units'
/// `unit_tracking` and a reporter's `reporter:<sub>` (SPEC 9), and a crowd event's `event:<id>`
/// (SPEC 8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Room {
    Dispatch,
    Fleet(String),
    Driver(DriverId),
    Order(OrderId),
    Customer(String),
    Partner(String),
    UnitTracking,
    Reporter(String),
    /// A crowd event's room (SPEC 8): its dashboards.
    Event(String),
}

impl Room {
    /// Parses a room name; `None` for anything the contract does not name.
    pub fn parse(name: &str) -> Option<Room> {
        if name == "dispatch" {
            return Some(Room::Dispatch);
        }
        if name == "unit_tracking" {
            return Some(Room::UnitTracking);
        }
        let (prefix, rest) = name.split_once(':')?;
        if rest.is_empty() || rest.len() > 128 || rest.chars().any(char::is_control) {
            return None;
        }
        match prefix {
            "fleet" => Some(Room::Fleet(rest.to_string())),
            "driver" => Some(Room::Driver(DriverId(rest.to_string()))),
            "order" => Some(Room::Order(OrderId(rest.to_string()))),
            "customer" => Some(Room::Customer(rest.to_string())),
            "partner" => Some(Room::Partner(rest.to_string())),
            "reporter" => Some(Room::Reporter(rest.to_string())),
            "event" => Some(Room::Event(rest.to_string())),
            _ => None,
        }
    }

    /// The room's kind, `dispatch`, `fleet`, `driver`, `order`, `customer`, `partner`,
    /// `unit_tracking` or `reporter` (a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            Room::Dispatch => "dispatch",
            Room::Fleet(_) => "fleet",
            Room::Driver(_) => "driver",
            Room::Order(_) => "order",
            Room::Customer(_) => "customer",
            Room::Partner(_) => "partner",
            Room::UnitTracking => "unit_tracking",
            Room::Reporter(_) => "reporter",
            Room::Event(_) => "event",
        }
    }

    pub fn fleet(f: &str) -> Room {
        Room::Fleet(f.to_string())
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::Dispatch => f.write_str("dispatch"),
            Room::Fleet(x) => write!(f, "fleet:{x}"),
            Room::Driver(x) => write!(f, "driver:{x}"),
            Room::Order(x) => write!(f, "order:{x}"),
            Room::Customer(x) => write!(f, "customer:{x}"),
            Room::Partner(x) => write!(f, "partner:{x}"),
            Room::UnitTracking => f.write_str("unit_tracking"),
            Room::Reporter(x) => write!(f, "reporter:{x}"),
            Room::Event(x) => write!(f, "event:{x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_round_trip() {
        for name in [
            "dispatch",
            "fleet:default",
            "driver:DRV-001",
            "order:ORD-1",
            "customer:C-1",
            "partner:P-1",
            "unit_tracking",
            "reporter:R-1",
            "event:E-1",
        ] {
            assert_eq!(Room::parse(name).unwrap().to_string(), name);
        }
    }

    #[test]
    fn unknown_or_empty_rooms_are_refused() {
        for name in [
            "",
            "lobby",
            "fleet:",
            "team:x",
            "dispatch:x",
            "customer:",
            "partner:",
            "reporter:",
            "unit_tracking:x",
            "event:",
        ] {
            assert!(Room::parse(name).is_none(), "{name}");
        }
    }
}
