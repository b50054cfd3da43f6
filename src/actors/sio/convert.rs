//! Room frames read for Socket.IO once per worker, not once per recipient.
//!
//! A room hands every member on a worker the same shared bytes (`fanout`). Each Socket.IO
//! recipient needs that frame as events (`socketio::names`), which means reading its JSON; doing
//! that per recipient would make a broadcast to 10,000 sockets 10,000 parses. So the worker's
//! thread keeps the last few frames it read, by the identity of their bytes (each held, so the
//! identity cannot be reused while cached), with the events' shared heads built once
//! (`SharedEvent`): a recipient then only writes its own offset after them.

use crate::config::LocationEvents;
use crate::socketio::names::{self, ServerEvents};
use crate::socketio::SharedEvent;
use bytestring::ByteString;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Frames remembered per thread: a publication's copies to several rooms, and the few
/// publications a busy worker interleaves.
const KEPT: usize = 8;

/// A frame read: what it is, each event's head, and its publication id hashed (a recipient
/// compares it with the ids it sent lately: numbers, not strings).
pub struct Converted {
    pub ev: ServerEvents,
    pub heads: Vec<SharedEvent>,
    pub id_hash: Option<u64>,
}

thread_local! {
    static LAST: RefCell<VecDeque<(ByteString, LocationEvents, Rc<Converted>)>> =
        const { RefCell::new(VecDeque::new()) };
}

/// `frame` read as Socket.IO events (`None`: not a message the engine writes).
pub fn convert(frame: &ByteString, mode: LocationEvents) -> Option<Rc<Converted>> {
    let same = |f: &ByteString| f.as_ptr() == frame.as_ptr() && f.len() == frame.len();
    let hit = LAST.with(|last| {
        last.borrow()
            .iter()
            .find(|(f, m, _)| same(f) && *m == mode)
            .map(|(_, _, c)| c.clone())
    });
    if hit.is_some() {
        return hit;
    }
    let ev = names::server_events(frame, mode)?;
    let heads = ev
        .events
        .iter()
        .map(|(name, payload)| SharedEvent::from_json_args(name, &[payload]))
        .collect();
    let id_hash = ev.id.as_deref().map(|id| {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
    });
    let converted = Rc::new(Converted { ev, heads, id_hash });
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.len() == KEPT {
            last.pop_front();
        }
        last.push_back((frame.clone(), mode, converted.clone()));
    });
    Some(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_read_once_and_equal_bytes_elsewhere_are_read_again() {
        let text = r#"{"type":"tick","data":{"n":1},"room":"dispatch","seq":3,"id":"p1"}"#;
        let a = ByteString::from(text.to_string());
        let first = convert(&a, LocationEvents::PerDriver).unwrap_or_else(|| panic!("read"));
        let again =
            convert(&a.clone(), LocationEvents::PerDriver).unwrap_or_else(|| panic!("read"));
        assert!(
            Rc::ptr_eq(&first, &again),
            "a clone shares the bytes: one read"
        );
        let b = ByteString::from(text.to_string());
        let other = convert(&b, LocationEvents::PerDriver).unwrap_or_else(|| panic!("read"));
        assert!(!Rc::ptr_eq(&first, &other));
        assert_eq!(other.heads[0].frame(), r#"42["tick",{"n":1}]"#);
        assert_eq!(first.ev.position, Some(("dispatch".into(), 3)));
    }
}
