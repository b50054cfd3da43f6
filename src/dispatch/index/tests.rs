//! Tests of the index against the linear scan (`matching::best_driver`): unit cases, a property
//! test over random operations, and a large seeded fleet.

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

/// Every available driver of `fleet` not excluded, in the linear scan's order.
fn linear_ranking(
    model: &HashMap<DriverId, Candidate>,
    fleet: &str,
    from: LatLng,
    excluded: &HashSet<DriverId>,
) -> Vec<DriverId> {
    let mut all: Vec<(Option<f64>, &DriverId)> = model
        .values()
        .filter(|c| c.is_available() && c.fleet == fleet && !excluded.contains(&c.id))
        .map(|c| {
            let km = c
                .location
                .map(|at| haversine_km(from, at))
                .filter(|km| km.is_finite());
            (km, &c.id)
        })
        .collect();
    all.sort_by(|a, b| rank(*a, *b));
    all.into_iter().map(|(_, id)| id.clone()).collect()
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
                    let ranked = linear_ranking(&model, &fleet, from, &excluded);
                    for k in [1, 3, 20] {
                        let got: Vec<DriverId> = index
                            .nearest(&fleet, from, k, |id| excluded.contains(id))
                            .into_iter()
                            .map(|(c, _)| c.id.clone())
                            .collect();
                        let want: Vec<DriverId> = ranked.iter().take(k).cloned().collect();
                        prop_assert_eq!(got, want, "k={} fleet={} from={:?} excluded={:?}", k, fleet, from, excluded);
                    }
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
                let free: i64 = model
                    .values()
                    .filter(|c| c.fleet == fleet && c.is_available())
                    .map(|c| i64::from(c.capacity - c.held))
                    .sum();
                prop_assert_eq!(index.free_slots_in(fleet) as i64, free);
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
        let want = best_driver(model.values(), "f", from, &HashSet::new()).map(|c| c.id.clone());
        let got = index.best("f", from, &HashSet::new()).map(|c| c.id.clone());
        assert_eq!(got, want, "round {round} from {from:?}");
    }
}
