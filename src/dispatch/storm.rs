//! Storm planning: one fleet's batch of orders (reported, waiting, re-matchable) decided against
//! the fleet's drivers as the spatial index knows them. What the Dispatcher runs for a batch, and
//! what the simulator (`rallypoint-sim`) and the benches measure.
//!
//! - Drivers: the available ones (from the index, `k` nearest per order) and those the batch
//!   frees itself (`released`: a reporter's slot, the slot of an order it may re-match), which
//!   are not in the index's tree while they are full.
//! - Each order's candidates are its `k` nearest eligible drivers (plus the driver that keeps it).
//!   The exact solver (`assignment::solve`, minimum-cost maximum flow) decides over them; while
//!   orders stay unserved that a wider choice might serve, `k` doubles, up to the batch's size,
//!   where the pruned answer is the exact answer over every driver (an order never needs more
//!   than its batch-size nearest: among them one is always free for it).
//! - Past `max_batch` orders, or once the time budget is spent, the batch is decided greedily:
//!   each order in turn takes its nearest driver with a free slot (a kept order stays), so a storm
//!   never stalls the Dispatcher.

use super::assignment::{self, Assignment, BatchDriver, BatchOrder, Params};
use super::index::DriverIndex;
use super::matching::Candidate;
use crate::protocol::DriverId;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How batches are decided (from `dispatch.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormParams {
    /// Candidates per order to start with.
    pub k: usize,
    /// Extra cost, in metres, of moving an order away from the driver that keeps it.
    pub move_penalty_m: i64,
    /// Orders decided exactly at most; a larger batch is greedy.
    pub max_batch: usize,
    /// Time the exact decision may take before it falls back to greedy.
    pub budget: Duration,
}

/// How a batch was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// Minimum total cost among the answers serving the most orders, over the candidates.
    Exact,
    /// Greedy: the batch had more than `max_batch` orders.
    GreedyMaxBatch,
    /// Greedy: the exact decision ran out of its time budget.
    GreedyBudget,
}

impl Solver {
    pub fn as_str(self) -> &'static str {
        match self {
            Solver::Exact => "exact",
            Solver::GreedyMaxBatch => "greedy_max_batch",
            Solver::GreedyBudget => "greedy_budget",
        }
    }
}

/// A batch's answer and how it was reached.
#[derive(Debug, Clone)]
pub struct Plan {
    pub assignment: Assignment,
    pub solver: Solver,
    /// Candidates per order in the last exact round.
    pub k: usize,
    /// Exact rounds run (each one with twice the candidates of the one before).
    pub rounds: u32,
    /// Drivers the batch looked at.
    pub drivers: usize,
}

/// The drivers a batch looks at, each once, with the slots it may fill.
struct Drivers<'a> {
    index: &'a DriverIndex,
    fleet: &'a str,
    released: &'a HashMap<DriverId, u32>,
    list: Vec<BatchDriver>,
    /// Position in `list`, or `None` for a driver that cannot take anything here.
    at: HashMap<DriverId, Option<usize>>,
}

impl<'a> Drivers<'a> {
    fn new(
        index: &'a DriverIndex,
        fleet: &'a str,
        released: &'a HashMap<DriverId, u32>,
    ) -> Drivers<'a> {
        Drivers {
            index,
            fleet,
            released,
            list: Vec::new(),
            at: HashMap::new(),
        }
    }

    /// The driver's place in `list`: online, of this fleet, with a free slot once the batch has
    /// freed its own.
    fn place(&mut self, id: &DriverId) -> Option<usize> {
        if let Some(at) = self.at.get(id) {
            return *at;
        }
        let at = self.index.get(id).and_then(|c| {
            let released = self.released.get(id).copied().unwrap_or(0);
            let free = u32::try_from(c.capacity.saturating_sub(c.held).max(0))
                .unwrap_or(0)
                .saturating_add(released);
            (c.online && c.fleet == self.fleet && free > 0).then(|| {
                self.list.push(BatchDriver {
                    id: c.id.clone(),
                    location: c.location,
                    free,
                });
                self.list.len() - 1
            })
        });
        self.at.insert(id.clone(), at);
        at
    }

    /// The drivers the batch frees a slot of, that can take something.
    fn released(&mut self) -> Vec<usize> {
        let mut ids: Vec<&DriverId> = self.released.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| self.place(id)).collect()
    }
}

/// What serving an order that no driver keeps costs more, when the batch has kept orders: more
/// than any difference of cost between two candidates.
fn keep_bias(orders: &[BatchOrder]) -> i64 {
    if orders.iter().any(|o| o.keep.is_some()) {
        2 * (assignment::UNKNOWN_DISTANCE_M + assignment::MAX_MOVE_PENALTY_M)
    } else {
        0
    }
}

/// A distance in km as the index answers it, in whole metres as `assignment::distance_m` makes it.
fn metres(km: Option<f64>) -> i64 {
    km.map(|km| km * 1000.0)
        .filter(|m| m.is_finite())
        .map_or(assignment::UNKNOWN_DISTANCE_M, |m| {
            (m.round() as i64).clamp(0, assignment::UNKNOWN_DISTANCE_M)
        })
}

/// The drivers the batch frees a slot of, in a tree of their own (while full they are not in the
/// index's tree), so each order finds its nearest among them as it does among the available.
fn freed_tree(drivers: &Drivers<'_>, specials: &[usize]) -> DriverIndex {
    let mut freed = DriverIndex::new();
    for &j in specials {
        let d = &drivers.list[j];
        freed.upsert(Candidate {
            id: d.id.clone(),
            fleet: drivers.fleet.to_string(),
            online: true,
            held: 0,
            capacity: i32::try_from(d.free).unwrap_or(i32::MAX),
            location: d.location,
        });
    }
    freed
}

/// Each order's candidates for `k`, as `assignment::candidates` makes them over every driver,
/// and whether any list was cut short (a wider `k` could add drivers).
fn lists(
    drivers: &mut Drivers<'_>,
    freed: &DriverIndex,
    orders: &[BatchOrder],
    k: usize,
    params: &Params,
) -> (Vec<Vec<(usize, i64)>>, bool) {
    let k = k.max(1);
    let keep_bias = keep_bias(orders);
    let penalty = params
        .move_penalty_m
        .clamp(0, assignment::MAX_MOVE_PENALTY_M);
    let index = drivers.index;
    let fleet = drivers.fleet;
    let mut cut = false;
    let mut all = Vec::with_capacity(orders.len());
    for order in orders {
        let skip = |id: &DriverId| order.excluded.contains(id);
        let near = index.nearest(fleet, order.at, k, skip);
        let near_freed = freed.nearest(fleet, order.at, k, skip);
        cut |= near.len() >= k || near_freed.len() >= k;
        let mut ranked: Vec<(usize, i64)> = Vec::with_capacity(2 * k + 1);
        for (c, km) in near.into_iter().chain(near_freed) {
            if let Some(j) = drivers.place(&c.id) {
                if !ranked.iter().any(|r| r.0 == j) {
                    ranked.push((j, metres(km)));
                }
            }
        }
        if let Some(keep) = order.keep.as_ref().filter(|d| !skip(d)) {
            if let Some(j) = drivers.place(keep) {
                if !ranked.iter().any(|r| r.0 == j) {
                    ranked.push((j, assignment::distance_m(order.at, &drivers.list[j])));
                }
            }
        }
        let list = &drivers.list;
        ranked.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| list[a.0].id.cmp(&list[b.0].id)));
        if ranked.len() > k {
            cut = true;
            let keep = order
                .keep
                .as_ref()
                .and_then(|keep| ranked.iter().position(|c| list[c.0].id == *keep))
                .filter(|at| *at >= k)
                .map(|at| ranked[at]);
            ranked.truncate(k);
            ranked.extend(keep);
        }
        // Among answers serving as many orders, one that keeps every kept order served wins:
        // re-matching never takes an order off its driver to serve another in its place.
        let bias = if order.keep.is_none() { keep_bias } else { 0 };
        let mut costed: Vec<(usize, i64)> = ranked
            .into_iter()
            .map(|(j, distance)| {
                let moved = order.keep.as_ref().is_some_and(|keep| *keep != list[j].id);
                (j, distance + if moved { penalty } else { 0 } + bias)
            })
            .collect();
        costed.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| list[a.0].id.cmp(&list[b.0].id)));
        all.push(costed);
    }
    (all, cut)
}

/// Decides one fleet's batch. `released` counts, per driver, the slots the batch frees (its
/// reported orders, the orders it may re-match); each order's `excluded` must hold its reporter.
pub fn plan(
    index: &DriverIndex,
    fleet: &str,
    orders: &[BatchOrder],
    released: &HashMap<DriverId, u32>,
    params: &StormParams,
) -> Plan {
    let started = Instant::now();
    let mut drivers = Drivers::new(index, fleet, released);
    if orders.len() > params.max_batch {
        return greedy(&mut drivers, orders, params, Solver::GreedyMaxBatch);
    }
    let deadline = started + params.budget;
    let specials = drivers.released();
    let freed = freed_tree(&drivers, &specials);
    let solver = Params {
        k: params.k,
        move_penalty_m: params.move_penalty_m,
    };
    // No batch serves more than the fleet's free slots and those it frees.
    let slots = index.free_slots_in(fleet)
        + specials
            .iter()
            .map(|&j| u64::from(released.get(&drivers.list[j].id).copied().unwrap_or(0)))
            .sum::<u64>();
    let mut k = params.k.max(1);
    let mut rounds = 0;
    loop {
        let (lists, cut) = lists(&mut drivers, &freed, orders, k, &solver);
        rounds += 1;
        let Some(mut answer) = assignment::solve(orders, &drivers.list, &lists, Some(deadline))
        else {
            return greedy(&mut drivers, orders, params, Solver::GreedyBudget);
        };
        let bias = keep_bias(orders);
        let biased = orders
            .iter()
            .zip(&answer.pairs)
            .filter(|(o, (_, d))| o.keep.is_none() && d.is_some())
            .count();
        answer.total_cost -= bias * i64::try_from(biased).unwrap_or(0);
        let servable = lists.iter().filter(|l| !l.is_empty()).count();
        let bound = u64::try_from(servable).unwrap_or(u64::MAX).min(slots);
        let all_served = u64::try_from(answer.served).unwrap_or(u64::MAX) >= bound;
        if all_served || !cut || k >= orders.len() || !answer.exact {
            // Not exact: costs too large for the solver's integers (greedy answered instead).
            let solver = if answer.exact {
                Solver::Exact
            } else {
                Solver::GreedyBudget
            };
            return Plan {
                assignment: answer,
                solver,
                k,
                rounds,
                drivers: drivers.list.len(),
            };
        }
        k = (k * 2).min(orders.len());
    }
}

/// Greedy: each order in turn (a kept order stays where it is if it can) takes its nearest
/// driver with a free slot.
fn greedy(
    drivers: &mut Drivers<'_>,
    orders: &[BatchOrder],
    params: &StormParams,
    solver: Solver,
) -> Plan {
    let costs = Params {
        k: params.k,
        move_penalty_m: params.move_penalty_m,
    };
    // The freed drivers in a tree of their own: a large storm does not compare every order with
    // every reporter.
    let specials = drivers.released();
    let freed = freed_tree(drivers, &specials);
    let mut taken: HashMap<usize, u32> = HashMap::new();
    let mut full: HashSet<DriverId> = HashSet::new();
    let mut chosen: Vec<Option<(usize, i64)>> = Vec::with_capacity(orders.len());
    for order in orders {
        let refused = |id: &DriverId| order.excluded.contains(id) || full.contains(id);
        let kept = order
            .keep
            .as_ref()
            .filter(|keep| !refused(keep))
            .and_then(|keep| drivers.place(keep));
        let pick = kept.or_else(|| {
            // The nearest available one with room left and the nearest freed one: the nearer
            // wins (the index's order: distance, unknown last, then id).
            let near = drivers
                .index
                .nearest(drivers.fleet, order.at, 1, refused)
                .into_iter()
                .chain(freed.nearest(drivers.fleet, order.at, 1, refused))
                .min_by(|a, b| {
                    let (da, db) = (a.1.unwrap_or(f64::INFINITY), b.1.unwrap_or(f64::INFINITY));
                    da.total_cmp(&db).then_with(|| a.0.id.cmp(&b.0.id))
                })
                .map(|(c, _)| c.id.clone());
            near.and_then(|id| drivers.place(&id))
        });
        if let Some(j) = pick {
            let n = taken.entry(j).or_default();
            *n += 1;
            if *n >= drivers.list[j].free {
                full.insert(drivers.list[j].id.clone());
            }
        }
        chosen.push(pick.map(|j| (j, assignment::cost(order, &drivers.list[j], &costs))));
    }
    let pairs = orders
        .iter()
        .zip(&chosen)
        .map(|(o, c)| (o.id.clone(), c.map(|(j, _)| drivers.list[j].id.clone())))
        .collect();
    Plan {
        assignment: Assignment {
            pairs,
            served: chosen.iter().flatten().count(),
            total_cost: chosen.iter().flatten().map(|c| c.1).sum(),
            exact: false,
        },
        solver,
        k: 1,
        rounds: 0,
        drivers: drivers.list.len(),
    }
}

#[cfg(test)]
mod tests;
