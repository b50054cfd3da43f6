//! The reassignment decision for a scored incident, and the arithmetic around it: where an order
//! is now, how far it still has to travel, and when it should arrive.

use crate::dispatch::matching::haversine_km;
use crate::protocol::{Action, DriverId, LatLng, OrderStatus};
use chrono::{DateTime, Duration, Utc};

/// What to do about an incident: reassign when `risk_score` is strictly above `threshold` and a
/// driver was found, report that none is available when none was, and otherwise maintain.
pub fn decide(risk_score: f64, threshold: f64, best: Option<&DriverId>) -> Action {
    if risk_score > threshold {
        match best {
            Some(_) => Action::ReassignmentInitiated,
            None => Action::NoDriverAvailable,
        }
    } else {
        Action::Maintain
    }
}

/// Whether the order is physically in the driver's vehicle.
fn on_board(status: OrderStatus) -> bool {
    matches!(status, OrderStatus::PickedUp | OrderStatus::OutForDelivery)
}

/// Where the order is now: with the driver once picked up (the pickup point if the driver's
/// position is unknown), otherwise still at the pickup point.
pub fn order_position(status: OrderStatus, driver_at: Option<LatLng>, pickup: LatLng) -> LatLng {
    if on_board(status) {
        driver_at.unwrap_or(pickup)
    } else {
        pickup
    }
}

/// Kilometres the order still has to travel: from the driver (or pickup) to the dropoff once on
/// board; driver to pickup (0 without a driver position) plus pickup to dropoff when assigned;
/// pickup to dropoff when pending; nothing once delivered or cancelled.
pub fn remaining_km(
    status: OrderStatus,
    driver_at: Option<LatLng>,
    pickup: LatLng,
    dropoff: LatLng,
) -> f64 {
    match status {
        OrderStatus::PickedUp | OrderStatus::OutForDelivery => {
            haversine_km(driver_at.unwrap_or(pickup), dropoff)
        }
        OrderStatus::Assigned => {
            let approach = driver_at.map_or(0.0, |at| haversine_km(at, pickup));
            approach + haversine_km(pickup, dropoff)
        }
        OrderStatus::Pending => haversine_km(pickup, dropoff),
        OrderStatus::Delivered | OrderStatus::Cancelled => 0.0,
    }
}

