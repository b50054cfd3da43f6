//! The per-socket offset of connection state recovery: where one socket stands in each of its
//! rooms, and which of its connections wrote it.
//!
//! `socket.io-client` keeps the last string argument of the last event it received, one per
//! socket, and sends it back as `auth.offset` when it reconnects (`socket.io-client`
//! `lib/socket.ts`, `emitEvent` and `_sendConnectPacket`). Where the reference server sends the
//! id of the last packet (so it must keep every packet for the recovery window, and a quiet
//! socket's offset expires: socket.io issue 5282), ours sends the socket's position in every room
//! it is in: `<generation>|<room>=<seq>|<room>=<seq>...`, rooms sorted, for example
//! `3|dispatch=41|fleet:default=12`. From that alone any node can replay each room's history
//! after `seq`, however long the room was quiet.
//!
//! The generation counts the socket's connections (0 for the first, one more per restore), so an
//! offset is good for one restore only (see `recovery`). Room names are percent-encoded outside
//! the printable ASCII that JSON strings carry unescaped, less `%`, `|` and `=`: an encoded
//! offset is written into a frame as it is (`frame`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The longest offset accepted from a client, in bytes.
pub const MAX_OFFSET_LEN: usize = 16 * 1024;
/// The most rooms an offset may name (twice `limits.max_rooms_per_session`'s default).
pub const MAX_OFFSET_ROOMS: usize = 256;

/// A socket's positions in its rooms, and the connection that holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offset {
    generation: u64,
    positions: BTreeMap<String, i64>,
}

/// Why an offset from a client is not one this server wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetError {
    #[error("the offset is longer than {MAX_OFFSET_LEN} bytes")]
    TooLong,
    #[error("the offset names more than {MAX_OFFSET_ROOMS} rooms")]
    TooManyRooms,
    #[error("the offset's generation is not a number")]
    BadGeneration,
    #[error("entry {0} of the offset is not `room=seq`")]
    BadEntry(usize),
    #[error("entry {0} of the offset has a badly encoded room name")]
    BadRoom(usize),
    #[error("entry {0} of the offset has a seq that is not a number")]
    BadSeq(usize),
    #[error("the offset names room {0:?} twice")]
    DuplicateRoom(String),
}

impl Offset {
    /// The offset of a connection in no room yet.
    pub fn new(generation: u64) -> Offset {
        Offset {
            generation,
            positions: BTreeMap::new(),
        }
    }

    /// Which connection of the socket wrote this offset (0 for the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The same positions for the socket's next connection (a restore).
    pub fn next_generation(&self) -> Offset {
        Offset {
            generation: self.generation.saturating_add(1),
            positions: self.positions.clone(),
        }
    }

    /// The last seq of `room` this socket has, if it is in the room.
    pub fn position(&self, room: &str) -> Option<i64> {
        self.positions.get(room).copied()
    }

    /// The socket's rooms and positions, rooms in order.
    pub fn positions(&self) -> impl Iterator<Item = (&str, i64)> {
        self.positions
            .iter()
            .map(|(room, seq)| (room.as_str(), *seq))
    }

    /// How many rooms the socket is in.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether the socket is in no room.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The socket is in `room`, and has everything up to `seq` (the room's current seq at a
    /// join, the position it resumed from at a restore).
    pub fn join(&mut self, room: &str, seq: i64) {
        self.positions.insert(room.to_string(), seq);
    }

    /// The socket left `room`.
    pub fn leave(&mut self, room: &str) {
        self.positions.remove(room);
    }

    /// The socket got `room`'s message `seq`: moves its position there if it is in the room and
    /// `seq` is ahead. Call it for every room of a publication the socket is in, since it gets
    /// one copy for all of them (SPEC 11), or a restore would send the others again.
    pub fn advance(&mut self, room: &str, seq: i64) -> bool {
        match self.positions.get_mut(room) {
            Some(at) if seq > *at => {
                *at = seq;
                true
            }
            _ => false,
        }
    }

    /// Whether the socket already has the publication whose copies are `copies` (`room`, `seq`):
    /// a replay merging several rooms' histories skips it then, so it is sent once.
    pub fn has_seen<'a, I>(&self, copies: I) -> bool
    where
        I: IntoIterator<Item = (&'a str, i64)>,
    {
        copies
            .into_iter()
            .any(|(room, seq)| self.position(room).is_some_and(|at| at >= seq))
    }

    /// The string the client keeps, `<generation>|<room>=<seq>...`.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4 + self.positions.len() * 24);
        let _ = write!(out, "{}", self.generation);
        for (room, seq) in &self.positions {
            out.push('|');
            push_room(&mut out, room);
            let _ = write!(out, "={seq}");
        }
        out
    }

    /// Reads an offset a client sent back; anything this server would not have written is an
    /// error.
    pub fn parse(s: &str) -> Result<Offset, OffsetError> {
        if s.len() > MAX_OFFSET_LEN {
            return Err(OffsetError::TooLong);
        }
        let mut parts = s.split('|');
        let generation = parts
            .next()
            .and_then(digits::<u64>)
            .ok_or(OffsetError::BadGeneration)?;
        let mut positions = BTreeMap::new();
        for (i, entry) in parts.enumerate() {
            if i >= MAX_OFFSET_ROOMS {
                return Err(OffsetError::TooManyRooms);
            }
            let (room, seq) = entry.rsplit_once('=').ok_or(OffsetError::BadEntry(i))?;
            let room = decode_room(room).ok_or(OffsetError::BadRoom(i))?;
            let seq = digits::<i64>(seq).ok_or(OffsetError::BadSeq(i))?;
            if positions.insert(room.clone(), seq).is_some() {
                return Err(OffsetError::DuplicateRoom(room));
            }
        }
        Ok(Offset {
            generation,
            positions,
        })
    }
}

