//! `[cluster]`: several nodes on one database and one Redis (SPEC 12).

use serde::Deserialize;
use std::time::Duration;

/// Several nodes on one database (SPEC 12): `redis_url` empty means this node is alone.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterSettings {
    pub redis_url: String,
    /// The prefix of this cluster's Redis channels.
    pub namespace: String,
    /// The longest wait between two attempts to reach Redis again.
    pub reconnect_max_ms: u64,
    /// How often a node that does not lead tries the leader's lock, and the leader checks it
    /// still holds it.
    pub leader_poll_ms: u64,
    /// How often a node tells the leader it is alive and which drivers' sessions it holds.
    pub heartbeat_ms: u64,
    /// A node not heard from for this long is dead to the leader: its drivers' sessions are
    /// detached (and go offline after `realtime.offline_grace_ms` unless they reconnect).
    pub node_timeout_ms: u64,
    /// How long a node keeps handing a command to the leader (through a leader change) before
    /// it answers that no leader took it.
    pub forward_timeout_ms: u64,
}

impl ClusterSettings {
    pub fn enabled(&self) -> bool {
        !self.redis_url.trim().is_empty()
    }
    pub fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms.max(1))
    }
    pub fn leader_poll(&self) -> Duration {
        Duration::from_millis(self.leader_poll_ms.max(10))
    }
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(10))
    }
    pub fn node_timeout(&self) -> Duration {
        Duration::from_millis(
            self.node_timeout_ms
                .max(self.heartbeat_ms.saturating_mul(2)),
        )
    }
    pub fn forward_timeout(&self) -> Duration {
        Duration::from_millis(self.forward_timeout_ms.max(100))
    }
}