/// Expected arrival: `now` plus `remaining_km / average_speed_kmh` hours, rounded to whole
/// seconds. Returns `now` when the speed is non-finite or not positive, when the distance is
/// negative or not a number, or when the result would not fit in a timestamp.
pub fn eta(now: DateTime<Utc>, remaining_km: f64, average_speed_kmh: f64) -> DateTime<Utc> {
    if !average_speed_kmh.is_finite()
        || average_speed_kmh <= 0.0
        || remaining_km.is_nan()
        || remaining_km < 0.0
    {
        return now;
    }
    let seconds = (remaining_km / average_speed_kmh * 3600.0).round();
    if !seconds.is_finite() || seconds >= i64::MAX as f64 {
        return now;
    }
    Duration::try_seconds(seconds as i64)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PICKUP: LatLng = LatLng { lat: 0.0, lng: 0.0 };
    const DROPOFF: LatLng = LatLng { lat: 0.0, lng: 1.0 };
    const DRIVER: LatLng = LatLng {
        lat: 0.0,
        lng: -0.5,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_score_above_the_threshold_with_a_driver_reassigns() {
        let d = DriverId::from("DRV-2");
        assert_eq!(decide(0.9, 0.7, Some(&d)), Action::ReassignmentInitiated);
    }

    #[test]
    fn a_score_above_the_threshold_without_a_driver_reports_none_available() {
        assert_eq!(decide(0.9, 0.7, None), Action::NoDriverAvailable);
    }

    #[test]
    fn a_score_equal_to_the_threshold_maintains() {
        let d = DriverId::from("DRV-2");
        assert_eq!(decide(0.7, 0.7, Some(&d)), Action::Maintain);
        assert_eq!(decide(0.7, 0.7, None), Action::Maintain);
    }

    #[test]
    fn a_score_below_the_threshold_maintains() {
        let d = DriverId::from("DRV-2");
        assert_eq!(decide(0.2, 0.7, Some(&d)), Action::Maintain);
        assert_eq!(decide(0.2, 0.7, None), Action::Maintain);
    }

    #[test]
    fn a_nan_score_maintains() {
        let d = DriverId::from("DRV-2");
        assert_eq!(decide(f64::NAN, 0.7, Some(&d)), Action::Maintain);
    }

    #[test]
    fn an_order_on_board_is_where_the_driver_is() {
        for status in [OrderStatus::PickedUp, OrderStatus::OutForDelivery] {
            assert_eq!(order_position(status, Some(DRIVER), PICKUP), DRIVER);
        }
    }

    #[test]
    fn an_order_on_board_with_no_driver_position_falls_back_to_the_pickup() {
        assert_eq!(
            order_position(OrderStatus::OutForDelivery, None, PICKUP),
            PICKUP
        );
    }

    #[test]
    fn an_order_not_yet_picked_up_is_at_the_pickup() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Assigned,
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
        ] {
            assert_eq!(order_position(status, Some(DRIVER), PICKUP), PICKUP);
        }
    }

    #[test]
    fn an_order_on_board_remains_the_driver_to_dropoff_distance() {
        let expected = haversine_km(DRIVER, DROPOFF);
        for status in [OrderStatus::PickedUp, OrderStatus::OutForDelivery] {
            let got = remaining_km(status, Some(DRIVER), PICKUP, DROPOFF);
            assert!(close(got, expected));
        }
        let fallback = remaining_km(OrderStatus::PickedUp, None, PICKUP, DROPOFF);
        assert!(close(fallback, haversine_km(PICKUP, DROPOFF)));
    }

    #[test]
    fn an_assigned_order_adds_the_approach_to_the_trip() {
        let got = remaining_km(OrderStatus::Assigned, Some(DRIVER), PICKUP, DROPOFF);
        let expected = haversine_km(DRIVER, PICKUP) + haversine_km(PICKUP, DROPOFF);
        assert!(close(got, expected));
    }

    #[test]
    fn an_assigned_order_with_no_driver_position_counts_no_approach() {
        let got = remaining_km(OrderStatus::Assigned, None, PICKUP, DROPOFF);
        assert!(close(got, haversine_km(PICKUP, DROPOFF)));
    }

    #[test]
    fn a_pending_order_remains_the_pickup_to_dropoff_distance() {
        let got = remaining_km(OrderStatus::Pending, Some(DRIVER), PICKUP, DROPOFF);
        assert!(close(got, haversine_km(PICKUP, DROPOFF)));
    }

    #[test]
    fn a_finished_order_has_nothing_left() {
        for status in [OrderStatus::Delivered, OrderStatus::Cancelled] {
            assert_eq!(remaining_km(status, Some(DRIVER), PICKUP, DROPOFF), 0.0);
        }
    }

    #[test]
    fn the_eta_adds_distance_over_speed() {
        assert_eq!(eta(now(), 30.0, 60.0), now() + Duration::minutes(30));
    }

    #[test]
    fn the_eta_is_rounded_to_whole_seconds() {
        // 1 km at 7 km/h is 514.2857… s.
        assert_eq!(eta(now(), 1.0, 7.0), now() + Duration::seconds(514));
        // 1 km at 2.4 km/h is exactly 1500 s; 1.0001 km adds 0.15 s, rounded away.
        assert_eq!(eta(now(), 1.0001, 2.4), now() + Duration::seconds(1500));
    }

    #[test]
    fn zero_distance_arrives_now() {
        assert_eq!(eta(now(), 0.0, 30.0), now());
    }

    #[test]
    fn an_unusable_speed_or_distance_gives_now() {
        for speed in [0.0, -10.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(eta(now(), 10.0, speed), now(), "speed {speed}");
        }
        for km in [-1.0, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(eta(now(), km, 30.0), now(), "distance {km}");
        }
    }

    #[test]
    fn an_eta_beyond_any_timestamp_gives_now() {
        assert_eq!(eta(now(), f64::INFINITY, 30.0), now());
        assert_eq!(eta(now(), 1e300, 1e-300), now());
        assert_eq!(eta(now(), 1e15, 1.0), now());
    }
}
