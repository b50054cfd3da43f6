//! Engine.IO v4 requests: what a request at `/socket.io/` asks for, the errors the server answers
//! instead, and the `open` packet's body.
//!
//! Engine.IO protocol v4, "Transports" and "Handshake": every request carries `EIO=4` and
//! `transport=polling|websocket`, and `sid` once the session exists; a missing mandatory
//! parameter or an unknown `sid` is HTTP 400. The errors are the reference server's
//! (`packages/engine.io/lib/server.ts`, `Server.errors`): a numbered `code` and a fixed
//! `message`, sent as `{"code":N,"message":"..."}` with 400 (403 for `Forbidden`). Knowing
//! whether a `sid` exists, or whether a GET overlaps another, is the transport's: it builds those
//! errors from the variants here so every 400 has one spelling.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The Engine.IO protocol revision this server speaks (`EIO=4`).
pub const PROTOCOL: &str = "4";

/// An Engine.IO transport named by the `transport` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling: GETs receive, POSTs send (a client's first step by default).
    Polling,
    /// One WebSocket, a packet per frame (after an upgrade, or on its own).
    Websocket,
}

impl Transport {
    /// The query parameter's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Websocket => "websocket",
        }
    }

    /// Parses the query parameter; `None` for anything else (`webtransport` included).
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "polling" => Some(Transport::Polling),
            "websocket" => Some(Transport::Websocket),
            _ => None,
        }
    }

    /// The transports a session opened on this one may upgrade to, as the handshake lists them
    /// (the reference lists none for a WebSocket session).
    pub fn upgrades(self) -> &'static [&'static str] {
        match self {
            Transport::Polling => &["websocket"],
            Transport::Websocket => &[],
        }
    }
}

/// The HTTP method of a request, with a WebSocket upgrade (`GET` with `Upgrade: websocket`) told
/// apart from a plain GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    WebSocket,
    /// Anything else (`PUT`, `OPTIONS` that was not a CORS preflight, ...).
    Other,
}

/// What a valid request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineRequest {
    /// `GET ?EIO=4&transport=polling`: open a session; the answer is the `open` packet.
    OpenPolling,
    /// A WebSocket upgrade without `sid`: a WebSocket-only session; its first frame is `open`.
    OpenWebsocket,
    /// `GET ...&sid=`: a long poll, answered when packets are queued (or by a `noop`).
    Poll { sid: String },
    /// `POST ...&sid=`: a payload from the client, answered `ok`.
    Send { sid: String },
    /// A WebSocket upgrade with `sid`: the client will probe it (`2probe`) and upgrade (`5`).
    Upgrade { sid: String },
}

/// Why a request is malformed, for a `BadRequest`'s log line (the reference's context names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequestReason {
    /// `transport=websocket` on a request that is not a WebSocket upgrade
    /// (`TRANSPORT_HANDSHAKE_ERROR`), or an upgrade that says `transport=polling`.
    NotAnUpgrade,
    /// The session's transport is not the one named, outside an upgrade (`TRANSPORT_MISMATCH`).
    TransportMismatch,
    /// A second GET (or POST) on one session while the first is pending ("overlap from client").
    Overlap,
    /// A polling POST sent as `application/octet-stream`: v4 sends binary as `b<base64>` text.
    BinaryBody,
    /// A method other than GET and POST on a session.
    BadMethod,
    /// A polling POST whose body is no payload of packets.
    BadPayload,
}

/// A request the server refuses before any packet, with the reference server's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Code 0: `transport` missing, repeated, or not `polling`/`websocket`.
    #[error("transport unknown: {0:?}")]
    UnknownTransport(Option<String>),
    /// Code 1: no session has this `sid` (or it was closed).
    #[error("session id unknown: {0:?}")]
    UnknownSid(String),
    /// Code 2: a request without `sid` that is not a GET (a session opens with a GET only).
    #[error("bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: a malformed request, and why.
    #[error("bad request: {0:?}")]
    BadRequest(BadRequestReason),
    /// Code 4 (HTTP 403): refused by policy (an origin not allowed, say).
    #[error("forbidden")]
    Forbidden,
    /// Code 5: `EIO` missing, repeated, or another revision than 4 (3 is not spoken).
    #[error("unsupported protocol version: {0:?}")]
    UnsupportedProtocolVersion(Option<String>),
}