/// A number written as ASCII digits only (no sign, no spaces).
fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether a byte of a room name is written as it is.
fn is_plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !matches!(b, b'"' | b'\\' | b'%' | b'|' | b'=')
}

fn push_room(out: &mut String, room: &str) {
    for b in room.bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn decode_room(s: &str) -> Option<String> {
    if s.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            // One spelling per name: a byte that is written plain must not come escaped.
            if is_plain(byte)
                || !hex
                    .bytes()
                    .all(|h| h.is_ascii_digit() || h.is_ascii_uppercase())
            {
                return None;
            }
            out.push(byte);
            i += 3;
        } else if is_plain(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(generation: u64, rooms: &[(&str, i64)]) -> Offset {
        let mut o = Offset::new(generation);
        for (room, seq) in rooms {
            o.join(room, *seq);
        }
        o
    }

    #[test]
    fn an_offset_names_the_generation_then_each_room_and_its_seq_in_order() {
        let o = offset(3, &[("fleet:default", 12), ("dispatch", 41)]);
        assert_eq!(o.encode(), "3|dispatch=41|fleet:default=12");
        assert_eq!(Offset::parse("3|dispatch=41|fleet:default=12"), Ok(o));
        assert_eq!(Offset::new(0).encode(), "0");
        assert_eq!(Offset::parse("0"), Ok(Offset::new(0)));
    }

    #[test]
    fn room_names_with_separators_quotes_or_non_ascii_are_percent_encoded() {
        let o = offset(1, &[("fleet:a|b=c", 1), ("event:\"x\"\\ é%", 2)]);
        let s = o.encode();
        assert_eq!(s, "1|event:%22x%22%5C%20%C3%A9%25=2|fleet:a%7Cb%3Dc=1");
        assert_eq!(Offset::parse(&s), Ok(o));
        // Written into a frame as it is: JSON has nothing to escape in it.
        assert_eq!(
            serde_json::Value::from(s.clone()).to_string(),
            format!("\"{s}\"")
        );
    }

    #[test]
    fn advancing_moves_only_forward_and_only_in_the_sockets_rooms() {
        let mut o = offset(0, &[("dispatch", 5)]);
        assert!(o.advance("dispatch", 6));
        assert!(!o.advance("dispatch", 6));
        assert!(!o.advance("dispatch", 2));
        assert!(!o.advance("fleet:default", 9));
        assert_eq!(o.position("dispatch"), Some(6));
        assert_eq!(o.position("fleet:default"), None);
        o.leave("dispatch");
        assert!(o.is_empty());
    }

    #[test]
    fn a_publication_seen_through_any_of_its_rooms_is_seen() {
        // One emergency to `fleet:f` (seq 10) and `dispatch` (seq 20); the socket got the
        // `fleet:f` copy and both positions moved, as one copy per socket requires.
        let mut o = offset(0, &[("fleet:f", 9), ("dispatch", 19)]);
        let copies = [("fleet:f", 10), ("dispatch", 20)];
        assert!(!o.has_seen(copies));
        for (room, seq) in copies {
            o.advance(room, seq);
        }
        assert!(o.has_seen(copies));
        assert!(o.has_seen([("dispatch", 20), ("order:x", 3)]));
        assert!(!o.has_seen([("dispatch", 21)]));
    }

    #[test]
    fn offsets_this_server_never_writes_are_refused() {
        let cases: [(&str, OffsetError); 12] = [
            ("", OffsetError::BadGeneration),
            ("x", OffsetError::BadGeneration),
            ("-1", OffsetError::BadGeneration),
            ("99999999999999999999999", OffsetError::BadGeneration),
            ("1|", OffsetError::BadEntry(0)),
            ("1|dispatch", OffsetError::BadEntry(0)),
            ("1|=3", OffsetError::BadRoom(0)),
            ("1|a%2=3", OffsetError::BadRoom(0)),
            ("1|a%41=3", OffsetError::BadRoom(0)),
            ("1|a b=3", OffsetError::BadRoom(0)),
            ("1|a=-3", OffsetError::BadSeq(0)),
            ("1|a=1|a=2", OffsetError::DuplicateRoom("a".into())),
        ];
        for (s, err) in cases {
            assert_eq!(Offset::parse(s), Err(err), "{s:?}");
        }
        assert_eq!(Offset::parse("1|a%ff=1"), Err(OffsetError::BadRoom(0)));
        assert_eq!(Offset::parse("1|a%C3=1"), Err(OffsetError::BadRoom(0)));
        assert_eq!(
            Offset::parse(&"1".repeat(MAX_OFFSET_LEN + 1)),
            Err(OffsetError::TooLong)
        );
        let many: String = (0..=MAX_OFFSET_ROOMS).map(|i| format!("|r{i}=1")).collect();
        assert_eq!(
            Offset::parse(&format!("0{many}")),
            Err(OffsetError::TooManyRooms)
        );
    }

    #[test]
    fn the_next_generation_keeps_the_positions() {
        let o = offset(4, &[("dispatch", 7)]);
        let next = o.next_generation();
        assert_eq!(next.generation(), 5);
        assert_eq!(next.positions().collect::<Vec<_>>(), vec![("dispatch", 7)]);
    }
}
