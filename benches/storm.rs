//! Storm planning with 10,000 online drivers: `storm::plan` deciding 100 reports at once, and a
//! single report, with the dispatch defaults (k = 10, max_batch 200, budget 20 ms, move penalty
//! 50 km). 8,000 drivers hold an order (capacity 1, so they are full), 2,000 are free; each
//! reporter holds the order it reports, picked up within 2 km of it. The index and the batch are
//! built once, outside the timing: `plan` only reads them.
//!
//! How the answers compare with greedy and with the optimum is the simulator's business
//! (`cargo run --release -p rallypoint-sim`, BENCHMARKS.md "Storm dispatch").

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rallypoint::dispatch::assignment::BatchOrder;
use rallypoint::dispatch::index::DriverIndex;
use rallypoint::dispatch::matching::Candidate;
use rallypoint::dispatch::storm::{self, Solver, StormParams};
use rallypoint::protocol::{DriverId, LatLng, OrderId};
use std::collections::HashMap;
use std::time::Duration;

const DRIVERS: usize = 10_000;
const HOLDING: usize = 8_000;
const FLEET: &str = "default";

/// `[dispatch]`'s defaults in config/default.toml.
const PARAMS: StormParams = StormParams {
    k: 10,
    move_penalty_m: 50_000,
    max_batch: 200,
    budget: Duration::from_millis(20),
};

mod common;
use common::Rng;

/// A point in a 20 km square around Paris.
fn in_city(rng: &mut Rng) -> LatLng {
    rng.in_box(48.77, 2.21, 0.18, 0.27)
}

/// A point within about 2 km of `at`.
fn near(rng: &mut Rng, at: LatLng) -> LatLng {
    LatLng {
        lat: at.lat + (rng.unit() - 0.5) * 0.036,
        lng: at.lng + (rng.unit() - 0.5) * 0.054,
    }
}

/// The city's index, and the batch of `reports` reported orders with the slots they free, as
/// the Dispatcher builds a batch: each order excludes its reporter, each reporter is released.
fn storm(reports: usize) -> (DriverIndex, Vec<BatchOrder>, HashMap<DriverId, u32>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut index = DriverIndex::new();
    let mut places = Vec::with_capacity(DRIVERS);
    for i in 0..DRIVERS {
        let at = in_city(&mut rng);
        places.push(at);
        index.upsert(Candidate {
            id: DriverId(format!("DRV-{i:05}")),
            fleet: FLEET.to_string(),
            online: true,
            held: i32::from(i < HOLDING),
            capacity: 1,
            location: Some(at),
        });
    }
    let mut orders = Vec::with_capacity(reports);
    let mut released = HashMap::new();
    for n in 0..reports {
        // Reporters spread over the holders (79 is prime to 8,000: all distinct).
        let i = (n * 79) % HOLDING;
        let reporter = DriverId(format!("DRV-{i:05}"));
        orders.push(BatchOrder {
            id: OrderId(format!("ORD-{i:05}")),
            at: near(&mut rng, places[i]),
            excluded: [reporter.clone()].into_iter().collect(),
            keep: None,
        });
        released.insert(reporter, 1);
    }
    (index, orders, released)
}

fn bench_storm(c: &mut Criterion) {
    let mut group = c.benchmark_group("storm_plan");
    for reports in [100, 1] {
        let (index, orders, released) = storm(reports);
        // What is timed must be the exact plan serving every order, not a fallback.
        let plan = storm::plan(&index, FLEET, &orders, &released, &PARAMS);
        assert_eq!(plan.assignment.served, reports, "{plan:?}");
        if plan.solver != Solver::Exact {
            eprintln!(
                "storm_plan/{reports}x{DRIVERS}: the check plan was {} (over its budget)",
                plan.solver.as_str()
            );
        }
        group.bench_function(format!("{reports}x{DRIVERS}"), |b| {
            b.iter(|| {
                black_box(storm::plan(
                    &index,
                    FLEET,
                    black_box(&orders),
                    &released,
                    &PARAMS,
                ))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_storm
}
criterion_main!(benches);
