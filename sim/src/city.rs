//! One seeded storm: the drivers of a city fleet, the orders they hold, the reports that arrive
//! at once, and the orders already waiting. What the three deciders are given, identically; it
//! decides nothing itself.
//!
//! - `drivers` drivers of capacity 1, uniform over a 20 × 20 km box around Paris.
//! - Drivers `0..orders` each hold order `i`, assigned and not picked up yet: the order is at its
//!   pickup, a uniform point within [`PICKUP_RADIUS_KM`] of its driver.
//! - `reports` distinct holders report at once, in a random arrival order: each one's order must
//!   move, never back to its reporter, and the reporter is free for any other order.
//! - `waiting` orders wait at uniform points of the box, oldest first.

use crate::rng::Rng;
use rallypoint::dispatch::assignment::{self, BatchDriver, BatchOrder};
use rallypoint::dispatch::index::DriverIndex;
use rallypoint::dispatch::matching::Candidate;
use rallypoint::protocol::{DriverId, LatLng, OrderId};
use std::collections::{HashMap, HashSet};

/// The fleet every driver and order of a storm belongs to.
pub const FLEET: &str = "default";

/// The city box: its south-west corner and its size, about 20 km each way.
const SOUTH: f64 = 48.77;
const WEST: f64 = 2.21;
const SIDE_KM: f64 = 20.0;
/// Kilometres per degree of latitude (and of longitude at the equator).
const KM_PER_DEGREE: f64 = 111.195;

/// How far from its driver an assigned order waits to be picked up, at most.
pub const PICKUP_RADIUS_KM: f64 = 2.0;

/// How many of each a storm has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Drivers, capacity 1 each.
    pub drivers: usize,
    /// Orders assigned, one per driver (the first `orders` drivers).
    pub orders: usize,
    /// Holders of an order who report at once.
    pub reports: usize,
    /// Orders waiting for a driver before the storm.
    pub waiting: usize,
}

impl Shape {
    /// Whether such a storm can be made, and if not, why.
    pub fn check(&self) -> Result<(), String> {
        if self.drivers == 0 {
            return Err("--drivers must be at least 1".into());
        }
        if self.orders > self.drivers {
            return Err(format!(
                "--orders {} is more than --drivers {}: each assigned order has a driver of its own \
                 (capacity 1)",
                self.orders, self.drivers
            ));
        }
        if self.reports > self.orders {
            return Err(format!(
                "--reports {} is more than --orders {}: only a driver holding an order reports",
                self.reports, self.orders
            ));
        }
        if self.reports + self.waiting == 0 {
            return Err("nothing to decide: give --reports or --waiting more than 0".into());
        }
        Ok(())
    }

    /// Orders a decider is asked to place: the reported ones and the waiting ones.
    pub fn to_decide(&self) -> usize {
        self.reports + self.waiting
    }

    /// Slots free once the reporters are released: the idle drivers and the reporters.
    pub fn free_slots(&self) -> usize {
        self.drivers - self.orders + self.reports
    }
}

/// A driver of the storm.
#[derive(Debug, Clone)]
pub struct Driver {
    pub id: DriverId,
    pub at: LatLng,
}

/// An order the deciders must place: a reported one (with its reporter) or a waiting one.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: OrderId,
    /// Where the order is: its pickup.
    pub at: LatLng,
    /// The driver that reported it (by index in `Storm::drivers`), which it must not go back to.
    pub reporter: Option<usize>,
}

/// One storm, as every decider sees it.
#[derive(Debug, Clone)]
pub struct Storm {
    pub shape: Shape,
    pub seed: u64,
    pub drivers: Vec<Driver>,
    /// The reported orders in arrival order, then the waiting ones, oldest first.
    pub tasks: Vec<Task>,
    by_id: HashMap<DriverId, usize>,
}

fn in_box(rng: &mut Rng) -> LatLng {
    let lat_span = SIDE_KM / KM_PER_DEGREE;
    let lng_span = SIDE_KM / (KM_PER_DEGREE * (SOUTH + lat_span / 2.0).to_radians().cos());
    LatLng {
        lat: SOUTH + rng.unit() * lat_span,
        lng: WEST + rng.unit() * lng_span,
    }
}

