//! The Socket.IO v4 wire codec: Engine.IO v4 under Socket.IO v5 (SPEC 11, issue 14), pure.
//!
//! This folder owns what crosses the wire at `/socket.io/` and nothing else: no actix, no HTTP,
//! no sockets, no clock, no randomness (ids and `now` are passed in). The transport that will
//! serve it (polling, WebSocket, the upgrade, the heartbeat, the command layer's calls) is planned
//! in `docs/SOCKETIO.md`.
//!
//! - `engine`: Engine.IO packets (`0`..`6`), text and binary, one WebSocket frame each or joined
//!   by `\x1e` into a polling payload.
//! - `handshake`: the request rules (`EIO=4`, `transport`, `sid`), the errors the reference server
//!   answers with HTTP 400 and `{"code","message"}`, and the `open` packet's body.
//! - `packet`: Socket.IO packets (CONNECT .. CONNECT_ERROR), namespaces, ack ids, JSON payloads;
//!   binary packets are recognised and refused.
//! - `frame`: a room event serialized once, with each recipient's offset written after it.
//! - `names`: SPEC 11's event names both ways (client events as native messages, native frames
//!   as events with the frontends' aliases).
//! - `offset`: the per-socket offset string, the socket's position in each of its rooms.
//! - `recovery`: connection state recovery's design and its other pieces: the signed `pid`, the
//!   claim a reconnecting client makes, and the decision whether it is restored.

pub mod engine;
pub mod frame;
pub mod handshake;
pub mod names;
pub mod offset;
pub mod packet;
pub mod recovery;

#[cfg(test)]
mod props;

pub use engine::{Packet as EnginePacket, WsFrame};
pub use frame::SharedEvent;
pub use handshake::{EngineError, EngineRequest, Handshake, Method, Transport};
pub use offset::Offset;
pub use packet::Packet as SocketPacket;
pub use recovery::PidKey;

/// Appends `s` to `out` as a JSON string literal, quotes included, escaped the way
/// `JSON.stringify` and `serde_json` do (`\"`, `\\`, `\n`.., other controls as `\u00XX`), so a
/// name or id is written without a fallible serializer.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = c as usize;
                out.push_str("\\u00");
                out.push(HEX[n >> 4] as char);
                out.push(HEX[n & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_json_str;

    #[test]
    fn a_json_string_is_escaped_as_serde_json_escapes_it() {
        for s in [
            "",
            "plain",
            "q\"b\\s",
            "\n\r\t\u{8}\u{c}",
            "\u{1e}\u{0}\u{1f}",
            "é€😀",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::Value::from(s).to_string(), "{s:?}");
        }
    }
}
