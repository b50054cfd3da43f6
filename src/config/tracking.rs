//! `[tracking]`: the drivers' sampled tracks (`GET /api/v1/drivers/{id}/track`, SPEC 10).

use super::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// How drivers' positions are sampled and kept for route replay.
#[derive(Debug, Clone, Deserialize)]
pub struct TrackingSettings {
    /// Seconds between two kept positions of a driver; also how often the samples are written.
    pub sample_s: u64,
    /// Hours a sample is kept before the janitor purges it.
    pub retention_h: u64,
}

impl TrackingSettings {
    /// The least time between two samples of one driver, and between two batch writes.
    pub fn sample(&self) -> Duration {
        Duration::from_secs(self.sample_s)
    }

    /// How long samples are kept.
    pub fn retention(&self) -> chrono::Duration {
        // At most a year once validated.
        chrono::Duration::hours(self.retention_h.min(24 * 366) as i64)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if !(1..=3600).contains(&self.sample_s) {
            return invalid("tracking.sample_s", "must be 1 to 3600");
        }
        if !(1..=24 * 366).contains(&self.retention_h) {
            return invalid("tracking.retention_h", "must be 1 to 8784 (a year)");
        }
        Ok(())
    }
}