/// A uniform point of the disc of `radius_km` around `at` (flat: the disc is small).
fn near(rng: &mut Rng, at: LatLng, radius_km: f64) -> LatLng {
    let r = radius_km * rng.unit().sqrt();
    let angle = rng.unit() * std::f64::consts::TAU;
    LatLng {
        lat: at.lat + r * angle.sin() / KM_PER_DEGREE,
        lng: at.lng + r * angle.cos() / (KM_PER_DEGREE * at.lat.to_radians().cos()),
    }
}

impl Storm {
    /// The storm of `shape` for `seed`. The shape must pass [`Shape::check`].
    pub fn generate(shape: Shape, seed: u64) -> Storm {
        let mut rng = Rng::new(seed);
        let drivers: Vec<Driver> = (0..shape.drivers)
            .map(|i| Driver {
                id: DriverId(format!("D{i:05}")),
                at: in_box(&mut rng),
            })
            .collect();
        let pickups: Vec<LatLng> = drivers[..shape.orders]
            .iter()
            .map(|d| near(&mut rng, d.at, PICKUP_RADIUS_KM))
            .collect();
        let mut holders: Vec<usize> = (0..shape.orders).collect();
        rng.shuffle(&mut holders);
        let mut tasks: Vec<Task> = holders[..shape.reports]
            .iter()
            .map(|&i| Task {
                id: OrderId(format!("O{i:05}")),
                at: pickups[i],
                reporter: Some(i),
            })
            .collect();
        tasks.extend((0..shape.waiting).map(|j| Task {
            id: OrderId(format!("W{j:05}")),
            at: in_box(&mut rng),
            reporter: None,
        }));
        let by_id = drivers
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Storm {
            shape,
            seed,
            drivers,
            tasks,
            by_id,
        }
    }

    /// Whether driver `i` holds an order before the storm.
    pub fn holds(&self, i: usize) -> bool {
        i < self.shape.orders
    }

