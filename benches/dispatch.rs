//! A Dispatcher decision with 10,000 online drivers: where the order is, the nearest available
//! driver through the spatial index, the decision and the new ETA (what `Decide` computes before
//! it commits), against the same with the old linear scan; and the cost of keeping the index up
//! to date as a driver moves.
//!
//! Storm dispatch: a batch of 100 reports decided exactly, over 1,000 drivers (candidates and
//! solver) and over 10,000 (the solver alone, on candidate lists built beforehand), and the
//! candidate pruning alone over 1,000.
//!
//! Pure code only: the database commit and the publication that follow a decision are measured
//! by the load generator, not here.

use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rallypoint::dispatch::assignment::{self, BatchDriver, BatchOrder, Params};
use rallypoint::dispatch::index::DriverIndex;
use rallypoint::dispatch::matching::{best_driver, Candidate};
use rallypoint::dispatch::{decision, matching};
use rallypoint::protocol::{Action, DriverId, LatLng, OrderId, OrderStatus};
use std::collections::HashSet;
use std::time::Duration;

const DRIVERS: usize = 10_000;
const FLEET: &str = "default";
/// Queries cycled through, so no answer stays in a cache line by luck.
const QUERIES: usize = 1024;

mod common;
use common::Rng;

/// A point in a 50 km square around Paris, where the drivers of a city fleet are.
fn in_city(rng: &mut Rng) -> LatLng {
    rng.in_box(48.65, 2.0, 0.45, 0.7)
}

/// 10,000 online drivers of one fleet, a quarter of them busy with one of their two orders and
/// one in twenty at capacity.
fn drivers(rng: &mut Rng) -> Vec<Candidate> {
    (0..DRIVERS)
        .map(|i| Candidate {
            id: DriverId(format!("DRV-{i:05}")),
            fleet: FLEET.to_string(),
            online: true,
            held: match i % 20 {
                0 => 2,
                1..=4 => 1,
                _ => 0,
            },
            capacity: 2,
            location: Some(in_city(rng)),
        })
        .collect()
}

/// What `Decide` knows about a reported order.
struct Report {
    status: OrderStatus,
    driver: DriverId,
    driver_at: LatLng,
    pickup: LatLng,
    dropoff: LatLng,
}

fn reports(rng: &mut Rng) -> Vec<Report> {
    (0..QUERIES)
        .map(|i| Report {
            status: if i % 2 == 0 {
                OrderStatus::Assigned
            } else {
                OrderStatus::OutForDelivery
            },
            driver: DriverId(format!("DRV-{:05}", (rng.unit() * DRIVERS as f64) as usize)),
            driver_at: in_city(rng),
            pickup: in_city(rng),
            dropoff: in_city(rng),
        })
        .collect()
}

/// The decision for a report scored above the threshold, with the driver search given.
fn decide<'a>(
    r: &Report,
    search: impl FnOnce(LatLng, &HashSet<DriverId>) -> Option<&'a Candidate>,
) -> (Action, Option<chrono::DateTime<Utc>>) {
    let from = decision::order_position(r.status, Some(r.driver_at), r.pickup);
    // As `best_for` builds it: the order's exclusions plus its current driver.
    let excluded: HashSet<DriverId> = [r.driver.clone()].into_iter().collect();
    let best = search(from, &excluded);
    let action = decision::decide(0.9, 0.7, best.map(|c| &c.id));
    let eta = best.map(|c| {
        let km = decision::remaining_km(OrderStatus::Assigned, c.location, from, r.dropoff);
        decision::eta(Utc::now(), km, 30.0)
    });
    (action, eta)
}

