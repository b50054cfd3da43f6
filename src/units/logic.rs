//! The emergency desk's decisions, pure: which unit type serves which emergency, and which unit
//! a dispatch picks. No actix, no database, no clock.

use crate::dispatch::matching::haversine_km;
use crate::protocol::{DriverId, EmergencyType, LatLng, UnitType};

/// The unit type an emergency wants (`None`: any serves it as well as another).
pub fn wanted(kind: EmergencyType) -> Option<UnitType> {
    match kind {
        EmergencyType::Medical => Some(UnitType::Ambulance),
        EmergencyType::Fire | EmergencyType::Hazmat => Some(UnitType::Fire),
        EmergencyType::Police => Some(UnitType::Police),
        EmergencyType::Rescue => Some(UnitType::Rescue),
        EmergencyType::Accident | EmergencyType::Other => None,
    }
}

/// Whether a unit of `unit` serves an emergency of `kind` by its type.
pub fn serves(unit: Option<UnitType>, kind: EmergencyType) -> bool {
    match wanted(kind) {
        None => true,
        Some(w) => unit == Some(w),
    }
}

/// A unit as a dispatch sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: DriverId,
    pub unit_type: Option<UnitType>,
    pub online: bool,
    /// On an emergency already.
    pub busy: bool,
    pub location: Option<LatLng>,
}

impl Candidate {
    /// Online and on no emergency.
    pub fn is_available(&self) -> bool {
        self.online && !self.busy
    }
}

/// The unit a dispatch to `at` of an emergency of `kind` picks: among the available units, one
/// whose type serves it if there is any, the nearest first (a unit that never said where it is
/// comes after every placed one), ties by id.
pub fn pick<'a>(
    units: impl IntoIterator<Item = &'a Candidate>,
    at: LatLng,
    kind: EmergencyType,
) -> Option<&'a Candidate> {
    units
        .into_iter()
        .filter(|c| c.is_available())
        .min_by(|a, b| {
            let key = |c: &Candidate| {
                let km = c.location.map_or(f64::INFINITY, |l| haversine_km(l, at));
                (!serves(c.unit_type, kind), km)
            };
            let (sa, ka) = key(a);
            let (sb, kb) = key(b);
            sa.cmp(&sb)
                .then(ka.total_cmp(&kb))
                .then_with(|| a.id.cmp(&b.id))
        })
}

/// Why a named unit may not be dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No unit fleet's driver has that id.
    Unknown,
    Offline,
    /// On this emergency.
    Busy(String),
}

/// Whether the unit named by a dispatch may take an emergency; `emergency` is the one it is on.
pub fn check_named(unit: Option<&Candidate>, emergency: Option<&str>) -> Result<(), Unavailable> {
    let unit = unit.ok_or(Unavailable::Unknown)?;
    if !unit.online {
        return Err(Unavailable::Offline);
    }
    match emergency {
        Some(e) => Err(Unavailable::Busy(e.to_string())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, t: Option<UnitType>, lat: f64) -> Candidate {
        Candidate {
            id: DriverId::from(id),
            unit_type: t,
            online: true,
            busy: false,
            location: Some(LatLng { lat, lng: 0.0 }),
        }
    }

    const AT: LatLng = LatLng { lat: 0.0, lng: 0.0 };

    #[test]
    fn each_emergency_type_wants_the_unit_type_that_serves_it() {
        assert_eq!(wanted(EmergencyType::Medical), Some(UnitType::Ambulance));
        assert_eq!(wanted(EmergencyType::Fire), Some(UnitType::Fire));
        assert_eq!(wanted(EmergencyType::Hazmat), Some(UnitType::Fire));
        assert_eq!(wanted(EmergencyType::Police), Some(UnitType::Police));
        assert_eq!(wanted(EmergencyType::Rescue), Some(UnitType::Rescue));
        assert_eq!(wanted(EmergencyType::Accident), None);
        assert_eq!(wanted(EmergencyType::Other), None);
        assert!(serves(Some(UnitType::Police), EmergencyType::Accident));
        assert!(serves(None, EmergencyType::Other));
        assert!(!serves(Some(UnitType::Police), EmergencyType::Medical));
    }

    #[test]
    fn a_farther_unit_of_the_serving_type_wins_over_a_nearer_one_of_another() {
        let units = [
            unit("P1", Some(UnitType::Police), 0.01),
            unit("A1", Some(UnitType::Ambulance), 0.5),
            unit("A2", Some(UnitType::Ambulance), 0.2),
        ];
        let got = pick(&units, AT, EmergencyType::Medical).map(|c| c.id.as_str());
        assert_eq!(got, Some("A2"));
        let got = pick(&units, AT, EmergencyType::Accident).map(|c| c.id.as_str());
        assert_eq!(got, Some("P1"), "any type serves an accident: the nearest");
    }

    #[test]
    fn with_no_unit_of_its_type_free_the_nearest_other_goes() {
        let mut units = [
            unit("F1", Some(UnitType::Fire), 0.01),
            unit("P1", Some(UnitType::Police), 0.3),
            unit("P2", Some(UnitType::Police), 0.1),
        ];
        units[0].busy = true;
        let got = pick(&units, AT, EmergencyType::Fire).map(|c| c.id.as_str());
        assert_eq!(got, Some("P2"));
    }

    #[test]
    fn busy_and_offline_units_are_never_picked_and_unplaced_ones_come_last() {
        let mut units = [
            unit("A1", Some(UnitType::Ambulance), 0.01),
            unit("A2", Some(UnitType::Ambulance), 0.02),
            unit("A3", Some(UnitType::Ambulance), 0.9),
        ];
        units[0].busy = true;
        units[1].online = false;
        units[2].location = None;
        let got = pick(&units, AT, EmergencyType::Medical).map(|c| c.id.as_str());
        assert_eq!(got, Some("A3"));
        units[2].busy = true;
        assert_eq!(pick(&units, AT, EmergencyType::Medical), None);
    }

    #[test]
    fn a_named_unit_must_exist_be_online_and_be_free() {
        let mut u = unit("A1", None, 0.0);
        assert_eq!(check_named(None, None), Err(Unavailable::Unknown));
        assert_eq!(check_named(Some(&u), None), Ok(()));
        assert_eq!(
            check_named(Some(&u), Some("E1")),
            Err(Unavailable::Busy("E1".into()))
        );
        u.online = false;
        assert_eq!(check_named(Some(&u), None), Err(Unavailable::Offline));
    }
}
