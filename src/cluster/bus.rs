//! The Redis bus: a publisher task and a subscriber task, each on its own connection, each
//! reconnecting with a backoff up to `cluster.reconnect_max_ms` and logging loudly while Redis is
//! away. Nothing here blocks a room or a session: messages to publish are queued to the
//! publisher; what the subscriber reads is handed to the room registry.
//!
//! A message the publisher could not send, or that was committed while Redis was away, is not
//! kept for later: it is in the database, so a room on another node fills the gap when its next
//! message comes, and every room re-reads what it missed when its node's subscriber reconnects
//! (`CatchUpAll`). So nothing piles up in memory however long Redis is away.
//!
//! The same two connections carry what nodes say to each other (`wire`): the subscriber always
//! listens to this node's own channel and to the leader's announcements, and to the leader's
//! channel while this node leads; what it hears there goes to the `inbox` (`node`). One
//! publisher connection for both keeps the leader's room messages and its orders to a node's
//! sessions in the order it sent them.

use super::envelope::{self, Envelope};
use super::wire;
use super::ClusterState;
use crate::actors::registry::{CatchUpAll, Remote, RoomRegistry};
use crate::config::ClusterSettings;
use crate::protocol::Room;
use actix::prelude::*;
use bytestring::ByteString;
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const UP: u8 = 1;
const DOWN: u8 = 2;

/// The first wait before Redis is tried again, doubled up to `reconnect_max_ms`.
const FIRST_RETRY: Duration = Duration::from_millis(100);

enum Control {
    Watch(String),
    Unwatch(String),
}

/// This node's side of the bus.
pub struct Bus {
    node: String,
    namespace: String,
    out: mpsc::UnboundedSender<(String, String)>,
    control: mpsc::UnboundedSender<Control>,
    /// Up when both connections are; down as soon as one is lost.
    publisher: Arc<AtomicU8>,
    subscriber: Arc<AtomicU8>,
}

impl Bus {
    /// Starts the tasks on the current arbiter; what is heard on the node channels goes to
    /// `inbox` as (channel, payload).
    pub fn start(
        settings: &ClusterSettings,
        node: &str,
        rooms: Addr<RoomRegistry>,
        inbox: mpsc::UnboundedSender<(String, String)>,
    ) -> Bus {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let publisher = Arc::new(AtomicU8::new(DOWN));
        let subscriber = Arc::new(AtomicU8::new(DOWN));
        let url = settings.redis_url.clone();
        let max = settings.reconnect_max();
        log::info!(
            "[CLUSTER] node {node}: room messages go over Redis (namespace {:?})",
            settings.namespace
        );
        let own = [
            wire::node_channel(&settings.namespace, node),
            wire::nodes_channel(&settings.namespace),
        ];
        for ch in own {
            let _ = control.send(Control::Watch(ch));
        }
        actix_rt::spawn(publish_loop(url.clone(), max, out_rx, publisher.clone()));
        actix_rt::spawn(subscribe_loop(
            url,
            max,
            Listener {
                node: node.to_string(),
                namespace: settings.namespace.clone(),
                rooms,
                inbox,
            },
            control_rx,
            subscriber.clone(),
        ));
        Bus {
            node: node.to_string(),
            namespace: settings.namespace.clone(),
            out,
            control,
            publisher,
            subscriber,
        }
    }

    pub fn publish(&self, room: &Room, seq: Option<i64>, text: &ByteString) {
        let name = room.to_string();
        let payload = Envelope {
            node: self.node.clone(),
            seq,
            text: text.to_string(),
        }
        .encode();
        let _ = self
            .out
            .send((envelope::channel(&self.namespace, &name), payload));
    }

    /// Publishes `payload` on `channel` as it is (a `wire` message).
    pub fn send(&self, channel: String, payload: String) {
        let _ = self.out.send((channel, payload));
    }

    /// Listens to `channel` (a `wire` channel) from now on.
    pub fn listen(&self, channel: String) {
        let _ = self.control.send(Control::Watch(channel));
    }

    pub fn watch(&self, room: &Room) {
        let channel = envelope::channel(&self.namespace, &room.to_string());
        let _ = self.control.send(Control::Watch(channel));
    }

    pub fn unwatch(&self, room: &Room) {
        let channel = envelope::channel(&self.namespace, &room.to_string());
        let _ = self.control.send(Control::Unwatch(channel));
    }

    pub fn state(&self) -> ClusterState {
        let up = |s: &AtomicU8| s.load(Ordering::Relaxed) == UP;
        if up(&self.publisher) && up(&self.subscriber) {
            ClusterState::Up
        } else {
            ClusterState::Degraded
        }
    }
}

fn client(url: &str) -> Result<redis::Client, redis::RedisError> {
    redis::Client::open(url)
}

fn next_wait(wait: Duration, max: Duration) -> Duration {
    (wait * 2).min(max)
}

fn set(state: &AtomicU8, to: u8, what: &str, why: &str) {
    let was = state.swap(to, Ordering::Relaxed);
    if to == DOWN && was != DOWN {
        crate::stats::cluster_state(false);
        log::error!(
            "[CLUSTER] Redis {what} lost: {why}; serving this node's sessions, reconnecting"
        );
    } else if to == UP && was != UP {
        crate::stats::cluster_state(true);
        log::info!("[CLUSTER] Redis {what} connected");
    }
}

