//! Batch assignment (issue 13, "storm dispatch"): the orders of one batch given to drivers at once,
//! so that as many orders as possible are served and, among those answers, the total distance is
//! the least. One report at a time cannot find a rotation (A's order to B, B's to C, C's to A);
//! deciding the batch together does.
//!
//! Pure: no actix, no database; the clock is read only against a deadline given to [`solve`].
//! The caller builds the batch:
//!
//! - a batch is one fleet (the caller splits a storm by fleet);
//! - an order's `excluded` holds every driver it must not go to: its excluded drivers and its
//!   reporter. A reporter of some order is otherwise an ordinary driver of the batch: it is free
//!   for every other order (its `free` counts the slot of the order it reported), never for its
//!   own (that order excludes it);
//! - `keep` names the driver that already holds the order (assigned, not yet picked up). Keeping
//!   it there costs its distance only; giving it to anyone else costs `move_penalty_m` more. The
//!   kept order's slot is counted in that driver's `free`. A reported or waiting order has no
//!   `keep`.
//!
//! Cost of (order, driver): the great-circle distance from where the order is now to the driver,
//! in whole metres, plus the move penalty where it applies. A driver with no known position is a
//! candidate of last resort, at [`UNKNOWN_DISTANCE_M`] (longer than any distance on Earth), as
//! nearest-driver matching ranks it after every located driver.
//!
//! Candidates are pruned to the `k` nearest eligible drivers of each order (ties to the smallest
//! id), plus its `keep` driver when eligible. [`solve`] then decides the batch exactly over those
//! candidates, by min-cost max-flow over the sparse candidate graph (`assignment/flow.rs`), and
//! gives up when a deadline passes first; [`optimal`] is both steps without a deadline.
//! [`greedy`] (and [`greedy_over`], the fallback over lists already built) takes each order in
//! turn and gives it its cheapest candidate with a free slot.

use crate::dispatch::matching::haversine_km;
use crate::protocol::{DriverId, LatLng, OrderId};
use std::collections::HashSet;
use std::time::Instant;

mod flow;

/// The cost of a driver with no known position: more than half the Earth's circumference
/// (20,015 km), so such a driver ranks after every located one.
pub const UNKNOWN_DISTANCE_M: i64 = 20_100_000;

/// The largest move penalty taken into account (a thousand kilometres); a larger one is clamped,
/// which keeps every sum the solver makes far inside `i64`.
pub const MAX_MOVE_PENALTY_M: i64 = 1_000_000_000;

/// One order of the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOrder {
    /// The order's id.
    pub id: OrderId,
    /// Where the order is now (its pickup, or the reporter's position once picked up).
    pub at: LatLng,
    /// Drivers the order must not go to: its excluded drivers and its reporter.
    pub excluded: HashSet<DriverId>,
    /// The driver holding it now, when it may stay there (assigned, not yet picked up).
    pub keep: Option<DriverId>,
}

/// One driver the batch may use.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchDriver {
    /// The driver's id.
    pub id: DriverId,
    /// The driver's last known position, if any.
    pub location: Option<LatLng>,
    /// Orders it may still take in this batch: capacity − held, counting the batch's own orders
    /// it holds (its reported one, its `keep` ones) as free.
    pub free: u32,
}

/// How a batch is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Candidates kept per order: its `k` nearest eligible drivers (at least one is kept).
    pub k: usize,
    /// Extra cost, in metres, of moving an order away from its `keep` driver.
    pub move_penalty_m: i64,
}

/// The answer for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Every order of the batch, in input order, with the driver it goes to (`None`: unserved).
    pub pairs: Vec<(OrderId, Option<DriverId>)>,
    /// Orders served.
    pub served: usize,
    /// Total cost of the served orders: metres, plus move penalties.
    pub total_cost: i64,
    /// Whether the exact solver decided it (`false`: greedy, asked for or fallen back to).
    pub exact: bool,
}

/// The distance from `from` to `driver`, in whole metres ([`UNKNOWN_DISTANCE_M`] without a
/// known position).
pub fn distance_m(from: LatLng, driver: &BatchDriver) -> i64 {
    driver
        .location
        .map(|at| haversine_km(from, at) * 1000.0)
        .filter(|m| m.is_finite())
        .map_or(UNKNOWN_DISTANCE_M, |m| {
            (m.round() as i64).clamp(0, UNKNOWN_DISTANCE_M)
        })
}

/// The extra cost of giving `order` to `driver`: the move penalty when another driver holds it.
fn penalty(order: &BatchOrder, driver: &BatchDriver, params: &Params) -> i64 {
    match &order.keep {
        Some(keep) if *keep != driver.id => params.move_penalty_m.clamp(0, MAX_MOVE_PENALTY_M),
        _ => 0,
    }
}

/// The cost of giving `order` to `driver`, in metres plus the move penalty where it applies.
pub fn cost(order: &BatchOrder, driver: &BatchDriver, params: &Params) -> i64 {
    distance_m(order.at, driver) + penalty(order, driver, params)
}

/// Whether `driver` may take `order` at all: not excluded, and with a free slot.
pub fn eligible(order: &BatchOrder, driver: &BatchDriver) -> bool {
    driver.free > 0 && !order.excluded.contains(&driver.id)
}

