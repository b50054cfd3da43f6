//! Insights and predictions (SPEC 8): the desk gives the model's inputs (`TakeFeatures`, each
//! zone's occupancy, load and trend from the loads it has sampled); the answer is made outside
//! the desk (the service is I/O): the service at `crowd.risk_url` within
//! `crowd.risk_timeout_ms`, else the built-in model (`risk`), `mlStatus` saying which. Each is
//! published ephemeral to `event:<id>` and kept as the latest for joining sessions; the desk
//! pushes both every `crowd.insight_interval_s` while the room runs on this node.

use super::desk::{now, ttl, EventDesk};
use super::map::publish_latest;
use super::risk::{self, Features, ZoneFeatures};
use crate::actors::registry::Watched;
use crate::actors::Hub;
use crate::protocol::crowd::{Insight, MlStatus, Prediction, ZoneRisk};
use crate::protocol::ServerMsg;
use crate::risk_client::RiskError;
use crate::telemetry::q;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The horizon of a pushed prediction, and of one asked without `horizon_minutes`.
pub const DEFAULT_HORIZON_MIN: u32 = 15;
/// The most loads the desk keeps per event (a sample per count, ping batch or insight).
const MAX_SAMPLES: usize = 600;

/// Each zone's load at one moment.
pub(super) type Sample = (DateTime<Utc>, BTreeMap<String, f64>);

/// The model's inputs as the desk holds them now (a sample of the loads is kept for the trend).
#[derive(Message)]
#[rtype(result = "Features")]
pub struct TakeFeatures;

impl Handler<TakeFeatures> for EventDesk {
    type Result = MessageResult<TakeFeatures>;

    fn handle(&mut self, _: TakeFeatures, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.features())
    }
}

impl EventDesk {
    /// Each zone's occupancy, load and trend now; the loads are kept as a sample.
    pub(super) fn features(&mut self) -> Features {
        let at = now();
        let since = at - ttl(&self.hub);
        let window = chrono::Duration::seconds((risk::TREND_WINDOW_MIN * 60.0) as i64);
        while self.samples.len() > MAX_SAMPLES
            || self.samples.front().is_some_and(|(t, _)| *t < at - window)
        {
            self.samples.pop_front();
        }
        let oldest = self.samples.front();
        let ago = oldest.map(|(t, _)| (at - *t).num_milliseconds() as f64 / 60_000.0);
        let mut loads = BTreeMap::new();
        let zones = self
            .zones
            .values()
            .map(|z| {
                let b = &z.row;
                let inside = self
                    .devices
                    .values()
                    .filter(|d| {
                        (b.south..=b.north).contains(&d.lat) && (b.west..=b.east).contains(&d.lng)
                    })
                    .count() as i64;
                let occupancy = super::logic::zone_count(&z.cameras, since).max(inside);
                let load = occupancy as f64 / z.row.capacity.max(1) as f64;
                loads.insert(z.row.id.clone(), load);
                let then = oldest.and_then(|(_, l)| l.get(&z.row.id).copied());
                ZoneFeatures {
                    zone_id: z.row.id.clone(),
                    name: z.row.name.clone(),
                    occupancy,
                    capacity: z.row.capacity,
                    load: (load * 10_000.0).round() / 10_000.0,
                    trend_per_min: risk::trend(ago.zip(then), load),
                }
            })
            .collect();
        self.samples.push_back((at, loads));
        Features {
            event_id: self.id.clone(),
            zones,
            history_min: ago.unwrap_or(0.0),
        }
    }

    /// Every `crowd.insight_interval_s`: an insight and a prediction, while the room runs here.
    pub(super) fn push_insights(&mut self, ctx: &mut Context<Self>) {
        let (hub, room) = (self.hub.clone(), self.room());
        let watched = hub.rooms.send(Watched { room });
        ctx.spawn(watched.into_actor(self).map(|watched, act, _| {
            if !watched.unwrap_or(false) {
                return;
            }
            let f = act.features();
            let hub = act.hub.clone();
            actix::spawn(async move {
                insight(&hub, f.clone()).await;
                prediction(&hub, f, DEFAULT_HORIZON_MIN).await;
            });
        }));
    }
}

thread_local! {
    // One client (and its connection pool) per thread, reused by every call.
    static CLIENT: awc::Client = awc::Client::builder().disable_timeout().finish();
}

