//! `DriverIndex`: the drivers as the Dispatcher sees them, with an R*-tree per fleet of the
//! available located ones, so the nearest-available-driver search does not scan every driver.
//!
//! It answers exactly what `matching::best_driver` answers over the same drivers (that linear
//! scan stays as the oracle of the tests): haversine ranking, drivers without a usable location
//! after every located one, ties to the smallest id, same fleet, not excluded. The tree is only a
//! candidate generator. Each point is stored as a unit vector on the sphere, where the straight
//! (chord) distance is a monotone function of the great-circle distance for every pair of points,
//! poles and the antimeridian included; candidates come out nearest chord first, are re-ranked
//! with `haversine_km` itself, and the search stops once a chord's lower bound proves that no
//! remaining driver can rank before the best one found.
//!
//! It owns no actix, database or clock: the Dispatcher calls it on every change of a driver.

use super::matching::{best_driver, haversine_km, Candidate, EARTH_RADIUS_KM};
use crate::protocol::{DriverId, LatLng};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

/// How far (on the unit sphere, as a half-chord) a computed chord or haversine may stray from
/// the exact one. The rounding of either is a few 1e-15; this is a hundred times that, about 6 mm
/// on Earth, so the search only ever looks at a few more candidates than it must.
const SLACK: f64 = 1e-12;

/// An available driver with a valid location, as stored in a fleet's tree.
type Placed = GeomWithData<[f64; 3], PlacedDriver>;

/// What a tree entry carries: enough to re-rank without a lookup.
#[derive(Debug, Clone, PartialEq)]
struct PlacedDriver {
    id: DriverId,
    at: LatLng,
}

/// One fleet's available drivers, by how they can be ranked.
#[derive(Default)]
struct FleetIndex {
    /// Available drivers whose location is a valid point on Earth.
    placed: RTree<Placed>,
    /// Available drivers with no location: they rank after every located one.
    unlocated: BTreeSet<DriverId>,
    /// Available drivers whose location is not a valid point (not finite, or out of range).
    /// Input is validated, so this stays empty in practice; they are ranked one by one, as the
    /// linear scan ranks them.
    astray: BTreeSet<DriverId>,
    /// Online drivers, available or not (the `presence` count).
    online: usize,
}

/// Every driver the Dispatcher knows, and per fleet the available ones in a spatial index.
#[derive(Default)]
pub struct DriverIndex {
    drivers: HashMap<DriverId, Candidate>,
    fleets: HashMap<String, FleetIndex>,
    /// Available drivers over all fleets.
    available: usize,
}

