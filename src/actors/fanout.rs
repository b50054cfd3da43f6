//! `Fanout`: one per worker thread, writing room frames to the sessions of its own thread.
//!
//! Rooms run on the engine's arbiter and sessions on the HTTP workers. Rather than one message
//! per member across threads, a room sends each worker one `FanOut` per publication: the frames,
//! serialized once and shared, and that worker's members (a snapshot the room rebuilds only when
//! its membership changes). The worker's `Fanout` actor then appends the frames to each local
//! session's outbox, a ring buffer in this thread's table that keeps its capacity, and wakes the
//! session. Nothing is allocated per recipient and no atomic channel is touched per recipient.
//!
//! A woken session drains its whole outbox into its WebSocket context in one go, so the frames
//! that arrived since its last write leave in one write (coalesced per socket). An outbox that
//! holds `limits.outbound_queue` frames belongs to a peer that stopped reading: it takes no more,
//! and the session is told to close with 4008 (see `Hub::evict_slow_consumer`).

use super::Hub;
use crate::protocol::SessionId;
use actix::prelude::*;
use bytestring::ByteString;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context as TaskContext, Poll, Waker};

/// A session's place in its worker's table: the slot and the slot's generation (a slot is reused
/// once its session is gone; a stale `Slot` then finds nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    index: u32,
    generation: u32,
}

/// Frames for some of one worker's sessions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FanOut {
    /// In order; the same shared bytes for every recipient.
    pub frames: Arc<[ByteString]>,
    pub to: Arc<[Slot]>,
}

/// A worker's sessions.
#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Entry {
    generation: u32,
    outbox: Option<Outbox>,
}

struct Outbox {
    session: SessionId,
    frames: VecDeque<ByteString>,
    /// The session's task, parked on an empty outbox.
    waker: Option<Waker>,
    /// Over its limit: the session was told to close and takes no more frames.
    evicted: bool,
}

impl Table {
    fn get(&mut self, slot: Slot) -> Option<&mut Outbox> {
        let entry = self.entries.get_mut(slot.index as usize)?;
        if entry.generation != slot.generation {
            return None;
        }
        entry.outbox.as_mut()
    }

    fn insert(&mut self, session: SessionId) -> Slot {
        let outbox = Outbox {
            session,
            frames: VecDeque::new(),
            waker: None,
            evicted: false,
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry::default());
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.outbox = Some(outbox);
        Slot {
            index,
            generation: entry.generation,
        }
    }

    fn remove(&mut self, slot: Slot) {
        if let Some(entry) = self.entries.get_mut(slot.index as usize) {
            if entry.generation == slot.generation && entry.outbox.take().is_some() {
                entry.generation = entry.generation.wrapping_add(1);
                self.free.push(slot.index);
            }
        }
    }
}

/// Numbers the workers' fan-outs (unique in the process).
static NEXT_SHARD: AtomicU32 = AtomicU32::new(1);

/// This thread's fan-out for one hub: its actor and its table of sessions. Cloned by every
/// session of the thread, so it is one shared allocation (cloning an `Addr` allocates).
#[derive(Clone)]
pub struct Local(Rc<LocalInner>);

struct LocalInner {
    shard: u32,
    addr: Addr<Fanout>,
    table: RefCell<Table>,
}

thread_local! {
    /// Per hub (tests run several engines in one process), this thread's fan-out.
    static LOCAL: RefCell<Vec<(Weak<Hub>, Local)>> = const { RefCell::new(Vec::new()) };
}

/// The current thread's fan-out for `hub`, started on first use. Must be called on an arbiter
/// (a session's worker).
pub fn local(hub: &Arc<Hub>) -> Local {
    LOCAL.with(|locals| {
        let mut locals = locals.borrow_mut();
        locals.retain(|(h, _)| h.strong_count() > 0);
        if let Some((_, l)) = locals
            .iter()
            .find(|(h, _)| std::ptr::eq(h.as_ptr(), &**hub))
        {
            return l.clone();
        }
        let local = Local::start(Arc::downgrade(hub), hub.settings.limits.outbound_queue);
        log::debug!(
            "[BROADCAST] fan-out {} started on {:?}",
            local.0.shard,
            std::thread::current().name()
        );
        locals.push((Arc::downgrade(hub), local.clone()));
        local
    })
}

