//! The cluster's nodes as `rallypoint serve` processes, configured through the environment.

use crate::helpers::{TestDb, TEST_SECRET};
use serde_json::Value;
use std::cell::RefCell;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A `rallypoint serve` process of the cluster.
pub struct Node {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
}

impl Node {
    pub fn start(
        db: &TestDb,
        redis: &str,
        namespace: &str,
        dir: &std::path::Path,
        n: usize,
    ) -> Node {
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
            .env(
                "RALLYPOINT_DISPATCH__DEFAULT_CAPACITY",
                super::CAPACITY.to_string(),
            )
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

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // What the node warned about is the first thing to read when a check failed.
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let loud: Vec<&str> = text
                .lines()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .filter(|l| !l.contains("protocol error"))
                .collect();
            eprintln!(
                "--- node on port {}: its last warnings and errors ---\n{}",
                self.port,
                loud[loud.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

pub async fn get(url: &str) -> Option<Value> {
    let mut r = awc::Client::default().get(url).send().await.ok()?;
    r.json::<Value>().limit(1 << 22).await.ok()
}

pub async fn post(url: &str, body: &Value, token: &str) -> (u16, Value) {
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
pub async fn elected(nodes: &[Rc<RefCell<Node>>]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for n in nodes {
            let base = n.borrow().base();
            seen.push(get(&format!("{base}/health")).await);
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
            nodes
                .iter()
                .map(|n| n.borrow().tail())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
