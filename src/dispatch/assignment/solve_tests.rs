//! Tests of [`solve`], the min-cost max-flow: against the old dense Kuhn–Munkres (the
//! `pathfinding` crate, a dev-dependency kept as the oracle) on medium batches (up to 40 orders
//! and 60 drivers, 0–3 free slots, random exclusions and kept orders, k from 1 to 8) and on a
//! storm of 100 reports over 1,000 drivers; deadlines; lists it must read with care.

use super::tests::{at, check_feasible, driver, order, storm};
use super::*;
use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// The solver `optimal` had before the flow: dense Kuhn–Munkres over one column per usable slot
/// and one "unserved" column per order, big-M padded. (served, total cost).
fn kuhn_munkres(drivers: &[BatchDriver], lists: &[Vec<(usize, i64)>]) -> (usize, i64) {
    let rows: Vec<usize> = (0..lists.len()).filter(|i| !lists[*i].is_empty()).collect();
    if rows.is_empty() {
        return (0, 0);
    }
    // One column per usable slot: a driver offers no more slots than orders that list it.
    let mut wanted: BTreeMap<usize, u32> = BTreeMap::new();
    for &i in &rows {
        for (j, _) in &lists[i] {
            *wanted.entry(*j).or_default() += 1;
        }
    }
    let mut columns: Vec<usize> = Vec::new();
    let mut span: BTreeMap<usize, std::ops::Range<usize>> = BTreeMap::new();
    for (j, n) in wanted {
        let start = columns.len();
        columns.extend(std::iter::repeat_n(j, n.min(drivers[j].free) as usize));
        span.insert(j, start..columns.len());
    }
    let slots = columns.len();
    // Big-M: one more order served outweighs any difference in distance; a cell that is not a
    // candidate costs more than leaving the order unserved (there is a dummy column per row).
    let max_cost = rows
        .iter()
        .flat_map(|&i| lists[i].iter().map(|c| c.1))
        .max()
        .unwrap_or(0);
    let unserved = (max_cost + 1) * (rows.len() as i64 + 1);
    let forbidden = unserved * 2;
    let mut matrix = Matrix::new(rows.len(), slots + rows.len(), forbidden);
    for (r, &i) in rows.iter().enumerate() {
        for (j, cost) in &lists[i] {
            for c in span.get(j).cloned().unwrap_or_default() {
                matrix[(r, c)] = *cost;
            }
        }
        for c in slots..slots + rows.len() {
            matrix[(r, c)] = unserved;
        }
    }
    let (_, by_row) = kuhn_munkres_min(&matrix);
    let mut answer = (0, 0);
    for (r, &c) in by_row.iter().enumerate() {
        if c < slots && matrix[(r, c)] < unserved {
            answer = (answer.0 + 1, answer.1 + matrix[(r, c)]);
        }
    }
    answer
}

/// Every order served went to one of its candidates, and `total_cost` is the sum of the costs
/// of the candidates chosen.
fn check_candidates(
    a: &Assignment,
    drivers: &[BatchDriver],
    lists: &[Vec<(usize, i64)>],
) -> Result<(), TestCaseError> {
    let mut total = 0;
    for ((o, to), list) in a.pairs.iter().zip(lists) {
        if let Some(d) = to {
            let pick = list.iter().find(|(j, _)| drivers[*j].id == *d);
            prop_assert!(pick.is_some(), "{} went to {}, not a candidate", o, d);
            total += pick.map_or(0, |c| c.1);
        }
    }
    prop_assert_eq!(a.total_cost, total);
    Ok(())
}

