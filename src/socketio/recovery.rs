//! Connection state recovery (Socket.IO 4.6) as pure pieces: the signed `pid`, the claim a
//! reconnecting client makes, and the decision whether it is restored.
//!
//! How socket.io-client takes part (`socket.io-client` `lib/socket.ts`): the server's CONNECT
//! answer carries `pid`; the client keeps the last string argument of every event as its offset;
//! on reconnecting it sends `{pid, offset, ...auth}` in its CONNECT, and sets
//! `socket.recovered` when the answer carries the same `pid` it sent.
//!
//! # The design (issue 14), decided here
//!
//! - **The pid names the socket and its owner, and is signed.** `pid = <sid>.<mac>`, the mac an
//!   HMAC-SHA256 over the socket id and the token's `sub` with a key of its own
//!   (`PidKey::derive` from the server's secret). Any node can check it; a pid is worth nothing
//!   with another user's token. It holds no time and no rooms, so it is the same string for the
//!   socket's whole life (the client compares it) and never expires on its own.
//! - **The offset holds the socket's own position in each of its rooms** (`offset`), written
//!   per recipient after the shared event (`frame`). The rooms it names are re-checked against
//!   the token at the restore, so an edited offset can reach only rooms the token may join.
//! - **An offset is good for one restore: its generation.** Each connection of a socket has a
//!   generation (0, then one more per restore) and writes it into every offset it sends. The
//!   database keeps one small row per socket id, `SocketRecord`: the generation in force and when
//!   the socket dropped. A restore must claim the generation in force, and moves it on with one
//!   compare-and-set (`generation = g + 1 WHERE generation = g`), so a pid is restored at most
//!   once per disconnection: a second CONNECT with the same offset finds `g + 1` and is refused.
//! - **Every connection gives the client a fresh offset at once**: `connection:status`, sent
//!   right after the CONNECT answer, carries it as its last argument. So a socket that received
//!   nothing can still be restored (socket.io issues 4888, 5538); after a restore the client's
//!   offset is of the new generation even when nothing was missed, so the next drop restores
//!   again (4880) and an old offset is never replayed (5419); and since positions are seqs, not
//!   packet ids kept for a while, a socket that heard nothing for hours is restored (5282).
//! - **Refused means a new socket**: a new id and pid, `recovered` false, rooms joined afresh
//!   (SPEC 11 requires every missed event or none; a position older than a room's kept history
//!   is the transport's refusal, as `resync` is natively).

use super::offset::{Offset, OffsetError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// What the pid key is derived for: a key of its own, never the token signing key itself.
const KEY_LABEL: &[u8] = b"rallypoint socket.io pid key 1";
/// The longest socket id a pid may name (ours are 20 characters).
const MAX_SID_LEN: usize = 64;

/// The key that signs and checks pids.
#[derive(Clone)]
pub struct PidKey {
    mac: HmacSha256,
}

impl fmt::Debug for PidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PidKey(..)")
    }
}

/// Why a pid is not one this server signed for this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PidError {
    #[error("the pid key's secret is empty")]
    EmptySecret,
    #[error("the pid is not `<sid>.<mac>`")]
    Malformed,
    #[error("the pid's signature does not match (another key, another user, or forged)")]
    BadSignature,
}

impl PidKey {
    /// The pid key derived from the server's secret (the HS256 token secret, say): an HMAC of a
    /// fixed label, so the secret never signs pids itself.
    pub fn derive(secret: &[u8]) -> Result<PidKey, PidError> {
        if secret.is_empty() {
            return Err(PidError::EmptySecret);
        }
        let mut kdf = HmacSha256::new_from_slice(secret).map_err(|_| PidError::EmptySecret)?;
        kdf.update(KEY_LABEL);
        let key = kdf.finalize().into_bytes();
        let mac = HmacSha256::new_from_slice(&key).map_err(|_| PidError::EmptySecret)?;
        Ok(PidKey { mac })
    }