fn bench_decision(c: &mut Criterion) {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let all = drivers(&mut rng);
    let reports = reports(&mut rng);
    let mut index = DriverIndex::new();
    for d in &all {
        index.upsert(d.clone());
    }
    // The index must answer what the scan answers before either is timed.
    for r in &reports {
        let from = decision::order_position(r.status, Some(r.driver_at), r.pickup);
        let excluded: HashSet<DriverId> = [r.driver.clone()].into_iter().collect();
        let by_index = index.best(FLEET, from, &excluded).map(|c| &c.id);
        let by_scan = best_driver(&all, FLEET, from, &excluded).map(|c| &c.id);
        assert_eq!(by_index, by_scan);
    }

    let mut group = c.benchmark_group("dispatch");
    let mut i = 0;
    group.bench_function(BenchmarkId::new("decision_indexed", DRIVERS), |b| {
        b.iter(|| {
            i = (i + 1) % QUERIES;
            black_box(decide(&reports[i], |from, ex| index.best(FLEET, from, ex)))
        })
    });
    group.bench_function(BenchmarkId::new("decision_linear_scan", DRIVERS), |b| {
        b.iter(|| {
            i = (i + 1) % QUERIES;
            // Over the index's own map, as the Dispatcher scanned it before the index.
            black_box(decide(&reports[i], |from, ex| {
                best_driver(index.drivers(), FLEET, from, ex)
            }))
        })
    });
    // A location update as the Dispatcher applies it: out of the tree and back in.
    let ids: Vec<DriverId> = all.iter().map(|d| d.id.clone()).collect();
    let moves: Vec<LatLng> = (0..QUERIES).map(|_| in_city(&mut rng)).collect();
    group.bench_function(BenchmarkId::new("driver_moves", DRIVERS), |b| {
        b.iter(|| {
            i = (i + 1) % QUERIES;
            index.set_location(&ids[(i * 7919) % DRIVERS], moves[i]);
        })
    });
    group.bench_function(BenchmarkId::new("haversine_km", 1), |b| {
        b.iter(|| {
            i = (i + 1) % QUERIES;
            black_box(matching::haversine_km(moves[i], moves[(i + 1) % QUERIES]))
        })
    });
    group.finish();
}

/// A storm: `n` reports in the city, each excluding its reporter (driver `i`), among `m` drivers
/// with one free slot each.
fn storm(rng: &mut Rng, n: usize, m: usize) -> (Vec<BatchOrder>, Vec<BatchDriver>) {
    let drivers: Vec<BatchDriver> = (0..m)
        .map(|j| BatchDriver {
            id: DriverId(format!("DRV-{j:05}")),
            location: Some(in_city(rng)),
            free: 1,
        })
        .collect();
    let orders = (0..n)
        .map(|i| BatchOrder {
            id: OrderId(format!("ORD-{i:05}")),
            at: in_city(rng),
            excluded: [drivers[i].id.clone()].into_iter().collect(),
            keep: None,
        })
        .collect();
    (orders, drivers)
}

fn bench_batch(c: &mut Criterion) {
    let params = Params {
        k: 10,
        move_penalty_m: 0,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (orders, drivers) = storm(&mut rng, 100, 1_000);
    let mut group = c.benchmark_group("batch_optimal");
    group.bench_function("100x1000", |b| {
        b.iter(|| black_box(assignment::optimal(&orders, &drivers, &params)))
    });
    // Pruning 10,000 drivers per order would dominate: the lists are built once, untimed.
    let (big_orders, big_drivers) = storm(&mut rng, 100, 10_000);
    let lists = assignment::candidates(&big_orders, &big_drivers, &params);
    group.bench_function("100x10000", |b| {
        b.iter(|| black_box(assignment::solve(&big_orders, &big_drivers, &lists, None)))
    });
    group.finish();
    // The pruning alone (the `k` nearest of every driver, per order): most of `optimal` above.
    let mut group = c.benchmark_group("batch_candidates");
    group.bench_function("100x1000", |b| {
        b.iter(|| black_box(assignment::candidates(&orders, &drivers, &params)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_decision, bench_batch
}
criterion_main!(benches);
