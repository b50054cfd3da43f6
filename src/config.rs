//! Typed configuration: `config/default.toml` (built into the binary), then an optional file
//! (`--config` or `RALLYPOINT_CONFIG`), then `RALLYPOINT_<SECTION>__<KEY>` variables.
//!
//! Accessors return `Duration`s rather than raw numbers. The secret never appears in `Debug`.
//! Loading and validation fail with a `ConfigError` that names the key; `main` exits 2 on it.

use serde::Deserialize;
use std::time::Duration;

mod cluster;
mod crowd;
mod stats;
mod tracking;
mod units;
pub use cluster::ClusterSettings;
pub use crowd::CrowdSettings;
pub use stats::StatsSettings;
pub use tracking::TrackingSettings;
pub use units::UnitsSettings;

/// The default configuration, also the reference for every key.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The shortest `auth.secret` accepted, in bytes (SPEC 2).
pub const MIN_SECRET_BYTES: usize = 32;

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub realtime: RealtimeSettings,
    pub dispatch: DispatchSettings,
    pub risk: RiskSettings,
    pub limits: LimitSettings,
    pub socketio: SocketIoSettings,
    pub cluster: ClusterSettings,
    pub stats: StatsSettings,
    pub tracking: TrackingSettings,
    pub units: UnitsSettings,
    pub crowd: CrowdSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub shutdown_timeout_s: u64,
    /// Folder of the generated secret (`<data_dir>/secret`), relative to the working directory.
    pub data_dir: String,
    /// Origins that get CORS headers on REST and Socket.IO polling (SPEC 11); empty: none.
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub connect_timeout_ms: u64,
    /// SQLite's `PRAGMA synchronous` (off, normal, full, extra).
    pub sqlite_synchronous: String,
}