    /// The MAC over what a pid names, each part length-prefixed so no two (sid, sub) pairs meet.
    fn mac_for(&self, sid: &str, sub: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&(sid.len() as u64).to_be_bytes());
        mac.update(sid.as_bytes());
        mac.update(&(sub.len() as u64).to_be_bytes());
        mac.update(sub.as_bytes());
        mac
    }

    /// The pid of socket `sid` (a `handshake::new_id`) owned by `sub`: `<sid>.<mac>`, 64
    /// characters of base64url and a dot.
    pub fn sign(&self, sid: &str, sub: &str) -> String {
        let tag = self.mac_for(sid, sub).finalize().into_bytes();
        format!("{sid}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks that `pid` was signed for `sub` and returns the socket id it names. The MAC is
    /// compared in constant time.
    pub fn verify<'p>(&self, pid: &'p str, sub: &str) -> Result<&'p str, PidError> {
        let (sid, tag) = pid.rsplit_once('.').ok_or(PidError::Malformed)?;
        let sid_ok = !sid.is_empty()
            && sid.len() <= MAX_SID_LEN
            && sid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !sid_ok || tag.len() != 43 {
            return Err(PidError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| PidError::Malformed)?;
        self.mac_for(sid, sub)
            .verify_slice(&tag)
            .map_err(|_| PidError::BadSignature)?;
        Ok(sid)
    }
}

/// What a reconnecting client claims in its CONNECT `auth`: the `pid` and `offset` it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryClaim {
    pub pid: String,
    /// `None` when the client never got an event on the socket (socket.io-client then sends no
    /// `offset`).
    pub offset: Option<String>,
}

impl RecoveryClaim {
    /// The claim in a CONNECT's `auth`, if it makes one (a string `pid`; a non-string `offset`
    /// counts as none, as the reference server treats it).
    pub fn from_auth(auth: Option<&Map<String, Value>>) -> Option<RecoveryClaim> {
        let auth = auth?;
        let pid = auth.get("pid")?.as_str()?.to_string();
        let offset = auth
            .get("offset")
            .and_then(Value::as_str)
            .map(str::to_string);
        Some(RecoveryClaim { pid, offset })
    }

    /// Checks the claim against the token's `sub`: the socket id it names and the offset it
    /// resumes from. The database is consulted next (`Claimed::restore`).
    pub fn check(&self, key: &PidKey, sub: &str) -> Result<Claimed, Refused> {
        let sid = key.verify(&self.pid, sub).map_err(Refused::BadPid)?;
        let offset = self.offset.as_deref().ok_or(Refused::NoOffset)?;
        let offset = Offset::parse(offset).map_err(Refused::BadOffset)?;
        Ok(Claimed {
            sid: sid.to_string(),
            offset,
        })
    }
}

/// A claim whose pid is good: the socket it names and the offset it resumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub sid: String,
    pub offset: Offset,
}

/// The database's row for one socket id: all the server keeps between connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketRecord {
    /// The generation of the socket's current (or last) connection.
    pub generation: u64,
    /// When its last connection dropped (milliseconds since the epoch); `None` while a
    /// connection holds it, or before its node noticed the drop.
    pub disconnected_at_ms: Option<i64>,
}

/// Why a reconnecting socket gets a new identity instead of its old one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the pid does not check: {0}")]
    BadPid(PidError),
    #[error("the client sent a pid but no offset")]
    NoOffset,
    #[error("the offset does not parse: {0}")]
    BadOffset(OffsetError),
    #[error("no socket has this id (never, or its record expired)")]
    UnknownSocket,
    #[error("this offset's connection was already restored (generation {claimed}, now {current})")]
    AlreadyRestored { claimed: u64, current: u64 },
    #[error("the offset claims generation {claimed}, ahead of the socket's {current}")]
    FutureGeneration { claimed: u64, current: u64 },
    #[error("the socket dropped longer ago than the recovery window")]
    Expired,
}

/// A restore the server may make: once the compare-and-set of the generation from
/// `expected_generation` to `offset.generation()` succeeds, the socket is `sid` again, in the
/// rooms of `offset` that the token still may join, each replayed from its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub sid: String,
    pub expected_generation: u64,
    /// The positions to replay from, already of the new connection's generation.
    pub offset: Offset,
}