impl EngineError {
    /// The reference server's `code`.
    pub fn code(&self) -> u8 {
        match self {
            EngineError::UnknownTransport(_) => 0,
            EngineError::UnknownSid(_) => 1,
            EngineError::BadHandshakeMethod => 2,
            EngineError::BadRequest(_) => 3,
            EngineError::Forbidden => 4,
            EngineError::UnsupportedProtocolVersion(_) => 5,
        }
    }

    /// The reference server's `message` for the code.
    pub fn message(&self) -> &'static str {
        match self {
            EngineError::UnknownTransport(_) => "Transport unknown",
            EngineError::UnknownSid(_) => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest(_) => "Bad request",
            EngineError::Forbidden => "Forbidden",
            EngineError::UnsupportedProtocolVersion(_) => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for `Forbidden`, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            EngineError::Forbidden => 403,
            _ => 400,
        }
    }

    /// The response body, `{"code":N,"message":"..."}` (`Content-Type: application/json`).
    pub fn body(&self) -> String {
        format!(
            r#"{{"code":{},"message":"{}"}}"#,
            self.code(),
            self.message()
        )
    }
}

/// The query parameters Engine.IO reads; the rest (`t`, `token`, `eventId`, ...) are ignored.
#[derive(Debug, Default)]
struct Query<'a> {
    eio: Param<'a>,
    transport: Param<'a>,
    sid: Param<'a>,
}

/// One parameter: absent, given once, or repeated (repeats are never valid, as in the reference,
/// where a repeated key becomes an array that matches nothing).
#[derive(Debug, Default, Clone, Copy)]
enum Param<'a> {
    #[default]
    Absent,
    Once(&'a str),
    Repeated,
}

impl<'a> Param<'a> {
    fn add(&mut self, value: &'a str) {
        *self = match self {
            Param::Absent => Param::Once(value),
            _ => Param::Repeated,
        };
    }

    fn describe(self) -> Option<String> {
        match self {
            Param::Absent => None,
            Param::Once(v) => Some(v.to_string()),
            Param::Repeated => Some("(repeated)".to_string()),
        }
    }
}