/// Asks the service: `POST crowd.risk_url` `{kind, horizonMinutes, ...features}`; the whole
/// exchange within `timeout`.
async fn ask(url: &str, timeout: Duration, body: &Value) -> Result<Value, RiskError> {
    let call = async {
        let request = CLIENT.with(|c| c.post(url));
        let mut resp = request
            .send_json(body)
            .await
            .map_err(|e| RiskError::Failed(format!("request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(RiskError::Failed(format!("status {}", resp.status())));
        }
        resp.json::<Value>()
            .await
            .map_err(|e| RiskError::Failed(format!("unreadable answer: {e}")))
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(RiskError::Timeout(timeout)))
}

/// A score in [0, 1], or an error naming the field.
fn unit(v: &Value, field: &str) -> Result<f64, RiskError> {
    match v.get(field).and_then(Value::as_f64) {
        Some(s) if (0.0..=1.0).contains(&s) => Ok(s),
        _ => Err(RiskError::Failed(format!("no `{field}` in [0, 1]"))),
    }
}

/// The service's answer (`Ok(None)`: none configured), or why it gave none.
async fn service(
    hub: &Hub,
    kind: &str,
    f: &Features,
    horizon: u32,
) -> Result<Option<Value>, RiskError> {
    let settings = &hub.settings.crowd;
    if settings.risk_url.is_empty() {
        return Ok(None);
    }
    let mut body = serde_json::to_value(f).map_err(|e| RiskError::Failed(e.to_string()))?;
    body["kind"] = json!(kind);
    body["horizonMinutes"] = json!(horizon);
    ask(&settings.risk_url, settings.risk_timeout(), &body)
        .await
        .map(Some)
}

fn fell_back(f: &Features, kind: &str, e: &RiskError) -> MlStatus {
    log::warn!(
        "[RISK] event={} crowd {kind}: the service failed ({}): built-in model",
        q(&f.event_id),
        q(&e.to_string())
    );
    MlStatus::Fallback
}

/// The event's insight: made, published (`insight:update`) and kept as the latest.
pub async fn insight(hub: &Arc<Hub>, f: Features) -> Insight {
    let (score, recommendation, confidence, factors) = risk::insight(&f);
    let mut out = Insight {
        event_id: f.event_id.clone(),
        risk_score: score,
        recommendation,
        confidence,
        factors,
        ml_status: MlStatus::Model,
        generated_at: Utc::now(),
    };
    match service(hub, "insight", &f, DEFAULT_HORIZON_MIN).await {
        Ok(None) => {}
        Ok(Some(v)) => match unit(&v, "riskScore") {
            Ok(s) => {
                out.risk_score = s;
                if let Some(r) = v.get("recommendation").and_then(Value::as_str) {
                    out.recommendation = r.chars().take(500).collect();
                }
                out.confidence = unit(&v, "confidence").unwrap_or(out.confidence);
                out.ml_status = MlStatus::Service;
            }
            Err(e) => out.ml_status = fell_back(&f, "insight", &e),
        },
        Err(e) => out.ml_status = fell_back(&f, "insight", &e),
    }
    log::info!(
        "[RISK] event={} insight risk={} source={:?}",
        q(&out.event_id),
        out.risk_score,
        out.ml_status
    );
    let msg = ServerMsg::InsightUpdate { data: out.clone() };
    publish_latest(hub, &out.event_id, &msg);
    out
}

/// The zones' risks of the service's answer, one per zone of `f` and in [0, 1].
fn service_predictions(f: &Features, v: &Value) -> Result<Vec<ZoneRisk>, RiskError> {
    let list = v
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or_else(|| RiskError::Failed("no `predictions` array".into()))?;
    let mut out = Vec::new();
    for z in &f.zones {
        let risk = list
            .iter()
            .find(|p| p.get("zoneId").and_then(Value::as_str) == Some(z.zone_id.as_str()))
            .ok_or_else(|| RiskError::Failed(format!("no prediction for zone {}", z.zone_id)))
            .and_then(|p| unit(p, "risk"))?;
        out.push(ZoneRisk {
            zone_id: z.zone_id.clone(),
            risk,
        });
    }
    Ok(out)
}

/// The zones' predicted risks at `horizon` minutes: made, published (`prediction:update`) and
/// kept as the latest.
pub async fn prediction(hub: &Arc<Hub>, f: Features, horizon: u32) -> Prediction {
    let model = || {
        risk::predictions(&f, f64::from(horizon))
            .into_iter()
            .map(|(zone_id, risk)| ZoneRisk { zone_id, risk })
            .collect::<Vec<_>>()
    };
    let (predictions, ml_status) = match service(hub, "prediction", &f, horizon).await {
        Ok(None) => (model(), MlStatus::Model),
        Ok(Some(v)) => match service_predictions(&f, &v) {
            Ok(p) => (p, MlStatus::Service),
            Err(e) => (model(), fell_back(&f, "prediction", &e)),
        },
        Err(e) => (model(), fell_back(&f, "prediction", &e)),
    };
    let out = Prediction {
        event_id: f.event_id.clone(),
        horizon_minutes: horizon,
        predictions,
        ml_status,
        generated_at: Utc::now(),
    };
    let msg = ServerMsg::PredictionUpdate { data: out.clone() };
    publish_latest(hub, &out.event_id, &msg);
    out
}
