//! No published secret (SPEC 2), through the real binary: with `auth.secret` empty the first start
//! generates `<server.data_dir>/secret` (mode 0600) and says so without printing it, `rallypoint
//! token` signs with the same file, a token signed with the string v1 shipped is refused, and a
//! configured secret under 32 bytes stops the start (exit 2). Also the start-up warning of the dev
//! login and the demo's refusal of a non-loopback address without `--public`. Each server
//! scenario runs on SQLite and, when RALLYPOINT_TEST_DATABASE_URL is set, on PostgreSQL.

use super::rallypoint;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// The HS256 secret `config/default.toml` shipped before v1.1, published with the product.
const PUBLISHED_SECRET: &str = "change-me-rallypoint-dev-secret";

/// A database for one server: a SQLite file, or a fresh PostgreSQL schema dropped at the end.
pub(super) struct Database {
    url: String,
    schema: Option<(String, String)>,
}

impl Drop for Database {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if let Some((base, schema)) = &self.schema {
            if let Ok(mut c) = diesel::PgConnection::establish(base) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// SQLite in `dir`, then PostgreSQL when configured (else said loudly, as the api suite does).
pub(super) fn databases(dir: &Path) -> Vec<Database> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut all = vec![Database {
        url: dir.join("rp.db").display().to_string(),
        schema: None,
    }];
    match std::env::var("RALLYPOINT_TEST_DATABASE_URL") {
        Ok(base) => {
            let schema = format!("cli_{}", uuid::Uuid::new_v4().simple());
            let mut conn = diesel::PgConnection::establish(&base).expect("PostgreSQL reachable");
            conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create a schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            all.push(Database {
                url: format!("{base}{sep}options=-csearch_path%3D{schema}"),
                schema: Some((base, schema)),
            });
        }
        Err(_) => eprintln!(
            "SKIPPED the PostgreSQL variant of a cli test: set RALLYPOINT_TEST_DATABASE_URL to run it"
        ),
    }
    all
}

/// A `rallypoint serve` running on a free port, with every log line it wrote so far.
pub(super) struct Server {
    child: Child,
    pub(super) port: u16,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub(super) fn start(data_dir: &Path, db: &Database, env: &[(&str, &str)]) -> Server {
        let mut cmd = rallypoint();
        cmd.arg("serve")
            .env("RUST_LOG", "info")
            .env("RALLYPOINT_SERVER__BIND", "127.0.0.1:0")
            .env("RALLYPOINT_SERVER__DATA_DIR", data_dir)
            .env("RALLYPOINT_DATABASE__URL", &db.url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary runs");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let mut log = Vec::new();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                panic!("the server stopped before it listened:\n{}", log.join("\n"));
            };
            log.push(line.clone());
            if let Some(at) = line.find("[STARTUP] listening on http://") {
                let port = line[at..].rsplit(':').next().unwrap_or_default().trim();
                break port.parse().unwrap_or_else(|_| panic!("a port in {line}"));
            }
        };
        // Keep reading (and keeping), so the server never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(log));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Server { child, port, log }
    }

    pub(super) fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// The status of `GET /api/v1/drivers` with `token`.
    fn drivers_status(&self, token: &str) -> u16 {
        get_status(self.port, "/api/v1/drivers", token)
    }

    /// SIGTERM once it answers, then the clean exit.
    pub(super) fn stop(mut self) {
        assert_eq!(get_status(self.port, "/health", ""), 200);
        terminate(&mut self.child);
    }

    /// SIGTERM at once: its handlers are set before it says it listens.
    pub(super) fn stop_now(mut self) {
        terminate(&mut self.child);
    }
}

/// The status of `GET path` on `port` with `token`.
fn get_status(port: u16, path: &str, token: &str) -> u16 {
    let url = format!("http://127.0.0.1:{port}{path}");
    actix_web::rt::System::new().block_on(async {
        awc::Client::default()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("the request is answered")
            .status()
            .as_u16()
    })
}

/// SIGTERM, and a clean exit (0).
fn terminate(child: &mut Child) {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    assert_eq!(child.wait().expect("the server exits").code(), Some(0));
}

