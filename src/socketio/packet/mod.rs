//! Socket.IO v5 packets: what an Engine.IO message (`4...`) carries.
//!
//! Socket.IO protocol v5, "Packet encoding", "Format":
//! `<type>[<attachments>-][<namespace>,][<ack id>][JSON payload]`, the namespace written only
//! when it is not `/`. What each type's payload must be follows the reference parser
//! (`socket.io-parser`, `isPayloadValid`): CONNECT an object or nothing, DISCONNECT nothing,
//! EVENT a non-empty array whose first element is a name that Socket.IO does not reserve, ACK an
//! array (possibly empty), CONNECT_ERROR an object or a string.
//!
//! Binary packets (BINARY_EVENT 5, BINARY_ACK 6) are recognised and refused: the header is read,
//! so the transport can answer the ack id, skip the attachments that follow as binary frames and
//! keep the session. Every other failure is a typed error too; nothing here panics on input.

use serde_json::{Map, Value};

/// The default namespace, the only one Rallypoint serves.
pub const DEFAULT_NAMESPACE: &str = "/";

/// Event names Socket.IO keeps for itself: the wire types' list (`protocol::server`).
pub use crate::protocol::server::SOCKET_IO_RESERVED as RESERVED_EVENTS;

/// One Socket.IO packet (binary ones never decode: see `DecodeError::Binary`).
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// `0`: from the client, a request to join `nsp` with its `auth` object; from the server, the
    /// acceptance, `{"sid"}` (and `"pid"` with connection state recovery).
    Connect {
        nsp: String,
        data: Option<Map<String, Value>>,
    },
    /// `1`: leaving the namespace; no payload.
    Disconnect { nsp: String },
    /// `2`: an event `[name, ...args]`, with an ack id when the sender wants an answer.
    Event {
        nsp: String,
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3`: the answer to the event with this id.
    Ack {
        nsp: String,
        id: u64,
        args: Vec<Value>,
    },
    /// `4`: the namespace refused the connection, `{"message"}` (a bare string in old servers).
    ConnectError { nsp: String, data: Value },
}

/// A packet type, for errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    fn from_char(c: char) -> Option<PacketType> {
        Some(match c {
            '0' => PacketType::Connect,
            '1' => PacketType::Disconnect,
            '2' => PacketType::Event,
            '3' => PacketType::Ack,
            '4' => PacketType::ConnectError,
            '5' => PacketType::BinaryEvent,
            '6' => PacketType::BinaryAck,
            _ => return None,
        })
    }
}

/// Why a Socket.IO packet does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A BINARY_EVENT or BINARY_ACK: attachments are not accepted (SPEC 11). `attachments`
    /// binary frames follow it on the wire; `id` is the ack id to answer, if any.
    #[error("binary attachments are not supported")]
    Binary {
        kind: PacketType,
        nsp: String,
        id: Option<u64>,
        attachments: u64,
    },
    #[error("the attachment count of a binary packet is malformed")]
    InvalidAttachments,
    #[error("the ack id is too large")]
    InvalidAckId,
    #[error("a {0:?} packet takes no ack id")]
    UnexpectedAckId(PacketType),
    #[error("an ACK packet needs an ack id")]
    MissingAckId,
    #[error("the payload is not JSON: {0}")]
    InvalidJson(String),
    #[error("a {kind:?} packet's payload must be {expected}")]
    InvalidPayload {
        kind: PacketType,
        expected: &'static str,
    },
    #[error("event name {0:?} is reserved by Socket.IO")]
    ReservedEventName(String),
}

impl Packet {
    /// The server's CONNECT answer on `/`: `{"sid"}`, with `"pid"` when recovery is on.
    pub fn connect_ok(sid: &str, pid: Option<&str>) -> Packet {
        let mut data = Map::new();
        data.insert("sid".into(), Value::from(sid));
        if let Some(pid) = pid {
            data.insert("pid".into(), Value::from(pid));
        }
        Packet::Connect {
            nsp: DEFAULT_NAMESPACE.into(),
            data: Some(data),
        }
    }

    /// A CONNECT_ERROR on `/`: `{"message"}` (the client's `err.message`).
    pub fn connect_error(message: &str) -> Packet {
        let mut data = Map::new();
        data.insert("message".into(), Value::from(message));
        Packet::ConnectError {
            nsp: DEFAULT_NAMESPACE.into(),
            data: Value::Object(data),
        }
    }

    /// The CONNECT_ERROR for a missing, expired or forged token: `{"message":"Unauthorized"}`,
    /// the word those frontends compare `err.message` with.
    pub fn unauthorized() -> Packet {
        Packet::connect_error("Unauthorized")
    }

    /// An EVENT on `/` without ack id.
    pub fn event(name: &str, args: Vec<Value>) -> Packet {
        Packet::Event {
            nsp: DEFAULT_NAMESPACE.into(),
            id: None,
            name: name.into(),
            args,
        }
    }

    /// An ACK on `/` answering the event `id`.
    pub fn ack(id: u64, args: Vec<Value>) -> Packet {
        Packet::Ack {
            nsp: DEFAULT_NAMESPACE.into(),
            id,
            args,
        }
    }

    /// The packet's namespace.
    pub fn nsp(&self) -> &str {
        match self {
            Packet::Connect { nsp, .. }
            | Packet::Disconnect { nsp }
            | Packet::Event { nsp, .. }
            | Packet::Ack { nsp, .. }
            | Packet::ConnectError { nsp, .. } => nsp,
        }
    }

    /// Encodes the packet (without the Engine.IO `4`). The namespace is written when it is not
    /// `/`; it should start with `/` and hold no `,`, as namespaces do.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.encode_into(&mut out);
        out
    }

    /// Encodes the packet as an Engine.IO message's text, `4` first: what a WebSocket text frame
    /// or a polling payload carries.
    pub fn to_message(&self) -> String {
        let mut out = String::from("4");
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut String) {
        let (digit, id) = match self {
            Packet::Connect { .. } => ('0', None),
            Packet::Disconnect { .. } => ('1', None),
            Packet::Event { id, .. } => ('2', *id),
            Packet::Ack { id, .. } => ('3', Some(*id)),
            Packet::ConnectError { .. } => ('4', None),
        };
        out.push(digit);
        let nsp = self.nsp();
        if !nsp.is_empty() && nsp != DEFAULT_NAMESPACE {
            out.push_str(nsp);
            out.push(',');
        }
        if let Some(id) = id {
            out.push_str(&id.to_string());
        }
        match self {
            Packet::Connect {
                data: Some(data), ..
            } => out.push_str(&Value::Object(data.clone()).to_string()),
            Packet::Connect { data: None, .. } | Packet::Disconnect { .. } => {}
            Packet::Event { name, args, .. } => {
                out.push('[');
                super::push_json_str(out, name);
                for arg in args {
                    out.push(',');
                    out.push_str(&arg.to_string());
                }
                out.push(']');
            }
            Packet::Ack { args, .. } => {
                out.push('[');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&arg.to_string());
                }
                out.push(']');
            }
            Packet::ConnectError { data, .. } => out.push_str(&data.to_string()),
        }
    }

    /// Decodes a packet from an Engine.IO message's text (the `4` already taken off).
    pub fn decode(text: &str) -> Result<Packet, DecodeError> {
        let first = text.chars().next().ok_or(DecodeError::Empty)?;
        let kind = PacketType::from_char(first).ok_or(DecodeError::UnknownType(first))?;
        let mut rest = &text[1..];
        let attachments = match kind {
            PacketType::BinaryEvent | PacketType::BinaryAck => Some(take_attachments(&mut rest)?),
            _ => None,
        };
        let nsp = take_namespace(&mut rest);
        let id = take_ack_id(&mut rest)?;
        if let Some(attachments) = attachments {
            return Err(DecodeError::Binary {
                kind,
                nsp,
                id,
                attachments,
            });
        }
        let payload = if rest.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Value>(rest)
                    .map_err(|e| DecodeError::InvalidJson(e.to_string()))?,
            )
        };
        let invalid = |expected| DecodeError::InvalidPayload { kind, expected };
        if id.is_some() && !matches!(kind, PacketType::Event | PacketType::Ack) {
            return Err(DecodeError::UnexpectedAckId(kind));
        }
        match kind {
            PacketType::Connect => match payload {
                None => Ok(Packet::Connect { nsp, data: None }),
                Some(Value::Object(data)) => Ok(Packet::Connect {
                    nsp,
                    data: Some(data),
                }),
                Some(_) => Err(invalid("an object")),
            },
            PacketType::Disconnect => match payload {
                None => Ok(Packet::Disconnect { nsp }),
                Some(_) => Err(invalid("absent")),
            },
            PacketType::Event => {
                let Some(Value::Array(mut items)) = payload else {
                    return Err(invalid("an array"));
                };
                if items.is_empty() {
                    return Err(invalid("a non-empty array"));
                }
                let Value::String(name) = items.remove(0) else {
                    return Err(invalid("an array starting with the event name"));
                };
                if RESERVED_EVENTS.contains(&name.as_str()) {
                    return Err(DecodeError::ReservedEventName(name));
                }
                Ok(Packet::Event {
                    nsp,
                    id,
                    name,
                    args: items,
                })
            }
            PacketType::Ack => {
                let id = id.ok_or(DecodeError::MissingAckId)?;
                match payload {
                    Some(Value::Array(args)) => Ok(Packet::Ack { nsp, id, args }),
                    _ => Err(invalid("an array")),
                }
            }
            PacketType::ConnectError => match payload {
                Some(data @ (Value::Object(_) | Value::String(_))) => {
                    Ok(Packet::ConnectError { nsp, data })
                }
                _ => Err(invalid("an object or a string")),
            },
            PacketType::BinaryEvent | PacketType::BinaryAck => Err(DecodeError::InvalidAttachments),
        }
    }
}

/// Reads `<digits>-` off a binary packet.
fn take_attachments(rest: &mut &str) -> Result<u64, DecodeError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.as_bytes().get(digits) != Some(&b'-') {
        return Err(DecodeError::InvalidAttachments);
    }
    let n = rest[..digits]
        .parse()
        .map_err(|_| DecodeError::InvalidAttachments)?;
    *rest = &rest[digits + 1..];
    Ok(n)
}

/// Reads `/<name>,` (or `/<name>` to the end) off the packet; `/` when there is none.
fn take_namespace(rest: &mut &str) -> String {
    if !rest.starts_with('/') {
        return DEFAULT_NAMESPACE.to_string();
    }
    match rest.find(',') {
        Some(comma) => {
            let nsp = rest[..comma].to_string();
            *rest = &rest[comma + 1..];
            nsp
        }
        None => {
            let nsp = rest.to_string();
            *rest = "";
            nsp
        }
    }
}

/// Reads the ack id's digits, if any.
fn take_ack_id(rest: &mut &str) -> Result<Option<u64>, DecodeError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok(None);
    }
    let id = rest[..digits]
        .parse()
        .map_err(|_| DecodeError::InvalidAckId)?;
    *rest = &rest[digits..];
    Ok(Some(id))
}

#[cfg(test)]
mod tests;
