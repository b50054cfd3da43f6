//! Logging: `env_logger` from `RUST_LOG` (default `info`), one line per event.

/// Sets up the logger once; later calls do nothing.
pub fn init() {
    init_with_default("info");
}

/// Like `init`, with another level when `RUST_LOG` is unset (`rallypoint token`: warnings only,
/// so a terminal minting tokens sees a generated secret, not a line per token).
pub fn init_with_default(level: &str) {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .try_init();
}
