//! The broker seam (SPEC 12, issue 15): where committed room messages go besides this node's own
//! rooms. Domain code publishes through `actors::publish` and never knows which broker runs.
//!
//! - `Broker::Local` (no `cluster.redis_url`): nothing leaves the node; what it publishes reaches
//!   its own rooms only, as it always did.
//! - `Broker::Redis`: every committed message is also published to Redis on its room's own
//!   channel (`bus::channel`: never one channel for all, so a node reads only the rooms its
//!   sessions are in), and the node subscribes to the channels of the rooms it runs. A message
//!   another node published reaches the local room, which delivers it once and in `seq` order
//!   (seqs come from the database; a room drops what it already has and fills a gap from the
//!   database). When Redis comes back after a loss, every room re-reads what it missed meanwhile.
//!
//! `envelope` is the pure wire format; `bus` the Redis tasks.

pub mod bus;
pub mod envelope;
pub mod leader;
pub mod node;
pub mod wire;

use crate::actors::registry::RoomRegistry;
use crate::config::Settings;
use crate::protocol::Room;
use actix::prelude::*;
use bytestring::ByteString;

/// Where published messages go beyond this node's rooms.
pub enum Broker {
    Local,
    Redis(bus::Bus),
}

/// The bus as `/health` and `/metrics` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// No cluster: one node.
    Off,
    /// Connected to Redis.
    Up,
    /// Redis unreachable: this node serves its own sessions, and reconnects.
    Degraded,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Off => "off",
            ClusterState::Up => "up",
            ClusterState::Degraded => "degraded",
        }
    }
}

impl Broker {
    /// The broker `settings` ask for; a Redis one starts its tasks on the current arbiter and
    /// hands what other nodes publish to `rooms`. `node` names this process in the envelopes.
    /// What the bus hears on the node channels goes to `inbox`.
    pub fn start(
        settings: &Settings,
        node: &str,
        rooms: Addr<RoomRegistry>,
        inbox: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    ) -> Broker {
        if !settings.cluster.enabled() {
            return Broker::Local;
        }
        Broker::Redis(bus::Bus::start(&settings.cluster, node, rooms, inbox))
    }

    /// Publishes a `wire` message on `channel` (nothing without a cluster).
    pub fn send(&self, channel: String, payload: String) {
        if let Broker::Redis(b) = self {
            b.send(channel, payload);
        }
    }

    /// Listens to a `wire` channel.
    pub fn listen(&self, channel: String) {
        if let Broker::Redis(b) = self {
            b.listen(channel);
        }
    }

    /// A committed message of `room` with `seq`, already delivered locally: to the other nodes.
    pub fn sequenced(&self, room: &Room, seq: i64, text: &ByteString) {
        if let Broker::Redis(b) = self {
            b.publish(room, Some(seq), text);
        }
    }

    /// An ephemeral message (presence, locations), already delivered locally: to the others.
    pub fn ephemeral(&self, room: &Room, text: &ByteString) {
        if let Broker::Redis(b) = self {
            b.publish(room, None, text);
        }
    }

    /// This node runs `room` now: it listens to the room's channel.
    pub fn watch(&self, room: &Room) {
        if let Broker::Redis(b) = self {
            b.watch(room);
        }
    }

    /// This node no longer runs `room`.
    pub fn unwatch(&self, room: &Room) {
        if let Broker::Redis(b) = self {
            b.unwatch(room);
        }
    }

    pub fn state(&self) -> ClusterState {
        match self {
            Broker::Local => ClusterState::Off,
            Broker::Redis(b) => b.state(),
        }
    }
}
