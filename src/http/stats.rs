//! `GET /api/v1/stats` (SPEC 10): the numbers of the operation, for the staff; a partner gets
//! those of its own orders only (its orders by status, its deliveries today and their average
//! duration), nothing of the fleet, the incidents or the connections.
//!
//! Read from the database (so any node of a cluster answers the same), but for the connections,
//! which are this node's sessions. "Today" starts at midnight in `stats.timezone`.

use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{DriverStatus, IncidentKind, OrderStatus, Role};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Map, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/stats", web::get().to(stats));
}

/// `GET /api/v1/stats` (dispatcher, admin; a partner its own).
async fn stats(hub: web::Data<Hub>, user: AuthUser) -> Result<HttpResponse, AppError> {
    let c = &user.0;
    let partner = match c.role {
        Role::Admin | Role::Dispatcher => None,
        Role::Partner => Some(
            c.partner()
                .ok_or_else(|| AppError::forbidden("a partner token without a partner_id"))?
                .to_string(),
        ),
        _ => {
            return Err(AppError::forbidden(format!(
                "role `{}` may not read statistics",
                c.role
            )))
        }
    };
    let now = Utc::now();
    let offset = hub.settings.stats.offset();
    let today = day_start(now, offset);
    let day_ago = (now - chrono::Duration::hours(24)).naive_utc();
    let staff = partner.is_none();
    let since = today.naive_utc();
    let (orders, delivered, incidents, drivers) = db::run(&hub.pool, move |conn| {
        let p = partner.as_deref();
        let orders = queries::stats::orders_by_status(conn, p)?;
        let delivered = queries::stats::delivered_since(conn, p, since)?;
        let (incidents, drivers) = if staff {
            (
                queries::stats::incidents_by_kind(conn, day_ago)?,
                queries::stats::drivers_with_load(conn)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok((orders, delivered, incidents, drivers))
    })
    .await?;
    let mut body = json!({
        "scope": if staff { "all" } else { "partner" },
        "generated_at": now,
        "timezone": hub.settings.stats.timezone,
        "day_start": today,
        "orders_by_status": counts(OrderStatus::ALL.iter().map(|s| s.as_str()), &orders),
        "deliveries_today": delivered.len(),
        "avg_delivery_minutes": average_minutes(&delivered),
    });
    if let (true, Some(b)) = (staff, body.as_object_mut()) {
        b.insert("drivers_by_status".into(), drivers_by_status(&drivers));
        b.insert(
            "incidents_24h".into(),
            counts(IncidentKind::ALL.iter().map(|k| k.as_str()), &incidents),
        );
        let roles: Map<String, Value> = hub
            .connections_by_role()
            .into_iter()
            .map(|(r, n)| (r.as_str().to_string(), json!(n)))
            .collect();
        b.insert("connections_by_role".into(), Value::Object(roles));
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `{name: count}` for every name in `names` (zeros included) and any other name counted.
fn counts<'a>(names: impl Iterator<Item = &'a str>, counted: &[(String, i64)]) -> Value {
    let mut m: Map<String, Value> = names.map(|n| (n.to_string(), json!(0))).collect();
    for (name, n) in counted {
        m.insert(name.clone(), json!(n));
    }
    Value::Object(m)
}

/// Drivers by what others see of them: `offline`, `online`, or `busy` (online and at capacity).
fn drivers_by_status(drivers: &[(String, i32, i64)]) -> Value {
    let mut by: Vec<(String, i64)> = Vec::new();
    for (stored, capacity, held) in drivers {
        let status = if stored != DriverStatus::Online.as_str() {
            DriverStatus::Offline
        } else if *held >= i64::from(*capacity) {
            DriverStatus::Busy
        } else {
            DriverStatus::Online
        };
        match by.iter_mut().find(|(s, _)| s == status.as_str()) {
            Some((_, n)) => *n += 1,
            None => by.push((status.as_str().to_string(), 1)),
        }
    }
    counts(DriverStatus::ALL.iter().map(|s| s.as_str()), &by)
}

/// Midnight of `now`'s day at `offset`, in UTC.
fn day_start(now: DateTime<Utc>, offset: FixedOffset) -> DateTime<Utc> {
    let local_midnight = now
        .with_timezone(&offset)
        .date_naive()
        .and_time(Default::default());
    offset
        .from_local_datetime(&local_midnight)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

/// The mean minutes from acceptance to delivery of the deliveries that were accepted, to the
/// hundredth; `None` when there are none.
fn average_minutes(delivered: &[(Option<NaiveDateTime>, NaiveDateTime)]) -> Option<f64> {
    let spans: Vec<f64> = delivered
        .iter()
        .filter_map(|(accepted, at)| accepted.map(|a| (*at - a).num_milliseconds() as f64))
        .collect();
    if spans.is_empty() {
        return None;
    }
    let mean_ms = spans.iter().sum::<f64>() / spans.len() as f64;
    Some((mean_ms / 600.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a timestamp")
            .with_timezone(&Utc)
    }

    #[test]
    fn today_starts_at_midnight_of_the_configured_offset() {
        let utc = FixedOffset::east_opt(0).expect("utc");
        let plus2 = FixedOffset::east_opt(7200).expect("+02:00");
        let minus5 = FixedOffset::east_opt(-5 * 3600).expect("-05:00");
        let now = at("2026-12-03T01:30:00Z");
        assert_eq!(day_start(now, utc), at("2026-12-03T00:00:00Z"));
        // 03:30 in +02:00: its day began at 22:00 UTC the day before.
        assert_eq!(day_start(now, plus2), at("2026-12-02T22:00:00Z"));
        // 20:30 the day before in -05:00.
        assert_eq!(day_start(now, minus5), at("2026-12-02T05:00:00Z"));
    }

    #[test]
    fn the_average_counts_only_accepted_deliveries_in_minutes() {
        let t = |s: &str| at(s).naive_utc();
        let rows = [
            (Some(t("2026-12-03T10:00:00Z")), t("2026-12-03T10:30:00Z")),
            (Some(t("2026-12-03T11:00:00Z")), t("2026-12-03T11:10:00Z")),
            (None, t("2026-12-03T12:00:00Z")),
        ];
        assert_eq!(average_minutes(&rows), Some(20.0));
        assert_eq!(average_minutes(&rows[2..]), None);
        let odd = [(Some(t("2026-12-03T10:00:00Z")), t("2026-12-03T10:00:20Z"))];
        assert_eq!(average_minutes(&odd), Some(0.33));
    }

    #[test]
    fn a_driver_online_at_capacity_is_busy() {
        let drivers = [
            ("online".to_string(), 1, 1),
            ("online".to_string(), 2, 1),
            ("offline".to_string(), 1, 0),
            ("offline".to_string(), 1, 1),
        ];
        assert_eq!(
            drivers_by_status(&drivers),
            json!({"online": 1, "busy": 1, "offline": 2})
        );
    }
}
