//! The Socket.IO suite (SPEC 11), run from `cargo test` so that the one test command runs it: the
//! real npm `socket.io-client` 4, pinned in `tests/socketio/package-lock.json`, speaks to a freshly
//! started `rallypoint serve` the way the frontends do, under node's own test runner (see
//! `tests/socketio/`).
//!
//! It needs `node` (20+) and `npm ci` run in `tests/socketio/`; `.ci/run` (through `scripts/test`)
//! does both. Where one is missing the test fails and says what to install, unless
//! `RALLYPOINT_SKIP_BROWSER=1` is set, in which case it says loudly that it skipped.

#[path = "common/node.rs"]
mod node;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio")
}

#[test]
fn socket_io_client_4_against_the_engine() {
    let mut missing = node::missing_node();
    for package in ["socket.io-client", "ws"] {
        if !suite_dir().join("node_modules").join(package).exists() {
            missing.push(format!("{package} (cd tests/socketio && npm ci)"));
        }
    }
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/socketio");
    // One file at a time: each starts its own engine, and the machines are shared.
    node::run_node_tests(
        "socket.io-client tests",
        &suite_dir(),
        &["--test-concurrency=1"],
        missing,
        &[(
            "RALLYPOINT_BIN",
            OsStr::new(env!("CARGO_BIN_EXE_rallypoint")),
        )],
        &artifacts,
    );
}
