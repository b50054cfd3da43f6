//! Tests of the batch assignment: unit tests (Scenario B among them) and property tests against
//! brute force on small batches (up to 6 orders and 6 drivers, 0–2 free slots, random exclusions
//! and kept orders). The exact solver against the old Kuhn–Munkres is in `solve_tests.rs`. A
//! failing property's seed is kept in proptest-regressions/ (commit it).

use super::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub(super) fn at(lat: f64, lng: f64) -> LatLng {
    LatLng { lat, lng }
}

pub(super) fn driver(id: &str, location: Option<LatLng>, free: u32) -> BatchDriver {
    BatchDriver {
        id: DriverId(id.into()),
        location,
        free,
    }
}

pub(super) fn order(id: &str, where_: LatLng, excluded: &[&str], keep: Option<&str>) -> BatchOrder {
    BatchOrder {
        id: OrderId(id.into()),
        at: where_,
        excluded: excluded.iter().map(|d| DriverId((*d).into())).collect(),
        keep: keep.map(|d| DriverId(d.into())),
    }
}

fn given(a: &Assignment, order: &str) -> Option<String> {
    a.pairs
        .iter()
        .find(|(o, _)| o.0 == order)
        .and_then(|(_, d)| d.as_ref().map(|d| d.0.clone()))
}

const ALL: Params = Params {
    k: 64,
    move_penalty_m: 0,
};

/// Scenario B: A and B close together, C far away; each holds one order and all three report.
fn scenario_b() -> (Vec<BatchOrder>, Vec<BatchDriver>) {
    let (a, b, c) = (at(52.50, 13.40), at(52.501, 13.40), at(52.60, 13.60));
    let drivers = vec![
        driver("A", Some(a), 1),
        driver("B", Some(b), 1),
        driver("C", Some(c), 1),
    ];
    let orders = vec![
        order("OA", a, &["A"], None),
        order("OB", b, &["B"], None),
        order("OC", c, &["C"], None),
    ];
    (orders, drivers)
}

#[test]
fn scenario_b_simultaneous_reports_are_a_rotation_with_none_back_to_its_reporter() {
    let (orders, drivers) = scenario_b();
    let got = optimal(&orders, &drivers, &ALL);
    assert_eq!(got.served, 3);
    assert!(got.exact);
    let mut to: Vec<String> = ["OA", "OB", "OC"]
        .iter()
        .map(|o| given(&got, o).unwrap_or_default())
        .collect();
    assert_ne!(given(&got, "OA").as_deref(), Some("A"));
    assert_ne!(given(&got, "OB").as_deref(), Some("B"));
    assert_ne!(given(&got, "OC").as_deref(), Some("C"));
    to.sort();
    assert_eq!(to, ["A", "B", "C"]);
}

#[test]
fn scenario_b_greedy_leaves_the_far_order_unserved_where_the_optimum_serves_all_three() {
    let (orders, drivers) = scenario_b();
    let greedy = greedy(&orders, &drivers, &ALL);
    assert_eq!(greedy.served, 2);
    assert_eq!(given(&greedy, "OC"), None);
    assert_eq!(optimal(&orders, &drivers, &ALL).served, 3);
}

#[test]
fn an_order_with_no_eligible_driver_stays_unassigned_and_the_others_are_served() {
    let drivers = vec![driver("A", Some(at(1.0, 1.0)), 1)];
    let orders = vec![
        order("O1", at(1.0, 1.0), &["A"], None),
        order("O2", at(1.0, 1.1), &[], None),
    ];
    let got = optimal(&orders, &drivers, &ALL);
    assert_eq!(given(&got, "O1"), None);
    assert_eq!(given(&got, "O2").as_deref(), Some("A"));
    assert_eq!(got.served, 1);
}

