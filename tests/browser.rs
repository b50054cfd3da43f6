//! The JavaScript suites, run from `cargo test` so that the one test command runs everything:
//! node's unit tests of `web/rallypoint.js`, and the pages in headless Chromium (Debian's
//! `/usr/bin/chromium` driven by npm's `playwright-core`, see `tests/browser/`).
//!
//! They need `node` (20+), `chromium` and `npm ci` run in `tests/browser/`; `.ci/run` installs all
//! three. Where one is missing the test fails and says what to install, unless
//! `RALLYPOINT_SKIP_BROWSER=1` is set, in which case it says loudly that it skipped.

#[path = "common/node.rs"]
mod node;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

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
    let mut missing = node::missing_node();
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

/// Runs `node --test ARGS` in tests/browser.
fn run_node_tests(name: &str, args: &[&str], need_browser: bool) {
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    let chromium = chromium();
    node::run_node_tests(
        name,
        &suite_dir(),
        args,
        missing(need_browser),
        &[
            (
                "RALLYPOINT_BIN",
                OsStr::new(env!("CARGO_BIN_EXE_rallypoint")),
            ),
            ("CHROMIUM", chromium.as_os_str()),
        ],
        &artifacts,
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