impl Claimed {
    /// Decides the restore from the socket's record: the generation claimed must be the one in
    /// force, and the drop (if noticed) at most `window_ms` ago at `now_ms`. A socket still held
    /// by a connection may be taken over: its node has not seen the drop the client did, and
    /// must close that connection when the generation moves on.
    pub fn restore(
        self,
        record: Option<&SocketRecord>,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Restore, Refused> {
        let record = record.ok_or(Refused::UnknownSocket)?;
        let (claimed, current) = (self.offset.generation(), record.generation);
        if claimed < current {
            return Err(Refused::AlreadyRestored { claimed, current });
        }
        if claimed > current {
            return Err(Refused::FutureGeneration { claimed, current });
        }
        if let Some(at) = record.disconnected_at_ms {
            if now_ms.saturating_sub(at) > window_ms {
                return Err(Refused::Expired);
            }
        }
        Ok(Restore {
            sid: self.sid,
            expected_generation: current,
            offset: self.offset.next_generation(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> PidKey {
        PidKey::derive(b"test secret").unwrap_or_else(|e| panic!("{e}"))
    }

    fn auth(v: Value) -> Option<Map<String, Value>> {
        v.as_object().cloned()
    }

    #[test]
    fn a_pid_checks_for_its_owner_only() {
        let k = key();
        let pid = k.sign("wZX3oN0bSVIhsaknAAAI", "driver-7");
        assert_eq!(pid.len(), 20 + 1 + 43);
        assert_eq!(
            pid,
            k.sign("wZX3oN0bSVIhsaknAAAI", "driver-7"),
            "the same string every time"
        );
        assert_eq!(k.verify(&pid, "driver-7"), Ok("wZX3oN0bSVIhsaknAAAI"));
        assert_eq!(k.verify(&pid, "driver-8"), Err(PidError::BadSignature));
        let other = PidKey::derive(b"another secret").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.verify(&pid, "driver-7"), Err(PidError::BadSignature));
        let forged = format!("xZX3oN0bSVIhsaknAAAI{}", &pid[20..]);
        assert_eq!(k.verify(&forged, "driver-7"), Err(PidError::BadSignature));
    }

    #[test]
    fn malformed_pids_and_empty_secrets_are_refused() {
        let k = key();
        for pid in [
            "",
            "abc",
            ".",
            "a.b",
            "a b.AAAA",
            &format!("{}.{}", "a".repeat(65), "A".repeat(43)),
        ] {
            assert_eq!(k.verify(pid, "s"), Err(PidError::Malformed), "{pid:?}");
        }
        assert_eq!(
            k.verify(&format!("a.{}", "*".repeat(43)), "s"),
            Err(PidError::Malformed)
        );
        assert!(matches!(PidKey::derive(b""), Err(PidError::EmptySecret)));
        assert_eq!(format!("{k:?}"), "PidKey(..)");
    }

    #[test]
    fn the_claim_is_read_from_the_connect_auth_socket_io_client_sends() {
        // `Object.assign({ pid, offset }, auth)`: our token sits beside them.
        let a = auth(json!({"pid": "p", "offset": "0|dispatch=3", "token": "t"}));
        let claim = RecoveryClaim::from_auth(a.as_ref());
        assert_eq!(
            claim,
            Some(RecoveryClaim {
                pid: "p".into(),
                offset: Some("0|dispatch=3".into())
            })
        );
        let no_offset = auth(json!({"pid": "p", "offset": 3}));
        assert_eq!(
            RecoveryClaim::from_auth(no_offset.as_ref()).map(|c| c.offset),
            Some(None)
        );
        assert_eq!(
            RecoveryClaim::from_auth(auth(json!({"token": "t"})).as_ref()),
            None
        );
        assert_eq!(
            RecoveryClaim::from_auth(auth(json!({"pid": 1})).as_ref()),
            None
        );
        assert_eq!(RecoveryClaim::from_auth(None), None);
    }

    fn claim(k: &PidKey, offset: Option<&str>) -> RecoveryClaim {
        RecoveryClaim {
            pid: k.sign("sock1", "sub1"),
            offset: offset.map(str::to_string),
        }
    }

    #[test]
    fn a_good_claim_names_its_socket_and_offset() {
        let k = key();
        let claimed = claim(&k, Some("2|dispatch=9")).check(&k, "sub1");
        let claimed = claimed.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claimed.sid, "sock1");
        assert_eq!(claimed.offset.position("dispatch"), Some(9));
        assert_eq!(claim(&k, None).check(&k, "sub1"), Err(Refused::NoOffset));
        assert!(matches!(
            claim(&k, Some("x")).check(&k, "sub1"),
            Err(Refused::BadOffset(_))
        ));
        assert_eq!(
            claim(&k, Some("0")).check(&k, "sub2"),
            Err(Refused::BadPid(PidError::BadSignature))
        );
    }

    fn claimed(generation: u64) -> Claimed {
        let mut offset = Offset::new(generation);
        offset.join("dispatch", 9);
        Claimed {
            sid: "sock1".into(),
            offset,
        }
    }

    const WINDOW: i64 = 120_000;

    #[test]
    fn a_recent_drop_is_restored_with_the_next_generation() {
        let record = SocketRecord {
            generation: 2,
            disconnected_at_ms: Some(1_000),
        };
        let restore = claimed(2).restore(Some(&record), 1_000 + WINDOW, WINDOW);
        let restore = restore.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restore.sid, "sock1");
        assert_eq!(restore.expected_generation, 2);
        assert_eq!(restore.offset.generation(), 3);
        assert_eq!(restore.offset.position("dispatch"), Some(9));
    }

    #[test]
    fn an_offset_restores_once_but_every_drop_restores() {
        // Socket.IO issue 4880 (recovery only once) and 5419 (the same offset again): the first
        // restore moves the generation on; the same offset is then refused, while the offset the
        // restored connection sent (generation 1) restores after the next drop.
        let mut record = SocketRecord {
            generation: 0,
            disconnected_at_ms: Some(0),
        };
        let first = claimed(0).restore(Some(&record), 10, WINDOW);
        let first = first.unwrap_or_else(|e| panic!("{e}"));
        record.generation = first.offset.generation();
        assert_eq!(
            claimed(0).restore(Some(&record), 20, WINDOW),
            Err(Refused::AlreadyRestored {
                claimed: 0,
                current: 1
            })
        );
        record.disconnected_at_ms = Some(30);
        let second = claimed(first.offset.generation()).restore(Some(&record), 40, WINDOW);
        assert_eq!(second.map(|r| r.offset.generation()), Ok(2));
    }

    #[test]
    fn a_long_lived_quiet_socket_is_restored() {
        // Socket.IO issue 5282: the reference fails when the last event is older than the
        // window. Here only the drop's age counts, not the offset's.
        let record = SocketRecord {
            generation: 0,
            disconnected_at_ms: Some(86_400_000),
        };
        let restore = claimed(0).restore(Some(&record), 86_400_000 + 5_000, WINDOW);
        assert!(restore.is_ok());
    }

    #[test]
    fn stale_unknown_or_future_claims_are_refused() {
        let record = SocketRecord {
            generation: 0,
            disconnected_at_ms: Some(0),
        };
        assert_eq!(
            claimed(0).restore(Some(&record), WINDOW + 1, WINDOW),
            Err(Refused::Expired)
        );
        assert_eq!(
            claimed(0).restore(None, 0, WINDOW),
            Err(Refused::UnknownSocket)
        );
        assert_eq!(
            claimed(5).restore(Some(&record), 0, WINDOW),
            Err(Refused::FutureGeneration {
                claimed: 5,
                current: 0
            })
        );
        // A drop its node has not noticed yet: the client's reconnect takes the socket over.
        let held = SocketRecord {
            generation: 0,
            disconnected_at_ms: None,
        };
        assert!(claimed(0).restore(Some(&held), i64::MAX, WINDOW).is_ok());
    }
}