#[test]
fn a_driver_with_two_free_slots_takes_two_orders_and_no_more() {
    let drivers = vec![driver("A", Some(at(1.0, 1.0)), 2)];
    let orders: Vec<BatchOrder> = (0..3)
        .map(|i| {
            order(
                &format!("O{i}"),
                at(1.0, 1.0 + f64::from(i) * 0.01),
                &[],
                None,
            )
        })
        .collect();
    let got = optimal(&orders, &drivers, &ALL);
    assert_eq!(got.served, 2);
    assert_eq!(given(&got, "O0").as_deref(), Some("A"));
    assert_eq!(given(&got, "O1").as_deref(), Some("A"));
    assert_eq!(given(&got, "O2"), None);
}

#[test]
fn serving_one_more_order_beats_any_saving_in_distance() {
    // O1 is next to X and far from Y; O2 may only go to X. Both served means O1 travels far.
    let drivers = vec![
        driver("X", Some(at(10.0, 10.0)), 1),
        driver("Y", Some(at(11.0, 11.0)), 1),
    ];
    let orders = vec![
        order("O1", at(10.0, 10.0), &[], None),
        order("O2", at(10.5, 10.5), &["Y"], None),
    ];
    let got = optimal(&orders, &drivers, &ALL);
    assert_eq!(got.served, 2);
    assert_eq!(given(&got, "O1").as_deref(), Some("Y"));
    assert_eq!(given(&got, "O2").as_deref(), Some("X"));
}

#[test]
fn a_kept_order_stays_with_its_driver_when_moving_it_only_saves_less_than_the_penalty() {
    let drivers = vec![
        driver("X", Some(at(1.0, 1.01)), 1),
        driver("Y", Some(at(1.0, 1.0)), 1),
    ];
    let orders = vec![order("O1", at(1.0, 1.0), &[], Some("X"))];
    let params = Params {
        k: 8,
        move_penalty_m: 5_000,
    };
    let got = optimal(&orders, &drivers, &params);
    assert_eq!(given(&got, "O1").as_deref(), Some("X"));
    let free = Params {
        move_penalty_m: 0,
        ..params
    };
    assert_eq!(
        given(&optimal(&orders, &drivers, &free), "O1").as_deref(),
        Some("Y")
    );
}

#[test]
fn a_kept_order_is_moved_when_that_lets_a_waiting_order_be_served() {
    let drivers = vec![
        driver("X", Some(at(1.0, 1.0)), 1),
        driver("Y", Some(at(1.0, 1.2)), 1),
    ];
    let orders = vec![
        order("KEPT", at(1.0, 1.0), &[], Some("X")),
        order("WAITING", at(1.0, 1.0), &["Y"], None),
    ];
    let params = Params {
        k: 8,
        move_penalty_m: 100_000,
    };
    let got = optimal(&orders, &drivers, &params);
    assert_eq!(given(&got, "KEPT").as_deref(), Some("Y"));
    assert_eq!(given(&got, "WAITING").as_deref(), Some("X"));
    assert!(got.total_cost >= 100_000);
}

#[test]
fn the_kept_driver_stays_a_candidate_beyond_the_k_nearest() {
    let drivers = vec![
        driver("NEAR", Some(at(1.0, 1.0)), 1),
        driver("FAR", Some(at(1.0, 1.5)), 1),
    ];
    let orders = vec![order("O1", at(1.0, 1.0), &[], Some("FAR"))];
    let params = Params {
        k: 1,
        move_penalty_m: 1_000_000,
    };
    let lists = candidates(&orders, &drivers, &params);
    assert_eq!(lists[0].len(), 2);
    assert_eq!(
        given(&optimal(&orders, &drivers, &params), "O1").as_deref(),
        Some("FAR")
    );
}

#[test]
fn a_driver_without_a_position_is_taken_only_when_no_located_one_is_free() {
    let drivers = vec![
        driver("LOST", None, 1),
        driver("SEEN", Some(at(5.0, 5.0)), 1),
    ];
    let orders = vec![order("O1", at(1.0, 1.0), &[], None)];
    assert_eq!(
        given(&optimal(&orders, &drivers, &ALL), "O1").as_deref(),
        Some("SEEN")
    );
    let two = vec![orders[0].clone(), order("O2", at(1.0, 1.0), &[], None)];
    let got = optimal(&two, &drivers, &ALL);
    assert_eq!(got.served, 2);
    assert!(got.total_cost >= UNKNOWN_DISTANCE_M);
}

