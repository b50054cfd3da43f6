//! The Socket.IO suite (SPEC 11), run from `cargo test` so that the one test command runs it: the
//! real npm `socket.io-client` 4, pinned in `tests/socketio/package-lock.json`, speaks to a freshly
//! started `rallypoint serve` the way the frontends do, under node's own test runner (see
//! `tests/socketio/`).
//!
//! It needs `node` (20+) and `npm ci` run in `tests/socketio/`; `.ci/run` (through `scripts/test`)
//! does both. Where one is missing the test fails and says what to install, unless
//! `RALLYPOINT_SKIP_BROWSER=1` is set, in which case it says loudly that it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio")
}

/// What is missing to run the suite, if anything.
fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install nodejs npm)".to_string());
    }
    for package in ["socket.io-client", "ws"] {
        if !suite_dir().join("node_modules").join(package).exists() {
            missing.push(format!("{package} (cd tests/socketio && npm ci)"));
        }
    }
    missing
}

#[test]
fn socket_io_client_4_against_the_engine() {
    let name = "socket.io-client tests";
    let missing = missing();
    if !missing.is_empty() {
        let what = missing.join(", ");
        if std::env::var_os("RALLYPOINT_SKIP_BROWSER").is_some() {
            eprintln!("\n======== SKIPPED: {name}: missing {what} (RALLYPOINT_SKIP_BROWSER is set) ========\n");
            return;
        }
        panic!("{name} cannot run: missing {what}. Install it, or set RALLYPOINT_SKIP_BROWSER=1 to skip these tests.");
    }
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/socketio");
    let started = Instant::now();
    // One file at a time: each starts its own engine, and the machines are shared.
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .current_dir(suite_dir())
        .env("RALLYPOINT_BIN", env!("CARGO_BIN_EXE_rallypoint"))
        .env("ARTIFACTS_DIR", &artifacts)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("ok ") || l.starts_with("not ok ") || l.starts_with("# ")
        })
        .filter(|l| !l.trim_start().starts_with("# Subtest"))
        .collect();
    println!(
        "{name}: {:.1} s (server logs in {})\n{}",
        started.elapsed().as_secs_f64(),
        artifacts.display(),
        summary.join("\n")
    );
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "{name} ran no passing test:\n{stdout}"
    );
}
