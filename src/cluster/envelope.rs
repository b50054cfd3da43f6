//! What travels on a room's Redis channel: one message, who published it, and its seq.
//!
//! `{"n":"<node>","s":<seq>|null,"t":"<the frame>"}`: `t` is the exact frame the room's members
//! receive (JSON text, carried as a string), so a subscriber delivers it without building it
//! again; `s` is the room's seq (`null` for an ephemeral message); `n` lets a node skip what it
//! published itself (it delivered that locally already).

use serde::{Deserialize, Serialize};

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "n")]
    pub node: String,
    #[serde(rename = "s")]
    pub seq: Option<i64>,
    #[serde(rename = "t")]
    pub text: String,
}

/// The channel of `room` in the cluster `namespace` (`cluster.namespace`: clusters sharing one
/// Redis never hear each other). The room's name is a Redis Cluster hash tag, so a room's
/// channel has one slot (and sharded pub/sub, `SPUBLISH`, could spread rooms over shards later).
pub fn channel(namespace: &str, room: &str) -> String {
    format!("{namespace}:{{{room}}}")
}

/// The room a channel of `namespace` carries, if it is one of ours.
pub fn room_of<'a>(namespace: &str, channel: &'a str) -> Option<&'a str> {
    channel
        .strip_prefix(namespace)?
        .strip_prefix(":{")?
        .strip_suffix('}')
}

impl Envelope {
    pub fn encode(&self) -> String {
        // A struct of strings and a number always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(payload: &str) -> Option<Envelope> {
        serde_json::from_str(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips_and_a_channel_names_its_room() {
        let e = Envelope {
            node: "n1".into(),
            seq: Some(7),
            text: r#"{"type":"tick","data":{"a":"\"q\""},"room":"dispatch","seq":7}"#.into(),
        };
        assert_eq!(Envelope::decode(&e.encode()), Some(e));
        assert_eq!(
            channel("rallypoint", "fleet:north"),
            "rallypoint:{fleet:north}"
        );
        let c = channel("rp", "order:ORD-1");
        assert_eq!(room_of("rp", &c), Some("order:ORD-1"));
        assert_eq!(room_of("other", &c), None);
        assert_eq!(room_of("rp", "rp:plain"), None);
        assert_eq!(Envelope::decode("not json"), None);
    }
}
