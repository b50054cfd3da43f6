//! The built-in risk model: a small deterministic logistic regression that scores how likely an
//! incident is to jeopardise an order's delivery, from the incident kind, the order's priority,
//! the distance still to cover, the driver's recent incident count and the hour of day.

use crate::protocol::{IncidentKind, Priority};

/// The bias term of the model.
pub const INTERCEPT: f64 = -1.0;
/// Weight of a vehicle breakdown.
pub const KIND_VEHICLE_BREAKDOWN: f64 = 3.2;
/// Weight of an accident.
pub const KIND_ACCIDENT: f64 = 3.5;
/// Weight of a medical emergency.
pub const KIND_MEDICAL: f64 = 3.0;
/// Weight of a road closure.
pub const KIND_ROAD_CLOSURE: f64 = 1.6;
/// Weight of severe weather.
pub const KIND_WEATHER: f64 = 0.8;
/// Weight of a traffic jam (negative: a jam rarely warrants a new driver).
pub const KIND_TRAFFIC_JAM: f64 = -0.4;
/// Weight of any other issue.
pub const KIND_OTHER: f64 = 0.3;
/// Weight of a low-priority order.
pub const PRIORITY_LOW: f64 = -0.5;
/// Weight of a normal-priority order.
pub const PRIORITY_NORMAL: f64 = 0.0;
/// Weight of a high-priority order.
pub const PRIORITY_HIGH: f64 = 0.5;
/// Weight of a critical-priority order.
pub const PRIORITY_CRITICAL: f64 = 1.0;
/// Weight per kilometre still to cover, up to [`MAX_DISTANCE_KM`].
pub const DISTANCE_PER_KM: f64 = 0.04;
/// Remaining distance beyond which the model stops adding weight.
pub const MAX_DISTANCE_KM: f64 = 50.0;
/// Weight per incident the driver reported in the last 24 hours, up to [`MAX_INCIDENTS`].
pub const INCIDENT_WEIGHT: f64 = 0.35;
/// Incident count beyond which the model stops adding weight.
pub const MAX_INCIDENTS: i64 = 5;
/// Weight added at night, from [`NIGHT_START_HOUR`] until [`NIGHT_END_HOUR`].
pub const NIGHT_WEIGHT: f64 = 0.3;
/// First hour (inclusive) counted as night.
pub const NIGHT_START_HOUR: u32 = 22;
/// First hour (exclusive end) no longer counted as night.
pub const NIGHT_END_HOUR: u32 = 5;

/// What the model looks at for one incident.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskInput {
    /// The kind of incident reported.
    pub kind: IncidentKind,
    /// The affected order's priority.
    pub priority: Priority,
    /// Kilometres the order still has to travel.
    pub remaining_km: f64,
    /// Incidents the driver reported in the last 24 hours.
    pub driver_incidents_24h: i64,
    /// Hour of day (0–23) at which the incident was reported.
    pub hour_of_day: u32,
}

/// The model's weight for an incident kind.
pub fn kind_weight(kind: IncidentKind) -> f64 {
    match kind {
        IncidentKind::VehicleBreakdown => KIND_VEHICLE_BREAKDOWN,
        IncidentKind::Accident => KIND_ACCIDENT,
        IncidentKind::Medical => KIND_MEDICAL,
        IncidentKind::TrafficJam => KIND_TRAFFIC_JAM,
        IncidentKind::Weather => KIND_WEATHER,
        IncidentKind::RoadClosure => KIND_ROAD_CLOSURE,
        IncidentKind::Other => KIND_OTHER,
    }
}

/// The model's weight for an order priority.
pub fn priority_weight(p: Priority) -> f64 {
    match p {
        Priority::Low => PRIORITY_LOW,
        Priority::Normal => PRIORITY_NORMAL,
        Priority::High => PRIORITY_HIGH,
        Priority::Critical => PRIORITY_CRITICAL,
    }
}

