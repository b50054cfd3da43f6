//! `spawn_app()` and friends: the real application on a random port, a fresh database per test,
//! and a real WebSocket client.

#![allow(dead_code)]

use actix_web::dev::ServerHandle;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use rallypoint::actors::Hub;
use rallypoint::auth::Claims;
use rallypoint::config::Settings;
use rallypoint::protocol::{DriverId, Role};
use rallypoint::Application;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How long a test waits for one expected message.
pub const WAIT: Duration = Duration::from_secs(10);

/// Runs a scenario on SQLite and, when configured, on PostgreSQL. Attributes written before the
/// name (`on_both_backends!(#[ignore = "bug: ..."] name);`) go on both tests.
#[macro_export]
macro_rules! on_both_backends {
    ($(#[$attr:meta])* $scenario:ident) => {
        mod $scenario {
            #[actix_web::test]
            $(#[$attr])*
            async fn sqlite() {
                super::$scenario($crate::helpers::TestDb::sqlite()).await;
            }

            #[actix_web::test]
            $(#[$attr])*
            async fn postgres() {
                match $crate::helpers::TestDb::postgres() {
                    Some(db) => super::$scenario(db).await,
                    None => $crate::helpers::say_skipped(module_path!()),
                }
            }
        }
    };
}

/// Says loudly, past the test harness's output capture, that a PostgreSQL variant was skipped.
pub fn say_skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}::postgres: set RALLYPOINT_TEST_DATABASE_URL to run it on PostgreSQL"
    );
}

/// A fresh database for one test: a SQLite file in a temp dir, or a PostgreSQL schema.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = dir
            .path()
            .join("data")
            .join("test.db")
            .display()
            .to_string();
        TestDb {
            url,
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A new schema in the database RALLYPOINT_TEST_DATABASE_URL names; `None` when unset.
    pub fn postgres() -> Option<TestDb> {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let base = std::env::var("RALLYPOINT_TEST_DATABASE_URL").ok()?;
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::PgConnection::establish(&base).expect("PostgreSQL reachable");
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create a schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(TestDb {
            url,
            _dir: None,
            schema: Some((base, schema)),
        })
    }
}

impl TestDb {
    /// The same database for another engine (a second node): it does not own the database, so
    /// dropping it removes nothing; the original must outlive it.
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            _dir: None,
            schema: None,
        }
    }
}

impl Drop for TestDb {
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

/// The tests' HS256 secret: 64 characters, like a generated one.
pub const TEST_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Settings for tests: the defaults, a random port, the test database, fast batches.
pub fn settings_for(db: &TestDb) -> Settings {
    let mut s = Settings::load(None).expect("default settings load");
    s.server.bind = "127.0.0.1:0".into();
    s.server.workers = 2;
    s.server.shutdown_timeout_s = 1;
    s.database.url = db.url.clone();
    // Configured (at least 32 bytes), so no test writes a `data/secret` of its own.
    s.auth.secret = TEST_SECRET.into();
    s.database.pool_size = 4;
    s.realtime.presence_flush_ms = 100;
    s.realtime.location_flush_ms = 100;
    s.realtime.offline_grace_ms = 500;
    s
}

/// The running application and what tests need to talk to it.
pub struct TestApp {
    pub address: String,
    pub ws_base: String,
    pub port: u16,
    pub hub: Arc<Hub>,
    pub settings: Settings,
    pub db: TestDb,
    handle: ServerHandle,
}

/// Spawns the real application on a random port over `db`.
pub async fn spawn_app(db: TestDb) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// Like `spawn_app`, with the settings adjusted by `tweak`.
/// A second engine on `app`'s database, with its settings: another node of the same fleet.
pub async fn spawn_peer(app: &TestApp) -> TestApp {
    let settings = app.settings.clone();
    spawn_app_with(app.db.shared(), move |s| *s = settings).await
}

pub async fn spawn_app_with(db: TestDb, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        rallypoint::telemetry::init();
    }
    let mut settings = settings_for(&db);
    tweak(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("the application builds");
    let port = app.port();
    let hub = app.hub();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        ws_base: format!("ws://127.0.0.1:{port}/ws"),
        port,
        hub,
        settings,
        db,
        handle,
    }
}

impl TestApp {
    /// A token for `sub` in `role`.
    pub fn token_for(&self, sub: &str, role: Role, driver_id: Option<&str>) -> String {
        let claims = Claims::new(sub, role, driver_id.map(DriverId::from), "default", 3600);
        self.hub.keys.sign(&claims).expect("sign")
    }

