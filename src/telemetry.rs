//! Logging: `env_logger` from `RUST_LOG` (default `info`), one line per event.

/// Sets up the logger once; later calls do nothing.
pub fn init() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .try_init();
}
