//! The three deciders of a storm, each given the same [`Storm`] and answering a driver (or none)
//! per order, with the wall-clock time of the decision alone (building the index and the inputs
//! is set-up, not timed):
//!
//! - [`greedy`]: what the engine did before batching, one report at a time;
//! - [`ours`]: `storm::plan`, called as the Dispatcher calls it for a batch;
//! - [`optimum`]: the offline optimum, an exact assignment over every driver.
//!
//! Whether an answer keeps the storm's rules is [`Storm::score`]'s business, not theirs.

use crate::city::{Storm, FLEET};
use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;
use rallypoint::dispatch::index::DriverIndex;
use rallypoint::dispatch::storm::{self, Plan, StormParams};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The dispatch defaults (`config/default.toml`, `[dispatch]`), as the Dispatcher passes them.
pub const DEFAULT_PARAMS: StormParams = StormParams {
    k: 10,
    move_penalty_m: 50_000,
    max_batch: 200,
    budget: Duration::from_millis(20),
};

/// The largest dense matrix the optimum builds (orders × (free slots + orders)), about 160 MB:
/// past it the optimum is skipped rather than the machine run out of memory.
pub const MAX_OPTIMUM_CELLS: usize = 20_000_000;

/// A decider's answer for a storm.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Per order of `Storm::tasks`, the driver (by index in `Storm::drivers`) it goes to.
    pub to: Vec<Option<usize>>,
    /// The decision's wall-clock time.
    pub time: Duration,
    /// `storm::plan`'s own account, for `ours`.
    pub plan: Option<Plan>,
}

/// One report at a time, in arrival order, as the Dispatcher decided before batching: the order
/// goes to the nearest available driver other than its reporter (`DriverIndex::best`), or waits
/// when there is none; only then is the reporter's slot free. After each decision, every waiting
/// order, oldest first, goes to its nearest available driver (the Dispatcher's
/// `DispatchWaiting`). Without reports, that one pass over the waiting orders.
pub fn greedy(storm: &Storm) -> Decision {
    let mut index = storm.index();
    let excluded: Vec<HashSet<_>> = storm.tasks.iter().map(|t| storm.excluded(t)).collect();
    let reported: Vec<usize> = (0..storm.tasks.len())
        .filter(|&n| storm.tasks[n].reporter.is_some())
        .collect();
    let mut waiting: Vec<usize> = (0..storm.tasks.len())
        .filter(|&n| storm.tasks[n].reporter.is_none())
        .collect();
    let mut to = vec![None; storm.tasks.len()];
    let started = Instant::now();
    let dispatch =
        |index: &mut DriverIndex, to: &mut Vec<Option<usize>>, waiting: &mut Vec<usize>| {
            waiting.retain(|&n| {
                let Some(id) = index
                    .best(FLEET, storm.tasks[n].at, &excluded[n])
                    .map(|c| c.id.clone())
                else {
                    return true;
                };
                index.hold(&id);
                to[n] = storm.driver(&id);
                false
            });
        };
    for &n in &reported {
        let task = &storm.tasks[n];
        match index
            .best(FLEET, task.at, &excluded[n])
            .map(|c| c.id.clone())
        {
            Some(id) => {
                index.hold(&id);
                to[n] = storm.driver(&id);
            }
            None => waiting.push(n),
        }
        if let Some(r) = task.reporter {
            index.release(&storm.drivers[r].id);
        }
        dispatch(&mut index, &mut to, &mut waiting);
    }
    if reported.is_empty() {
        dispatch(&mut index, &mut to, &mut waiting);
    }
    Decision {
        to,
        time: started.elapsed(),
        plan: None,
    }
}

/// `storm::plan` over the fleet's index, as the Dispatcher's batch calls it: the reported orders
/// (each excluding its reporter) then the waiting ones, the reporters' slots released. An answer
/// naming an order or a driver the storm does not have is refused.
pub fn ours(storm: &Storm, params: &StormParams) -> Result<Decision, String> {
    let index = storm.index();
    let orders = storm.batch_orders();
    let released = storm.released();
    let started = Instant::now();
    let plan = storm::plan(&index, FLEET, &orders, &released, params);
    let time = started.elapsed();
    if plan.assignment.pairs.len() != orders.len() {
        return Err(format!(
            "storm::plan answered {} pairs for {} orders",
            plan.assignment.pairs.len(),
            orders.len()
        ));
    }
    let to = orders
        .iter()
        .zip(&plan.assignment.pairs)
        .map(|(o, (id, d))| {
            if *id != o.id {
                return Err(format!(
                    "storm::plan answered {id} in the place of {}",
                    o.id
                ));
            }
            d.as_ref()
                .map(|d| {
                    storm
                        .driver(d)
                        .ok_or_else(|| format!("storm::plan gave {id} to {d}, not a driver here"))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Decision {
        to,
        time,
        plan: Some(plan),
    })
}

/// The offline optimum: every order against every free slot (the idle drivers and the
/// reporters), no index and no pruning, in one dense matrix solved by `kuhn_munkres_min`. One
/// "unserved" column per order costs more than any sum of distances, and a forbidden cell (an
/// order and its reporter) more than leaving every order unserved: so the answer serves as many
/// orders as possible, then at the least total distance. `Err` when the matrix would be larger
/// than [`MAX_OPTIMUM_CELLS`].
pub fn optimum(storm: &Storm) -> Result<Decision, String> {
    let reporters: HashSet<usize> = storm.tasks.iter().filter_map(|t| t.reporter).collect();
    let slots: Vec<usize> = (0..storm.drivers.len())
        .filter(|i| !storm.holds(*i) || reporters.contains(i))
        .collect();
    let rows = storm.tasks.len();
    let columns = slots.len() + rows;
    if rows.saturating_mul(columns) > MAX_OPTIMUM_CELLS {
        return Err(format!(
            "a {rows} × {columns} matrix is over the {MAX_OPTIMUM_CELLS} cells this simulator builds"
        ));
    }
    let started = Instant::now();
    let mut distance = vec![None; rows * slots.len()];
    let mut longest = 0;
    for (r, task) in storm.tasks.iter().enumerate() {
        for (c, &i) in slots.iter().enumerate() {
            if task.reporter != Some(i) {
                let d = storm.distance_m(task, i);
                longest = longest.max(d);
                distance[r * slots.len() + c] = Some(d);
            }
        }
    }
    let n = i64::try_from(rows).unwrap_or(i64::MAX);
    let costs = (longest + 1)
        .checked_mul(n + 1)
        .and_then(|unserved| Some((unserved, unserved.checked_mul(n + 1)?)))
        .filter(|(_, forbidden)| forbidden.checked_mul(n + 1).is_some());
    let Some((unserved, forbidden)) = costs else {
        return Err(format!(
            "distances up to {longest} m overflow the optimum's costs"
        ));
    };
    let mut matrix = Matrix::new(rows, columns, forbidden);
    for r in 0..rows {
        for c in 0..slots.len() {
            if let Some(d) = distance[r * slots.len() + c] {
                matrix[(r, c)] = d;
            }
        }
        for c in slots.len()..columns {
            matrix[(r, c)] = unserved;
        }
    }
    let (_, by_row) = kuhn_munkres_min(&matrix);
    let to = by_row
        .iter()
        .enumerate()
        .map(|(r, &c)| (c < slots.len() && matrix[(r, c)] < unserved).then(|| slots[c]))
        .collect();
    Ok(Decision {
        to,
        time: started.elapsed(),
        plan: None,
    })
}