/// A storm: `n` orders, each reported by its own driver, among `m` drivers of capacity 1, spread
/// over a city by a fixed pseudo-random sequence.
pub(super) fn storm(n: usize, m: usize) -> (Vec<BatchOrder>, Vec<BatchDriver>) {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 10_000.0
    };
    let drivers: Vec<BatchDriver> = (0..m)
        .map(|j| {
            let location = at(52.4 + next() * 0.2, 13.3 + next() * 0.2);
            driver(&format!("D{j:04}"), Some(location), 1)
        })
        .collect();
    let orders = (0..n)
        .map(|i| {
            let reporter = drivers[i].id.0.clone();
            let here = drivers[i].location.unwrap_or(at(52.5, 13.4));
            order(&format!("O{i:04}"), here, &[reporter.as_str()], None)
        })
        .collect();
    (orders, drivers)
}

#[test]
fn a_storm_of_30_reports_among_40_drivers_is_served_in_full_none_over_capacity() {
    let (orders, drivers) = storm(30, 40);
    let got = optimal(&orders, &drivers, &Params { k: 8, ..ALL });
    assert!(got.exact);
    assert_eq!(got.served, 30);
    let mut to: Vec<&DriverId> = got.pairs.iter().filter_map(|(_, d)| d.as_ref()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 30);
    for ((o, d), order) in got.pairs.iter().zip(&orders) {
        assert!(
            !d.as_ref().is_some_and(|d| order.excluded.contains(d)),
            "{o} back to its reporter"
        );
    }
    let greedy = greedy(&orders, &drivers, &Params { k: 8, ..ALL });
    assert!(greedy.served < 30 || greedy.total_cost >= got.total_cost);
}

#[test]
fn a_storm_of_100_reports_over_1000_drivers_is_decided_exactly_with_k_10() {
    let (orders, drivers) = storm(100, 1000);
    let got = optimal(&orders, &drivers, &Params { k: 10, ..ALL });
    assert!(got.exact);
    assert_eq!(got.served, 100);
    let greedy = greedy(&orders, &drivers, &Params { k: 10, ..ALL });
    assert!(greedy.served < 100 || greedy.total_cost >= got.total_cost);
}

#[test]
fn an_empty_batch_or_a_batch_without_free_drivers_serves_nothing() {
    let none = optimal(&[], &[], &ALL);
    assert_eq!((none.served, none.total_cost, none.pairs.len()), (0, 0, 0));
    let orders = vec![order("O1", at(1.0, 1.0), &[], None)];
    let busy = vec![driver("A", Some(at(1.0, 1.0)), 0)];
    let got = optimal(&orders, &busy, &ALL);
    assert_eq!(got.pairs, vec![(OrderId("O1".into()), None)]);
}

/// The optimum by enumeration, over every eligible driver: (served, least total cost).
fn brute_force(orders: &[BatchOrder], drivers: &[BatchDriver], params: &Params) -> (usize, i64) {
    fn go(
        i: usize,
        costs: &[Vec<Option<i64>>],
        free: &mut [u32],
        served: usize,
        total: i64,
        best: &mut (usize, i64),
    ) {
        if i == costs.len() {
            if served > best.0 || (served == best.0 && total < best.1) {
                *best = (served, total);
            }
            return;
        }
        go(i + 1, costs, free, served, total, best);
        for (j, c) in costs[i].iter().enumerate() {
            if let (Some(c), true) = (c, free[j] > 0) {
                free[j] -= 1;
                go(i + 1, costs, free, served + 1, total + c, best);
                free[j] += 1;
            }
        }
    }
    let costs: Vec<Vec<Option<i64>>> = orders
        .iter()
        .map(|o| {
            drivers
                .iter()
                .map(|d| eligible(o, d).then(|| cost(o, d, params)))
                .collect()
        })
        .collect();
    let mut free: Vec<u32> = drivers.iter().map(|d| d.free).collect();
    let mut best = (0, 0);
    go(0, &costs, &mut free, 0, 0, &mut best);
    best
}

