//! `rallypoint-loadgen` in small runs: against the real engine (SQLite: the load generator sees
//! the server from outside, the backend changes nothing it measures; the flood run, whose unknown
//! ids and replays are database reads, on both backends), against the engine over its own
//! Socket.IO transport (`--protocol rallypoint-socketio`), and against the Socket.IO baseline in
//! bench/socketio where Node.js and its modules are installed (otherwise a loud SKIPPED line).
//! Correctness only: every event reaches every client and the JSON is written. No timing is
//! asserted.

use crate::helpers::{spawn_app, TestDb};
use crate::on_both_backends;
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: u64 = 50;
const REPORTS: u64 = 20;
/// How long the Socket.IO server may take to listen.
const NODE_START: Duration = Duration::from_secs(15);

/// The arguments of the small run, with the results written to `json`.
fn small_run(server: &str, json: &Path) -> Vec<String> {
    [
        "--server",
        server,
        "--clients",
        &CLIENTS.to_string(),
        "--reports",
        &REPORTS.to_string(),
        "--rate",
        "20",
        "--drain",
        "20",
        "--json",
        &json.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// The load generator's binary. It is a workspace member of its own (loadgen/), so cargo does not
/// build it for this package's tests: it is built here once, with the cargo and the target
/// directory running these tests, beside this test binary (`<target>/<profile>/`).
fn loadgen_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--locked", "-p", "rallypoint-loadgen"]);
        if release {
            build.arg("--release");
        }
        let out = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build -p rallypoint-loadgen failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.join("rallypoint-loadgen")
    })
    .clone()
}

/// Runs the load generator to its end.
fn run_loadgen(args: &[String]) -> Output {
    Command::new(loadgen_bin())
        .args(args)
        .output()
        .expect("the loadgen binary runs")
}

/// Asserts a clean exit and a JSON report with every event delivered; answers the report.
fn assert_every_event_delivered(out: &Output, json: &Path) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen exited {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    let text = std::fs::read_to_string(json).expect("the JSON report is written");
    let report: Value = serde_json::from_str(&text).expect("the JSON report parses");
    assert_eq!(report["reports_sent"], REPORTS, "{report:#}");
    assert_eq!(report["connections_held"], CLIENTS, "{report:#}");
    assert_eq!(report["events_expected"], REPORTS * CLIENTS, "{report:#}");
    assert_eq!(
        report["events_received"], report["events_expected"],
        "{report:#}"
    );
    assert_eq!(report["events_missing"], 0, "{report:#}");
    assert_eq!(report["last_recipient"]["count"], REPORTS, "{report:#}");
    assert!(
        stdout.contains("events missing"),
        "the table is printed:\n{stdout}"
    );
    report
}

#[actix_web::test]
async fn a_small_run_against_the_engine_delivers_every_event_to_every_client() {
    let app = spawn_app(TestDb::sqlite()).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("run.json");
    let mut args = small_run(&format!("127.0.0.1:{}", app.port), &json);
    args.extend(["--secret".into(), app.settings.auth.secret.clone()]);
    // The engine runs on this thread's runtime: wait for the child elsewhere.
    let out = actix_web::rt::task::spawn_blocking(move || run_loadgen(&args))
        .await
        .expect("the loadgen thread ends");
    let report = assert_every_event_delivered(&out, &json);
    assert_eq!(report["protocol"], "rallypoint");
    // The admin is in `dispatch` alone (SPEC 3): it gets one copy of each event.
    assert_eq!(report["duplicates_ignored"], 0);
    assert_eq!(report["reports_refused"], 0);
}

#[actix_web::test]
async fn a_small_run_over_the_engines_socketio_transport_delivers_every_event_to_every_client() {
    let app = spawn_app(TestDb::sqlite()).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("run.json");
    let mut args = small_run(&format!("127.0.0.1:{}", app.port), &json);
    args.extend(["--secret".into(), app.settings.auth.secret.clone()]);
    args.extend(["--protocol".into(), "rallypoint-socketio".into()]);
    let out = actix_web::rt::task::spawn_blocking(move || run_loadgen(&args))
        .await
        .expect("the loadgen thread ends");
    let report = assert_every_event_delivered(&out, &json);
    assert_eq!(report["protocol"], "rallypoint-socketio");
    // One copy per socket (SPEC 11), the admin's included.
    assert_eq!(report["duplicates_ignored"], 0);
    assert_eq!(report["reports_refused"], 0);
}

