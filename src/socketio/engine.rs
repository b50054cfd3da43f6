//! Engine.IO v4 packets and payloads.
//!
//! Engine.IO protocol v4, "Protocol" and "Packet encoding": a packet is its type digit (`0` open,
//! `1` close, `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop) and an optional UTF-8
//! payload. Binary data is always a message and has no type digit: over WebSocket it is a binary
//! frame as is, over polling it is `b` and its base64. A polling body joins packets with the
//! record separator `\x1e`; that is safe because every Socket.IO payload is JSON, which never
//! holds a raw control character.
//!
//! Lenient where the reference parser is (`engine.io-parser`): data after `1`, `5` or `6` is
//! ignored. Stricter where it would guess: bad base64 and an `open` that is not a handshake are
//! errors, not empty packets.

use super::handshake::Handshake;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// The polling payload separator (Engine.IO v4, "HTTP long-polling").
pub const SEPARATOR: char = '\x1e';

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0{...}`: the server's handshake, the first packet of a session.
    Open(Handshake),
    /// `1`: the transport (and with it the session) is closing.
    Close,
    /// `2`: the server's heartbeat (v4: the server pings); `2probe` opens an upgrade.
    Ping(String),
    /// `3`: the answer to a ping, with the ping's data (`3probe` to a probe).
    Pong(String),
    /// `4...`: a text message (every Socket.IO packet is one).
    Message(String),
    /// A binary message (`b<base64>` over polling, a binary frame over WebSocket).
    Binary(Vec<u8>),
    /// `5`: the client has moved to the new transport.
    Upgrade,
    /// `6`: nothing; ends a pending poll during an upgrade.
    Noop,
}

/// A WebSocket frame carrying one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    Text(String),
    Binary(Vec<u8>),
}

/// Why a packet does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An empty frame, or two separators in a row.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type (nor `b`).
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// `b` followed by something that is not base64.
    #[error("binary packet is not valid base64")]
    InvalidBase64,
    /// `0` followed by something that is not a handshake.
    #[error("open packet is not a handshake: {0}")]
    InvalidOpen(String),
}

/// Why a polling payload does not decode: the packet that failed, counted from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packet {index} of the payload: {error}")]
pub struct PayloadError {
    pub index: usize,
    pub error: DecodeError,
}

impl Packet {
    /// A plain ping (`2`).
    pub fn ping() -> Packet {
        Packet::Ping(String::new())
    }

    /// A plain pong (`3`).
    pub fn pong() -> Packet {
        Packet::Pong(String::new())
    }

    /// Whether this is the upgrade's probe ping, `2probe`.
    pub fn is_probe(&self) -> bool {
        matches!(self, Packet::Ping(d) if d == "probe")
    }

    /// The packet's type digit; `None` for binary, which has none.
    pub fn type_digit(&self) -> Option<char> {
        Some(match self {
            Packet::Open(_) => '0',
            Packet::Close => '1',
            Packet::Ping(_) => '2',
            Packet::Pong(_) => '3',
            Packet::Message(_) => '4',
            Packet::Binary(_) => return None,
            Packet::Upgrade => '5',
            Packet::Noop => '6',
        })
    }

    /// Encodes the packet as text: a polling packet, or a WebSocket text frame (binary becomes
    /// `b<base64>`, the polling form).
    pub fn encode_text(&self) -> String {
        let data: &str = match self {
            Packet::Open(h) => return format!("0{}", h.to_json()),
            Packet::Binary(bytes) => return format!("b{}", BASE64.encode(bytes)),
            Packet::Ping(d) | Packet::Pong(d) | Packet::Message(d) => d,
            Packet::Close | Packet::Upgrade | Packet::Noop => "",
        };
        let mut out = String::with_capacity(1 + data.len());
        out.extend(self.type_digit());
        out.push_str(data);
        out
    }

    /// Encodes the packet as its own WebSocket frame: binary as is, the rest as text.
    pub fn encode_ws(&self) -> WsFrame {
        match self {
            Packet::Binary(bytes) => WsFrame::Binary(bytes.clone()),
            other => WsFrame::Text(other.encode_text()),
        }
    }

    /// Decodes one text packet: a WebSocket text frame, or one packet of a polling payload.
    pub fn decode_text(text: &str) -> Result<Packet, DecodeError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(DecodeError::Empty)?;
        let data = chars.as_str();
        Ok(match kind {
            '0' => Packet::Open(
                serde_json::from_str(data).map_err(|e| DecodeError::InvalidOpen(e.to_string()))?,
            ),
            '1' => Packet::Close,
            '2' => Packet::Ping(data.to_string()),
            '3' => Packet::Pong(data.to_string()),
            '4' => Packet::Message(data.to_string()),
            '5' => Packet::Upgrade,
            '6' => Packet::Noop,
            'b' => Packet::Binary(
                BASE64
                    .decode(data)
                    .map_err(|_| DecodeError::InvalidBase64)?,
            ),
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// Decodes a WebSocket binary frame: always a binary message.
    pub fn decode_binary(bytes: &[u8]) -> Packet {
        Packet::Binary(bytes.to_vec())
    }
}

/// Encodes packets as one polling payload, joined by `\x1e`. A text message holding `\x1e`
/// would split in two at the other end; Socket.IO's JSON never does.
pub fn encode_payload(packets: &[Packet]) -> String {
    join_payload(packets.iter().map(Packet::encode_text))
}

/// Joins packets already encoded as text (the transport's queue of `42[...]` frames, shared by
/// every recipient) into one polling payload.
pub fn join_payload<I, S>(encoded: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (i, packet) in encoded.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.push_str(packet.as_ref());
    }
    out
}

/// Decodes a polling payload (a POST body) into its packets. The first bad packet fails the
/// whole payload: the reference closes the session there ("parse error").
pub fn decode_payload(body: &str) -> Result<Vec<Packet>, PayloadError> {
    body.split(SEPARATOR)
        .enumerate()
        .map(|(index, text)| {
            Packet::decode_text(text).map_err(|error| PayloadError { index, error })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::handshake::Transport;
    use std::time::Duration;

    #[test]
    fn the_documents_polling_payload_decodes_to_its_three_packets() {
        // Engine.IO protocol v4, "Packet encoding", "HTTP long-polling": `4hello\x1e2\x1e4world`.
        let packets = decode_payload("4hello\x1e2\x1e4world");
        let expected = vec![
            Packet::Message("hello".into()),
            Packet::ping(),
            Packet::Message("world".into()),
        ];
        assert_eq!(packets.as_ref(), Ok(&expected));
        assert_eq!(encode_payload(&expected), "4hello\x1e2\x1e4world");
    }

    #[test]
    fn a_binary_payload_is_b_and_base64_over_polling_and_as_is_over_websocket() {
        // Engine.IO protocol v4, "HTTP long-polling": `4hello\x1ebAQIDBA==` is "hello" and
        // <01 02 03 04>; "WebSocket": "Binary payloads are sent as is".
        let packets = vec![
            Packet::Message("hello".into()),
            Packet::Binary(vec![1, 2, 3, 4]),
        ];
        assert_eq!(decode_payload("4hello\x1ebAQIDBA==").as_ref(), Ok(&packets));
        assert_eq!(encode_payload(&packets), "4hello\x1ebAQIDBA==");
        assert_eq!(packets[1].encode_ws(), WsFrame::Binary(vec![1, 2, 3, 4]));
        assert_eq!(Packet::decode_binary(&[1, 2, 3, 4]), packets[1]);
    }

    #[test]
    fn a_websocket_text_frame_is_one_packet() {
        // Engine.IO protocol v4, "WebSocket": `4hello`.
        assert_eq!(
            Packet::decode_text("4hello"),
            Ok(Packet::Message("hello".into()))
        );
        assert_eq!(
            Packet::Message("hello".into()).encode_ws(),
            WsFrame::Text("4hello".into())
        );
    }

    #[test]
    fn the_upgrade_sequence_packets_are_spelled_as_documented() {
        // Engine.IO protocol v4, "Upgrade": `2probe`, `3probe`, `5`; a `6` ends the pending GET.
        let probe = Packet::decode_text("2probe");
        assert_eq!(probe, Ok(Packet::Ping("probe".into())));
        assert!(probe.is_ok_and(|p| p.is_probe()));
        assert_eq!(Packet::Pong("probe".into()).encode_text(), "3probe");
        assert_eq!(Packet::decode_text("5"), Ok(Packet::Upgrade));
        assert_eq!(Packet::Noop.encode_text(), "6");
        assert_eq!(Packet::ping().encode_text(), "2");
        assert_eq!(Packet::decode_text("3"), Ok(Packet::pong()));
        assert!(!Packet::ping().is_probe());
    }

    #[test]
    fn the_open_packet_carries_the_handshake() {
        // Socket.IO protocol v5, "Sample session", request n°1.
        let text = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#;
        let h = Handshake::new(
            "lv_VI97HAXpY6yYWAAAC",
            Transport::Polling,
            Duration::from_secs(25),
            Duration::from_secs(5),
            1_000_000,
        );
        assert_eq!(Packet::Open(h.clone()).encode_text(), text);
        assert_eq!(Packet::decode_text(text), Ok(Packet::Open(h)));
    }

    #[test]
    fn malformed_packets_say_what_is_wrong() {
        assert_eq!(Packet::decode_text(""), Err(DecodeError::Empty));
        assert_eq!(Packet::decode_text("7"), Err(DecodeError::UnknownType('7')));
        assert_eq!(
            Packet::decode_text("€x"),
            Err(DecodeError::UnknownType('€'))
        );
        assert_eq!(Packet::decode_text("b!!"), Err(DecodeError::InvalidBase64));
        assert!(matches!(
            Packet::decode_text("0{}"),
            Err(DecodeError::InvalidOpen(_))
        ));
        let err = decode_payload("4a\x1e\x1e4b");
        assert_eq!(
            err,
            Err(PayloadError {
                index: 1,
                error: DecodeError::Empty
            })
        );
        assert_eq!(
            decode_payload(""),
            Err(PayloadError {
                index: 0,
                error: DecodeError::Empty
            })
        );
    }

    #[test]
    fn data_after_close_upgrade_or_noop_is_ignored_as_the_reference_parser_does() {
        assert_eq!(Packet::decode_text("1x"), Ok(Packet::Close));
        assert_eq!(Packet::decode_text("5x"), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text("6x"), Ok(Packet::Noop));
    }

    #[test]
    fn pre_encoded_frames_join_into_the_sample_sessions_post_body() {
        // Socket.IO protocol v5, "Sample session", request n°5: `42["hello"]\x1e42["world"]`.
        let body = join_payload([r#"42["hello"]"#, r#"42["world"]"#]);
        assert_eq!(body, "42[\"hello\"]\x1e42[\"world\"]");
        let packets = decode_payload(&body);
        assert_eq!(
            packets,
            Ok(vec![
                Packet::Message(r#"2["hello"]"#.into()),
                Packet::Message(r#"2["world"]"#.into())
            ])
        );
        assert_eq!(join_payload(Vec::<String>::new()), "");
    }
}
