//! Crowd operations' pure decisions (SPEC 8), unit tested without actix: what an event's
//! creation must hold, a zone's count, and when a count opens, raises or leaves an alert.

use crate::error::AppError;
use crate::protocol::crowd::{AlertSeverity, Bounds};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The most zones one event has.
pub const MAX_ZONES: usize = 500;
/// The largest capacity or count a zone takes: past it a number is a sensor's mistake.
pub const MAX_COUNT: i64 = 10_000_000;
/// The longest id (event, zone, camera, device).
pub const MAX_ID_LEN: usize = 64;
/// The longest name, command or message.
pub const MAX_TEXT_LEN: usize = 2000;

/// Refuses an id that is empty, too long, or not `[A-Za-z0-9._-]`.
pub fn check_id(what: &str, id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request(format!(
            "`{what}` must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, `.`, `_`, `-`"
        )))
    }
}

/// Refuses a text that is blank or longer than `MAX_TEXT_LEN`.
pub fn check_text(what: &str, s: &str) -> Result<(), AppError> {
    if s.trim().is_empty() || s.chars().count() > MAX_TEXT_LEN {
        return Err(AppError::bad_request(format!(
            "`{what}` must be 1 to {MAX_TEXT_LEN} characters"
        )));
    }
    Ok(())
}

/// Refuses a position outside the world.
pub fn check_position(lat: f64, lng: f64) -> Result<(), AppError> {
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) {
        return Ok(());
    }
    Err(AppError::bad_request(
        "`lat` must be within -90..90 and `lng` within -180..180",
    ))
}

/// Refuses a count that is negative or absurd.
pub fn check_count(count: i64) -> Result<(), AppError> {
    if (0..=MAX_COUNT).contains(&count) {
        Ok(())
    } else {
        Err(AppError::bad_request(format!(
            "`count` must be 0 to {MAX_COUNT}"
        )))
    }
}

/// Refuses bounds that are not a box within the world, south of north and west of east.
pub fn check_bounds(b: &Bounds) -> Result<(), AppError> {
    check_position(b.south, b.west)?;
    check_position(b.north, b.east)?;
    if b.south >= b.north || b.west >= b.east {
        return Err(AppError::bad_request(
            "`bounds` must have south < north and west < east",
        ));
    }
    Ok(())
}

/// A zone's threshold: the one given (0 to its capacity, else `bad_request`), or the smaller of
/// `default` and the capacity.
pub fn threshold(given: Option<i64>, capacity: i64, default: i64) -> Result<i64, AppError> {
    if !(1..=MAX_COUNT).contains(&capacity) {
        return Err(AppError::bad_request(format!(
            "a zone's `capacity` must be 1 to {MAX_COUNT}"
        )));
    }
    match given {
        None => Ok(default.min(capacity)),
        Some(t) if (0..=capacity).contains(&t) => Ok(t),
        Some(t) => Err(AppError::bad_request(format!(
            "a zone's `threshold` ({t}) must be 0 to its capacity ({capacity})"
        ))),
    }
}

/// A zone's alert limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub threshold: i64,
    pub capacity: i64,
}

impl Limits {
    /// How bad `count` is: none up to the threshold, `warning` above it, `critical` above the
    /// capacity.
    pub fn severity(&self, count: i64) -> Option<AlertSeverity> {
        if count > self.capacity {
            Some(AlertSeverity::Critical)
        } else if count > self.threshold {
            Some(AlertSeverity::Warning)
        } else {
            None
        }
    }
}

/// What a zone's new count does to its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStep {
    /// Nothing to store or tell.
    Nothing,
    /// A new alert of this severity.
    Open(AlertSeverity),
    /// The open alert becomes `critical`.
    Raise,
}

/// Decides a zone's alert for its new `count`. `open`: the severity of its open alert, if any;
/// `armed`: whether a new alert may come (false after a resolve, until the count has been at or
/// below the threshold again: the next alert comes when it crosses the threshold from below).
/// Answers the step and whether the zone is armed after it.
pub fn decide(
    limits: Limits,
    count: i64,
    open: Option<AlertSeverity>,
    armed: bool,
) -> (AlertStep, bool) {
    let Some(severity) = limits.severity(count) else {
        return (AlertStep::Nothing, true);
    };
    match open {
        None if armed => (AlertStep::Open(severity), armed),
        None => (AlertStep::Nothing, false),
        Some(AlertSeverity::Warning) if severity == AlertSeverity::Critical => {
            (AlertStep::Raise, armed)
        }
        Some(_) => (AlertStep::Nothing, armed),
    }
}