/// Publishes what is queued, one `PUBLISH` each, reconnecting when the connection fails.
async fn publish_loop(
    url: String,
    max: Duration,
    mut queue: mpsc::UnboundedReceiver<(String, String)>,
    state: Arc<AtomicU8>,
) {
    let mut wait = FIRST_RETRY;
    loop {
        let conn = match client(&url) {
            Ok(c) => c.get_multiplexed_async_connection().await,
            Err(e) => Err(e),
        };
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                set(&state, DOWN, "publisher", &e.to_string());
                tokio::time::sleep(wait).await;
                wait = next_wait(wait, max);
                // What was committed meanwhile is in the database: the other nodes' rooms read
                // it when their subscriber is back, so nothing piles up here while Redis is away.
                while queue.try_recv().is_ok() {
                    crate::stats::cluster_publish_failed();
                }
                continue;
            }
        };
        set(&state, UP, "publisher", "");
        wait = FIRST_RETRY;
        while let Some((channel, payload)) = queue.recv().await {
            let sent: Result<(), redis::RedisError> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&payload)
                .query_async(&mut conn)
                .await;
            if let Err(e) = sent {
                crate::stats::cluster_publish_failed();
                set(&state, DOWN, "publisher", &e.to_string());
                break;
            }
        }
        if queue.is_closed() {
            return;
        }
    }
}

/// Subscribes to the watched rooms' channels and hands what others publish to the rooms;
/// after a reconnect, every room re-reads what it missed.
async fn subscribe_loop(
    url: String,
    max: Duration,
    listener: Listener,
    mut control: mpsc::UnboundedReceiver<Control>,
    state: Arc<AtomicU8>,
) {
    let mut watched: BTreeSet<String> = BTreeSet::new();
    let mut wait = FIRST_RETRY;
    let mut connected_before = false;
    loop {
        let pubsub = match client(&url) {
            Ok(c) => c.get_async_pubsub().await,
            Err(e) => Err(e),
        };
        let (mut sink, mut stream) = match pubsub {
            Ok(p) => p.split(),
            Err(e) => {
                set(&state, DOWN, "subscriber", &e.to_string());
                // Keep up with the watch list while away.
                while let Ok(c) = control.try_recv() {
                    apply(&mut watched, c);
                }
                tokio::time::sleep(wait).await;
                wait = next_wait(wait, max);
                continue;
            }
        };
        let mut ok = true;
        while let Ok(c) = control.try_recv() {
            apply(&mut watched, c);
        }
        if !watched.is_empty() {
            let all: Vec<&String> = watched.iter().collect();
            ok = sink.subscribe(&all).await.is_ok();
        }
        if !ok {
            tokio::time::sleep(wait).await;
            wait = next_wait(wait, max);
            continue;
        }
        set(&state, UP, "subscriber", "");
        wait = FIRST_RETRY;
        if connected_before {
            // What was published while the bus was away is in the database.
            listener.rooms.do_send(CatchUpAll);
        }
        connected_before = true;
        loop {
            tokio::select! {
                c = control.recv() => match c {
                    None => return,
                    Some(Control::Watch(ch)) => {
                        if watched.insert(ch.clone()) && sink.subscribe(&ch).await.is_err() {
                            break;
                        }
                    }
                    Some(Control::Unwatch(ch)) => {
                        if watched.remove(&ch) && sink.unsubscribe(&ch).await.is_err() {
                            break;
                        }
                    }
                },
                m = stream.next() => match m {
                    None => break,
                    Some(msg) => listener.deliver(&msg),
                },
            }
        }
        set(&state, DOWN, "subscriber", "connection closed");
    }
}

fn apply(watched: &mut BTreeSet<String>, c: Control) {
    match c {
        Control::Watch(ch) => {
            watched.insert(ch);
        }
        Control::Unwatch(ch) => {
            watched.remove(&ch);
        }
    }
}

/// Where what the subscriber hears goes.
struct Listener {
    node: String,
    namespace: String,
    rooms: Addr<RoomRegistry>,
    inbox: mpsc::UnboundedSender<(String, String)>,
}

impl Listener {
    /// A message from the bus: to its room unless this node published it, or to the inbox when
    /// it is on a node channel.
    fn deliver(&self, msg: &redis::Msg) {
        let channel = msg.get_channel_name();
        let payload: String = match msg.get_payload() {
            Ok(p) => p,
            Err(_) => return,
        };
        let Some(name) = envelope::room_of(&self.namespace, channel) else {
            let _ = self.inbox.send((channel.to_string(), payload));
            return;
        };
        let Some(room) = Room::parse(name) else {
            return;
        };
        let Some(e) = Envelope::decode(&payload) else {
            log::warn!("[CLUSTER] an unreadable message on room {room}'s channel");
            return;
        };
        if e.node == self.node {
            return;
        }
        self.rooms.do_send(Remote {
            room,
            seq: e.seq,
            text: e.text.into(),
        });
    }
}
