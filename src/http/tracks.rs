//! `GET /api/v1/drivers/{id}/track?since=&until=` (staff, SPEC 10): a driver's sampled positions
//! between two instants, oldest first, for route replay. Samples are kept one per
//! `tracking.sample_s` and for `tracking.retention_h` (`actors::tracks`); those of the last
//! interval may still be waiting for their batch write.

use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{DriverId, Location, Role};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/drivers/{id}/track", web::get().to(track));
}

#[derive(Debug, Deserialize)]
struct Range {
    since: Option<String>,
    until: Option<String>,
}

/// An RFC 3339 instant of the query, or `bad_request` naming the parameter.
fn instant(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    AppError::bad_request(format!(
                        "`{name}` must be an RFC 3339 instant such as 2026-12-03T09:00:00Z, not {v:?}: {e}"
                    ))
                })
        })
        .transpose()
}

/// `GET /api/v1/drivers/{id}/track` (dispatcher, admin): `{"driver_id","since","until",
/// "sample_s","points":[{lat,lng,speed,heading,timestamp}]}`. `until` defaults to now and
/// `since` to `tracking.retention_h` before it; an unknown driver is 404.
async fn track(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<Range>,
) -> Result<HttpResponse, AppError> {
    user.0
        .require(&[Role::Admin, Role::Dispatcher], "read drivers' tracks")?;
    let id = DriverId(path.into_inner());
    let until = instant("until", q.until.as_deref())?.unwrap_or_else(Utc::now);
    let since = instant("since", q.since.as_deref())?
        .unwrap_or_else(|| until - hub.settings.tracking.retention());
    if since > until {
        return Err(AppError::bad_request("`since` must not be after `until`"));
    }
    let key = id.0.clone();
    let rows = db::run(&hub.pool, move |c| {
        if queries::drivers::find(c, &key)?.is_none() {
            return Ok(None);
        }
        Ok(Some(queries::tracks::between(
            c,
            &key,
            since.naive_utc(),
            until.naive_utc(),
        )?))
    })
    .await?
    .ok_or_else(|| AppError::not_found(format!("driver {id} does not exist")))?;
    let points: Vec<Location> = rows.iter().map(|r| r.to_location()).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "driver_id": id,
        "since": since,
        "until": until,
        "sample_s": hub.settings.tracking.sample_s,
        "points": points,
    })))
}
