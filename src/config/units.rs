//! `[units]`: emergency units (SPEC 9).

use serde::Deserialize;

/// Emergency units (SPEC 9): which fleets are units, and which severities are dispatched at
/// creation without an authority's click.
#[derive(Debug, Clone, Deserialize)]
pub struct UnitsSettings {
    pub fleets: Vec<String>,
    /// Severities (`low`, `medium`, `high`, `critical`).
    pub auto_dispatch: Vec<String>,
}

impl UnitsSettings {
    /// Whether drivers of `fleet` are emergency units.
    pub fn is_unit_fleet(&self, fleet: &str) -> bool {
        self.fleets.iter().any(|f| f == fleet)
    }

    /// Whether an emergency of `severity` is dispatched at creation.
    pub fn auto_dispatches(&self, severity: crate::protocol::Severity) -> bool {
        self.auto_dispatch.iter().any(|s| s == severity.as_str())
    }
}
