//! A room event serialized once for all its recipients, each copy closed by that recipient's
//! own offset.
//!
//! Connection state recovery (see `recovery`) puts an offset string as the last argument of every
//! room event, and the offset is per socket: it says where that socket stands in each of its
//! rooms. So the frame of one event differs per recipient, but only at its end. `SharedEvent`
//! holds the common head, `42["name",<payload>`, built once; a recipient's frame is the head,
//! `,"<offset>"]`. An offset needs no JSON escaping (`Offset::encode` writes only characters that
//! JSON strings carry as they are), so writing a copy is one allocation and two copies of bytes.

use super::offset::Offset;
use serde::Serialize;
use std::sync::Arc;

/// The head of an EVENT message on `/` (`42["name",args...`), shared by every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEvent {
    head: Arc<str>,
}

impl SharedEvent {
    /// The event `name` with one argument, `payload` (the message without its `type`, or a
    /// crowd or units message's `data`, SPEC 11).
    pub fn new<T: Serialize + ?Sized>(
        name: &str,
        payload: &T,
    ) -> Result<SharedEvent, serde_json::Error> {
        let payload = serde_json::to_string(payload)?;
        Ok(SharedEvent::from_json_args(name, &[payload.as_str()]))
    }

    /// The event `name` with arguments already serialized as JSON (each one value).
    pub fn from_json_args(name: &str, args: &[&str]) -> SharedEvent {
        let len = 4 + name.len() + args.iter().map(|a| a.len() + 1).sum::<usize>();
        let mut head = String::with_capacity(len);
        head.push_str("42[");
        super::push_json_str(&mut head, name);
        for arg in args {
            head.push(',');
            head.push_str(arg);
        }
        SharedEvent { head: head.into() }
    }

    /// The frame without an offset: for events outside recovery (ephemeral `locations` and
    /// `presence`, whose last argument is not a string, so the client keeps its offset).
    pub fn frame(&self) -> String {
        let mut out = String::with_capacity(self.head.len() + 1);
        out.push_str(&self.head);
        out.push(']');
        out
    }

    /// One recipient's frame: the event with `offset` as its last argument.
    pub fn frame_with_offset(&self, offset: &Offset) -> String {
        self.frame_with_encoded_offset(&offset.encode())
    }

    /// One recipient's frame with an offset the session already encoded (it changes only when
    /// the session's positions do, so a session may keep it between events).
    pub fn frame_with_encoded_offset(&self, encoded: &str) -> String {
        let mut out = String::with_capacity(self.head.len() + encoded.len() + 4);
        out.push_str(&self.head);
        out.push_str(",\"");
        out.push_str(encoded);
        out.push_str("\"]");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet::Packet;
    use serde_json::{json, Value};

    #[test]
    fn a_shared_event_is_the_same_message_packet_encode_writes() {
        let payload = json!({"driverId": "d1", "location": {"lat": 1.5, "lng": -2}});
        let shared = SharedEvent::new("driver:locationUpdated", &payload);
        let shared = shared.unwrap_or_else(|e| panic!("{e}"));
        let plain = Packet::event("driver:locationUpdated", vec![payload.clone()]).to_message();
        assert_eq!(shared.frame(), plain);
        let mut offset = Offset::new(2);
        offset.advance("fleet:default", 41);
        let framed = shared.frame_with_offset(&offset);
        let expected = Packet::event(
            "driver:locationUpdated",
            vec![payload, Value::from(offset.encode())],
        );
        assert_eq!(framed, expected.to_message());
        assert_eq!(Packet::decode(&framed[1..]), Ok(expected));
    }

    #[test]
    fn arguments_given_as_json_are_written_as_they_are() {
        let shared = SharedEvent::from_json_args("a\"b", &["1", "[true,null]"]);
        assert_eq!(shared.frame(), r#"42["a\"b",1,[true,null]]"#);
        assert_eq!(SharedEvent::from_json_args("x", &[]).frame(), r#"42["x"]"#);
    }
}