impl Local {
    /// Starts a fan-out on the current arbiter: `capacity` frames per outbox, slow consumers
    /// evicted through `hub` (none when it is gone). `local` keeps one per thread and hub.
    pub fn start(hub: Weak<Hub>, capacity: usize) -> Local {
        Local(Rc::new_cyclic(|me: &std::rc::Weak<LocalInner>| {
            let fanout = Fanout {
                hub,
                local: me.clone(),
                capacity: capacity.max(1),
            };
            LocalInner {
                shard: NEXT_SHARD.fetch_add(1, Ordering::Relaxed),
                addr: fanout.start(),
                table: RefCell::new(Table::default()),
            }
        }))
    }

    /// The fan-out actor, which takes `FanOut`.
    pub fn fanout(&self) -> &Addr<Fanout> {
        &self.0.addr
    }

    /// Gives a session an outbox; it is removed when the `Registration` is dropped.
    pub fn register(&self, session: SessionId) -> Registration {
        let slot = self.0.table.borrow_mut().insert(session);
        Registration {
            local: self.clone(),
            slot,
        }
    }
}

/// A session's outbox, for as long as the session holds it.
pub struct Registration {
    local: Local,
    slot: Slot,
}

impl Registration {
    /// How a room reaches this session: through this worker's fan-out.
    pub fn endpoint(&self) -> super::room::Endpoint {
        super::room::Endpoint::Local {
            shard: self.local.0.shard,
            fanout: self.local.0.addr.clone(),
            slot: self.slot,
        }
    }

    /// The session's slot, to name it in a `FanOut`.
    pub fn slot(&self) -> Slot {
        self.slot
    }

    /// Hands every waiting frame to `write`, in order.
    pub fn drain(&self, mut write: impl FnMut(ByteString)) {
        let mut table = self.local.0.table.borrow_mut();
        if let Some(outbox) = table.get(self.slot) {
            while let Some(frame) = outbox.frames.pop_front() {
                write(frame);
            }
        }
    }

    /// A stream that yields whenever frames wait in the outbox (the session drains it then).
    pub fn ready(&self) -> Ready {
        Ready {
            local: self.local.clone(),
            slot: self.slot,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.local.0.table.borrow_mut().remove(self.slot);
    }
}

/// Yields `FramesWaiting` when the outbox has frames; ends when the outbox is gone.
pub struct Ready {
    local: Local,
    slot: Slot,
}

/// Frames wait in the session's outbox.
pub struct FramesWaiting;

impl futures_util::Stream for Ready {
    type Item = FramesWaiting;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<FramesWaiting>> {
        let mut table = self.local.0.table.borrow_mut();
        let Some(outbox) = table.get(self.slot) else {
            return Poll::Ready(None);
        };
        if !outbox.frames.is_empty() {
            return Poll::Ready(Some(FramesWaiting));
        }
        match &outbox.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => outbox.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// One worker's fan-out actor.
pub struct Fanout {
    hub: Weak<Hub>,
    /// Weak: the actor's `Addr` lives in it.
    local: std::rc::Weak<LocalInner>,
    /// `limits.outbound_queue`: frames an outbox may hold.
    capacity: usize,
}

impl Actor for Fanout {
    type Context = Context<Self>;
}

impl Handler<FanOut> for Fanout {
    type Result = ();

    fn handle(&mut self, msg: FanOut, _: &mut Context<Self>) {
        let Some(local) = self.local.upgrade() else {
            return;
        };
        let mut slow = Vec::new();
        {
            let mut table = local.table.borrow_mut();
            for slot in msg.to.iter() {
                let Some(outbox) = table.get(*slot) else {
                    continue; // gone since the room's snapshot
                };
                if outbox.evicted {
                    continue;
                }
                if outbox.frames.len() + msg.frames.len() > self.capacity {
                    outbox.evicted = true;
                    slow.push(outbox.session);
                    continue;
                }
                outbox.frames.extend(msg.frames.iter().cloned());
                if let Some(waker) = outbox.waker.take() {
                    waker.wake();
                }
            }
        }
        if let Some(hub) = self.hub.upgrade() {
            for id in slow {
                hub.evict_slow_consumer(id, "outbox");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_reach_the_session_that_left() {
        let mut t = Table::default();
        let a = t.insert(SessionId(1));
        t.remove(a);
        let b = t.insert(SessionId(2));
        assert_eq!(a.index, b.index, "the slot is reused");
        assert!(t.get(a).is_none(), "the old slot finds nothing");
        assert_eq!(t.get(b).map(|o| o.session), Some(SessionId(2)));
        t.remove(a); // a stale removal leaves the new session alone
        assert!(t.get(b).is_some());
    }
}
