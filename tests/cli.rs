//! The `rallypoint` binary itself: `token`, configuration errors (exit 2), `migrate`, `demo`
//! serving, printing its URLs and exiting 0 on SIGTERM, and the secret it generates when none is
//! configured (`tests/cli/secret.rs`).

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[path = "cli/logs.rs"]
mod logs;
#[path = "cli/secret.rs"]
mod secret;

/// The binary with no configuration but the defaults; its data folder (the generated secret) is
/// the caller's to give, else the working directory's `data/`.
fn rallypoint() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rallypoint"));
    c.env_remove("RALLYPOINT_CONFIG")
        .env_remove("RALLYPOINT_AUTH__SECRET")
        .env_remove("RALLYPOINT_SERVER__DATA_DIR")
        .env_remove("RALLYPOINT_AUTH__DEV_LOGIN")
        .env("RUST_LOG", "warn");
    c
}

#[test]
fn token_prints_only_a_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let out = rallypoint()
        .env("RALLYPOINT_SERVER__DATA_DIR", dir.path())
        .args([
            "token",
            "--sub",
            "alice",
            "--role",
            "driver",
            "--driver-id",
            "DRV-001",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text.trim_end();
    assert_eq!(text.lines().count(), 1);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    // The first one made the secret and said so on stderr; later ones are quiet.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("generated a new random secret"), "{err}");
    let again = rallypoint()
        .env("RALLYPOINT_SERVER__DATA_DIR", dir.path())
        .env_remove("RUST_LOG")
        .args(["token", "--sub", "bob", "--role", "admin"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        again.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn token_signs_a_customer_or_partner_with_its_id_and_refuses_one_without() {
    use rallypoint::auth::TokenKeys;
    use rallypoint::config::AuthSettings;
    let secret = "a-cli-test-secret-that-is-at-least-32-bytes";
    let keys = TokenKeys::from_settings(&AuthSettings {
        secret: secret.into(),
        public_key_pem: String::new(),
        leeway_s: 0,
        dev_login: false,
        dev_token_ttl_s: 60,
    })
    .unwrap();
    for (role, flag) in [("customer", "--customer-id"), ("partner", "--partner-id")] {
        let bare = rallypoint()
            .env("RALLYPOINT_AUTH__SECRET", secret)
            .args(["token", "--sub", "shop", "--role", role])
            .output()
            .unwrap();
        assert_eq!(bare.status.code(), Some(2), "{role}");
        let err = String::from_utf8_lossy(&bare.stderr);
        assert!(err.contains(flag), "{err}");
        let out = rallypoint()
            .env("RALLYPOINT_AUTH__SECRET", secret)
            .args(["token", "--sub", "shop", "--role", role, flag, "X-1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{role}");
        let claims = keys
            .verify(String::from_utf8(out.stdout).unwrap().trim_end())
            .unwrap();
        assert_eq!(claims.role.as_str(), role);
        let id = match role {
            "customer" => claims.customer_id,
            _ => claims.partner_id,
        };
        assert_eq!(id.as_deref(), Some("X-1"));
    }
}

#[test]
fn token_signs_a_reporter_and_a_bad_auto_dispatch_severity_exits_2() {
    use rallypoint::auth::TokenKeys;
    use rallypoint::config::AuthSettings;
    let secret = "a-cli-test-secret-that-is-at-least-32-bytes";
    let keys = TokenKeys::from_settings(&AuthSettings {
        secret: secret.into(),
        public_key_pem: String::new(),
        leeway_s: 0,
        dev_login: false,
        dev_token_ttl_s: 60,
    })
    .unwrap();
    let out = rallypoint()
        .env("RALLYPOINT_AUTH__SECRET", secret)
        .args(["token", "--sub", "rep-1", "--role", "reporter"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims = keys
        .verify(String::from_utf8(out.stdout).unwrap().trim_end())
        .unwrap();
    assert_eq!(
        (claims.role.as_str(), claims.sub.as_str()),
        ("reporter", "rep-1")
    );
    let out = rallypoint()
        .arg("migrate")
        .env("RALLYPOINT_UNITS__AUTO_DISPATCH", "critical,urgent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("units.auto_dispatch"), "{err}");
}

#[test]
fn a_bad_value_exits_2_and_names_the_key() {
    let out = rallypoint()
        .arg("migrate")
        .env("RALLYPOINT_DISPATCH__REASSIGN_THRESHOLD", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dispatch.reassign_threshold"), "{err}");
    let out = rallypoint()
        .args(["--config", "/no/such/file.toml", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = rallypoint()
        .arg("serve")
        .env("RALLYPOINT_SERVER__BIND", "not an address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bind"));
}

#[test]
fn migrate_creates_the_sqlite_database_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested").join("rp.db");
    let out = rallypoint()
        .arg("migrate")
        .env(
            "RALLYPOINT_DATABASE__URL",
            format!("sqlite://{}", db.display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    // Twice is fine: nothing left to run.
    let out = rallypoint()
        .arg("migrate")
        .env("RALLYPOINT_DATABASE__URL", db.display().to_string())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations run: 0"));
}

/// `rallypoint demo ARGS` on a free port, its data and database in `dir`, its stdout piped.
fn spawn_demo(dir: &tempfile::TempDir, args: &[&str]) -> std::process::Child {
    rallypoint()
        .arg("demo")
        .args(args)
        .env("RALLYPOINT_SERVER__BIND", "127.0.0.1:0")
        .env("RALLYPOINT_SERVER__DATA_DIR", dir.path())
        .env(
            "RALLYPOINT_DATABASE__URL",
            dir.path().join("demo.db").display().to_string(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn demo_serves_the_demo_fleet_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_demo(&dir, &[]);
    let stdout = child.stdout.take().unwrap();
    let mut health = None;
    let mut pages = Vec::new();
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("Health:") {
            health = Some(url.trim().to_string());
        }
        for label in [
            "Driver console:",
            "Dashboard:",
            "Customer page:",
            "Reporter form:",
            "Emergencies:",
            "Units map:",
            "Operations:",
        ] {
            if let Some(rest) = line.trim().strip_prefix(label) {
                pages.push(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    let health = health.expect("demo prints its URLs");
    let printed = printed.join("\n");
    assert!(
        printed.contains(r#"/api/v1/dev/login -H 'content-type: application/json' -d '{"sub":"dana","role":"dispatcher"}'"#),
        "the demo says how to get the dispatcher token its Orders line needs:\n{printed}"
    );
    let base = health.trim_end_matches("/health").to_string();
    let sys = actix_web::rt::System::new();
    sys.block_on(async {
        let client = awc::Client::default();
        let r = client.get(&health).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let mut r = client
            .post(format!("{base}/api/v1/dev/login"))
            .send_json(&serde_json::json!({"sub":"d","role":"dispatcher"}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the demo turns the dev login on");
        let token: serde_json::Value = r.json().await.unwrap();
        let token = token["token"].as_str().unwrap().to_string();
        let mut r = client
            .get(format!("{base}/api/v1/drivers"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let drivers: serde_json::Value = r.json().await.unwrap();
        let names: Vec<_> = drivers
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["unit_type"].is_null())
            .map(|d| d["name"].clone())
            .collect();
        assert_eq!(names, ["Alice", "Bob", "Carol"]);
        let mut r = client
            .get(format!("{base}/api/v1/orders"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let orders: serde_json::Value = r.json().await.unwrap();
        let mut held: Vec<_> = orders
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["id"].clone(), o["driver_id"].clone()))
            .collect();
        held.sort_by_key(|(id, _)| id.to_string());
        assert_eq!(
            held,
            [
                (json!("ORD-1001"), json!("DRV-001")),
                (json!("ORD-1002"), json!("DRV-003"))
            ],
            "Alice and Carol hold an order each, Bob is free"
        );
        // The emergency pages' links carry their tokens in the fragment.
        let (links, tokens): (Vec<String>, Vec<String>) = pages
            .iter()
            .map(|p| match p.split_once("#token=") {
                Some((url, token)) => (url.to_string(), token.to_string()),
                None => (p.clone(), String::new()),
            })
            .unzip();
        assert_eq!(
            links,
            [
                format!("{base}/driver"),
                format!("{base}/dispatch"),
                format!("{base}/track/ORD-1001"),
                format!("{base}/emergency/report"),
                format!("{base}/emergency"),
                format!("{base}/emergency/units"),
                format!("{base}/ops/DEMO-STADIUM"),
            ]
        );
        // The operator's link opens the stadium, which its token may watch; without
        // --simulate nothing moves on its map.
        let operator = &tokens[6];
        let mut r = client
            .get(format!("{base}/api/v1/events/DEMO-STADIUM"))
            .bearer_auth(operator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the printed operator token works");
        let event: serde_json::Value = r.json().await.unwrap();
        let zones: Vec<_> = event["zones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| {
                assert!(
                    z["bounds"]["north"].is_f64()
                        && z["threshold"].as_i64() <= z["capacity"].as_i64(),
                    "{z}"
                );
                z["name"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(zones.len(), 4, "the stadium's four zones: {zones:?}");
        assert!(zones.contains(&"North stand".to_string()), "{zones:?}");
        let mut r = client
            .get(format!("{base}/api/v1/events/DEMO-STADIUM/map"))
            .bearer_auth(operator)
            .send()
            .await
            .unwrap();
        let map: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            map["density"],
            json!([]),
            "no simulated devices without --simulate"
        );
        let (reporter, admin) = (&tokens[3], &tokens[4]);
        assert!(!reporter.is_empty() && !admin.is_empty(), "{printed}");
        assert_eq!(&tokens[5], admin);
        // The units, placed and typed, so that a dispatch picks the nearest.
        let mut r = client
            .get(format!("{base}/api/v1/units"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the printed admin token works");
        let units: serde_json::Value = r.json().await.unwrap();
        let units: Vec<_> = units
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                assert!(u["location"]["lat"].is_f64(), "{u}");
                (u["unit_id"].clone(), u["unit_type"].clone())
            })
            .collect();
        assert_eq!(
            units,
            [
                (json!("UNIT-A1"), json!("ambulance")),
                (json!("UNIT-A2"), json!("ambulance")),
                (json!("UNIT-F1"), json!("fire")),
                (json!("UNIT-P1"), json!("police")),
            ]
        );
        // The reporter's token lists its own emergencies: the demo's two, waiting.
        let mut r = client
            .get(format!("{base}/api/v1/emergencies"))
            .bearer_auth(reporter)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the printed reporter token works");
        let mine: serde_json::Value = r.json().await.unwrap();
        let mine = mine.as_array().unwrap();
        assert_eq!(mine.len(), 2, "{mine:?}");
        assert!(mine
            .iter()
            .all(|e| e["status"] == "PENDING" && e["reported_by"] == "rep-demo"));
        let tracked = orders
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == "ORD-1001")
            .map(|o| o["customer_id"].clone());
        assert_eq!(tracked, Some(json!("C-100")), "the customer page's order");
        for page in &links {
            let mut r = client.get(page).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{page}");
            let body = r.body().await.unwrap();
            assert!(
                String::from_utf8_lossy(&body).contains("<html lang=\"en\">"),
                "{page}"
            );
        }
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean shutdown exits 0");
}

#[test]
fn demo_simulate_moves_devices_and_counts_on_the_stadium() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_demo(&dir, &["--simulate", "--devices", "40"]);
    let stdout = child.stdout.take().unwrap();
    let mut ops = None;
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("Operations:") {
            ops = rest.split_whitespace().next().map(str::to_string);
        }
        printed.push(line.clone());
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    let printed = printed.join("\n");
    assert!(printed.contains("simulating 40 devices"), "{printed}");
    let ops = ops.expect("the demo prints the operator page");
    let (page, token) = ops
        .split_once("#token=")
        .expect("the link carries its token");
    let base = page.trim_end_matches("/ops/DEMO-STADIUM").to_string();
    actix_web::rt::System::new().block_on(async {
        let client = awc::Client::default();
        let r = client.get(page).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{page}");
        // Every simulated device pings each second through the pings' command path: the stored
        // map holds all 40 once a flush has written them, and the cameras have counted.
        let mut devices = 0;
        let mut counted = 0;
        for _ in 0..300 {
            let mut r = client
                .get(format!("{base}/api/v1/events/DEMO-STADIUM/map"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let map: serde_json::Value = r.json().await.unwrap();
            devices = map["density"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["count"].as_i64().unwrap())
                .sum::<i64>();
            let mut r = client
                .get(format!("{base}/api/v1/events/DEMO-STADIUM"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let event: serde_json::Value = r.json().await.unwrap();
            counted = event["zones"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|z| z["count"].as_i64() > Some(0))
                .count();
            if devices == 40 && counted == 4 {
                break;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(devices, 40, "every simulated device is on the map");
        assert_eq!(counted, 4, "every zone's camera has counted");
    });
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "a clean shutdown exits 0"
    );
}

#[test]
fn token_signs_an_operator_with_the_events_it_may_watch() {
    use rallypoint::auth::TokenKeys;
    use rallypoint::config::AuthSettings;
    let secret = "a-cli-test-secret-that-is-at-least-32-bytes";
    let keys = TokenKeys::from_settings(&AuthSettings {
        secret: secret.into(),
        public_key_pem: String::new(),
        leeway_s: 0,
        dev_login: false,
        dev_token_ttl_s: 60,
    })
    .unwrap();
    for (role, events, want) in [
        ("operator", "E1, E2", vec!["E1", "E2"]),
        ("sensor", "*", vec!["*"]),
    ] {
        let out = rallypoint()
            .env("RALLYPOINT_AUTH__SECRET", secret)
            .args(["token", "--sub", "op-1", "--role", role, "--events", events])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let claims = keys
            .verify(String::from_utf8(out.stdout).unwrap().trim_end())
            .unwrap();
        assert_eq!(claims.role.as_str(), role);
        let want: Vec<String> = want.into_iter().map(String::from).collect();
        assert_eq!(claims.events, Some(want));
        assert!(claims.names_event("E2"));
    }
}
