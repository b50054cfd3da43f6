//! What each step of an emergency publishes to whom (SPEC 9), as the one publication per
//! message that `db::queries::commit` sequences. Payloads go in `data`.

use crate::db::queries::commit::Publication;
use crate::protocol::server::{EmergencyChange, UnitStatusChange};
use crate::protocol::{Emergency, EmergencyAction, Room, ServerMsg, Unit, UnitStatus};

/// Where an emergency's own news goes: the authorities, the tracking map, its reporter.
fn followers(e: &Emergency) -> Vec<Room> {
    vec![
        Room::Dispatch,
        Room::UnitTracking,
        Room::Reporter(e.reported_by.clone()),
    ]
}

/// A new emergency: `emergency_created` to its followers, and `emergency_update`
/// `{action:"created"}` to `unit_tracking`, as the emergency-dispatch system sent both.
pub fn created(e: &Emergency) -> Vec<Publication> {
    vec![
        Publication::to_all(
            followers(e),
            ServerMsg::EmergencyCreated { data: e.clone() },
        ),
        Publication::to(
            Room::UnitTracking,
            ServerMsg::EmergencyUpdate {
                data: EmergencyChange {
                    action: EmergencyAction::Created,
                    emergency: e.clone(),
                    unit: None,
                },
            },
        ),
    ]
}

/// `e` assigned to `unit`: `emergency_updated` to its followers, `unit_status_update`
/// `DISPATCHED`, and `emergency_assigned` to the unit's own room.
pub fn assigned(e: &Emergency, unit: &Unit) -> Vec<Publication> {
    vec![
        updated(e, EmergencyAction::Assigned, Some(unit)),
        unit_status(unit, &e.request_id),
        Publication::to(
            Room::Driver(unit.unit_id.clone()),
            ServerMsg::EmergencyAssigned { data: e.clone() },
        ),
    ]
}

/// `e` completed or cancelled: `emergency_updated` (to the unit's own room too, so a unit whose
/// emergency an authority ended stops going there), and the unit it freed (if any) back to
/// `AVAILABLE` (or `OFFLINE`).
pub fn finished(e: &Emergency, action: EmergencyAction, unit: Option<&Unit>) -> Vec<Publication> {
    let mut rooms = followers(e);
    rooms.extend(unit.map(|u| Room::Driver(u.unit_id.clone())));
    let mut out = vec![updated_in(rooms, e, action, unit)];
    out.extend(unit.map(|u| unit_status(u, &e.request_id)));
    out
}

fn updated(e: &Emergency, action: EmergencyAction, unit: Option<&Unit>) -> Publication {
    updated_in(followers(e), e, action, unit)
}

fn updated_in(
    rooms: Vec<Room>,
    e: &Emergency,
    action: EmergencyAction,
    unit: Option<&Unit>,
) -> Publication {
    Publication::to_all(
        rooms,
        ServerMsg::EmergencyUpdated {
            data: EmergencyChange {
                action,
                emergency: e.clone(),
                unit: unit.cloned(),
            },
        },
    )
}

fn unit_status(unit: &Unit, emergency_id: &str) -> Publication {
    Publication::to_all(
        vec![Room::Dispatch, Room::UnitTracking],
        ServerMsg::UnitStatusUpdate {
            data: UnitStatusChange {
                unit_id: unit.unit_id.clone(),
                status: unit.status,
                emergency_id: emergency_id.to_string(),
            },
        },
    )
}

/// A unit's status: on an emergency is `DISPATCHED`, else as its availability.
pub fn unit_status_of(online: bool, emergency: Option<&str>) -> UnitStatus {
    match (emergency, online) {
        (Some(_), _) => UnitStatus::Dispatched,
        (None, true) => UnitStatus::Available,
        (None, false) => UnitStatus::Offline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;

    fn emergency() -> Emergency {
        let now = chrono::Utc::now();
        Emergency {
            request_id: "E1".into(),
            kind: EmergencyType::Medical,
            description: "x".into(),
            severity: Severity::High,
            location: LatLng { lat: 1.0, lng: 2.0 },
            status: EmergencyStatus::Assigned,
            unit_id: Some("A1".into()),
            reported_by: "rep".into(),
            created_at: now,
            updated_at: now,
        }
    }

    fn unit(status: UnitStatus) -> Unit {
        Unit {
            unit_id: "A1".into(),
            name: "Amb 1".into(),
            fleet: "units".into(),
            unit_type: Some(UnitType::Ambulance),
            status,
            location: None,
            emergency_id: Some("E1".into()),
        }
    }

    fn rooms(p: &[Publication]) -> Vec<(String, Vec<String>)> {
        p.iter()
            .map(|p| {
                let rooms = p.rooms.iter().map(|r| r.to_string()).collect();
                (p.msg.kind().to_string(), rooms)
            })
            .collect()
    }

    #[test]
    fn a_creation_goes_to_the_authorities_the_map_and_its_reporter() {
        let got = rooms(&created(&emergency()));
        let all = ["dispatch", "unit_tracking", "reporter:rep"];
        assert_eq!(
            got,
            vec![
                (
                    "emergency_created".into(),
                    all.iter().map(|s| s.to_string()).collect()
                ),
                ("emergency_update".into(), vec!["unit_tracking".to_string()]),
            ]
        );
    }

    #[test]
    fn an_assignment_tells_the_unit_in_its_own_room_with_the_payload_in_data() {
        let p = assigned(&emergency(), &unit(UnitStatus::Dispatched));
        let got = rooms(&p);
        assert_eq!(got[1].0, "unit_status_update");
        assert_eq!(got[1].1, vec!["dispatch", "unit_tracking"]);
        assert_eq!(
            got[2],
            ("emergency_assigned".into(), vec!["driver:A1".into()])
        );
        let v: serde_json::Value = serde_json::from_str(&p[0].msg.to_text()).unwrap();
        assert_eq!(v["type"], "emergency_updated");
        assert_eq!(v["data"]["action"], "assigned");
        assert_eq!(v["data"]["emergency"]["type"], "medical");
        assert_eq!(v["data"]["unit"]["status"], "DISPATCHED");
        let v: serde_json::Value = serde_json::from_str(&p[1].msg.to_text()).unwrap();
        assert_eq!(
            v["data"],
            serde_json::json!({"unit_id":"A1","status":"DISPATCHED","emergency_id":"E1"})
        );
    }

    #[test]
    fn an_end_tells_the_unit_it_freed_in_its_own_room() {
        let got = rooms(&finished(
            &emergency(),
            EmergencyAction::Completed,
            Some(&unit(UnitStatus::Available)),
        ));
        assert_eq!(got[0].0, "emergency_updated");
        assert_eq!(
            got[0].1,
            vec!["dispatch", "unit_tracking", "reporter:rep", "driver:A1"]
        );
        assert_eq!(got[1].0, "unit_status_update");
    }

    #[test]
    fn a_cancel_without_a_unit_frees_none() {
        let got = rooms(&finished(&emergency(), EmergencyAction::Cancelled, None));
        assert_eq!(got.len(), 1);
        assert_eq!(unit_status_of(true, Some("E1")), UnitStatus::Dispatched);
        assert_eq!(unit_status_of(false, None), UnitStatus::Offline);
    }
}
