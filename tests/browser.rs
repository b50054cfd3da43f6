//! The JavaScript suites, run from `cargo test` so that the one test command runs everything:
//! node's unit tests of `web/rallypoint.js`, and the pages in headless Chromium (Debian's
//! `/usr/bin/chromium` driven by npm's `playwright-core`, see `tests/browser/`).
//!
//! They need `node` (20+), `chromium` and `npm ci` run in `tests/browser/`; `.ci/run` installs all
//! three. Where one is missing the test fails and says what to install, unless
//! `RALLYPOINT_SKIP_BROWSER=1` is set, in which case it says loudly that it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What is missing to run the suites, if anything.
fn missing(need_browser: bool) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install nodejs npm)".to_string());
    }
    if need_browser {
        if !chromium().exists() {
            missing.push(format!(
                "{} (apt-get install chromium)",
                chromium().display()
            ));
        }
        if !suite_dir().join("node_modules/playwright-core").exists() {
            missing.push("playwright-core (cd tests/browser && npm ci)".to_string());
        }
    }
    missing
}

/// Runs `node --test ARGS` in tests/browser and fails with its report unless every test passed.
fn run_node_tests(name: &str, args: &[&str], need_browser: bool) {
    let missing = missing(need_browser);
    if !missing.is_empty() {
        let what = missing.join(", ");
        if std::env::var_os("RALLYPOINT_SKIP_BROWSER").is_some() {
            eprintln!("\n======== SKIPPED: {name}: missing {what} (RALLYPOINT_SKIP_BROWSER is set) ========\n");
            return;
        }
        panic!("{name} cannot run: missing {what}. Install it, or set RALLYPOINT_SKIP_BROWSER=1 to skip these tests.");
    }
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    let started = Instant::now();
    let out = Command::new("node")
        .arg("--test")
        .args(args)
        .current_dir(suite_dir())
        .env("RALLYPOINT_BIN", env!("CARGO_BIN_EXE_rallypoint"))
        .env("ARTIFACTS_DIR", &artifacts)
        .env("CHROMIUM", chromium())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok ") || l.starts_with("# "))
        .filter(|l| !l.starts_with("# Subtest"))
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

#[test]
fn rallypoint_js_unit_tests() {
    run_node_tests("rallypoint.js unit tests", &["unit/"], false);
}

#[test]
fn pages_in_headless_chromium() {
    run_node_tests("browser tests", &["--test-concurrency=1", "e2e/"], true);
}