/// The risk score in `[0, 1]`: the logistic of the weighted inputs. Never NaN; a non-finite or
/// negative `remaining_km` counts as 0.
pub fn score(input: &RiskInput) -> f64 {
    let km = if input.remaining_km.is_finite() && input.remaining_km > 0.0 {
        input.remaining_km.min(MAX_DISTANCE_KM)
    } else {
        0.0
    };
    let incidents = input.driver_incidents_24h.min(MAX_INCIDENTS) as f64;
    let night = if input.hour_of_day >= NIGHT_START_HOUR || input.hour_of_day < NIGHT_END_HOUR {
        NIGHT_WEIGHT
    } else {
        0.0
    };
    let z = INTERCEPT
        + kind_weight(input.kind)
        + priority_weight(input.priority)
        + DISTANCE_PER_KM * km
        + INCIDENT_WEIGHT * incidents
        + night;
    let p = 1.0 / (1.0 + (-z).exp());
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn midday_normal(kind: IncidentKind) -> RiskInput {
        RiskInput {
            kind,
            priority: Priority::Normal,
            remaining_km: 5.0,
            driver_incidents_24h: 0,
            hour_of_day: 12,
        }
    }

    #[test]
    fn a_breakdown_on_a_normal_order_scores_above_the_threshold() {
        assert!(score(&midday_normal(IncidentKind::VehicleBreakdown)) > 0.7);
    }

    #[test]
    fn an_accident_on_a_normal_order_scores_above_the_threshold() {
        assert!(score(&midday_normal(IncidentKind::Accident)) > 0.7);
    }

    #[test]
    fn a_traffic_jam_on_a_normal_order_scores_below_the_threshold() {
        assert!(score(&midday_normal(IncidentKind::TrafficJam)) < 0.7);
    }

    #[test]
    fn the_score_matches_the_documented_formula() {
        let z: f64 = INTERCEPT + KIND_VEHICLE_BREAKDOWN + 0.0 + DISTANCE_PER_KM * 5.0;
        let expected = 1.0 / (1.0 + (-z).exp());
        let got = score(&midday_normal(IncidentKind::VehicleBreakdown));
        assert!((got - expected).abs() < 1e-12);
    }

    #[test]
    fn scores_stay_within_zero_and_one_for_extreme_inputs() {
        let distances = [
            f64::MAX,
            1e12,
            -1e12,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let incidents = [i64::MAX, i64::MIN, -1, 0, 1_000_000];
        let hours = [0, 4, 5, 12, 21, 22, 23, u32::MAX];
        for &kind in IncidentKind::ALL {
            for &priority in Priority::ALL {
                for &remaining_km in &distances {
                    for &driver_incidents_24h in &incidents {
                        for &hour_of_day in &hours {
                            let s = score(&RiskInput {
                                kind,
                                priority,
                                remaining_km,
                                driver_incidents_24h,
                                hour_of_day,
                            });
                            assert!(!s.is_nan());
                            assert!((0.0..=1.0).contains(&s), "score {s} out of range");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_non_finite_or_negative_distance_counts_as_zero() {
        let mut zero = midday_normal(IncidentKind::Weather);
        zero.remaining_km = 0.0;
        let base = score(&zero);
        for km in [-3.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut input = zero;
            input.remaining_km = km;
            assert_eq!(score(&input), base);
        }
    }

    #[test]
    fn distance_beyond_the_cap_adds_nothing() {
        let mut at_cap = midday_normal(IncidentKind::Other);
        at_cap.remaining_km = MAX_DISTANCE_KM;
        let mut beyond = at_cap;
        beyond.remaining_km = 5_000.0;
        assert_eq!(score(&at_cap), score(&beyond));
    }

    #[test]
    fn the_model_is_deterministic() {
        let input = RiskInput {
            kind: IncidentKind::RoadClosure,
            priority: Priority::High,
            remaining_km: 17.3,
            driver_incidents_24h: 2,
            hour_of_day: 23,
        };
        let first = score(&input);
        for _ in 0..100 {
            assert_eq!(score(&input).to_bits(), first.to_bits());
        }
    }

    #[test]
    fn more_incidents_never_lower_the_score() {
        for &kind in IncidentKind::ALL {
            let mut previous = f64::NEG_INFINITY;
            for n in 0..20 {
                let mut input = midday_normal(kind);
                input.driver_incidents_24h = n;
                let s = score(&input);
                assert!(s >= previous, "{kind}: {n} incidents lowered the score");
                previous = s;
            }
            let mut input = midday_normal(kind);
            input.driver_incidents_24h = i64::MAX;
            assert!(score(&input) >= previous);
        }
    }

    #[test]
    fn night_hours_raise_the_score() {
        let day = score(&midday_normal(IncidentKind::Weather));
        for hour in [22, 23, 0, 4] {
            let mut input = midday_normal(IncidentKind::Weather);
            input.hour_of_day = hour;
            assert!(score(&input) > day, "hour {hour} should count as night");
        }
        for hour in [5, 12, 21] {
            let mut input = midday_normal(IncidentKind::Weather);
            input.hour_of_day = hour;
            assert_eq!(score(&input), day, "hour {hour} should count as day");
        }
    }

    #[test]
    fn higher_priority_never_lowers_the_score() {
        let order = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Critical,
        ];
        for pair in order.windows(2) {
            assert!(priority_weight(pair[0]) < priority_weight(pair[1]));
        }
    }

    #[test]
    fn weights_match_the_documented_coefficients() {
        assert_eq!(kind_weight(IncidentKind::VehicleBreakdown), 3.2);
        assert_eq!(kind_weight(IncidentKind::Accident), 3.5);
        assert_eq!(kind_weight(IncidentKind::Medical), 3.0);
        assert_eq!(kind_weight(IncidentKind::RoadClosure), 1.6);
        assert_eq!(kind_weight(IncidentKind::Weather), 0.8);
        assert_eq!(kind_weight(IncidentKind::TrafficJam), -0.4);
        assert_eq!(kind_weight(IncidentKind::Other), 0.3);
        assert_eq!(priority_weight(Priority::Low), -0.5);
        assert_eq!(priority_weight(Priority::Normal), 0.0);
        assert_eq!(priority_weight(Priority::High), 0.5);
        assert_eq!(priority_weight(Priority::Critical), 1.0);
    }
}
