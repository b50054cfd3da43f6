//! `[stats]` and `[tracking]`: the statistics' day (`GET /api/v1/stats`) and the drivers'
//! sampled tracks (`GET /api/v1/drivers/{id}/track`), SPEC 10. Kept apart from the engine's core
//! sections in `config.rs`.

use super::ConfigError;
use chrono::FixedOffset;
use serde::Deserialize;

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, Deserialize)]
pub struct StatsSettings {
    /// Where "today" starts for `deliveries_today`: `UTC` or a fixed offset such as `+02:00`.
    pub timezone: String,
}

impl StatsSettings {
    /// The offset of `timezone` (checked at load, so UTC only for a value never validated).
    pub fn offset(&self) -> FixedOffset {
        parse_offset(&self.timezone).unwrap_or_else(utc)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match parse_offset(&self.timezone) {
            Some(_) => Ok(()),
            None => Err(ConfigError::Invalid {
                key: "stats.timezone",
                problem: "must be \"UTC\" or a fixed offset [+-]HH:MM, e.g. \"+02:00\"".into(),
            }),
        }
    }
}

fn utc() -> FixedOffset {
    chrono::Offset::fix(&chrono::Utc)
}

/// `UTC`, `Z`, or `+HH:MM` / `-HH:MM` (hours 0 to 23, minutes 0 to 59).
fn parse_offset(s: &str) -> Option<FixedOffset> {
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timezone_is_utc_or_a_fixed_offset() {
        assert_eq!(parse_offset("UTC"), FixedOffset::east_opt(0));
        assert_eq!(parse_offset("+02:00"), FixedOffset::east_opt(7200));
        assert_eq!(parse_offset("-05:30"), FixedOffset::east_opt(-19800));
        for bad in [
            "",
            "Europe/Paris",
            "+2",
            "+24:00",
            "+02:60",
            "02:00",
            "+0200",
        ] {
            assert_eq!(parse_offset(bad), None, "{bad:?}");
        }
    }
}