    /// A driver's token (sub = the driver id in lower case).
    pub fn driver_token(&self, driver_id: &str, name: &str) -> String {
        let mut claims = Claims::new(
            &driver_id.to_lowercase(),
            Role::Driver,
            Some(DriverId::from(driver_id)),
            "default",
            3600,
        );
        claims.name = Some(name.to_string());
        self.hub.keys.sign(&claims).expect("sign")
    }

    pub fn admin_token(&self) -> String {
        self.token_for("admin-1", Role::Admin, None)
    }

    pub fn dispatcher_token(&self) -> String {
        self.token_for("dispatcher-1", Role::Dispatcher, None)
    }

    /// `POST path` with a JSON body; answers the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: &Value, token: &str) -> (u16, Value) {
        self.try_post_json(path, body, token)
            .await
            .expect("the request is answered")
    }

    /// `GET path`; answers the status and the JSON body.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let client = awc::Client::default();
        let mut req = client.get(format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.expect("the request is answered");
        status_and_json(&mut resp).await
    }

    /// Like `post_json`; `None` when the server does not answer (it stopped).
    pub async fn try_post_json(
        &self,
        path: &str,
        body: &Value,
        token: &str,
    ) -> Option<(u16, Value)> {
        let client = awc::Client::default();
        let mut resp = client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send_json(body)
            .await
            .ok()?;
        Some(status_and_json(&mut resp).await)
    }

    /// `POST path` with a JSON body and an `Idempotency-Key` header.
    pub async fn post_json_with_key(
        &self,
        path: &str,
        body: &Value,
        token: &str,
        key: &str,
    ) -> (u16, Value) {
        let client = awc::Client::default();
        let mut resp = client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .insert_header(("Idempotency-Key", key))
            .send_json(body)
            .await
            .expect("the request is answered");
        status_and_json(&mut resp).await
    }

    /// A WebSocket upgrade the server is expected to refuse, sent by hand so the refusal's body
    /// can be read: answers the HTTP status and the JSON body (`null` when not JSON).
    pub async fn ws_refusal(&self, query: &str) -> (u16, Value) {
        use std::io::{Read, Write};
        let request = format!(
            "GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            port = self.port
        );
        let port = self.port;
        let raw = actix_web::rt::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(WAIT)).expect("a read timeout");
            s.write_all(request.as_bytes()).expect("send the upgrade");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if let Some(len) = len {
                        if buf.len() >= end + 4 + len {
                            buf.truncate(end + 4 + len);
                            break;
                        }
                    }
                }
                match s.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) => panic!("reading the refusal: {e}"),
                }
            }
            buf
        })
        .await
        .expect("the blocking read");
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Opens a WebSocket with `token` and reads its `welcome`.
    pub async fn ws(&self, token: &str) -> WsClient {
        self.ws_query(&format!("token={token}")).await
    }

    /// Opens a WebSocket with a raw query string and reads its `welcome`.
    pub async fn ws_query(&self, query: &str) -> WsClient {
        let mut c = self
            .try_ws(query)
            .await
            .unwrap_or_else(|status| panic!("upgrade refused with {status}"));
        c.welcome = c.expect("welcome").await;
        c
    }

    /// Opens a WebSocket, without reading anything.
    async fn connect(&self, query: &str) -> Result<WsClient, awc::error::WsClientError> {
        let url = format!("{}?{query}", self.ws_base);
        let (_, framed) = awc::Client::default()
            .ws(url)
            .max_frame_size(1 << 20)
            .connect()
            .await?;
        Ok(WsClient {
            framed,
            backlog: VecDeque::new(),
            welcome: Value::Null,
            closed: None,
        })
    }

    /// Opens a WebSocket; `Err(status)` when the upgrade is refused.
    pub async fn try_ws(&self, query: &str) -> Result<WsClient, u16> {
        match self.connect(query).await {
            Ok(c) => Ok(c),
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => Err(s.as_u16()),
            Err(e) => panic!("WebSocket connect failed: {e}"),
        }
    }

    /// Like `try_ws`; `None` when no connection could be made at all (nothing listens).
    pub async fn try_ws_or_gone(&self, query: &str) -> Option<Result<WsClient, u16>> {
        match self.connect(query).await {
            Ok(c) => Some(Ok(c)),
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => Some(Err(s.as_u16())),
            Err(_) => None,
        }
    }

    /// The graceful shutdown SIGTERM starts, run directly.
    pub async fn shutdown(&self) {
        rallypoint::startup::shutdown(&self.hub, &self.handle).await;
    }

    /// Stops the server and hands back its database, for a restart.
    pub async fn stop(self) -> TestDb {
        self.handle.stop(true).await;
        self.db
    }

    /// Order `order` (Paris, 4.6 km from pickup to drop-off) given over REST to `driver_id`, whose
    /// session `driver` reads its `order_assigned` and, when `accept`, accepts it.
    pub async fn give_order(
        &self,
        driver: &mut WsClient,
        driver_id: &str,
        order: &str,
        accept: bool,
    ) {
        let (status, body) = self
            .post_json(
                "/api/v1/orders",
                &json!({"id":order,"pickup":{"lat":48.8566,"lng":2.3522},
                        "dropoff":{"lat":48.8738,"lng":2.2950},"driver_id":driver_id}),
                &self.dispatcher_token(),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        driver.expect("order_assigned").await;
        if accept {
            let ack = driver
                .request(json!({"type":"accept","order_id":order}))
                .await;
            assert_eq!(ack["type"], "ack", "{ack}");
        }
    }

    /// A driver connected, online, at (`lat`, `lng`).
    pub async fn online_driver(&self, id: &str, name: &str, lat: f64, lng: f64) -> WsClient {
        let mut c = self.ws(&self.driver_token(id, name)).await;
        let ack = c.request(json!({"type":"status","status":"online"})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let ack = c
            .request(json!({"type":"location","lat":lat,"lng":lng,"speed":8.0,"heading":90.0}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        c
    }
}

/// A response's status and JSON body (`null` when the body is not JSON).
async fn status_and_json<S>(resp: &mut awc::ClientResponse<S>) -> (u16, Value)
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let status = resp.status().as_u16();
    let body = resp
        .json::<Value>()
        .limit(1 << 22)
        .await
        .unwrap_or(Value::Null);
    (status, body)
}

/// A real WebSocket client that keeps what it read but was not asked for yet.
pub struct WsClient {
    framed: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    backlog: VecDeque<Value>,
    pub welcome: Value,
    pub closed: Option<Option<ws::CloseReason>>,
}

static NEXT_REF: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl WsClient {
    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.framed
            .send(ws::Message::Text(text.to_string().into()))
            .await
            .expect("send a frame");
    }

    /// Sends a WebSocket frame other than text (binary, ping, pong, continuation).
    pub async fn send_frame(&mut self, frame: ws::Message) {
        self.framed.send(frame).await.expect("send a frame");
    }

    /// Closes the socket from the client side (1000).
    pub async fn close(&mut self) {
        self.framed
            .send(ws::Message::Close(Some(ws::CloseCode::Normal.into())))
            .await
            .expect("send a close");
    }

    pub async fn send(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends `v` with a fresh `ref` and waits for its `ack` or `error`.
    pub async fn request(&mut self, mut v: Value) -> Value {
        let r = format!(
            "r{}",
            NEXT_REF.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        v["ref"] = Value::String(r.clone());
        self.send(&v).await;
        self.find(|m| m["ref"] == r.as_str() && (m["type"] == "ack" || m["type"] == "error"))
            .await
    }

    /// Sends `v` as it is; `false` when the socket is closed or cannot be written.
    pub async fn try_send(&mut self, v: &Value) -> bool {
        self.closed.is_none()
            && self
                .framed
                .send(ws::Message::Text(v.to_string().into()))
                .await
                .is_ok()
    }

    /// Sends `v` with a fresh `ref` and waits for its `ack` or `error`; `None` when the socket
    /// closes (or cannot be written) first.
    pub async fn try_request(&mut self, mut v: Value) -> Option<Value> {
        let r = format!(
            "r{}",
            NEXT_REF.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        v["ref"] = Value::String(r.clone());
        if !self.try_send(&v).await {
            return None;
        }
        self.try_find(|m| m["ref"] == r.as_str() && (m["type"] == "ack" || m["type"] == "error"))
            .await
    }

    /// The first message (kept or new) matching `pred`; `None` when the socket closes first.
    /// Like `try_find`, waiting at most `d`.
    pub async fn try_find_within(
        &mut self,
        pred: impl Fn(&Value) -> bool,
        d: std::time::Duration,
    ) -> Option<Value> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let m = self.read_by(deadline).await?;
            if pred(&m) {
                return Some(m);
            }
            self.backlog.push_back(m);
        }
    }

    pub async fn try_find(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = self.read_by(deadline).await?;
            if pred(&m) {
                return Some(m);
            }
            self.backlog.push_back(m);
        }
    }

    /// The next JSON message from the server, or `None` when the socket closed.
    pub async fn read(&mut self) -> Option<Value> {
        self.read_by(tokio::time::Instant::now() + WAIT).await
    }

    /// The next JSON message, read by `deadline` (server pings do not extend it).
    async fn read_by(&mut self, deadline: tokio::time::Instant) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no awaited message within {WAIT:?}; kept: {:?}",
                        self.backlog
                    )
                })?;
            match frame {
                Ok(ws::Frame::Text(t)) => {
                    return Some(serde_json::from_slice(&t).expect("the server sends JSON"))
                }
                Ok(ws::Frame::Ping(p)) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Ok(ws::Frame::Close(reason)) => {
                    self.closed = Some(reason);
                    return None;
                }
                Ok(_) => {}
                Err(e) => panic!("WebSocket protocol error: {e}"),
            }
        }
    }

    /// The first message (kept or new) matching `pred`, within `WAIT`.
    pub async fn find(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        match self.try_find(pred).await {
            Some(m) => m,
            None => panic!(
                "the socket closed ({:?}) while waiting; kept: {:?}",
                self.closed, self.backlog
            ),
        }
    }

    /// The first message of type `t`.
    pub async fn expect(&mut self, t: &str) -> Value {
        self.find(|m| m["type"] == t).await
    }

    /// Reads until the server closes; answers the close code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.closed.is_none() {
            match self.read_by(deadline).await {
                Some(m) => self.backlog.push_back(m),
                None => break,
            }
        }
        self.closed.clone().flatten().map(|r| u16::from(r.code))
    }

    /// Reads without ever answering a ping, until the server closes; answers the close code.
    pub async fn expect_close_silently(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.framed.next())
                .await
                .expect("the server closes within the wait");
            match frame {
                Some(Ok(ws::Frame::Close(reason))) => return reason.map(|r| u16::from(r.code)),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("WebSocket protocol error: {e}"),
                None => return None,
            }
        }
    }

    /// Reads (keeping messages, answering pings) until the connection ends, and says how:
    /// `Ok(Some(code))` for a close frame, `Ok(None)` for a close frame without a code or an end
    /// without one, `Err(_)` for a transport error. Unlike `expect_close`, never panics on those.
    pub async fn ending(&mut self) -> Result<Option<u16>, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next())
                .await
                .map_err(|_| "still open after the wait".to_string())?;
            match frame {
                Some(Ok(ws::Frame::Text(t))) => {
                    if let Ok(v) = serde_json::from_slice(&t) {
                        self.backlog.push_back(v);
                    }
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    self.closed = Some(reason.clone());
                    return Ok(reason.map(|r| u16::from(r.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("{e}")),
                None => return Ok(None),
            }
        }
    }

    /// Every message kept and every message that arrives within `d`, in order (answering
    /// pings); stops early if the socket closes.
    pub async fn drain_for(&mut self, d: std::time::Duration) -> Vec<Value> {
        let mut out: Vec<Value> = self.backlog.drain(..).collect();
        let deadline = tokio::time::Instant::now() + d;
        while self.closed.is_none() {
            let Ok(frame) = tokio::time::timeout_at(deadline, self.framed.next()).await else {
                break;
            };
            match frame {
                Some(Ok(ws::Frame::Text(t))) => {
                    out.push(serde_json::from_slice(&t).expect("the server sends JSON"))
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.framed.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(ws::Frame::Close(reason))) => self.closed = Some(reason),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("WebSocket protocol error: {e}"),
                None => self.closed = Some(None),
            }
        }
        out
    }

    /// Messages of type `t` read so far and not yet taken.
    pub fn kept(&self, t: &str) -> Vec<Value> {
        self.backlog
            .iter()
            .filter(|m| m["type"] == t)
            .cloned()
            .collect()
    }

    /// Sends `ping` and expects `pong`: the session still works.
    pub async fn assert_alive(&mut self) {
        self.send(&json!({"type":"ping"})).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["type"], "pong");
    }
}