/// A zone's count: the sum of its cameras' latest counts taken after `since` (a camera silent
/// since then no longer counts).
pub fn zone_count(cameras: &BTreeMap<String, (i64, DateTime<Utc>)>, since: DateTime<Utc>) -> i64 {
    cameras
        .values()
        .filter(|(_, at)| *at >= since)
        .map(|(n, _)| *n)
        .sum()
}

/// The message of an overcrowding alert.
pub fn alert_message(zone: &str, count: i64, limits: Limits, severity: AlertSeverity) -> String {
    match severity {
        AlertSeverity::Critical => format!(
            "Zone {zone} is over capacity: {count} people (capacity {})",
            limits.capacity
        ),
        AlertSeverity::Warning => format!(
            "Zone {zone} is crowded: {count} people (threshold {})",
            limits.threshold
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Z: Limits = Limits {
        threshold: 30,
        capacity: 50,
    };

    #[test]
    fn a_count_above_the_threshold_opens_one_alert_and_past_the_capacity_raises_it() {
        assert_eq!(decide(Z, 30, None, true), (AlertStep::Nothing, true));
        assert_eq!(
            decide(Z, 31, None, true),
            (AlertStep::Open(AlertSeverity::Warning), true)
        );
        let open = Some(AlertSeverity::Warning);
        assert_eq!(decide(Z, 40, open, true), (AlertStep::Nothing, true));
        assert_eq!(decide(Z, 51, open, true), (AlertStep::Raise, true));
        let critical = Some(AlertSeverity::Critical);
        assert_eq!(decide(Z, 60, critical, true), (AlertStep::Nothing, true));
        assert_eq!(
            decide(Z, 51, None, true),
            (AlertStep::Open(AlertSeverity::Critical), true)
        );
    }

    #[test]
    fn after_a_resolve_the_next_alert_waits_for_the_count_to_cross_from_below() {
        // Resolved while high: not armed.
        assert_eq!(decide(Z, 45, None, false), (AlertStep::Nothing, false));
        assert_eq!(decide(Z, 60, None, false), (AlertStep::Nothing, false));
        // Back at the threshold: armed again, and the next crossing opens one.
        assert_eq!(decide(Z, 30, None, false), (AlertStep::Nothing, true));
        assert_eq!(
            decide(Z, 31, None, true),
            (AlertStep::Open(AlertSeverity::Warning), true)
        );
    }

    #[test]
    fn thresholds_default_to_the_smaller_of_the_setting_and_the_capacity() {
        assert_eq!(threshold(None, 100, 30).unwrap(), 30);
        assert_eq!(threshold(None, 20, 30).unwrap(), 20);
        assert_eq!(threshold(Some(100), 100, 30).unwrap(), 100);
        assert!(threshold(Some(101), 100, 30).is_err());
        assert!(threshold(Some(-1), 100, 30).is_err());
        assert!(threshold(None, 0, 30).is_err());
    }

    #[test]
    fn a_zone_counts_its_live_cameras_only() {
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(1000);
        let cams = BTreeMap::from([
            ("a".to_string(), (10, now)),
            ("b".to_string(), (5, now)),
            ("c".to_string(), (99, old)),
        ]);
        assert_eq!(zone_count(&cams, now - chrono::Duration::seconds(900)), 15);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(check_position(91.0, 0.0).is_err());
        assert!(check_position(0.0, -181.0).is_err());
        assert!(check_position(f64::NAN, 0.0).is_err());
        assert!(check_position(48.8, 2.35).is_ok());
        assert!(check_count(-1).is_err() && check_count(MAX_COUNT + 1).is_err());
        assert!(check_id("id", "Gate 3").is_err() && check_id("id", "gate-3").is_ok());
        let b = Bounds {
            south: 1.0,
            west: 1.0,
            north: 0.5,
            east: 2.0,
        };
        assert!(check_bounds(&b).is_err());
    }
}
