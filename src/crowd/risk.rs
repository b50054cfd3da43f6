//! The built-in crowd risk model (SPEC 8; docs/CROWD_RISK_MODEL.md has its formula and a worked
//! example): each zone's load (its occupancy against its capacity) projected by its trend over
//! the last minutes, read as a risk in [0, 1]. Pure: unit tested without actix.

use serde::{Deserialize, Serialize};

/// How far back the trend reads, in minutes.
pub const TREND_WINDOW_MIN: f64 = 5.0;
/// The horizon of the insight's own projection, in minutes.
pub const INSIGHT_HORIZON_MIN: f64 = 5.0;
/// A load at or below this is no risk; the risk grows linearly to 1 at a full zone.
pub const SAFE_LOAD: f64 = 0.5;

/// One zone as the model reads it.
pub use crate::protocol::crowd::ZoneFactor as ZoneFeatures;

/// What the model (or the service) is given: the event's zones, and how much history backs
/// the trends, in minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    pub event_id: String,
    pub zones: Vec<ZoneFeatures>,
    pub history_min: f64,
}

/// A zone's risk at `horizon` minutes: its load projected by its trend, 0 up to `SAFE_LOAD`,
/// 1 from a full zone on.
pub fn zone_risk(z: &ZoneFeatures, horizon_min: f64) -> f64 {
    let projected = z.load + z.trend_per_min.max(-1.0) * horizon_min;
    round2(((projected - SAFE_LOAD) / (1.0 - SAFE_LOAD)).clamp(0.0, 1.0))
}

/// The model's insight: the riskiest zone's risk at `INSIGHT_HORIZON_MIN`, what to do about it,
/// how much history backs it, and the zones that weigh most (riskiest first, at most five).
pub fn insight(f: &Features) -> (f64, String, f64, Vec<ZoneFeatures>) {
    let mut ranked: Vec<(f64, &ZoneFeatures)> = f
        .zones
        .iter()
        .map(|z| (zone_risk(z, INSIGHT_HORIZON_MIN), z))
        .collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.zone_id.cmp(&b.1.zone_id))
    });
    let (score, top) = ranked
        .first()
        .map_or((0.0, None), |(r, z)| (*r, Some(z.name.as_str())));
    let factors = ranked.iter().take(5).map(|(_, z)| (*z).clone()).collect();
    (
        score,
        recommendation(score, top),
        confidence(f.history_min),
        factors,
    )
}

/// What an operator should do at `score`, naming the riskiest zone.
pub fn recommendation(score: f64, zone: Option<&str>) -> String {
    let zone = zone.unwrap_or("-");
    if score >= 0.8 {
        format!("Critical: stop entry to {zone} and open the overflow gates")
    } else if score >= 0.5 {
        format!("High: redirect arrivals away from {zone}")
    } else if score >= 0.2 {
        format!("Elevated: watch {zone}")
    } else {
        "Normal: no action needed".to_string()
    }
}

/// How much the trend can be trusted: 0.4 with no history, 1.0 with `TREND_WINDOW_MIN` minutes.
pub fn confidence(history_min: f64) -> f64 {
    round2(0.4 + 0.6 * (history_min / TREND_WINDOW_MIN).clamp(0.0, 1.0))
}

/// Each zone's risk at `horizon_min`.
pub fn predictions(f: &Features, horizon_min: f64) -> Vec<(String, f64)> {
    f.zones
        .iter()
        .map(|z| (z.zone_id.clone(), zone_risk(z, horizon_min)))
        .collect()
}

/// A zone's trend from its oldest sample in the window `(minutes ago, load)` to its load now;
/// 0 with under half a minute between them.
pub fn trend(oldest: Option<(f64, f64)>, load_now: f64) -> f64 {
    match oldest {
        Some((ago, load)) if ago >= 0.5 => round4((load_now - load) / ago),
        _ => 0.0,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(id: &str, occupancy: i64, capacity: i64, trend: f64) -> ZoneFeatures {
        ZoneFeatures {
            zone_id: id.into(),
            name: format!("Zone {id}"),
            occupancy,
            capacity,
            load: occupancy as f64 / capacity as f64,
            trend_per_min: trend,
        }
    }

    #[test]
    fn the_worked_example_of_the_docs() {
        // 400 people in a zone for 1000, filling by 4 points a minute.
        let z = zone("Z1", 400, 1000, 0.04);
        // In 5 minutes: 0.40 + 0.04 × 5 = 0.60 → (0.60 − 0.5) / 0.5 = 0.20.
        assert_eq!(zone_risk(&z, 5.0), 0.2);
        // In 15 minutes: 0.40 + 0.60 = 1.00 → 1.
        assert_eq!(zone_risk(&z, 15.0), 1.0);
        let f = Features {
            event_id: "E1".into(),
            zones: vec![z, zone("Z2", 10, 100, 0.0)],
            history_min: 2.5,
        };
        let (score, rec, conf, factors) = insight(&f);
        assert_eq!(score, 0.2);
        assert_eq!(rec, "Elevated: watch Zone Z1");
        assert_eq!(conf, 0.7);
        assert_eq!(factors[0].zone_id, "Z1");
    }

    #[test]
    fn an_empty_or_emptying_venue_is_no_risk_and_a_full_one_is_critical() {
        assert_eq!(zone_risk(&zone("a", 0, 100, 0.0), 30.0), 0.0);
        assert_eq!(zone_risk(&zone("a", 90, 100, -0.1), 5.0), 0.0);
        let full = zone("a", 120, 100, 0.0);
        assert_eq!(zone_risk(&full, 0.0), 1.0);
        assert!(recommendation(1.0, Some("A")).starts_with("Critical"));
    }

    #[test]
    fn a_trend_needs_half_a_minute_of_history() {
        assert_eq!(trend(None, 0.5), 0.0);
        assert_eq!(trend(Some((0.2, 0.1)), 0.5), 0.0);
        assert_eq!(trend(Some((2.0, 0.1)), 0.5), 0.2);
        assert_eq!(confidence(0.0), 0.4);
        assert_eq!(confidence(60.0), 1.0);
    }
}
