//! Nearest-driver matching: great-circle distance and the choice of the best available driver
//! in a fleet for a point, with a deterministic tie-break.

use crate::protocol::{DriverId, LatLng};
use std::cmp::Ordering;
use std::collections::HashSet;

/// Mean Earth radius in kilometres (IUGG).
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance between two points, in kilometres.
pub fn haversine_km(a: LatLng, b: LatLng) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = (b.lat - a.lat).to_radians();
    let dlng = (b.lng - a.lng).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

/// A driver as matching sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The driver's id.
    pub id: DriverId,
    /// The fleet the driver belongs to.
    pub fleet: String,
    /// Whether the driver is online.
    pub online: bool,
    /// Orders the driver currently holds.
    pub held: i32,
    /// Orders the driver may hold at once.
    pub capacity: i32,
    /// The driver's last known position, if any.
    pub location: Option<LatLng>,
}

impl Candidate {
    /// Whether the driver can take another order: online and below capacity.
    pub fn is_available(&self) -> bool {
        self.online && self.held < self.capacity
    }
}

/// The nearest available driver of `fleet` to `from`, skipping `excluded`. Drivers without a
/// location (or whose distance cannot be computed) rank after every located one; ties go to the
/// smallest id.
pub fn best_driver<'a, I>(
    candidates: I,
    fleet: &str,
    from: LatLng,
    excluded: &HashSet<DriverId>,
) -> Option<&'a Candidate>
where
    I: IntoIterator<Item = &'a Candidate>,
{
    candidates
        .into_iter()
        .filter(|c| c.is_available() && c.fleet == fleet && !excluded.contains(&c.id))
        .map(|c| {
            let distance = c
                .location
                .map(|at| haversine_km(from, at))
                .filter(|d| d.is_finite());
            (distance, c)
        })
        .min_by(|(da, a), (db, b)| rank(*da, *db).then_with(|| a.id.cmp(&b.id)))
        .map(|(_, c)| c)
}

/// Orders distances with unknown ones last.
fn rank(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: LatLng = LatLng {
        lat: 48.8566,
        lng: 2.3522,
    };

    fn driver(id: &str, lat_offset: Option<f64>) -> Candidate {
        Candidate {
            id: DriverId::from(id),
            fleet: "north".to_string(),
            online: true,
            held: 0,
            capacity: 2,
            location: lat_offset.map(|d| LatLng {
                lat: ORIGIN.lat + d,
                lng: ORIGIN.lng,
            }),
        }
    }

    fn pick<'a>(candidates: &'a [Candidate], excluded: &HashSet<DriverId>) -> Option<&'a str> {
        best_driver(candidates, "north", ORIGIN, excluded).map(|c| c.id.as_str())
    }

    #[test]
    fn paris_to_london_is_about_343_km() {
        let london = LatLng {
            lat: 51.5074,
            lng: -0.1278,
        };
        let d = haversine_km(ORIGIN, london);
        assert!((d - 343.5).abs() < 1.0, "got {d}");
    }

    #[test]
    fn the_distance_from_a_point_to_itself_is_zero() {
        assert_eq!(haversine_km(ORIGIN, ORIGIN), 0.0);
    }

    #[test]
    fn haversine_is_symmetric() {
        let other = LatLng {
            lat: -33.8688,
            lng: 151.2093,
        };
        let there = haversine_km(ORIGIN, other);
        let back = haversine_km(other, ORIGIN);
        assert!((there - back).abs() < 1e-9);
    }

    #[test]
    fn a_driver_is_available_only_when_online_and_below_capacity() {
        let mut d = driver("DRV-1", Some(0.0));
        assert!(d.is_available());
        d.held = 2;
        assert!(!d.is_available());
        d.held = 1;
        d.online = false;
        assert!(!d.is_available());
    }

    #[test]
    fn the_nearest_driver_wins() {
        let drivers = [
            driver("DRV-1", Some(0.3)),
            driver("DRV-2", Some(0.1)),
            driver("DRV-3", Some(-0.2)),
        ];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-2"));
    }

    #[test]
    fn offline_drivers_are_skipped() {
        let mut near = driver("DRV-1", Some(0.01));
        near.online = false;
        let drivers = [near, driver("DRV-2", Some(0.5))];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-2"));
    }

    #[test]
    fn drivers_at_capacity_are_skipped() {
        let mut near = driver("DRV-1", Some(0.01));
        near.held = near.capacity;
        let drivers = [near, driver("DRV-2", Some(0.5))];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-2"));
    }

    #[test]
    fn drivers_of_another_fleet_are_skipped() {
        let mut near = driver("DRV-1", Some(0.01));
        near.fleet = "south".to_string();
        let drivers = [near, driver("DRV-2", Some(0.5))];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-2"));
    }

    #[test]
    fn excluded_drivers_are_skipped() {
        let drivers = [driver("DRV-1", Some(0.01)), driver("DRV-2", Some(0.5))];
        let excluded: HashSet<DriverId> = [DriverId::from("DRV-1")].into_iter().collect();
        assert_eq!(pick(&drivers, &excluded), Some("DRV-2"));
    }

    #[test]
    fn no_driver_is_picked_when_none_qualifies() {
        let mut offline = driver("DRV-1", Some(0.0));
        offline.online = false;
        assert_eq!(pick(&[offline], &HashSet::new()), None);
        assert_eq!(pick(&[], &HashSet::new()), None);
    }

    #[test]
    fn equal_distances_are_broken_by_the_smallest_id() {
        let at = |id: &str, lng: f64| Candidate {
            location: Some(LatLng { lat: 0.0, lng }),
            ..driver(id, None)
        };
        let from = LatLng { lat: 0.0, lng: 0.0 };
        let drivers = [at("DRV-9", 1.0), at("DRV-3", -1.0)];
        assert_eq!(
            haversine_km(from, LatLng { lat: 0.0, lng: 1.0 }),
            haversine_km(
                from,
                LatLng {
                    lat: 0.0,
                    lng: -1.0
                }
            )
        );
        let got = best_driver(&drivers, "north", from, &HashSet::new());
        assert_eq!(got.map(|c| c.id.as_str()), Some("DRV-3"));
    }

    #[test]
    fn co_located_drivers_are_broken_by_the_smallest_id() {
        let drivers = [driver("DRV-9", Some(0.2)), driver("DRV-5", Some(0.2))];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-5"));
    }

    #[test]
    fn unlocated_drivers_are_broken_by_the_smallest_id() {
        let drivers = [driver("DRV-B", None), driver("DRV-A", None)];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-A"));
    }

    #[test]
    fn unlocated_drivers_come_after_any_located_one() {
        let drivers = [driver("DRV-0", None), driver("DRV-1", Some(5.0))];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-1"));
    }

    #[test]
    fn an_unlocated_driver_is_still_picked_when_alone() {
        let drivers = [driver("DRV-0", None)];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-0"));
    }

    #[test]
    fn a_driver_with_a_non_finite_location_ranks_as_unlocated() {
        let mut broken = driver("DRV-0", Some(0.0));
        broken.location = Some(LatLng {
            lat: -f64::NAN,
            lng: f64::NAN,
        });
        let drivers = [broken, driver("DRV-1", Some(1.0))];
        assert_eq!(pick(&drivers, &HashSet::new()), Some("DRV-1"));
    }
}
