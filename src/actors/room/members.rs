//! A room's members, stored for what most rooms are: one or two sessions.
//!
//! Every online driver has a room of its own (`driver:<id>`) reached by its one or two sessions,
//! every order one reached by a driver and a customer; only the fleet and dispatch rooms grow to
//! thousands. A hash map costs its smallest table (four buckets and their control bytes) even for
//! one member, so a room keeps a short list until it holds `LIST_MAX` members and a map beyond.

use crate::protocol::SessionId;
use std::collections::HashMap;

/// Members kept in a list up to this many; a map beyond (a lookup in a list this short is a few
/// comparisons).
const LIST_MAX: usize = 8;

pub(super) enum Members<M> {
    List(Vec<(SessionId, M)>),
    Map(HashMap<SessionId, M>),
}

impl<M> Default for Members<M> {
    fn default() -> Self {
        Members::List(Vec::new())
    }
}

impl<M> Members<M> {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match self {
            Members::List(v) => v.len(),
            Members::Map(m) => m.len(),
        }
    }

    pub fn get(&self, id: &SessionId) -> Option<&M> {
        match self {
            Members::List(v) => v.iter().find(|(k, _)| k == id).map(|(_, m)| m),
            Members::Map(m) => m.get(id),
        }
    }

    pub fn get_mut(&mut self, id: &SessionId) -> Option<&mut M> {
        match self {
            Members::List(v) => v.iter_mut().find(|(k, _)| k == id).map(|(_, m)| m),
            Members::Map(m) => m.get_mut(id),
        }
    }

    /// Adds or replaces; answers the member replaced.
    pub fn insert(&mut self, id: SessionId, member: M) -> Option<M> {
        match self {
            Members::List(v) => {
                if let Some((_, old)) = v.iter_mut().find(|(k, _)| *k == id) {
                    return Some(std::mem::replace(old, member));
                }
                if v.len() < LIST_MAX {
                    // Grown by one at a time: a driver's room holds one or two for its life.
                    v.reserve_exact(1);
                    v.push((id, member));
                    return None;
                }
                let mut map: HashMap<SessionId, M> = v.drain(..).collect();
                map.insert(id, member);
                *self = Members::Map(map);
                None
            }
            Members::Map(m) => m.insert(id, member),
        }
    }

    /// Removes; answers the member removed. A map that shrinks back to a few becomes a list.
    pub fn remove(&mut self, id: &SessionId) -> Option<M> {
        match self {
            Members::List(v) => {
                let at = v.iter().position(|(k, _)| k == id)?;
                let (_, old) = v.swap_remove(at);
                if v.is_empty() {
                    // A room left by everyone gives its list back until someone joins again.
                    *v = Vec::new();
                }
                Some(old)
            }
            Members::Map(m) => {
                let old = m.remove(id)?;
                if m.len() <= LIST_MAX / 2 {
                    *self = Members::List(m.drain().collect());
                }
                Some(old)
            }
        }
    }

    pub fn iter(&self) -> Iter<'_, M> {
        match self {
            Members::List(v) => Iter::List(v.iter()),
            Members::Map(m) => Iter::Map(m.iter()),
        }
    }

    pub fn values(&self) -> impl Iterator<Item = &M> + '_ {
        self.iter().map(|(_, m)| m)
    }
}

/// The members, in no particular order.
pub(super) enum Iter<'a, M> {
    List(std::slice::Iter<'a, (SessionId, M)>),
    Map(std::collections::hash_map::Iter<'a, SessionId, M>),
}

impl<'a, M> Iterator for Iter<'a, M> {
    type Item = (&'a SessionId, &'a M);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::List(i) => i.next().map(|(k, m)| (k, m)),
            Iter::Map(i) => i.next(),
        }
    }
}

impl<'a, M> IntoIterator for &'a Members<M> {
    type Item = (&'a SessionId, &'a M);
    type IntoIter = Iter<'a, M>;

    fn into_iter(self) -> Iter<'a, M> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(m: &Members<u32>) -> Vec<(SessionId, u32)> {
        let mut v: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort();
        v
    }

    #[test]
    fn grows_from_a_list_into_a_map_and_back_keeping_every_member() {
        let mut m = Members::default();
        for i in 0..20u64 {
            assert_eq!(m.insert(SessionId(i), i as u32), None);
            assert_eq!(m.len(), i as usize + 1);
        }
        assert!(matches!(m, Members::Map(_)));
        assert_eq!(m.insert(SessionId(3), 33), Some(3));
        assert_eq!(m.get(&SessionId(3)), Some(&33));
        for i in 0..17u64 {
            assert!(m.remove(&SessionId(i)).is_some(), "member {i}");
        }
        assert!(
            matches!(m, Members::List(_)),
            "a map of three is a list again"
        );
        assert_eq!(
            ids(&m),
            vec![
                (SessionId(17), 17),
                (SessionId(18), 18),
                (SessionId(19), 19)
            ]
        );
        assert_eq!(m.remove(&SessionId(0)), None);
        if let Some(v) = m.get_mut(&SessionId(18)) {
            *v = 1;
        }
        assert_eq!(m.get(&SessionId(18)), Some(&1));
    }

    #[test]
    fn a_list_replaces_a_member_joining_again_and_empties_to_nothing() {
        let mut m = Members::default();
        assert_eq!(m.insert(SessionId(1), 1), None);
        assert_eq!(m.insert(SessionId(1), 2), Some(1));
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(&SessionId(1)), Some(2));
        assert!(m.is_empty());
        match &m {
            Members::List(v) => assert_eq!(v.capacity(), 0),
            Members::Map(_) => panic!("an empty room is a list"),
        }
    }
}