/// `rallypoint token` for an admin, with `data_dir`.
pub(super) fn mint_admin_token(data_dir: &Path) -> String {
    let out = rallypoint()
        .env("RALLYPOINT_SERVER__DATA_DIR", data_dir)
        .args(["token", "--sub", "ops", "--role", "admin"])
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

/// A token signed with the secret v1 published.
fn published_secret_token() -> String {
    let keys = rallypoint::auth::TokenKeys::from_settings(&rallypoint::config::AuthSettings {
        secret: PUBLISHED_SECRET.into(),
        public_key_pem: String::new(),
        leeway_s: 0,
        dev_login: false,
        dev_token_ttl_s: 60,
    })
    .expect("keys");
    let claims = rallypoint::auth::Claims::new(
        "ops",
        rallypoint::protocol::Role::Admin,
        None,
        "default",
        3600,
    );
    keys.sign(&claims).expect("sign")
}

fn secret_file(data_dir: &Path) -> PathBuf {
    data_dir.join("secret")
}

#[test]
fn a_first_start_generates_a_private_secret_and_says_so_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    for (i, db) in databases(dir.path()).iter().enumerate() {
        let data_dir = dir.path().join(format!("data-{i}"));
        let server = Server::start(&data_dir, db, &[]);
        let path = secret_file(&data_dir);
        let text = std::fs::read_to_string(&path).expect("the secret file exists");
        let secret = text.strip_suffix('\n').expect("a line");
        assert_eq!(secret.len(), 64, "32 bytes in hex: {text:?}");
        assert!(secret
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        let log = server.log();
        assert!(
            log.contains(&format!(
                "generated a new random secret in {}",
                path.display()
            )),
            "{log}"
        );
        assert!(!log.contains(secret), "the secret is never logged:\n{log}");
        assert!(!log.contains("dev_login is on"), "{log}");
        server.stop();

        // A later start reads it (and warns when the dev login is on).
        let server = Server::start(&data_dir, db, &[("RALLYPOINT_AUTH__DEV_LOGIN", "true")]);
        let log = server.log();
        assert!(
            log.contains(&format!("auth secret read from {}", path.display())),
            "{log}"
        );
        assert!(!log.contains("generated"), "{log}");
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains("auth.dev_login is on"), "{log}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "unchanged");
        server.stop();
    }
}

#[test]
fn a_token_from_rallypoint_token_is_accepted_and_one_signed_with_the_published_string_is_not() {
    let dir = tempfile::tempdir().unwrap();
    for (i, db) in databases(dir.path()).iter().enumerate() {
        let data_dir = dir.path().join(format!("data-{i}"));
        // `token` before any start makes the file; the server then uses it.
        let minted = mint_admin_token(&data_dir);
        assert!(secret_file(&data_dir).exists());
        let server = Server::start(&data_dir, db, &[]);
        assert_eq!(server.drivers_status(&minted), 200, "{}", server.log());
        assert_eq!(server.drivers_status(&mint_admin_token(&data_dir)), 200);
        assert_eq!(server.drivers_status(&published_secret_token()), 401);
        server.stop();
    }
}

#[test]
fn a_configured_secret_under_32_bytes_exits_2_saying_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    for command in [&["serve"][..], &["token", "--sub", "a", "--role", "admin"]] {
        let out = rallypoint()
            .args(command)
            .env("RALLYPOINT_SERVER__BIND", "127.0.0.1:0")
            .env("RALLYPOINT_SERVER__DATA_DIR", dir.path().join("data"))
            .env("RALLYPOINT_DATABASE__URL", dir.path().join("rp.db"))
            .env("RALLYPOINT_AUTH__SECRET", PUBLISHED_SECRET)
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("auth.secret"), "{err}");
        assert!(err.contains("openssl rand -hex 32"), "{err}");
        assert!(out.stdout.is_empty(), "no token is printed");
    }
    assert!(!dir.path().join("data").exists(), "nothing generated");
}

#[test]
fn the_demo_serves_a_non_loopback_address_only_with_public() {
    let dir = tempfile::tempdir().unwrap();
    let demo = |public: bool| {
        let mut cmd = rallypoint();
        cmd.arg("demo")
            .env("RALLYPOINT_SERVER__BIND", "0.0.0.0:0")
            .env("RALLYPOINT_SERVER__DATA_DIR", dir.path().join("data"))
            .env("RALLYPOINT_DATABASE__URL", dir.path().join("demo.db"));
        if public {
            cmd.arg("--public");
        }
        cmd
    };
    let out = demo(false).output().expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0.0.0.0:0") && err.contains("--public"),
        "{err}"
    );
    assert!(
        !dir.path().join("demo.db").exists(),
        "refused before anything started"
    );

    let mut child = demo(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let health = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.trim()
                .strip_prefix("Health:")
                .map(|u| u.trim().to_string())
        })
        .expect("with --public the demo serves and prints its URLs");
    std::thread::spawn(move || lines.for_each(drop));
    let port: u16 = health
        .trim_end_matches("/health")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert!(health.starts_with("http://0.0.0.0:"), "{health}");
    assert_eq!(get_status(port, "/health", ""), 200);
    terminate(&mut child);
}

#[test]
fn a_sigterm_the_moment_it_says_it_listens_is_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    for db in &databases(dir.path()) {
        for _ in 0..3 {
            let data_dir = tempfile::tempdir().unwrap();
            Server::start(data_dir.path(), db, &[]).stop_now();
        }
    }
}