/// Classifies a request from its method and its decoded query pairs.
///
/// The checks run in the reference server's order where it has one: the transport (code 0), the
/// revision (code 5: required on every request here, where the reference reads it only at the
/// handshake; `socket.io-client` sends it on all), then what the method may do with or without a
/// `sid` (codes 2 and 3). An empty `sid` counts as none, as it does there. Whether the `sid`
/// exists (code 1), and a session's own transport or pending GET (code 3), are the caller's.
pub fn classify<'a, I>(method: Method, pairs: I) -> Result<EngineRequest, EngineError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut q = Query::default();
    for (key, value) in pairs {
        match key {
            "EIO" => q.eio.add(value),
            "transport" => q.transport.add(value),
            "sid" => q.sid.add(value),
            _ => {}
        }
    }
    let transport = match q.transport {
        Param::Once(t) => Transport::parse(t),
        _ => None,
    }
    .ok_or_else(|| EngineError::UnknownTransport(q.transport.describe()))?;
    if !matches!(q.eio, Param::Once(PROTOCOL)) {
        return Err(EngineError::UnsupportedProtocolVersion(q.eio.describe()));
    }
    let sid = match q.sid {
        Param::Absent | Param::Once("") => None,
        Param::Once(s) => Some(s.to_string()),
        Param::Repeated => return Err(EngineError::UnknownSid("(repeated)".to_string())),
    };
    let upgrade = method == Method::WebSocket;
    if upgrade != (transport == Transport::Websocket) {
        // A WebSocket handshake must say `transport=websocket`, and only it may. A POST with
        // `transport=websocket` on a session is the reference's TRANSPORT_MISMATCH.
        return Err(match (method, &sid) {
            (Method::Post, Some(_)) => EngineError::BadRequest(BadRequestReason::TransportMismatch),
            (Method::Other, Some(_)) => EngineError::BadRequest(BadRequestReason::BadMethod),
            (Method::Post | Method::Other, None) => EngineError::BadHandshakeMethod,
            _ => EngineError::BadRequest(BadRequestReason::NotAnUpgrade),
        });
    }
    match (method, sid) {
        (Method::Get, None) => Ok(EngineRequest::OpenPolling),
        (Method::WebSocket, None) => Ok(EngineRequest::OpenWebsocket),
        (Method::Get, Some(sid)) => Ok(EngineRequest::Poll { sid }),
        (Method::Post, Some(sid)) => Ok(EngineRequest::Send { sid }),
        (Method::WebSocket, Some(sid)) => Ok(EngineRequest::Upgrade { sid }),
        (Method::Post | Method::Other, None) => Err(EngineError::BadHandshakeMethod),
        (Method::Other, Some(_)) => Err(EngineError::BadRequest(BadRequestReason::BadMethod)),
    }
}

/// The `open` packet's JSON body (Engine.IO v4, "Handshake").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The Engine.IO session id: every later request names it; never shown to other clients.
    pub sid: String,
    /// The transports this session may upgrade to.
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the client has to answer a ping with a pong.
    pub ping_timeout: u64,
    /// The most bytes the client may put in one polling payload.
    pub max_payload: u64,
}

impl Handshake {
    /// The handshake of a session opened on `transport`.
    pub fn new(
        sid: impl Into<String>,
        transport: Transport,
        ping_interval: Duration,
        ping_timeout: Duration,
        max_payload: usize,
    ) -> Handshake {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Handshake {
            sid: sid.into(),
            upgrades: transport.upgrades().iter().map(|u| u.to_string()).collect(),
            ping_interval: ms(ping_interval),
            ping_timeout: ms(ping_timeout),
            max_payload: u64::try_from(max_payload).unwrap_or(u64::MAX),
        }
    }

    /// The JSON body, keys in the order the protocol document lists them.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(96 + self.sid.len());
        out.push_str(r#"{"sid":"#);
        super::push_json_str(&mut out, &self.sid);
        out.push_str(r#","upgrades":["#);
        for (i, u) in self.upgrades.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            super::push_json_str(&mut out, u);
        }
        out.push_str(&format!(
            r#"],"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
            self.ping_interval, self.ping_timeout, self.max_payload
        ));
        out
    }
}

