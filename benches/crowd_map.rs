//! One `map:update` of a crowd event with 10,000 live devices (SPEC 8): the density grid of
//! every device (`crowd.cell_m` 25 m) and the interval's `points` (`crowd.map_max_points`
//! 2000), then the frame serialized once with its envelope, as the desk does every
//! `crowd.map_flush_ms`. Devices spread over about 1 km² around one venue.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rallypoint::crowd::desk::Device;
use rallypoint::crowd::grid::Grid;
use rallypoint::crowd::map::build_map;
use rallypoint::protocol::{server, ServerMsg};

const DEVICES: usize = 10_000;

fn devices() -> Vec<Device> {
    let at = chrono::Utc::now();
    // A deterministic spread (no RNG needed): a low-discrepancy walk over the square.
    (0..DEVICES)
        .map(|i| {
            let x = (i as f64 * 0.618_033_988_75).fract();
            let y = (i as f64 * 0.754_877_666_25).fract();
            Device {
                lat: 48.85 + x * 0.009,
                lng: 2.34 + y * 0.0137,
                at,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = devices();
    let grid = Grid::new(25.0);
    let map = build_map(grid, all.iter(), all.iter(), 2000, "pings");
    eprintln!(
        "crowd_map: {DEVICES} devices -> {} cells, {} points, frame {} bytes",
        map.density.len(),
        map.points.len(),
        server::envelope(&ServerMsg::MapUpdate { data: map }, "event:E1", None, "id").len()
    );
    c.bench_function("map_update_10k_devices", |b| {
        b.iter(|| {
            let map = build_map(grid, all.iter(), all.iter(), 2000, "pings");
            let msg = ServerMsg::MapUpdate { data: map };
            black_box(server::envelope(&msg, "event:E1", None, "id"))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
