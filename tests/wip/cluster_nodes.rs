//! Two server processes, one PostgreSQL database, one Redis (SPEC 12, issue 15): a storm of 200
//! simultaneous reports spread over both nodes with 100 drivers, whole, with the follower
//! SIGKILLed mid-storm, and with the leader SIGKILLed mid-storm. Afterwards no driver holds more
//! orders than its capacity, every report has exactly one decision in `incidents`, every report
//! was answered (the killed node's clients reconnect to the other with `since` and send the
//! unanswered ones again under the same keys), and every session got every message of its
//! default rooms exactly once and in order, up to the rooms' last seq in the database.
//!
//! They need PostgreSQL and Redis (RALLYPOINT_TEST_DATABASE_URL, RALLYPOINT_TEST_REDIS_URL):
//! without them they say loudly that they were skipped. Each prints its figures.

use crate::helpers::{say_skipped, settings_for, TestDb, TEST_SECRET};
use actix_codec::Framed;
use futures_util::{SinkExt, StreamExt};
use rallypoint::auth::{Claims, TokenKeys};
use rallypoint::protocol::{DriverId, Role};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

const DRIVERS: usize = 100;
const CAPACITY: usize = 3;
/// Every driver reports both of its orders: 200 reports.
const PER_DRIVER: usize = 2;

/// A `rallypoint serve` process of the cluster.
struct Node {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
}