/// Up to 60 drivers (0–3 free slots, a few without a position) and up to 40 orders, each
/// excluding up to 6 of them and maybe kept by one, in a small city.
fn medium() -> impl Strategy<Value = (Vec<BatchOrder>, Vec<BatchDriver>, Params)> {
    let point = (52.40..52.60f64, 13.30..13.50f64).prop_map(|(lat, lng)| at(lat, lng));
    let drivers = vec((option::weighted(0.95, point.clone()), 0u32..=3), 0..=60);
    let orders = vec(
        (point, vec(0usize..60, 0..=6), option::of(0usize..60)),
        0..=40,
    );
    (drivers, orders, 1usize..=8, 0i64..5_000).prop_map(|(ds, os, k, penalty)| {
        let drivers: Vec<BatchDriver> = ds
            .into_iter()
            .enumerate()
            .map(|(j, (location, free))| driver(&format!("D{j}"), location, free))
            .collect();
        let orders = os
            .into_iter()
            .enumerate()
            .map(|(i, (where_, excluded, keep))| BatchOrder {
                id: OrderId(format!("O{i}")),
                at: where_,
                excluded: excluded
                    .into_iter()
                    .filter_map(|j| drivers.get(j).map(|d| d.id.clone()))
                    .collect(),
                keep: keep.and_then(|j| drivers.get(j).map(|d| d.id.clone())),
            })
            .collect();
        let params = Params {
            k,
            move_penalty_m: penalty,
        };
        (orders, drivers, params)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn on_medium_batches_the_flow_serves_and_costs_what_kuhn_munkres_finds((orders, drivers, params) in medium()) {
        let lists = candidates(&orders, &drivers, &params);
        let got = solve(&orders, &drivers, &lists, None);
        prop_assert!(got.is_some(), "no answer without a deadline");
        let got = got.unwrap_or_else(|| greedy_over(&orders, &drivers, &lists));
        prop_assert!(got.exact);
        prop_assert_eq!((got.served, got.total_cost), kuhn_munkres(&drivers, &lists));
        check_feasible(&got, &orders, &drivers)?;
        check_candidates(&got, &drivers, &lists)?;
        prop_assert_eq!(solve(&orders, &drivers, &lists, None), Some(got));
    }

    #[test]
    fn costs_lowered_below_zero_by_the_same_amount_lower_the_total_by_it_per_order_served((orders, drivers, params) in medium()) {
        const LOWER: i64 = 3 * UNKNOWN_DISTANCE_M;
        let lists = candidates(&orders, &drivers, &params);
        let lowered: Vec<Vec<(usize, i64)>> = lists
            .iter()
            .map(|list| list.iter().map(|(j, c)| (*j, c - LOWER)).collect())
            .collect();
        let base = solve(&orders, &drivers, &lists, None).map(|a| (a.served, a.total_cost));
        let got = solve(&orders, &drivers, &lowered, None).map(|a| (a.served, a.total_cost));
        prop_assert_eq!(got, base.map(|(served, total)| (served, total - LOWER * served as i64)));
    }
}

#[test]
fn a_storm_of_100_reports_over_1000_drivers_costs_what_kuhn_munkres_finds() {
    let (orders, drivers) = storm(100, 1000);
    let params = Params {
        k: 10,
        move_penalty_m: 0,
    };
    let lists = candidates(&orders, &drivers, &params);
    let got = solve(&orders, &drivers, &lists, None).expect("no deadline");
    assert_eq!((got.served, got.total_cost), kuhn_munkres(&drivers, &lists));
}

#[test]
fn a_deadline_already_passed_gives_no_answer_and_a_distant_one_the_optimum() {
    let (orders, drivers) = storm(30, 40);
    let params = Params {
        k: 8,
        move_penalty_m: 0,
    };
    let lists = candidates(&orders, &drivers, &params);
    assert_eq!(solve(&orders, &drivers, &lists, Some(Instant::now())), None);
    let later = Instant::now() + Duration::from_secs(3600);
    assert_eq!(
        solve(&orders, &drivers, &lists, Some(later)),
        Some(optimal(&orders, &drivers, &params))
    );
}

#[test]
fn candidates_naming_no_driver_or_a_full_one_are_skipped_and_an_order_without_a_list_is_unserved() {
    let drivers = vec![driver("A", None, 1), driver("FULL", None, 0)];
    let orders: Vec<BatchOrder> = ["O1", "O2", "O3"]
        .iter()
        .map(|id| order(id, at(0.0, 0.0), &[], None))
        .collect();
    let lists = vec![vec![(7, 1), (1, 2), (0, 50)], vec![(1, 1)]];
    let got = solve(&orders, &drivers, &lists, None).expect("no deadline");
    let expected: Vec<(OrderId, Option<DriverId>)> = vec![
        (OrderId("O1".into()), Some(DriverId("A".into()))),
        (OrderId("O2".into()), None),
        (OrderId("O3".into()), None),
    ];
    assert_eq!(got.pairs, expected);
    assert_eq!((got.served, got.total_cost, got.exact), (1, 50, true));
    let greedy = greedy_over(&orders, &drivers, &lists);
    assert_eq!((greedy.pairs, greedy.exact), (expected, false));
}

#[test]
fn between_equal_costs_the_earlier_order_and_the_earlier_candidate_win() {
    let drivers = vec![driver("A", None, 1), driver("B", None, 1)];
    let orders: Vec<BatchOrder> = ["O1", "O2", "O3"]
        .iter()
        .map(|id| order(id, at(0.0, 0.0), &[], None))
        .collect();
    let lists = vec![vec![(1, 5)], vec![(1, 5), (0, 5)], vec![(1, 5), (0, 5)]];
    let got = solve(&orders, &drivers, &lists, None).expect("no deadline");
    let to: Vec<Option<&str>> = got
        .pairs
        .iter()
        .map(|(_, d)| d.as_ref().map(|d| d.0.as_str()))
        .collect();
    assert_eq!(to, [Some("B"), Some("A"), None]);
    let one = solve(&orders[..1], &drivers, &lists[1..2], None).expect("no deadline");
    assert_eq!(one.pairs[0].1, Some(DriverId("B".into())));
}

#[test]
fn costs_too_large_for_the_solver_fall_back_to_greedy() {
    let drivers = vec![driver("A", None, 1)];
    let orders = vec![order("O1", at(0.0, 0.0), &[], None)];
    let got = solve(&orders, &drivers, &[vec![(0, i64::MAX / 4)]], None).expect("no deadline");
    assert!(!got.exact);
    assert_eq!((got.served, got.total_cost), (1, i64::MAX / 4));
}
