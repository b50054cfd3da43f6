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
    /// Free slots (capacity − held) over the available drivers.
    free_slots: u64,
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

/// `before` as an ordering, for sorting.
fn rank(a: (Option<f64>, &DriverId), b: (Option<f64>, &DriverId)) -> Ordering {
    if before(a, b) {
        Ordering::Less
    } else if before(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
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

    /// The free slots (capacity − held) of `fleet`'s available drivers: no batch of that fleet
    /// can serve more orders than these and the slots it frees itself.
    pub fn free_slots_in(&self, fleet: &str) -> u64 {
        self.fleets.get(fleet).map_or(0, |f| f.free_slots)
    }

    /// Up to `k` available drivers of `fleet` nearest to `from` that `skip` does not refuse, with
    /// their distance in km (`None`: no usable location), in the order `best` ranks them: the
    /// first is what `best` answers for the same refusals. Located drivers come from the tree,
    /// nearest chord first, until a chord's lower bound proves that no other can be nearer than
    /// the `k`-th found.
    pub fn nearest(
        &self,
        fleet: &str,
        from: LatLng,
        k: usize,
        mut skip: impl FnMut(&DriverId) -> bool,
    ) -> Vec<(&Candidate, Option<f64>)> {
        let mut found: Vec<(Option<f64>, &DriverId)> = Vec::new();
        if k == 0 {
            return Vec::new();
        }
        let Some(f) = self.fleets.get(fleet) else {
            return Vec::new();
        };
        let sort = |found: &mut Vec<(Option<f64>, &DriverId)>| found.sort_by(|a, b| rank(*a, *b));
        if from.is_valid() {
            for (entry, chord_2) in f
                .placed
                .nearest_neighbor_iter_with_distance_2(unit_vector(from))
            {
                if found.len() >= k {
                    if let Some((Some(km), _)) = found.get(k - 1) {
                        if lower_bound_km(chord_2) > *km {
                            break;
                        }
                    }
                }
                let d = &entry.data;
                if skip(&d.id) {
                    continue;
                }
                let km = Some(haversine_km(from, d.at)).filter(|km| km.is_finite());
                found.push((km, &d.id));
                if found.len() >= k {
                    // Sorted from here on, so the `k`-th is the bound to beat.
                    sort(&mut found);
                    found.truncate(k);
                }
            }
        } else {
            // No point on Earth to search around: ranked as the linear scan ranks them (whatever
            // the arithmetic gives, unusable distances last).
            for e in f.placed.iter() {
                if !skip(&e.data.id) {
                    let km = Some(haversine_km(from, e.data.at)).filter(|km| km.is_finite());
                    found.push((km, &e.data.id));
                }
            }
        }
        for id in f.astray.iter() {
            if !skip(id) {
                let km = self
                    .drivers
                    .get(id)
                    .and_then(|c| c.location)
                    .map(|at| haversine_km(from, at))
                    .filter(|km| km.is_finite());
                found.push((km, id));
            }
        }
        // Those with no location rank by id among the others with no usable distance: the
        // first `k` not refused are enough.
        found.extend(
            f.unlocated
                .iter()
                .filter(|id| !skip(id))
                .take(k)
                .map(|id| (None, id)),
        );
        sort(&mut found);
        found.truncate(k);
        found
            .into_iter()
            .filter_map(|(km, id)| self.drivers.get(id).map(|c| (c, km)))
            .collect()
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
        f.free_slots = f.free_slots.saturating_sub(free_of(c));
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
        f.free_slots += free_of(c);
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

/// An available driver's free slots.
fn free_of(c: &Candidate) -> u64 {
    u64::try_from(c.capacity.saturating_sub(c.held)).unwrap_or(0)
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
mod tests;