#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    pub secret: String,
    pub public_key_pem: String,
    pub leeway_s: u64,
    pub dev_login: bool,
    pub dev_token_ttl_s: i64,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("secret", &"[redacted]")
            .field("public_key_pem", &!self.public_key_pem.is_empty())
            .field("leeway_s", &self.leeway_s)
            .field("dev_login", &self.dev_login)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RealtimeSettings {
    pub heartbeat_ms: u64,
    pub idempotency_window_s: u64,
    pub idempotency_claim_s: u64,
    pub presence_flush_ms: u64,
    pub location_flush_ms: u64,
    pub offline_grace_ms: u64,
    pub history_per_room: i64,
    pub history_ttl_s: i64,
    pub trim_interval_s: u64,
    pub room_idle_s: u64,
    /// Milliseconds a room with members and nothing to do keeps its actor before it sleeps
    /// (0: never).
    pub room_sleep_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DispatchSettings {
    pub reassign_threshold: f64,
    pub default_capacity: i32,
    pub average_speed_kmh: f64,
    pub batch_window_ms: u64,
    pub max_batch: usize,
    pub batch_budget_ms: u64,
    pub candidates_per_order: usize,
    pub rematch_window_ms: u64,
    pub move_penalty_m: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RiskSettings {
    pub url: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub max_frame_bytes: usize,
    pub client_msgs_per_sec: u32,
    pub outbound_queue: usize,
    pub location_min_interval_ms: u64,
    pub max_connections: usize,
    pub max_rooms_per_session: usize,
    pub max_connections_per_sub: usize,
    pub rest_per_sub_per_sec: u32,
}

/// `/socket.io/` (SPEC 11): Engine.IO's heartbeat, connection state recovery, location events.
#[derive(Debug, Clone, Deserialize)]
pub struct SocketIoSettings {
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub recovery_s: u64,
    pub connect_timeout_ms: u64,
    /// `per_driver`: one `driver:locationUpdated` per driver; `batch`: one event, an array.
    pub location_events: LocationEvents,
}

/// How a `locations` batch reaches Socket.IO clients as `driver:locationUpdated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationEvents {
    PerDriver,
    Batch,
}

impl Settings {
    /// Loads the layers: built-in defaults, then `file` if given, then `RALLYPOINT_*` variables.
    pub fn load(file: Option<&str>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !std::path::Path::new(path).exists() {
                return Err(ConfigError::Invalid {
                    key: "--config",
                    problem: format!("file `{path}` does not exist"),
                });
            }
            builder = builder.add_source(config::File::with_name(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("RALLYPOINT")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.cors_origins")
                .with_list_parse_key("units.fleets")
                .with_list_parse_key("units.auto_dispatch"),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values a type alone cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return invalid(
                "server.bind",
                "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8000",
            );
        }
        if self.database.url.trim().is_empty() {
            return invalid(
                "database.url",
                "must be a path, sqlite://PATH or postgres://...",
            );
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.database.sqlite_synchronous().is_none() {
            return invalid(
                "database.sqlite_synchronous",
                "must be one of \"off\", \"normal\", \"full\" (the default) or \"extra\"",
            );
        }
        if !(0.0..=1.0).contains(&self.dispatch.reassign_threshold) {
            return invalid("dispatch.reassign_threshold", "must be between 0 and 1");
        }
        if self.dispatch.default_capacity < 1 {
            return invalid("dispatch.default_capacity", "must be at least 1");
        }
        if self.dispatch.average_speed_kmh <= 0.0 {
            return invalid("dispatch.average_speed_kmh", "must be above 0");
        }
        if self.dispatch.batch_window_ms > 1000 {
            return invalid(
                "dispatch.batch_window_ms",
                "must be at most 1000 (every report waits this long; a few ms is enough)",
            );
        }
        if self.dispatch.max_batch < 1 {
            return invalid("dispatch.max_batch", "must be at least 1");
        }
        if self.dispatch.batch_budget_ms < 1 {
            return invalid("dispatch.batch_budget_ms", "must be at least 1");
        }
        if self.dispatch.candidates_per_order < 1 {
            return invalid("dispatch.candidates_per_order", "must be at least 1");
        }
        if self.dispatch.move_penalty_m < 0 {
            return invalid("dispatch.move_penalty_m", "must be 0 or more");
        }
        if self.realtime.heartbeat_ms < 100 {
            return invalid("realtime.heartbeat_ms", "must be at least 100");
        }
        if self.realtime.history_per_room < 1 {
            return invalid("realtime.history_per_room", "must be at least 1");
        }
        if self.realtime.history_ttl_s < 1 {
            return invalid("realtime.history_ttl_s", "must be at least 1");
        }
        if self.realtime.trim_interval_s < 1 {
            return invalid("realtime.trim_interval_s", "must be at least 1");
        }
        // Empty: generated into `<server.data_dir>/secret` at start (crate::secret).
        if !self.auth.secret.is_empty() && self.auth.secret.len() < MIN_SECRET_BYTES {
            return invalid(
                "auth.secret",
                "must be at least 32 bytes: make one with `openssl rand -hex 32`, or leave it \
                 empty to have one generated into <server.data_dir>/secret",
            );
        }
        if self.server.data_dir.trim().is_empty() {
            return invalid("server.data_dir", "must name a folder, e.g. data");
        }
        if self.limits.max_rooms_per_session == 0 || self.limits.max_connections_per_sub == 0 {
            return invalid(
                "limits.max_rooms_per_session",
                "max_rooms_per_session and max_connections_per_sub must be at least 1",
            );
        }
        if self.limits.outbound_queue == 0 || self.limits.max_frame_bytes < 256 {
            return invalid(
                "limits.outbound_queue",
                "queue must be at least 1 and max_frame_bytes at least 256",
            );
        }
        if self.socketio.ping_interval_ms == 0 || self.socketio.ping_timeout_ms == 0 {
            return invalid(
                "socketio.ping_interval_ms",
                "ping_interval_ms and ping_timeout_ms must be at least 1",
            );
        }
        if self.socketio.recovery_s == 0 || self.socketio.connect_timeout_ms == 0 {
            return invalid(
                "socketio.recovery_s",
                "recovery_s and connect_timeout_ms must be at least 1",
            );
        }
        if self.units.fleets.iter().any(|f| f.trim().is_empty()) {
            return invalid("units.fleets", "must name fleets, e.g. [\"units\"]");
        }
        if let Some(bad) = self
            .units
            .auto_dispatch
            .iter()
            .find(|s| s.parse::<crate::protocol::Severity>().is_err())
        {
            return invalid(
                "units.auto_dispatch",
                &format!("`{bad}` is no severity: use low, medium, high or critical"),
            );
        }
        if self.cluster.enabled() {
            if !self.cluster.redis_url.starts_with("redis://") {
                return invalid(
                    "cluster.redis_url",
                    "must be redis://HOST:PORT[/DB], e.g. redis://127.0.0.1:6379",
                );
            }
            let ns = &self.cluster.namespace;
            if ns.is_empty()
                || !ns
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                return invalid(
                    "cluster.namespace",
                    "must be letters, digits, `_`, `-` or `.`, e.g. rallypoint",
                );
            }
            if self.auth.secret.is_empty() && self.auth.public_key_pem.trim().is_empty() {
                return invalid(
                    "auth.secret",
                    "a cluster needs the same token secret on every node: set auth.secret (make one with `openssl rand -hex 32`) or auth.public_key_pem",
                );
            }
            if !self.database.url.starts_with("postgres") {
                return invalid(
                    "database.url",
                    "a cluster's nodes share one PostgreSQL database: set postgres://... (SQLite is one node's file)",
                );
            }
        }
        self.stats.validate()?;
        self.tracking.validate()?;
        self.crowd.validate()?;
        for origin in &self.server.cors_origins {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/');
            if !ok {
                return invalid(
                    "server.cors_origins",
                    "each origin is scheme://host[:port] with no path, e.g. http://localhost:3000",
                );
            }
        }
        Ok(())
    }
}

impl SocketIoSettings {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }
    pub fn recovery(&self) -> Duration {
        Duration::from_secs(self.recovery_s)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl RealtimeSettings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
    /// A peer silent this long is dropped: 2.5 heartbeats.
    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms * 5 / 2)
    }
    pub fn presence_flush(&self) -> Duration {
        Duration::from_millis(self.presence_flush_ms)
    }
    pub fn location_flush(&self) -> Duration {
        Duration::from_millis(self.location_flush_ms)
    }
    pub fn trim_interval(&self) -> Duration {
        Duration::from_secs(self.trim_interval_s)
    }
    pub fn offline_grace(&self) -> Duration {
        Duration::from_millis(self.offline_grace_ms)
    }
    /// How long a room with members and nothing to do keeps its actor; `None`: rooms never sleep.
    pub fn room_sleep(&self) -> Option<Duration> {
        (self.room_sleep_ms > 0).then(|| Duration::from_millis(self.room_sleep_ms))
    }

    /// How long a room with no members and nothing in flight lives on.
    pub fn room_idle(&self) -> Duration {
        Duration::from_secs(self.room_idle_s)
    }
}