/// `--flood 2`: one driver of its own sends `decline`s of unknown order ids and one dispatcher
/// loops `leave dispatch` / `join dispatch since`, each at the default 45 messages a second,
/// while the run reports. Every report is still acked, every measured client gets every event,
/// and the flood clients are in none of those figures (`events_expected` and `connections_held`
/// count the measured clients alone); the flood's counters show it happened.
async fn a_run_under_a_flood_still_answers_every_report(db: TestDb) {
    let app = spawn_app(db).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("flood.json");
    let mut args = small_run(&format!("127.0.0.1:{}", app.port), &json);
    args.extend(["--secret", &app.settings.auth.secret, "--flood", "2"].map(String::from));
    let out = actix_web::rt::task::spawn_blocking(move || run_loadgen(&args))
        .await
        .expect("the loadgen thread ends");
    let report = assert_every_event_delivered(&out, &json);
    assert_eq!(report["reports_refused"], 0, "{report:#}");
    assert_eq!(report["report_ack"]["count"], REPORTS, "{report:#}");
    assert_eq!(report["flood_clients"], 2, "{report:#}");
    assert_eq!(report["flood_connections_dropped"], 0, "{report:#}");
    let count = |key: &str| report[key].as_u64().unwrap_or(0);
    assert!(count("flood_sent") > 0, "{report:#}");
    assert!(
        report["flood_errors_by_code"]["not_found"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "the unknown ids are answered not_found: {report:#}"
    );
    assert!(
        count("flood_acked") > 0,
        "leaves and joins are acked: {report:#}"
    );
    assert!(count("flood_replays") > 0, "{report:#}");
    assert_eq!(report["flood_resyncs"], 0, "every join replays: {report:#}");
    assert!(count("flood_replayed_messages") > 0, "{report:#}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("flood messages sent"), "{stdout}");
}

on_both_backends!(a_run_under_a_flood_still_answers_every_report);

#[actix_web::test]
async fn an_idle_run_holds_every_connection_and_reads_the_servers_memory() {
    let app = spawn_app(TestDb::sqlite()).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("idle.json");
    let args: Vec<String> = [
        "--server",
        &format!("127.0.0.1:{}", app.port),
        "--clients",
        "30",
        "--idle",
        "0.2",
        "--server-pid",
        &std::process::id().to_string(),
        "--secret",
        &app.settings.auth.secret,
        "--json",
        &json.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let out = actix_web::rt::task::spawn_blocking(move || run_loadgen(&args))
        .await
        .expect("the loadgen thread ends");
    assert!(
        out.status.success(),
        "loadgen exited {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report is written"))
            .expect("the JSON report parses");
    assert_eq!(report["connections_held"], 30, "{report:#}");
    assert_eq!(report["reports_sent"], 0, "{report:#}");
    assert_eq!(report["events_missing"], 0, "{report:#}");
    // This test process is the server: its RSS was read before and while holding them.
    assert!(
        report["server_rss_before_kib"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );
    assert!(
        report["server_rss_per_connection_kib"].is_number(),
        "{report:#}"
    );
}

/// The Socket.IO baseline as a child process, killed when dropped.
struct NodeServer(Child);

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Says loudly, past the test harness's output capture, why a test did not run.
fn say_skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a local address").port()
}

/// Waits until something accepts connections at `addr`.
fn wait_listening(addr: SocketAddr, server: &mut NodeServer) {
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the Socket.IO server exited before listening: {status}");
        }
        assert!(
            started.elapsed() < NODE_START,
            "the Socket.IO server did not listen on {addr} within {NODE_START:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_small_run_against_the_socketio_baseline_delivers_every_event_to_every_client() {
    let test =
        "loadgen::a_small_run_against_the_socketio_baseline_delivers_every_event_to_every_client";
    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/socketio");
    let node_runs = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_runs {
        return say_skipped(test, "Node.js (`node`) is not installed");
    }
    if !bench.join("node_modules/socket.io").is_dir() {
        return say_skipped(
            test,
            "bench/socketio/node_modules is missing: run `npm ci` in bench/socketio",
        );
    }
    let port = free_port();
    let mut server = NodeServer(
        Command::new("node")
            .arg("server.js")
            .current_dir(&bench)
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdout(Stdio::null())
            .spawn()
            .expect("node starts"),
    );
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), &mut server);
    let dir = tempfile::tempdir().expect("a temp dir");
    let json = dir.path().join("run.json");
    let mut args = small_run(&format!("127.0.0.1:{port}"), &json);
    args.extend(["--protocol".into(), "socketio".into()]);
    let report = assert_every_event_delivered(&run_loadgen(&args), &json);
    assert_eq!(report["protocol"], "socketio");
}
