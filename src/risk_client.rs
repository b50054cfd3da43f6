//! The external risk service (SPEC 4): `POST risk.url` with the report's features, answered by
//! `{"risk_score"}` within `risk.timeout_ms`. It only returns a score or an error; the caller
//! falls back to the built-in model.

use serde::Serialize;
use std::time::Duration;

/// What the external service is sent.
#[derive(Debug, Clone, Serialize)]
pub struct RiskRequest {
    pub event_id: String,
    pub order_id: String,
    pub driver_id: Option<String>,
    pub kind: String,
    pub comment: Option<String>,
    pub priority: String,
    pub remaining_km: f64,
    pub driver_incidents_24h: i64,
    pub hour_of_day: u32,
}

/// Why the service gave no usable score.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

impl RiskError {
    /// The metrics label: `timeout` or `error`.
    pub fn outcome(&self) -> &'static str {
        match self {
            RiskError::Timeout(_) => "timeout",
            RiskError::Failed(_) => "error",
        }
    }
}

thread_local! {
    // One client (and its connection pool) per thread, reused by every call.
    static CLIENT: awc::Client = awc::Client::builder().disable_timeout().finish();
}

/// Asks the service at `url`; any failure, late answer or score outside [0, 1] is an error.
pub async fn score(url: &str, timeout: Duration, req: &RiskRequest) -> Result<f64, RiskError> {
    let call = async {
        let request = CLIENT.with(|c| c.post(url));
        let mut resp = request
            .send_json(req)
            .await
            .map_err(|e| RiskError::Failed(format!("request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(RiskError::Failed(format!("status {}", resp.status())));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| RiskError::Failed(format!("unreadable answer: {e}")))?;
        match body.get("risk_score").and_then(serde_json::Value::as_f64) {
            Some(s) if (0.0..=1.0).contains(&s) => Ok(s),
            Some(s) => Err(RiskError::Failed(format!(
                "risk_score {s} is outside [0, 1]"
            ))),
            None => Err(RiskError::Failed(
                "the answer has no numeric risk_score".into(),
            )),
        }
    };
    // The whole exchange, body included, must fit in `timeout`.
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(RiskError::Timeout(timeout)))
}
