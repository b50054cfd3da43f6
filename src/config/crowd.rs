//! `[crowd]`: crowd operations (SPEC 8): alert thresholds, pings and the live map, the risk
//! model's service and the insight pushes.

use super::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// Crowd operations' settings.
#[derive(Debug, Clone, Deserialize)]
pub struct CrowdSettings {
    /// A zone's alert threshold when its creation names none (never above its capacity).
    pub default_threshold: i64,
    /// Seconds a device's ping, and a camera's count, stay live.
    pub ping_ttl_s: u64,
    /// The least time between two `map:update`s of an event.
    pub map_flush_ms: u64,
    /// The most `points` one `map:update` carries.
    pub map_max_points: usize,
    /// The side of a density cell, in metres.
    pub cell_m: f64,
    /// The crowd risk service (`POST` JSON); empty: the built-in model.
    pub risk_url: String,
    /// How long the service has to answer before the built-in model does.
    pub risk_timeout_ms: u64,
    /// Seconds between two pushed `insight:update`/`prediction:update` while an event is watched.
    pub insight_interval_s: u64,
}

impl CrowdSettings {
    pub fn ping_ttl(&self) -> Duration {
        Duration::from_secs(self.ping_ttl_s)
    }

    pub fn map_flush(&self) -> Duration {
        Duration::from_millis(self.map_flush_ms)
    }

    pub fn risk_timeout(&self) -> Duration {
        Duration::from_millis(self.risk_timeout_ms)
    }

    pub fn insight_interval(&self) -> Duration {
        Duration::from_secs(self.insight_interval_s)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if self.default_threshold < 0 {
            return invalid("crowd.default_threshold", "must be 0 or more");
        }
        if !(1..=7 * 24 * 3600).contains(&self.ping_ttl_s) {
            return invalid("crowd.ping_ttl_s", "must be 1 to 604800 (a week)");
        }
        if !(10..=60_000).contains(&self.map_flush_ms) {
            return invalid("crowd.map_flush_ms", "must be 10 to 60000");
        }
        if !(1..=100_000).contains(&self.map_max_points) {
            return invalid("crowd.map_max_points", "must be 1 to 100000");
        }
        if !(1.0..=10_000.0).contains(&self.cell_m) {
            return invalid("crowd.cell_m", "must be 1 to 10000 metres");
        }
        let url = &self.risk_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return invalid("crowd.risk_url", "must be empty or an http(s):// URL");
        }
        if !(1..=60_000).contains(&self.risk_timeout_ms) {
            return invalid("crowd.risk_timeout_ms", "must be 1 to 60000");
        }
        if !(1..=86_400).contains(&self.insight_interval_s) {
            return invalid("crowd.insight_interval_s", "must be 1 to 86400");
        }
        Ok(())
    }
}
