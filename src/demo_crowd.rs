//! The demo's crowd event (SPEC 8): a stadium with four zones (bounds, capacities, thresholds),
//! loaded once by `rallypoint demo`, an operator's token for its `/ops` page, and with
//! `--simulate` a few hundred devices walking about the stadium and its cameras counting, so the
//! page's map, alerts and risk meter live. The simulated pings and counts go through the same
//! command path as `POST /api/v1/pings` and `POST /api/v1/cctv/objects`, as a sensor of the event.

use crate::actors::Hub;
use crate::auth::Claims;
use crate::commands::{self, Command};
use crate::crowd::commands::{CameraCount, CreateEvent, PingLocation, ZoneIn};
use crate::crowd::store;
use crate::db;
use crate::error::AppError;
use crate::protocol::crowd::Bounds;
use crate::protocol::Role;
use std::sync::Arc;
use std::time::Duration;

/// The demo event's id and name.
pub const DEMO_EVENT: &str = "DEMO-STADIUM";
pub const DEMO_EVENT_NAME: &str = "Stadium: cup final";

/// The demo operator, whose token the printed `/ops` link carries.
pub const DEMO_OPERATOR: &str = "op-demo";

/// A demo zone: id, name, capacity, threshold, (south, west, north, east).
pub type ZoneSpec = (&'static str, &'static str, i64, i64, (f64, f64, f64, f64));

/// The stadium's zones.
pub const ZONES: [ZoneSpec; 4] = [
    (
        "north",
        "North stand",
        400,
        300,
        (48.9255, 2.3585, 48.9265, 2.3620),
    ),
    (
        "south",
        "South stand",
        400,
        300,
        (48.9225, 2.3585, 48.9235, 2.3620),
    ),
    (
        "east",
        "East concourse",
        250,
        180,
        (48.9235, 2.3625, 48.9255, 2.3640),
    ),
    (
        "west",
        "West gate plaza",
        300,
        220,
        (48.9235, 2.3565, 48.9255, 2.3580),
    ),
];

/// Each zone's camera count over the cycle: base, swing, phase (a share of the cycle). The North
/// stand swings past its threshold and its capacity and back below, so alerts come, are raised
/// and come again after a resolve; the East concourse just crosses its threshold; the others
/// stay below.
const COUNTS: [(i64, i64, f64); 4] = [
    (150, 300, 0.15),
    (200, 60, 0.5),
    (100, 100, 0.8),
    (120, 80, 0.3),
];

/// The counts' cycle, and how often the cameras and the devices report.
const CYCLE_S: f64 = 180.0;
const COUNT_EVERY: Duration = Duration::from_secs(5);
const PING_EVERY: Duration = Duration::from_secs(1);

/// Loads the stadium unless it is there already.
pub async fn seed(hub: &Arc<Hub>) -> Result<(), AppError> {
    let exists = db::run(&hub.pool, |c| {
        Ok(store::find_event(c, DEMO_EVENT)?.is_some())
    })
    .await?;
    if exists {
        return Ok(());
    }
    let zones = ZONES
        .iter()
        .map(
            |&(id, name, capacity, threshold, (south, west, north, east))| ZoneIn {
                id: id.into(),
                name: name.into(),
                capacity,
                threshold: Some(threshold),
                bounds: Bounds {
                    south,
                    west,
                    north,
                    east,
                },
            },
        )
        .collect();
    let create = Command::CreateEvent(CreateEvent {
        id: Some(DEMO_EVENT.into()),
        name: DEMO_EVENT_NAME.into(),
        zones,
    });
    let admin = Claims::new("demo-admin", Role::Admin, None, "default", 60);
    commands::run(hub.clone(), admin, create, Ok(None)).await?;
    log::info!(
        "[STARTUP] demo event ready: event={DEMO_EVENT} zones={}",
        ZONES.len()
    );
    Ok(())
}

/// Claims for the demo event only, in `role`.
fn claims_for(sub: &str, role: Role, ttl_s: i64) -> Claims {
    let mut c = Claims::new(sub, role, None, "default", ttl_s);
    c.events = Some(vec![DEMO_EVENT.to_string()]);
    c
}

/// The token of the printed `/ops` link: an operator of the demo event.
pub fn operator_token(hub: &Hub) -> Result<String, AppError> {
    let claims = claims_for(
        DEMO_OPERATOR,
        Role::Operator,
        hub.settings.auth.dev_token_ttl_s,
    );
    hub.keys.sign(&claims)
}