/// Up to 6 drivers (0–2 free slots, some without a position) and up to 6 orders, each
/// excluding a random subset of them and maybe kept by one, in a small city.
fn batch() -> impl Strategy<Value = (Vec<BatchOrder>, Vec<BatchDriver>, Params)> {
    let point = (52.40..52.60f64, 13.30..13.50f64).prop_map(|(lat, lng)| at(lat, lng));
    let drivers = vec((option::weighted(0.9, point.clone()), 0u32..=2), 0..=6);
    let orders = vec((point, any::<u8>(), option::of(0usize..6)), 0..=6);
    (drivers, orders, 1usize..=7, 0i64..5_000).prop_map(|(ds, os, k, penalty)| {
        let drivers: Vec<BatchDriver> = ds
            .into_iter()
            .enumerate()
            .map(|(j, (location, free))| driver(&format!("D{j}"), location, free))
            .collect();
        let orders = os
            .into_iter()
            .enumerate()
            .map(|(i, (where_, mask, keep))| BatchOrder {
                id: OrderId(format!("O{i}")),
                at: where_,
                excluded: drivers
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| mask & (1 << j) != 0)
                    .map(|(_, d)| d.id.clone())
                    .collect(),
                keep: keep
                    .filter(|j| *j < drivers.len())
                    .map(|j| drivers[j].id.clone()),
            })
            .collect();
        let params = Params {
            k,
            move_penalty_m: penalty,
        };
        (orders, drivers, params)
    })
}

/// No order goes to a driver it excludes, no driver over its free slots, every order once.
pub(super) fn check_feasible(
    a: &Assignment,
    orders: &[BatchOrder],
    drivers: &[BatchDriver],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.pairs.len(), orders.len());
    for ((id, to), o) in a.pairs.iter().zip(orders) {
        prop_assert_eq!(id, &o.id);
        if let Some(d) = to {
            prop_assert!(!o.excluded.contains(d), "{} went to excluded {}", id, d);
        }
    }
    for d in drivers {
        let taken = a
            .pairs
            .iter()
            .filter(|(_, to)| to.as_ref() == Some(&d.id))
            .count();
        prop_assert!(
            taken <= d.free as usize,
            "{} took {} of {}",
            d.id,
            taken,
            d.free
        );
    }
    prop_assert_eq!(
        a.served,
        a.pairs.iter().filter(|(_, to)| to.is_some()).count()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn with_every_driver_a_candidate_the_optimum_matches_brute_force((orders, drivers, params) in batch()) {
        let all = Params { k: drivers.len().max(1), ..params };
        let got = optimal(&orders, &drivers, &all);
        check_feasible(&got, &orders, &drivers)?;
        prop_assert!(got.exact);
        prop_assert_eq!((got.served, got.total_cost), brute_force(&orders, &drivers, &all));
    }

    #[test]
    fn with_any_k_neither_solver_uses_an_excluded_driver_or_a_slot_that_is_not_free((orders, drivers, params) in batch()) {
        let got = optimal(&orders, &drivers, &params);
        check_feasible(&got, &orders, &drivers)?;
        check_feasible(&greedy(&orders, &drivers, &params), &orders, &drivers)?;
        let lists = candidates(&orders, &drivers, &params);
        for ((_, to), list) in got.pairs.iter().zip(&lists) {
            if let Some(d) = to {
                prop_assert!(list.iter().any(|(j, _)| drivers[*j].id == *d), "{} is not a candidate", d);
            }
        }
    }

    #[test]
    fn greedy_never_beats_the_optimum((orders, drivers, params) in batch()) {
        let opt = optimal(&orders, &drivers, &params);
        let greedy = greedy(&orders, &drivers, &params);
        prop_assert!(opt.served >= greedy.served);
        if opt.served == greedy.served {
            prop_assert!(opt.total_cost <= greedy.total_cost);
        }
    }
}