impl DispatchSettings {
    pub fn batch_window(&self) -> Duration {
        Duration::from_millis(self.batch_window_ms)
    }
    pub fn batch_budget(&self) -> Duration {
        Duration::from_millis(self.batch_budget_ms)
    }
    pub fn rematch_window(&self) -> Duration {
        Duration::from_millis(self.rematch_window_ms)
    }
}

impl RiskSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl DatabaseSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The `PRAGMA synchronous` value, or `None` when the key names none.
    pub fn sqlite_synchronous(&self) -> Option<&'static str> {
        match self.sqlite_synchronous.to_ascii_lowercase().as_str() {
            "off" => Some("OFF"),
            "normal" => Some("NORMAL"),
            "full" => Some("FULL"),
            "extra" => Some("EXTRA"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in defaults, not validated.
    fn defaults() -> Settings {
        config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_TOML,
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn the_built_in_defaults_load_and_validate() {
        let s = defaults();
        s.validate().unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8000");
        assert_eq!(s.dispatch.reassign_threshold, 0.7);
        assert_eq!(s.realtime.client_timeout(), Duration::from_millis(12_500));
    }

    #[test]
    fn a_cluster_needs_one_secret_for_all_nodes_and_a_shared_postgresql() {
        let mut s = defaults();
        assert!(!s.cluster.enabled(), "alone by default: no Redis needed");
        s.cluster.redis_url = "redis://127.0.0.1:6379".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("auth.secret") && e.contains("every node"), "{e}");
        s.auth.secret = "a".repeat(64);
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("database.url") && e.contains("PostgreSQL"),
            "{e}"
        );
        s.database.url = "postgres://postgres@127.0.0.1/test".into();
        s.validate().unwrap();
        s.cluster.redis_url = "127.0.0.1:6379".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("cluster.redis_url"), "{e}");
    }

    #[test]
    fn units_default_to_one_fleet_auto_dispatching_critical_and_refuse_an_unknown_severity() {
        let mut s = defaults();
        assert_eq!(s.units.fleets, vec!["units".to_string()]);
        assert!(s.units.is_unit_fleet("units") && !s.units.is_unit_fleet("default"));
        assert!(s.units.auto_dispatches(crate::protocol::Severity::Critical));
        assert!(!s.units.auto_dispatches(crate::protocol::Severity::High));
        s.units.auto_dispatch = vec!["urgent".into()];
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("units.auto_dispatch") && e.contains("urgent"),
            "{e}"
        );
    }

    #[test]
    fn a_threshold_out_of_range_names_its_key() {
        let mut s = defaults();
        s.dispatch.reassign_threshold = 1.5;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("dispatch.reassign_threshold"), "{e}");
    }

    #[test]
    fn a_configured_secret_under_32_bytes_says_how_to_make_one() {
        let mut s = defaults();
        assert_eq!(s.auth.secret, "", "no secret ships with the product");
        s.auth.secret = "x".repeat(MIN_SECRET_BYTES - 1);
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("auth.secret") && e.contains("openssl rand -hex 32"),
            "{e}"
        );
        s.auth.secret = "x".repeat(MIN_SECRET_BYTES);
        s.validate().unwrap();
    }
    #[test]
    fn socket_io_defaults_are_socket_io_s_and_a_zero_window_names_its_key() {
        let mut s = defaults();
        assert_eq!(s.socketio.ping_interval(), Duration::from_millis(25_000));
        assert_eq!(s.socketio.ping_timeout(), Duration::from_millis(20_000));
        assert_eq!(s.socketio.recovery(), Duration::from_secs(120));
        assert_eq!(s.socketio.connect_timeout(), Duration::from_millis(45_000));
        assert_eq!(s.socketio.location_events, LocationEvents::PerDriver);
        s.socketio.recovery_s = 0;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("socketio.recovery_s"), "{e}");
    }

    #[test]
    fn sqlite_commits_are_synced_in_full_unless_configured_otherwise() {
        let mut s = defaults();
        assert_eq!(s.database.sqlite_synchronous(), Some("FULL"));
        s.database.sqlite_synchronous = "NORMAL".into();
        assert_eq!(s.database.sqlite_synchronous(), Some("NORMAL"));
        s.database.sqlite_synchronous = "sometimes".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("database.sqlite_synchronous"), "{e}");
    }
}