/// Where a point is on the unit sphere. The chord `c` between two such vectors and the haversine
/// `h` of the same two points satisfy `h = c² / 4` for any real latitudes and longitudes, so the
/// chord orders points exactly as the great-circle distance does, with no seam at ±180° and no
/// singularity at the poles.
fn unit_vector(p: LatLng) -> [f64; 3] {
    let (lat, lng) = (p.lat.to_radians(), p.lng.to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

/// A lower bound, in km, on the `haversine_km` of any point whose squared chord to the query
/// point is at least `chord_2`. Bounding the half-chord (the square root of `h`, before the
/// `asin` that both sides apply) keeps the comparison exact despite rounding.
fn lower_bound_km(chord_2: f64) -> f64 {
    let half_chord = (chord_2.sqrt() / 2.0 - SLACK).clamp(0.0, 1.0);
    2.0 * EARTH_RADIUS_KM * half_chord.asin()
}

/// The linear scan's order: distance (unknown last), then id.
fn before(a: (Option<f64>, &DriverId), b: (Option<f64>, &DriverId)) -> bool {
    let by_distance = match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_distance.then_with(|| a.1.cmp(b.1)) == Ordering::Less
}

impl DriverIndex {
    pub fn new() -> DriverIndex {
        DriverIndex::default()
    }

    /// A driver, if known.
    pub fn get(&self, id: &DriverId) -> Option<&Candidate> {
        self.drivers.get(id)
    }

    /// Every known driver, in no particular order.
    pub fn drivers(&self) -> impl Iterator<Item = &Candidate> {
        self.drivers.values()
    }

    /// Whether any driver of any fleet can take an order.
    pub fn any_available(&self) -> bool {
        self.available > 0
    }

    /// How many drivers of `fleet` are online.
    pub fn online_in(&self, fleet: &str) -> usize {
        self.fleets.get(fleet).map_or(0, |f| f.online)
    }

    /// Adds a driver or replaces everything known about it.
    pub fn upsert(&mut self, driver: Candidate) {
        if let Some(old) = self.drivers.remove(&driver.id) {
            self.detach(&old);
        }
        self.attach(&driver);
        self.drivers.insert(driver.id.clone(), driver);
    }

    /// A driver moved; unknown drivers are ignored.
    pub fn set_location(&mut self, id: &DriverId, at: LatLng) {
        self.update(id, |c| c.location = Some(at));
    }

    /// A driver took an order.
    pub fn hold(&mut self, id: &DriverId) {
        self.update(id, |c| c.held += 1);
    }

    /// A driver let go of an order (never below zero).
    pub fn release(&mut self, id: &DriverId) {
        self.update(id, |c| c.held = (c.held - 1).max(0));
    }

    /// The nearest available driver of `fleet` to `from`, skipping `excluded`: the same driver
    /// `matching::best_driver` picks among all the drivers known here.
    pub fn best(
        &self,
        fleet: &str,
        from: LatLng,
        excluded: &HashSet<DriverId>,
    ) -> Option<&Candidate> {
        if !from.is_valid() {
            // No point on Earth to search around: the linear scan says what that means.
            return best_driver(self.drivers.values(), fleet, from, excluded);
        }
        let f = self.fleets.get(fleet)?;
        let mut best: Option<(Option<f64>, &DriverId)> = None;
        for (entry, chord_2) in f
            .placed
            .nearest_neighbor_iter_with_distance_2(unit_vector(from))
        {
            if let Some((Some(km), _)) = best {
                // Every entry after this one is at least as far by chord.
                if lower_bound_km(chord_2) > km {
                    break;
                }
            }
            let d = &entry.data;
            if excluded.contains(&d.id) {
                continue;
            }
            let km = Some(haversine_km(from, d.at)).filter(|km| km.is_finite());
            if best.is_none_or(|b| before((km, &d.id), b)) {
                best = Some((km, &d.id));
            }
        }
        for id in f.astray.iter().filter(|id| !excluded.contains(*id)) {
            let km = self
                .drivers
                .get(id)
                .and_then(|c| c.location)
                .map(|at| haversine_km(from, at))
                .filter(|km| km.is_finite());
            if best.is_none_or(|b| before((km, id), b)) {
                best = Some((km, id));
            }
        }
        if !matches!(best, Some((Some(_), _))) {
            if let Some(id) = f.unlocated.iter().find(|id| !excluded.contains(*id)) {
                if best.is_none_or(|b| before((None, id), b)) {
                    best = Some((None, id));
                }
            }
        }
        best.and_then(|(_, id)| self.drivers.get(id))
    }

    /// Applies `change` to a known driver, keeping its fleet's index in step.
    fn update(&mut self, id: &DriverId, change: impl FnOnce(&mut Candidate)) {
        let Some(mut driver) = self.drivers.remove(id) else {
            return;
        };
        self.detach(&driver);
        change(&mut driver);
        self.attach(&driver);
        self.drivers.insert(driver.id.clone(), driver);
    }

    /// Removes a driver from its fleet's index (not from `drivers`).
    fn detach(&mut self, c: &Candidate) {
        let Some(f) = self.fleets.get_mut(&c.fleet) else {
            return;
        };
        if c.online {
            f.online = f.online.saturating_sub(1);
        }
        if !c.is_available() {
            return;
        }
        self.available = self.available.saturating_sub(1);
        match c.location {
            Some(at) if at.is_valid() => {
                f.placed.remove(&placed(c, at));
            }
            Some(_) => {
                f.astray.remove(&c.id);
            }
            None => {
                f.unlocated.remove(&c.id);
            }
        }
    }

    /// Adds a driver to its fleet's index (not to `drivers`).
    fn attach(&mut self, c: &Candidate) {
        let f = self.fleets.entry(c.fleet.clone()).or_default();
        if c.online {
            f.online += 1;
        }
        if !c.is_available() {
            return;
        }
        self.available += 1;
        match c.location {
            Some(at) if at.is_valid() => f.placed.insert(placed(c, at)),
            Some(_) => {
                f.astray.insert(c.id.clone());
            }
            None => {
                f.unlocated.insert(c.id.clone());
            }
        }
    }
}

/// The tree entry of an available driver at a valid point: built the same way on insert and on
/// removal, so the two compare equal bit for bit.
fn placed(c: &Candidate, at: LatLng) -> Placed {
    GeomWithData::new(
        unit_vector(at),
        PlacedDriver {
            id: c.id.clone(),
            at,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(id: &str, fleet: &str, at: Option<(f64, f64)>) -> Candidate {
        Candidate {
            id: DriverId::from(id),
            fleet: fleet.to_string(),
            online: true,
            held: 0,
            capacity: 1,
            location: at.map(|(lat, lng)| LatLng { lat, lng }),
        }
    }

    fn best_id(index: &DriverIndex, fleet: &str, lat: f64, lng: f64) -> Option<String> {
        index
            .best(fleet, LatLng { lat, lng }, &HashSet::new())
            .map(|c| c.id.0.clone())
    }

    #[test]
    fn the_nearest_driver_across_the_antimeridian_wins() {
        let mut index = DriverIndex::new();
        index.upsert(candidate("DRV-EAST", "f", Some((0.0, 179.9))));
        index.upsert(candidate("DRV-WEST", "f", Some((0.0, -179.95))));
        index.upsert(candidate("DRV-FAR", "f", Some((0.0, 170.0))));
        assert_eq!(
            best_id(&index, "f", 0.0, -179.99).as_deref(),
            Some("DRV-WEST")
        );
        assert_eq!(
            best_id(&index, "f", 0.0, 179.99).as_deref(),
            Some("DRV-WEST")
        );
    }

    #[test]
    fn near_a_pole_longitude_barely_matters() {
        let mut index = DriverIndex::new();
        // 0.015° away over the pole beats 0.02° away on the same meridian, whatever the longitudes
        // say.
        index.upsert(candidate("DRV-ACROSS", "f", Some((89.995, -180.0))));
        index.upsert(candidate("DRV-SAME", "f", Some((89.97, 0.0))));
        assert_eq!(
            best_id(&index, "f", 89.99, 0.0).as_deref(),
            Some("DRV-ACROSS")
        );
    }

    #[test]
    fn a_driver_that_moves_is_found_where_it_is_now() {
        let mut index = DriverIndex::new();
        index.upsert(candidate("DRV-1", "f", Some((10.0, 10.0))));
        index.upsert(candidate("DRV-2", "f", Some((11.0, 10.0))));
        assert_eq!(best_id(&index, "f", 11.0, 10.0).as_deref(), Some("DRV-2"));
        index.set_location(
            &DriverId::from("DRV-1"),
            LatLng {
                lat: 11.0,
                lng: 10.0,
            },
        );
        // Now co-located: the smallest id wins.
        assert_eq!(best_id(&index, "f", 11.0, 10.0).as_deref(), Some("DRV-1"));
    }

    #[test]
    fn a_driver_at_capacity_leaves_the_index_and_comes_back_when_released() {
        let mut index = DriverIndex::new();
        let id = DriverId::from("DRV-1");
        index.upsert(candidate("DRV-1", "f", Some((0.0, 0.0))));
        assert!(index.any_available());
        index.hold(&id);
        assert_eq!(best_id(&index, "f", 0.0, 0.0), None);
        assert!(!index.any_available());
        assert_eq!(index.online_in("f"), 1);
        index.release(&id);
        assert_eq!(best_id(&index, "f", 0.0, 0.0).as_deref(), Some("DRV-1"));
    }

    #[test]
    fn an_unlocated_driver_is_picked_only_when_no_located_one_qualifies() {
        let mut index = DriverIndex::new();
        index.upsert(candidate("DRV-0", "f", None));
        index.upsert(candidate("DRV-9", "f", Some((40.0, 40.0))));
        assert_eq!(best_id(&index, "f", 0.0, 0.0).as_deref(), Some("DRV-9"));
        let excluded: HashSet<_> = [DriverId::from("DRV-9")].into_iter().collect();
        let got = index.best("f", LatLng { lat: 0.0, lng: 0.0 }, &excluded);
        assert_eq!(got.map(|c| c.id.as_str()), Some("DRV-0"));
    }

    #[test]
    fn going_offline_and_changing_fleet_leave_the_old_place() {
        let mut index = DriverIndex::new();
        index.upsert(candidate("DRV-1", "north", Some((0.0, 0.0))));
        index.upsert(candidate("DRV-1", "south", Some((0.0, 0.0))));
        assert_eq!(best_id(&index, "north", 0.0, 0.0), None);
        assert_eq!(best_id(&index, "south", 0.0, 0.0).as_deref(), Some("DRV-1"));
        let mut offline = candidate("DRV-1", "south", Some((0.0, 0.0)));
        offline.online = false;
        index.upsert(offline);
        assert_eq!(best_id(&index, "south", 0.0, 0.0), None);
        assert_eq!(index.online_in("south"), 0);
        assert_eq!(index.online_in("north"), 0);
    }

    /// Places that make ranking hard: clusters, duplicates, poles, the antimeridian, nothing,
    /// and broken values.
    fn place() -> impl Strategy<Value = Option<LatLng>> {
        let at = |lat, lng| Some(LatLng { lat, lng });
        prop_oneof![
            3 => (48.8..48.9f64, 2.3..2.4f64).prop_map(move |(lat, lng)| at(lat, lng)),
            2 => (0..4i32, 0..4i32).prop_map(move |(a, b)| at(f64::from(a) * 0.001, f64::from(b) * 0.001 - 0.0015)),
            2 => (89.99..=90.0f64, -180.0..=180.0f64).prop_map(move |(lat, lng)| at(lat, lng)),
            2 => (-90.0..=-89.99f64, -180.0..=180.0f64).prop_map(move |(lat, lng)| at(lat, lng)),
            2 => (-0.05..0.05f64, prop_oneof![179.9..=180.0f64, -180.0..=-179.9f64]).prop_map(move |(lat, lng)| at(lat, lng)),
            2 => (-90.0..=90.0f64, -180.0..=180.0f64).prop_map(move |(lat, lng)| at(lat, lng)),
            1 => Just(at(0.0, 180.0)),
            1 => Just(at(0.0, -180.0)),
            1 => Just(None),
            1 => prop_oneof![Just(at(f64::NAN, 0.0)), Just(at(0.0, f64::INFINITY)), Just(at(95.0, 10.0)), Just(at(10.0, 540.0))],
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert {
            id: u8,
            fleet: u8,
            online: bool,
            held: i32,
            capacity: i32,
            at: Option<LatLng>,
        },
        Move(u8, Option<LatLng>),
        Hold(u8),
        Release(u8),
        Ask {
            fleet: u8,
            from: Option<LatLng>,
            excluded: Vec<u8>,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let id = 0..12u8;
        prop_oneof![
            3 => (id.clone(), 0..2u8, prop::bool::weighted(0.8), 0..3i32, 0..3i32, place()).prop_map(
                |(id, fleet, online, held, capacity, at)| Op::Upsert { id, fleet, online, held, capacity, at }
            ),
            3 => (id.clone(), place()).prop_map(|(id, at)| Op::Move(id, at)),
            1 => id.clone().prop_map(Op::Hold),
            1 => id.clone().prop_map(Op::Release),
            4 => (0..2u8, place(), prop::collection::vec(id, 0..4)).prop_map(
                |(fleet, from, excluded)| Op::Ask { fleet, from, excluded }
            ),
        ]
    }

    fn driver_id(n: u8) -> DriverId {
        DriverId(format!("DRV-{n:02}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn the_index_picks_what_the_linear_scan_picks(ops in prop::collection::vec(op(), 1..80)) {
            let mut index = DriverIndex::new();
            // The model: what the Dispatcher's old map held.
            let mut model: HashMap<DriverId, Candidate> = HashMap::new();
            for op in ops {
                match op {
                    Op::Upsert { id, fleet, online, held, capacity, at } => {
                        let c = Candidate {
                            id: driver_id(id),
                            fleet: format!("fleet-{fleet}"),
                            online,
                            held,
                            capacity,
                            location: at,
                        };
                        model.insert(c.id.clone(), c.clone());
                        index.upsert(c);
                    }
                    Op::Move(id, at) => {
                        // A move always has a place; `None` stands for a driver not yet known.
                        let Some(at) = at else { continue };
                        if let Some(c) = model.get_mut(&driver_id(id)) {
                            c.location = Some(at);
                        }
                        index.set_location(&driver_id(id), at);
                    }
                    Op::Hold(id) => {
                        if let Some(c) = model.get_mut(&driver_id(id)) {
                            c.held += 1;
                        }
                        index.hold(&driver_id(id));
                    }
                    Op::Release(id) => {
                        if let Some(c) = model.get_mut(&driver_id(id)) {
                            c.held = (c.held - 1).max(0);
                        }
                        index.release(&driver_id(id));
                    }
                    Op::Ask { fleet, from, excluded } => {
                        let from = from.unwrap_or(LatLng { lat: 0.0, lng: 0.0 });
                        let fleet = format!("fleet-{fleet}");
                        let excluded: HashSet<DriverId> = excluded.into_iter().map(driver_id).collect();
                        let want = best_driver(model.values(), &fleet, from, &excluded).map(|c| c.id.clone());
                        let got = index.best(&fleet, from, &excluded).map(|c| c.id.clone());
                        prop_assert_eq!(got, want, "fleet={} from={:?} excluded={:?}", fleet, from, excluded);
                    }
                }
                prop_assert_eq!(index.drivers.len(), model.len());
                for c in model.values() {
                    // Through `Debug`: a NaN location is never equal to itself.
                    prop_assert_eq!(format!("{:?}", index.get(&c.id)), format!("{:?}", Some(c)));
                }
                let available = model.values().filter(|c| c.is_available()).count();
                prop_assert_eq!(index.any_available(), available > 0);
                for fleet in ["fleet-0", "fleet-1"] {
                    let online = model.values().filter(|c| c.fleet == fleet && c.online).count();
                    prop_assert_eq!(index.online_in(fleet), online);
                }
            }
        }
    }

    /// Many drivers at once, near and far, against the linear scan: a seeded, dependency-free
    /// complement to the property test that exercises deep trees.
    #[test]
    fn a_large_fleet_agrees_with_the_linear_scan() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut index = DriverIndex::new();
        let mut model = HashMap::new();
        for i in 0..3000 {
            let (lat, lng) = if i % 3 == 0 {
                (next() * 180.0 - 90.0, next() * 360.0 - 180.0)
            } else {
                (48.8 + next() * 0.1, 2.3 + next() * 0.1)
            };
            let c = Candidate {
                id: DriverId(format!("DRV-{i:05}")),
                fleet: "f".into(),
                online: next() < 0.9,
                held: 0,
                capacity: 1 + (next() * 2.0) as i32,
                location: Some(LatLng { lat, lng }),
            };
            model.insert(c.id.clone(), c.clone());
            index.upsert(c);
        }
        for round in 0..500 {
            let id = DriverId(format!("DRV-{:05}", (next() * 3000.0) as usize));
            match round % 3 {
                0 => {
                    let at = LatLng {
                        lat: 48.8 + next() * 0.1,
                        lng: 2.3 + next() * 0.1,
                    };
                    index.set_location(&id, at);
                    if let Some(c) = model.get_mut(&id) {
                        c.location = Some(at);
                    }
                }
                1 => {
                    index.hold(&id);
                    if let Some(c) = model.get_mut(&id) {
                        c.held += 1;
                    }
                }
                _ => {
                    index.release(&id);
                    if let Some(c) = model.get_mut(&id) {
                        c.held = (c.held - 1).max(0);
                    }
                }
            }
            let from = if round % 2 == 0 {
                LatLng {
                    lat: 48.8 + next() * 0.1,
                    lng: 2.3 + next() * 0.1,
                }
            } else {
                LatLng {
                    lat: next() * 180.0 - 90.0,
                    lng: next() * 360.0 - 180.0,
                }
            };
            let want =
                best_driver(model.values(), "f", from, &HashSet::new()).map(|c| c.id.clone());
            let got = index.best("f", from, &HashSet::new()).map(|c| c.id.clone());
            assert_eq!(got, want, "round {round} from {from:?}");
        }
    }
}