impl Node {
    fn start(db: &TestDb, redis: &str, namespace: &str, dir: &std::path::Path, n: usize) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = dir.join(format!("node{n}.log"));
        let out = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_rallypoint"))
            .arg("serve")
            .env_remove("RALLYPOINT_CONFIG")
            .env("RUST_LOG", "info")
            .env("RALLYPOINT_DATABASE__URL", &db.url)
            .env("RALLYPOINT_DATABASE__POOL_SIZE", "8")
            .env("RALLYPOINT_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("RALLYPOINT_SERVER__WORKERS", "2")
            .env("RALLYPOINT_SERVER__DATA_DIR", dir.join(format!("data{n}")))
            .env("RALLYPOINT_AUTH__SECRET", TEST_SECRET)
            .env("RALLYPOINT_CLUSTER__REDIS_URL", redis)
            .env("RALLYPOINT_CLUSTER__NAMESPACE", namespace)
            .env("RALLYPOINT_CLUSTER__LEADER_POLL_MS", "200")
            .env("RALLYPOINT_CLUSTER__HEARTBEAT_MS", "250")
            .env("RALLYPOINT_CLUSTER__NODE_TIMEOUT_MS", "1500")
            .env("RALLYPOINT_REALTIME__OFFLINE_GRACE_MS", "30000")
            .env("RALLYPOINT_DISPATCH__DEFAULT_CAPACITY", CAPACITY.to_string())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("the server starts");
        Node {
            child: Some(child),
            port,
            log,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn get(url: &str) -> Option<Value> {
    let mut r = awc::Client::default().get(url).send().await.ok()?;
    r.json::<Value>().limit(1 << 22).await.ok()
}

async fn post(url: &str, body: &Value, token: &str) -> (u16, Value) {
    let mut r = awc::Client::default()
        .post(url)
        .bearer_auth(token)
        .send_json(body)
        .await
        .expect("the node answers");
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// Waits until both nodes answer `/health` and agree on a leader; answers the leader's index.
async fn elected(nodes: &[&Node]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for n in nodes {
            seen.push(get(&format!("{}/health", n.base())).await);
        }
        let leaders: Vec<Option<&str>> = seen
            .iter()
            .map(|h| h.as_ref().and_then(|h| h["leader"].as_str()))
            .collect();
        if let Some(Some(l)) = leaders.first() {
            if leaders.iter().all(|x| x == &Some(*l)) {
                if let Some(i) = seen
                    .iter()
                    .position(|h| h.as_ref().map(|h| h["node"] == *l) == Some(true))
                {
                    return i;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader: {seen:?}\n{}",
            nodes.iter().map(|n| n.tail()).collect::<Vec<_>>().join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A WebSocket client that records every message and never panics on a dead server.
struct Peer {
    token: String,
    framed: Option<Framed<awc::BoxedSocket, awc::ws::Codec>>,
    /// Every room message, in arrival order.
    log: Vec<Value>,
    /// The welcome's default rooms and their seqs at the first connect.
    base: BTreeMap<String, i64>,
    acks: HashMap<String, Value>,
    reconnects: usize,
}

impl Peer {
    async fn open(base: &str, token: &str) -> Peer {
        let mut p = Peer {
            token: token.to_string(),
            framed: None,
            log: Vec::new(),
            base: BTreeMap::new(),
            acks: HashMap::new(),
            reconnects: 0,
        };
        let welcome = p.connect(base, "").await.expect("a welcome");
        for (room, seq) in welcome["rooms"].as_object().expect("rooms") {
            p.base.insert(room.clone(), seq.as_i64().expect("seq"));
        }
        p
    }

    /// Connects to `base` with `since`; answers the welcome.
    async fn connect(&mut self, base: &str, since: &str) -> Option<Value> {
        let ws = base.replace("http://", "ws://");
        let url = format!("{ws}/ws?token={}{since}", self.token);
        let (_, framed) = awc::Client::default().ws(url).connect().await.ok()?;
        self.framed = Some(framed);
        loop {
            let m = self.next(Duration::from_secs(10)).await?;
            if m["type"] == "welcome" {
                return Some(m);
            }
        }
    }

    /// The last seq seen in each default room, as `&since=` for a reconnect.
    fn since(&self) -> String {
        let mut last = self.base.clone();
        for m in &self.log {
            if let (Some(r), Some(s)) = (m["room"].as_str(), m["seq"].as_i64()) {
                if let Some(v) = last.get_mut(r) {
                    *v = (*v).max(s);
                }
            }
        }
        let list: Vec<String> = last.iter().map(|(r, s)| format!("{r}:{s}")).collect();
        format!("&since={}", list.join(",").replace(':', "%3A").replace(',', "%2C"))
    }

    /// The next message within `d`, recording room messages and acks; `None` once the socket is
    /// gone (closed, reset, or silent past `d`).
    async fn next(&mut self, d: Duration) -> Option<Value> {
        loop {
            let framed = self.framed.as_mut()?;
            let frame = match tokio::time::timeout(d, framed.next()).await {
                Ok(Some(Ok(f))) => f,
                _ => {
                    self.framed = None;
                    return None;
                }
            };
            match frame {
                awc::ws::Frame::Text(t) => {
                    let m: Value = serde_json::from_slice(&t).ok()?;
                    if m["seq"].is_i64() && m["room"].is_string() && m["type"] != "joined" {
                        self.log.push(m.clone());
                    }
                    if m["type"] == "ack" || m["type"] == "error" {
                        if let Some(r) = m["ref"].as_str() {
                            self.acks.insert(r.to_string(), m.clone());
                        }
                    }
                    return Some(m);
                }
                awc::ws::Frame::Ping(p) => {
                    let _ = framed.send(awc::ws::Message::Pong(p)).await;
                }
                awc::ws::Frame::Close(_) => {
                    self.framed = None;
                    return None;
                }
                _ => {}
            }
        }
    }

    async fn send(&mut self, v: &Value) -> bool {
        match self.framed.as_mut() {
            Some(f) => f
                .send(awc::ws::Message::Text(v.to_string().into()))
                .await
                .is_ok(),
            None => false,
        }
    }

    /// Sends `v` with `ref` and waits for its answer; `None` when the socket goes first.
    async fn request(&mut self, r: &str, mut v: Value) -> Option<Value> {
        v["ref"] = Value::from(r);
        if !self.send(&v).await {
            return None;
        }
        loop {
            if let Some(a) = self.acks.get(r) {
                return Some(a.clone());
            }
            self.next(Duration::from_secs(20)).await?;
        }
    }

    /// Reads what arrives within `d`.
    async fn drain(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if self.next(left).await.is_none() {
                return;
            }
        }
    }

    /// Each default room's messages: once each, one after the other from the first connect's
    /// seq; answers the last seq seen per room.
    fn assert_in_order(&self, who: &str) -> BTreeMap<String, i64> {
        let mut last = self.base.clone();
        for m in &self.log {
            let (Some(r), Some(s)) = (m["room"].as_str(), m["seq"].as_i64()) else {
                continue;
            };
            let Some(prev) = last.get_mut(r) else {
                continue;
            };
            assert_eq!(s, *prev + 1, "{who} in {r}: {} after {prev}: {m}", s);
            *prev = s;
        }
        last
    }
}

fn token(keys: &TokenKeys, sub: &str, role: Role, driver: Option<&str>) -> String {
    let mut c = Claims::new(sub, role, driver.map(DriverId::from), "default", 3600);
    c.name = driver.map(|d| format!("Driver {d}"));
    keys.sign(&c).expect("sign")
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kill {
    Nobody,
    Follower,
    Leader,
}

async fn storm(kill: Kill, test: &str) {
    let Ok(redis) = std::env::var("RALLYPOINT_TEST_REDIS_URL") else {
        return say_skipped(&format!("{test} (RALLYPOINT_TEST_REDIS_URL unset)"));
    };
    let Some(db) = TestDb::postgres() else {
        return say_skipped(test);
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temp dir");
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    // One after the other: two first starts on one empty schema would race its migrations.
    let first = Node::start(&db, &redis, &namespace, dir.path(), 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&format!("{}/health", first.base())).await.is_none() {
        assert!(Instant::now() < deadline, "node 0 never answered: {}", first.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let nodes = vec![
        Rc::new(RefCell::new(first)),
        Rc::new(RefCell::new(Node::start(&db, &redis, &namespace, dir.path(), 1))),
    ];
    let bases: Vec<String> = nodes.iter().map(|n| n.borrow().base()).collect();
    let leader = {
        let (a, b) = (nodes[0].borrow(), nodes[1].borrow());
        elected(&[&a, &b]).await
    };
    let keys = TokenKeys::from_settings(&settings_for(&db).auth).expect("keys");
    let desk_token = token(&keys, "dispatcher-1", Role::Dispatcher, None);

    // 100 drivers, alternately on each node, online around Paris; a desk on each node.
    let mut drivers = Vec::new();
    for i in 0..DRIVERS {
        let id = format!("DRV-{i:03}");
        let t = token(&keys, &id.to_lowercase(), Role::Driver, Some(&id));
        let mut p = Peer::open(&bases[i % 2], &t).await;
        let a = p.request("s", json!({"type":"status","status":"online"})).await;
        assert_eq!(a.as_ref().map(|a| a["type"].clone()), Some(json!("ack")), "{a:?}");
        let (lat, lng) = (48.80 + (i / 10) as f64 * 0.01, 2.30 + (i % 10) as f64 * 0.01);
        let a = p
            .request("l", json!({"type":"location","lat":lat,"lng":lng,"speed":5.0}))
            .await;
        assert_eq!(a.as_ref().map(|a| a["type"].clone()), Some(json!("ack")), "{a:?}");
        drivers.push((id, i % 2, p));
    }
    let mut desks = Vec::new();
    for (n, base) in bases.iter().enumerate() {
        desks.push((n, Peer::open(base, &desk_token).await));
    }
    // Two orders per driver, created alternately through each node.
    let mut orders = Vec::new();
    for (i, (id, _, _)) in drivers.iter().enumerate() {
        for k in 0..PER_DRIVER {
            let order = format!("ORD-{i:03}-{k}");
            let (lat, lng) = (48.80 + (i / 10) as f64 * 0.01, 2.30 + (i % 10) as f64 * 0.01);
            let (status, body) = post(
                &format!("{}/api/v1/orders", bases[(i + k) % 2]),
                &json!({"id":order,"pickup":{"lat":lat,"lng":lng},
                        "dropoff":{"lat":48.85,"lng":2.35},"driver_id":id}),
                &desk_token,
            )
            .await;
            assert_eq!(status, 201, "{body}");
            orders.push((order, i));
        }
    }

    // The storm: every driver reports both its orders at once, on its own node.
    let acked = Rc::new(Cell::new(0usize));
    let victim = match kill {
        Kill::Nobody => None,
        Kill::Leader => Some(leader),
        Kill::Follower => Some(1 - leader),
    };
    let storm_started = Instant::now();
    let runs = drivers.iter_mut().enumerate().map(|(i, (_, on, p))| {
        let acked = acked.clone();
        let nodes = nodes.clone();
        let bases = bases.clone();
        let on = *on;
        async move {
            let mut answers = Vec::new();
            for k in 0..PER_DRIVER {
                let order = format!("ORD-{i:03}-{k}");
                let report = json!({"type":"report","order_id":order,"kind":"vehicle_breakdown",
                                    "idempotency_key":format!("rep-{order}")});
                let mut reply = p.request(&format!("rep{k}"), report.clone()).await;
                if reply.is_none() {
                    // Its node died: reconnect to the other with `since`, send it again.
                    let other = 1 - on;
                    p.reconnects += 1;
                    let since = p.since();
                    assert!(p.connect(&bases[other], &since).await.is_some(), "reconnected");
                    reply = p.request(&format!("rep{k}b"), report).await;
                }
                let n = acked.get() + 1;
                acked.set(n);
                if let (Some(v), 60) = (victim, n) {
                    // Mid-storm: the victim dies with reports still in flight.
                    nodes[v].borrow_mut().kill();
                }
                answers.push((order, reply));
            }
            answers
        }
    });
    let answers: Vec<(String, Option<Value>)> =
        futures_util::future::join_all(runs).await.into_iter().flatten().collect();
    let storm_time = storm_started.elapsed();
    if let Some(v) = victim {
        // Killed by a report's answer on the victim's side, or else now: it dies either way.
        nodes[v].borrow_mut().kill();
    }
    let mut events = HashMap::new();
    for (order, a) in &answers {
        let a = a.as_ref().unwrap_or_else(|| panic!("{order}: no answer"));
        assert_eq!(a["type"], "ack", "{order}: {a}");
        events.insert(order.clone(), a["event"]["event_id"].as_str().map(String::from));
    }
    assert_eq!(events.len(), DRIVERS * PER_DRIVER);

    // The victim's desk reconnects too; then everyone reads what is still coming.
    let survivor = victim.map_or(0, |v| 1 - v);
    for (n, d) in desks.iter_mut() {
        if Some(*n) == victim {
            let since = d.since();
            d.drain(Duration::from_millis(200)).await;
            assert!(d.connect(&bases[survivor], &since).await.is_some());
        }
    }
    for (_, on, p) in drivers.iter_mut() {
        if Some(*on) == victim && p.framed.is_none() {
            let since = p.since();
            assert!(p.connect(&bases[survivor], &since).await.is_some());
            p.reconnects += 1;
        }
    }
    let settle = futures_util::future::join_all(
        drivers
            .iter_mut()
            .map(|(_, _, p)| p.drain(Duration::from_secs(3)))
            .chain(desks.iter_mut().map(|(_, d)| d.drain(Duration::from_secs(3)))),
    );
    settle.await;

    // The database: one decision per report, nobody over capacity.
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName, Debug)]
    struct Count {
        #[diesel(sql_type = Text)]
        k: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = diesel::PgConnection::establish(&db.url).expect("PostgreSQL");
    let decided: Vec<Count> =
        diesel::sql_query("SELECT order_id AS k, COUNT(*) AS n FROM incidents GROUP BY order_id")
            .load(&mut conn)
            .expect("incidents");
    assert_eq!(decided.len(), DRIVERS * PER_DRIVER, "every report decided");
    let duplicates = decided.iter().filter(|c| c.n != 1).count();
    assert_eq!(duplicates, 0, "each exactly once: {decided:?}");
    let ids: Vec<Count> = diesel::sql_query("SELECT id AS k, 1::BIGINT AS n FROM incidents")
        .load(&mut conn)
        .expect("incident ids");
    for (order, e) in &events {
        let e = e.as_deref().unwrap_or_else(|| panic!("{order}: no event id"));
        assert!(ids.iter().any(|c| c.k == e), "{order}'s answer {e} is the stored decision");
    }
    let held: Vec<Count> = diesel::sql_query(
        "SELECT driver_id AS k, COUNT(*) AS n FROM orders \
         WHERE driver_id IS NOT NULL AND status IN ('assigned','picked_up','out_for_delivery') \
         GROUP BY driver_id",
    )
    .load(&mut conn)
    .expect("holdings");
    let over: Vec<&Count> = held.iter().filter(|c| c.n > CAPACITY as i64).collect();
    assert!(over.is_empty(), "over capacity: {over:?}");
    let tops: Vec<Count> =
        diesel::sql_query("SELECT room AS k, MAX(seq) AS n FROM room_events GROUP BY room")
            .load(&mut conn)
            .expect("room seqs");
    let top: HashMap<String, i64> = tops.into_iter().map(|c| (c.k, c.n)).collect();

    // Every session: its rooms' messages once each, in order, none missing up to the last.
    let mut gaps = 0;
    let mut checked = 0;
    for (who, p) in drivers
        .iter()
        .map(|(id, _, p)| (id.clone(), p))
        .chain(desks.iter().map(|(n, d)| (format!("desk {n}"), d)))
    {
        for (room, last) in p.assert_in_order(&who) {
            checked += 1;
            if top.get(&room).copied().unwrap_or(0) != last {
                gaps += 1;
                eprintln!("{who} in {room}: last {last}, the room's {:?}", top.get(&room));
            }
        }
    }
    assert_eq!(gaps, 0, "nothing owed is missing");
    let reconnects: usize = drivers.iter().map(|(_, _, p)| p.reconnects).sum();
    eprintln!(
        "[FIGURES] {test}: reports={} decisions={} duplicates={duplicates} gaps={gaps} \
         rooms_checked={checked} reconnects={reconnects} storm_ms={} reports_per_s={:.0} \
         test_s={:.1}",
        answers.len(),
        decided.len(),
        storm_time.as_millis(),
        answers.len() as f64 / storm_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[actix_web::test]
async fn a_storm_over_two_nodes_is_decided_once_each_and_reaches_everyone_in_order() {
    storm(Kill::Nobody, "cluster_nodes::a_storm_over_two_nodes").await;
}

#[actix_web::test]
async fn the_follower_killed_mid_storm_loses_nothing_its_clients_were_owed() {
    storm(Kill::Follower, "cluster_nodes::the_follower_killed_mid_storm").await;
}

#[actix_web::test]
async fn the_leader_killed_mid_storm_hands_over_and_every_report_is_decided_once() {
    storm(Kill::Leader, "cluster_nodes::the_leader_killed_mid_storm").await;
}
