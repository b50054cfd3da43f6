//! What nodes say to each other besides room messages (issue 15): the follower's commands and
//! its drivers' sessions to the leader, the leader's answers and orders to a session back, and
//! the leader's announcement. Pure: JSON on three kinds of channels of the cluster's namespace.
//!
//! - `<ns>:leader`: what followers hand the leader (only the leader listens);
//! - `<ns>:node:<id>`: what the leader sends one node;
//! - `<ns>:nodes`: the leader's announcement, heard by every node.
//!
//! None of them is a room's channel (`<ns>:{<room>}`), so `envelope::room_of` never takes one
//! for a room.

use crate::auth::Claims;
use crate::commands::Command;
use crate::idempotency::Outcome;
use crate::protocol::LeftReason;
use serde::{Deserialize, Serialize};

/// From a node to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum ToLeader {
    /// Run `command` for `claims` under `key`; answer `Reply { id }`.
    Command {
        from: String,
        id: u64,
        claims: Claims,
        command: Command,
        key: Option<String>,
    },
    /// A session of a driver opened on `from`: attach it; answer `Reply { id }` with the
    /// driver's status and orders.
    Attach {
        from: String,
        id: u64,
        session: u64,
        claims: Claims,
    },
    /// That session closed.
    Detach { from: String, session: u64 },
    /// `from` is alive and holds these drivers' sessions.
    Beat { from: String, sessions: Vec<u64> },
}

/// From the leader to one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum ToNode {
    /// The answer to request `id`.
    Reply { id: u64, outcome: Outcome },
    /// Take `session` out of `rooms` (a driver taken off an order).
    Leave {
        session: u64,
        /// The rooms' names.
        rooms: Vec<String>,
        reason: LeftReason,
    },
    /// Close `session`.
    Close {
        session: u64,
        code: u16,
        reason: String,
    },
    /// The leader does not know these sessions (it is new, or missed their attach): attach them
    /// again.
    Reattach { sessions: Vec<u64> },
}

/// On `<ns>:nodes`: `node` leads (sent when it takes the lock, then with every heartbeat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announce {
    pub leader: String,
}

pub fn leader_channel(namespace: &str) -> String {
    format!("{namespace}:leader")
}

pub fn node_channel(namespace: &str, node: &str) -> String {
    format!("{namespace}:node:{node}")
}

pub fn nodes_channel(namespace: &str) -> String {
    format!("{namespace}:nodes")
}

/// What a payload on one of these channels is.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    ToLeader(Box<ToLeader>),
    ToNode(ToNode),
    Announce(Announce),
}

/// Reads a payload by its channel; `None` for another channel or an unreadable payload.
pub fn hear(namespace: &str, node: &str, channel: &str, payload: &str) -> Option<Heard> {
    if channel == leader_channel(namespace) {
        serde_json::from_str(payload)
            .ok()
            .map(|m| Heard::ToLeader(Box::new(m)))
    } else if channel == node_channel(namespace, node) {
        serde_json::from_str(payload).ok().map(Heard::ToNode)
    } else if channel == nodes_channel(namespace) {
        serde_json::from_str(payload).ok().map(Heard::Announce)
    } else {
        None
    }
}

/// JSON of a message (a value of plain data always serializes).
pub fn encode<T: Serialize>(m: &T) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::report::Report;
    use crate::protocol::{IncidentKind, OrderId};

    #[test]
    fn a_forwarded_command_round_trips_and_each_channel_reads_its_own_kind() {
        let claims = Claims::new(
            "drv-1",
            crate::protocol::Role::Driver,
            Some(crate::protocol::DriverId::from("DRV-1")),
            "default",
            600,
        );
        let m = ToLeader::Command {
            from: "n1".into(),
            id: 7,
            claims,
            command: Command::Report(Report {
                order_id: OrderId::from("ORD-1"),
                kind: IncidentKind::Accident,
                comment: Some("\"q\"".into()),
            }),
            key: Some("k-1".into()),
        };
        let text = encode(&m);
        assert_eq!(
            hear("rp", "n2", "rp:leader", &text),
            Some(Heard::ToLeader(Box::new(m)))
        );
        let r = ToNode::Reply {
            id: 7,
            outcome: Outcome::Ok(serde_json::json!({"a": 1})),
        };
        assert_eq!(
            hear("rp", "n2", "rp:node:n2", &encode(&r)),
            Some(Heard::ToNode(r.clone()))
        );
        assert_eq!(hear("rp", "n3", "rp:node:n2", &encode(&r)), None);
        let a = Announce {
            leader: "n1".into(),
        };
        assert_eq!(
            hear("rp", "n2", "rp:nodes", &encode(&a)),
            Some(Heard::Announce(a))
        );
        assert_eq!(hear("rp", "n2", "rp:leader", "garbage"), None);
        assert_eq!(crate::cluster::envelope::room_of("rp", "rp:leader"), None);
    }
}
