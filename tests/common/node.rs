//! Runs a JavaScript suite under node's own test runner from `cargo test` (the browser suite and
//! the socket.io-client suite), so that the one test command runs everything.
//!
//! Where something the suite needs is missing the test fails and says what to install, unless
//! `RALLYPOINT_SKIP_BROWSER=1` is set, in which case it says loudly that it skipped.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Whether `node` runs here; the suites add what else they need.
pub fn missing_node() -> Vec<String> {
    match Command::new("node").arg("--version").output() {
        Ok(_) => Vec::new(),
        Err(_) => vec!["node (apt-get install nodejs npm)".to_string()],
    }
}

/// Runs `node --test ARGS` in `dir` with `env`, and fails with its report unless every test
/// passed (and at least one ran). `missing` is what is not installed.
pub fn run_node_tests(
    name: &str,
    dir: &Path,
    args: &[&str],
    missing: Vec<String>,
    env: &[(&str, &OsStr)],
    artifacts: &Path,
) {
    if !missing.is_empty() {
        let what = missing.join(", ");
        if std::env::var_os("RALLYPOINT_SKIP_BROWSER").is_some() {
            eprintln!("\n======== SKIPPED: {name}: missing {what} (RALLYPOINT_SKIP_BROWSER is set) ========\n");
            return;
        }
        panic!("{name} cannot run: missing {what}. Install it, or set RALLYPOINT_SKIP_BROWSER=1 to skip these tests.");
    }
    let started = Instant::now();
    let mut command = Command::new("node");
    command
        .arg("--test")
        .args(args)
        .current_dir(dir)
        .env("ARTIFACTS_DIR", artifacts);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command
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
        "{name}: {:.1} s (artefacts in {})\n{}",
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