/// An id from 15 random bytes: 20 characters of base64url, the length of the reference's ids.
/// The caller draws the bytes (`getrandom`), so this stays pure. Used for the Engine.IO `sid`
/// and, separately drawn, the Socket.IO socket id (they must differ: the `sid` is a secret).
pub fn new_id(random: [u8; 15]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(&str, &str)> {
        s.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect()
    }

    #[test]
    fn the_sample_sessions_requests_are_classified() {
        // Socket.IO protocol v5, "Sample session", requests n°1, n°2, n°3 and n°6.
        let get = classify(Method::Get, q("EIO=4&transport=polling&t=N8hyd6w"));
        assert_eq!(get, Ok(EngineRequest::OpenPolling));
        let sid = "lv_VI97HAXpY6yYWAAAC";
        let post = classify(
            Method::Post,
            q(&format!("EIO=4&transport=polling&t=N8hyd7H&sid={sid}")),
        );
        assert_eq!(post, Ok(EngineRequest::Send { sid: sid.into() }));
        let poll = classify(
            Method::Get,
            q(&format!("EIO=4&transport=polling&sid={sid}")),
        );
        assert_eq!(poll, Ok(EngineRequest::Poll { sid: sid.into() }));
        let ws = classify(
            Method::WebSocket,
            q(&format!("EIO=4&transport=websocket&sid={sid}")),
        );
        assert_eq!(ws, Ok(EngineRequest::Upgrade { sid: sid.into() }));
        let alone = classify(Method::WebSocket, q("EIO=4&transport=websocket"));
        assert_eq!(alone, Ok(EngineRequest::OpenWebsocket));
    }

    #[test]
    fn a_missing_or_wrong_mandatory_parameter_is_a_400_with_the_reference_body() {
        let cases: [(Method, &str, u8, &str); 9] = [
            (Method::Get, "EIO=4", 0, "Transport unknown"),
            (
                Method::Get,
                "EIO=4&transport=webtransport",
                0,
                "Transport unknown",
            ),
            (
                Method::Get,
                "EIO=4&transport=polling&transport=polling",
                0,
                "Transport unknown",
            ),
            (
                Method::Get,
                "transport=polling",
                5,
                "Unsupported protocol version",
            ),
            (
                Method::Get,
                "EIO=3&transport=polling",
                5,
                "Unsupported protocol version",
            ),
            (
                Method::Post,
                "EIO=4&transport=polling",
                2,
                "Bad handshake method",
            ),
            (Method::Get, "EIO=4&transport=websocket", 3, "Bad request"),
            (
                Method::WebSocket,
                "EIO=4&transport=polling&sid=x",
                3,
                "Bad request",
            ),
            (
                Method::Post,
                "EIO=4&transport=websocket&sid=x",
                3,
                "Bad request",
            ),
        ];
        for (method, query, code, message) in cases {
            let err = classify(method, q(query)).err();
            let err = err.unwrap_or_else(|| panic!("{method:?} {query} was accepted"));
            assert_eq!(err.code(), code, "{method:?} {query}");
            assert_eq!(err.status(), 400);
            assert_eq!(
                err.body(),
                format!(r#"{{"code":{code},"message":"{message}"}}"#)
            );
        }
    }

    #[test]
    fn every_error_body_is_the_json_the_reference_server_sends() {
        let all = [
            EngineError::UnknownTransport(None),
            EngineError::UnknownSid("x".into()),
            EngineError::BadHandshakeMethod,
            EngineError::BadRequest(BadRequestReason::Overlap),
            EngineError::Forbidden,
            EngineError::UnsupportedProtocolVersion(None),
        ];
        for (n, e) in all.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap_or_default();
            assert_eq!(v["code"], n as u64);
            assert_eq!(v["message"], e.message());
        }
        assert_eq!(EngineError::Forbidden.status(), 403);
        assert_eq!(
            EngineError::UnknownSid("x".into()).body(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
    }

    #[test]
    fn the_handshake_body_is_the_documents_example() {
        // Engine.IO protocol v4, "Handshake", the example (sample session: the same, 5000 ms).
        let h = Handshake::new(
            "lv_VI97HAXpY6yYWAAAC",
            Transport::Polling,
            Duration::from_millis(25000),
            Duration::from_millis(20000),
            1_000_000,
        );
        assert_eq!(
            h.to_json(),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(
            serde_json::from_str::<Handshake>(&h.to_json()).ok(),
            Some(h)
        );
        let ws = Handshake::new("s", Transport::Websocket, Duration::ZERO, Duration::ZERO, 1);
        assert!(ws.to_json().contains(r#""upgrades":[]"#));
    }

    #[test]
    fn an_id_is_twenty_url_safe_characters() {
        let id = new_id([0xff; 15]);
        assert_eq!(id.len(), 20);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(new_id([0; 15]), new_id([1; 15]));
    }
}