/// A small deterministic generator (xorshift64*), enough to scatter simulated people.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A point inside zone `z`'s bounds.
    fn inside(&mut self, z: usize) -> (f64, f64) {
        let (s, w, n, e) = ZONES[z].4;
        (s + (n - s) * self.next(), w + (e - w) * self.next())
    }
}

/// 0 → 1 → 0 over each unit of `x`.
fn triangle(x: f64) -> f64 {
    1.0 - (2.0 * x.rem_euclid(1.0) - 1.0).abs()
}

/// Zone `z`'s camera count `t` seconds into the simulation.
pub fn simulated_count(z: usize, t: f64) -> i64 {
    let (base, swing, phase) = COUNTS[z];
    base + (swing as f64 * triangle(t / CYCLE_S + phase)).round() as i64
}

/// One simulated person: where it is and the point it walks to.
struct Device {
    at: (f64, f64),
    to: (f64, f64),
}

/// Starts `devices` simulated people on the demo event, each pinging every second, and the
/// zones' cameras counting every five seconds, until the process stops.
pub fn simulate(hub: Arc<Hub>, devices: usize) {
    log::info!("[DEMO] simulating event={DEMO_EVENT} devices={devices}");
    actix_web::rt::spawn(async move {
        let sensor = claims_for("demo-simulator", Role::Sensor, 10 * 365 * 86_400);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Most people in the stands, some on the concourse and the plaza.
        let home = |i: usize| [0, 1, 0, 1, 2, 3][i % 6];
        let mut people: Vec<Device> = (0..devices)
            .map(|i| {
                let at = rng.inside(home(i));
                Device { at, to: at }
            })
            .collect();
        let started = std::time::Instant::now();
        let mut next_count = started;
        let mut tick = actix_web::rt::time::interval(PING_EVERY);
        loop {
            tick.tick().await;
            let t = started.elapsed().as_secs_f64();
            if std::time::Instant::now() >= next_count {
                next_count += COUNT_EVERY;
                for (z, zone) in ZONES.iter().enumerate() {
                    let count = Command::CameraCount(CameraCount {
                        event_id: DEMO_EVENT.into(),
                        zone_id: zone.0.into(),
                        camera_id: format!("cam-{}-1", zone.0),
                        count: simulated_count(z, t),
                        at: None,
                    });
                    if let Err(e) =
                        commands::run(hub.clone(), sensor.clone(), count, Ok(None)).await
                    {
                        log::warn!("[DEMO] a simulated count was refused: {e}");
                    }
                }
            }
            for (i, p) in people.iter_mut().enumerate() {
                // Now and then someone sets off for another zone; the North stand draws the most.
                if rng.next() < 0.01 {
                    let z = if rng.next() < 0.4 {
                        0
                    } else {
                        home(i + (rng.next() * 6.0) as usize)
                    };
                    p.to = rng.inside(z);
                } else if rng.next() < 0.1 {
                    p.to = rng.inside(home(i));
                }
                p.at.0 += (p.to.0 - p.at.0) * 0.15 + (rng.next() - 0.5) * 0.00002;
                p.at.1 += (p.to.1 - p.at.1) * 0.15 + (rng.next() - 0.5) * 0.00003;
                let ping = Command::PingLocation(PingLocation {
                    event_id: DEMO_EVENT.into(),
                    device_id: format!("sim-{i:04}"),
                    lat: p.at.0,
                    lng: p.at.1,
                });
                if let Err(e) = commands::run(hub.clone(), sensor.clone(), ping, Ok(None)).await {
                    log::warn!("[DEMO] a simulated ping was refused: {e}");
                    break;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_north_stand_passes_its_threshold_and_capacity_and_falls_back() {
        let counts: Vec<i64> = (0..180).map(|t| simulated_count(0, f64::from(t))).collect();
        let (threshold, capacity) = (ZONES[0].3, ZONES[0].2);
        assert!(counts.iter().any(|&c| c > capacity));
        assert!(counts.iter().any(|&c| c <= threshold));
        // The other stands stay below their thresholds.
        for t in 0..180 {
            assert!(simulated_count(1, f64::from(t)) <= ZONES[1].3);
            assert!(simulated_count(3, f64::from(t)) <= ZONES[3].3);
        }
    }

    #[test]
    fn every_zone_is_valid_and_a_point_falls_inside() {
        let mut rng = Rng(7);
        for (z, &(_, _, capacity, threshold, (s, w, n, e))) in ZONES.iter().enumerate() {
            assert!(s < n && w < e && threshold <= capacity);
            let (lat, lng) = rng.inside(z);
            assert!((s..=n).contains(&lat) && (w..=e).contains(&lng));
        }
    }
}