/// Each order's candidates as (driver index, cost), cheapest first: its `k` nearest eligible
/// drivers (ties to the smallest id), plus its `keep` driver when eligible and not among them.
pub fn candidates(
    orders: &[BatchOrder],
    drivers: &[BatchDriver],
    params: &Params,
) -> Vec<Vec<(usize, i64)>> {
    let k = params.k.max(1);
    orders
        .iter()
        .map(|order| {
            let mut all: Vec<(usize, i64, i64)> = drivers
                .iter()
                .enumerate()
                .filter(|(_, d)| eligible(order, d))
                .map(|(j, d)| {
                    let distance = distance_m(order.at, d);
                    (j, distance, distance + penalty(order, d, params))
                })
                .collect();
            all.sort_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| drivers[a.0].id.cmp(&drivers[b.0].id))
            });
            let kept = order
                .keep
                .as_ref()
                .and_then(|keep| all.iter().position(|c| drivers[c.0].id == *keep));
            let mut picked: Vec<(usize, i64)> = all.iter().take(k).map(|c| (c.0, c.2)).collect();
            if let Some(at) = kept.filter(|at| *at >= k) {
                picked.push((all[at].0, all[at].2));
            }
            picked.sort_by(|a, b| {
                a.1.cmp(&b.1)
                    .then_with(|| drivers[a.0].id.cmp(&drivers[b.0].id))
            });
            picked
        })
        .collect()
}

/// Greedy: each order in input order takes its cheapest candidate that still has a free slot.
pub fn greedy(orders: &[BatchOrder], drivers: &[BatchDriver], params: &Params) -> Assignment {
    let lists = candidates(orders, drivers, params);
    greedy_over(orders, drivers, &lists)
}

/// Greedy over candidate lists already built (`lists[i]`: order `i`'s candidates as (index into
/// `drivers`, cost), cheapest first): each order in input order takes the first candidate that
/// still has a free slot. Candidates naming no driver are skipped; an order without a list is
/// unserved.
pub fn greedy_over(
    orders: &[BatchOrder],
    drivers: &[BatchDriver],
    lists: &[Vec<(usize, i64)>],
) -> Assignment {
    let mut free: Vec<u32> = drivers.iter().map(|d| d.free).collect();
    let mut chosen = Vec::with_capacity(orders.len());
    for list in lists.iter().take(orders.len()) {
        let pick = list
            .iter()
            .find(|(j, _)| free.get(*j).is_some_and(|slots| *slots > 0))
            .copied();
        if let Some((j, _)) = pick {
            free[j] -= 1;
        }
        chosen.push(pick);
    }
    chosen.resize(orders.len(), None);
    finish(orders, drivers, &chosen, false)
}

/// The exact answer over the pruned candidates ([`candidates`], then [`solve`]): as many orders
/// served as possible, then the least total cost. Should the costs ever be too large for the
/// solver's integers, it is greedy's answer (`exact: false`).
pub fn optimal(orders: &[BatchOrder], drivers: &[BatchDriver], params: &Params) -> Assignment {
    let lists = candidates(orders, drivers, params);
    // Without a deadline `solve` always answers; greedy stands in rather than a panic.
    solve(orders, drivers, &lists, None).unwrap_or_else(|| greedy_over(orders, drivers, &lists))
}

/// The exact answer over candidate lists already built (`lists[i]`: order `i`'s candidates as
/// (index into `drivers`, cost), as [`candidates`] makes them): as many orders served as
/// possible, then the least total cost, the same answer on every run. `exact` is set and
/// `total_cost` is the sum of the chosen candidates' costs.
///
/// `None` when `deadline` passed before the solver finished; the clock is read once per order
/// sent, so it overruns by at most one augmentation. Candidates naming no driver, or a driver
/// without a free slot, are ignored, and an order without a list is unserved. Should the costs
/// ever be too large for the solver's integers, the answer is [`greedy_over`]'s
/// (`exact: false`).
pub fn solve(
    orders: &[BatchOrder],
    drivers: &[BatchDriver],
    lists: &[Vec<(usize, i64)>],
    deadline: Option<Instant>,
) -> Option<Assignment> {
    let lists = &lists[..lists.len().min(orders.len())];
    let free: Vec<u32> = drivers.iter().map(|d| d.free).collect();
    match flow::assign(&free, lists, deadline) {
        flow::Outcome::Assigned(mut chosen) => {
            chosen.resize(orders.len(), None);
            Some(finish(orders, drivers, &chosen, true))
        }
        flow::Outcome::Late => None,
        flow::Outcome::TooLarge => Some(greedy_over(orders, drivers, lists)),
    }
}

fn finish(
    orders: &[BatchOrder],
    drivers: &[BatchDriver],
    chosen: &[Option<(usize, i64)>],
    exact: bool,
) -> Assignment {
    let pairs = orders
        .iter()
        .zip(chosen)
        .map(|(o, c)| (o.id.clone(), c.map(|(j, _)| drivers[j].id.clone())))
        .collect();
    Assignment {
        pairs,
        served: chosen.iter().flatten().count(),
        total_cost: chosen.iter().flatten().map(|c| c.1).sum(),
        exact,
    }
}

#[cfg(test)]
mod solve_tests;
#[cfg(test)]
mod tests;
