//! A WebSocket client of the storm: records every room message, survives its node's death.

use actix_codec::Framed;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A WebSocket client that records every message and never panics on a dead server.
pub struct Peer {
    pub token: String,
    pub framed: Option<Framed<awc::BoxedSocket, awc::ws::Codec>>,
    /// Every room message, in arrival order.
    pub log: Vec<Value>,
    /// The welcome's default rooms and their seqs at the first connect.
    pub base: BTreeMap<String, i64>,
    pub acks: HashMap<String, Value>,
    pub reconnects: usize,
    /// The node it is connected to (or was, until it died).
    pub at: String,
    /// Each connect: the node, the `since` given, and the `joined`/`resync` messages it got.
    pub connects: Vec<String>,
}

impl Peer {
    pub async fn open(base: &str, token: &str) -> Peer {
        let mut p = Peer {
            token: token.to_string(),
            framed: None,
            log: Vec::new(),
            base: BTreeMap::new(),
            acks: HashMap::new(),
            reconnects: 0,
            at: base.to_string(),
            connects: Vec::new(),
        };
        let welcome = p.connect(base, "").await.expect("a welcome");
        for (room, seq) in welcome["rooms"].as_object().expect("rooms") {
            p.base.insert(room.clone(), seq.as_i64().expect("seq"));
        }
        p
    }

    /// Connects to `base` with `since`; answers the welcome.
    pub async fn connect(&mut self, base: &str, since: &str) -> Option<Value> {
        let ws = base.replace("http://", "ws://");
        let url = format!("{ws}/ws?token={}{since}", self.token);
        let (_, framed) = awc::Client::default().ws(url).connect().await.ok()?;
        self.framed = Some(framed);
        self.at = base.to_string();
        self.connects.push(format!("{base} {since}"));
        loop {
            let m = self.next(Duration::from_secs(10)).await?;
            if m["type"] == "welcome" {
                return Some(m);
            }
        }
    }

    /// The last seq seen in each default room, as `&since=` for a reconnect.
    pub fn since(&self) -> String {
        let mut last = self.base.clone();
        for m in &self.log {
            if let (Some(r), Some(s)) = (m["room"].as_str(), m["seq"].as_i64()) {
                if let Some(v) = last.get_mut(r) {
                    *v = (*v).max(s);
                }
            }
        }
        let list: Vec<String> = last.iter().map(|(r, s)| format!("{r}:{s}")).collect();
        format!(
            "&since={}",
            list.join(",").replace(':', "%3A").replace(',', "%2C")
        )
    }

    /// The next message within `d`, recording room messages and acks; `None` once the socket is
    /// gone (closed, reset, or silent past `d`).
    pub async fn next(&mut self, d: Duration) -> Option<Value> {
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
                    if m["type"] == "joined" || m["type"] == "resync" {
                        if let Some(c) = self.connects.last_mut() {
                            c.push_str(&format!(" {m}"));
                        }
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

    pub async fn send(&mut self, v: &Value) -> bool {
        match self.framed.as_mut() {
            Some(f) => f
                .send(awc::ws::Message::Text(v.to_string().into()))
                .await
                .is_ok(),
            None => false,
        }
    }

    /// Sends `v` with `ref` and waits for its answer; `None` when the socket goes first.
    pub async fn request(&mut self, r: &str, mut v: Value) -> Option<Value> {
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
    pub async fn drain(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if self.next(left).await.is_none() {
                return;
            }
        }
    }

    /// Each default room's messages, checked to follow one another from the first connect's
    /// seq (once each, none missing): answers the last seq seen per room, and what broke that
    /// order (`room: seq after prev`), empty when nothing did.
    pub fn in_order(&self) -> (BTreeMap<String, i64>, Vec<String>) {
        let mut last = self.base.clone();
        let mut broken = Vec::new();
        for m in &self.log {
            let (Some(r), Some(s)) = (m["room"].as_str(), m["seq"].as_i64()) else {
                continue;
            };
            let Some(prev) = last.get_mut(r) else {
                continue;
            };
            if s != *prev + 1 {
                broken.push(format!("{r}: {s} after {prev} ({})", m["type"]));
            }
            *prev = (*prev).max(s);
        }
        (last, broken)
    }
}