    /// A driver's index, from its id.
    pub fn driver(&self, id: &DriverId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The drivers as the Dispatcher's index knows them before the storm: online, capacity 1,
    /// the holders full.
    pub fn index(&self) -> DriverIndex {
        let mut index = DriverIndex::new();
        for (i, d) in self.drivers.iter().enumerate() {
            index.upsert(Candidate {
                id: d.id.clone(),
                fleet: FLEET.to_string(),
                online: true,
                held: i32::from(self.holds(i)),
                capacity: 1,
                location: Some(d.at),
            });
        }
        index
    }

    /// The orders of the batch as the Dispatcher builds them: a reported order excludes its
    /// reporter, a waiting one excludes nobody; none is kept where it is.
    pub fn batch_orders(&self) -> Vec<BatchOrder> {
        self.tasks
            .iter()
            .map(|t| BatchOrder {
                id: t.id.clone(),
                at: t.at,
                excluded: self.excluded(t),
                keep: None,
            })
            .collect()
    }

    /// The slots the batch frees: one per reporter.
    pub fn released(&self) -> HashMap<DriverId, u32> {
        self.tasks
            .iter()
            .filter_map(|t| t.reporter)
            .map(|i| (self.drivers[i].id.clone(), 1))
            .collect()
    }

    /// The drivers `task` must not go to: its reporter.
    pub fn excluded(&self, task: &Task) -> HashSet<DriverId> {
        task.reporter
            .map(|i| self.drivers[i].id.clone())
            .into_iter()
            .collect()
    }

    /// The distance from `task` to driver `i`, in whole metres, as the engine measures it.
    pub fn distance_m(&self, task: &Task, i: usize) -> i64 {
        let d = &self.drivers[i];
        assignment::distance_m(
            task.at,
            &BatchDriver {
                id: d.id.clone(),
                location: Some(d.at),
                free: 1,
            },
        )
    }

    /// Checks an answer (a driver index or none per task) against the storm's rules and scores
    /// it: orders served and total metres. An answer that gives an order to its reporter, to a
    /// driver still holding another order, or two orders to one driver is refused, with why.
    pub fn score(&self, to: &[Option<usize>]) -> Result<(usize, i64), String> {
        if to.len() != self.tasks.len() {
            return Err(format!(
                "{} answers for {} orders",
                to.len(),
                self.tasks.len()
            ));
        }
        let reporters: HashSet<usize> = self.tasks.iter().filter_map(|t| t.reporter).collect();
        let mut used: HashMap<usize, &OrderId> = HashMap::new();
        let (mut served, mut total) = (0, 0);
        for (task, to) in self.tasks.iter().zip(to) {
            let Some(i) = *to else { continue };
            let driver = &self.drivers.get(i).ok_or("no such driver")?.id;
            if task.reporter == Some(i) {
                return Err(format!("{} went back to its reporter {driver}", task.id));
            }
            if self.holds(i) && !reporters.contains(&i) {
                return Err(format!(
                    "{} went to {driver}, who holds another order",
                    task.id
                ));
            }
            if let Some(other) = used.insert(i, &task.id) {
                return Err(format!(
                    "{driver} (capacity 1) got both {other} and {}",
                    task.id
                ));
            }
            served += 1;
            total += self.distance_m(task, i);
        }
        Ok((served, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(drivers: usize, orders: usize, reports: usize, waiting: usize) -> Shape {
        Shape {
            drivers,
            orders,
            reports,
            waiting,
        }
    }

    #[test]
    fn a_storm_has_its_shape_and_is_the_same_for_the_same_seed() {
        let s = shape(50, 40, 10, 5);
        let a = Storm::generate(s, 3);
        let b = Storm::generate(s, 3);
        assert_eq!(a.drivers.len(), 50);
        assert_eq!(a.tasks.len(), 15);
        assert_eq!(a.tasks.iter().filter(|t| t.reporter.is_some()).count(), 10);
        let reporters: HashSet<_> = a.tasks.iter().filter_map(|t| t.reporter).collect();
        assert_eq!(reporters.len(), 10, "distinct reporters");
        assert!(reporters.iter().all(|&i| a.holds(i)));
        let ids = |s: &Storm| s.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&Storm::generate(s, 4)));
        assert_eq!(a.index().free_slots_in(FLEET), 10);
    }

    #[test]
    fn a_reported_order_waits_near_its_reporter() {
        let storm = Storm::generate(shape(200, 200, 200, 0), 1);
        for t in &storm.tasks {
            let i = t.reporter.unwrap_or_default();
            assert!(storm.distance_m(t, i) <= (PICKUP_RADIUS_KM * 1000.0) as i64 + 10);
        }
    }

    #[test]
    fn impossible_shapes_say_what_is_wrong() {
        assert!(shape(3, 4, 1, 0)
            .check()
            .unwrap_err()
            .contains("--orders 4"));
        assert!(shape(3, 2, 3, 0)
            .check()
            .unwrap_err()
            .contains("--reports 3"));
        assert!(shape(0, 0, 0, 1).check().is_err());
        assert!(shape(3, 3, 0, 0).check().is_err());
        assert!(shape(3, 3, 0, 1).check().is_ok());
    }

    #[test]
    fn scoring_refuses_what_the_rules_forbid() {
        let storm = Storm::generate(shape(4, 3, 2, 0), 9);
        let r0 = storm.tasks[0].reporter.unwrap_or_default();
        let r1 = storm.tasks[1].reporter.unwrap_or_default();
        let held = (0..3).find(|i| *i != r0 && *i != r1).unwrap_or_default();
        assert!(
            storm.score(&[Some(r0), None]).is_err(),
            "back to its reporter"
        );
        assert!(
            storm.score(&[Some(held), None]).is_err(),
            "to a full driver"
        );
        assert!(storm.score(&[Some(3), Some(3)]).is_err(), "twice the same");
        assert_eq!(storm.score(&[Some(r1), Some(r0)]).map(|s| s.0), Ok(2));
        assert_eq!(storm.score(&[None, None]), Ok((0, 0)));
    }
}
