//! A room broadcast to 10,000 session-like actors, timed from the publication until the last
//! member has handled its frame.
//!
//! The members are small actix actors behind a `Recipient<Deliver>`, as a `RoomActor` sees its
//! sessions; they count the frame and drop it (no socket: the kernel's share is the load
//! generator's to measure). The room is a stand-in running the `RoomActor`'s fan-out loop
//! (`try_send` of one shared `ByteString` per member), since the real one reads its seq from the
//! database when it starts. Two layouts:
//! - `local`: room and members on one arbiter, the layout of a fan-out actor per worker thread;
//! - `cross_arbiter`: the room on one arbiter and the members spread over two others, each
//!   messaged by the room across threads (the engine's design before the per-worker fan-out);
//! - `fanout`: the same placement through the engine's `fanout`: the room sends one `FanOut` per
//!   worker, and each worker's fan-out actor queues the frame in its members' outboxes and wakes
//!   them; members drain their outbox in a `StreamHandler`, as `WsSession` does.

use actix::prelude::*;
use bytestring::ByteString;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rallypoint::actors::fanout::{FanOut, FramesWaiting, Local, Registration, Slot};
use rallypoint::actors::Deliver;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const MEMBERS: usize = 10_000;

/// Counts down the members still to handle the current frame; the last one wakes the bench.
struct Pending {
    left: AtomicUsize,
    done: Notify,
}

impl Pending {
    fn new() -> Arc<Pending> {
        Arc::new(Pending {
            left: AtomicUsize::new(0),
            done: Notify::new(),
        })
    }
}

/// A session as the room sees it: something that takes a `Deliver`.
struct Member {
    pending: Arc<Pending>,
}

impl Actor for Member {
    type Context = Context<Self>;
}

impl Handler<Deliver> for Member {
    type Result = ();

    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
        if let Deliver::Frame(text) = msg {
            black_box(text.len());
        }
        if self.pending.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.pending.done.notify_one();
        }
    }
}

/// Sends one frame to every member.
#[derive(Message)]
#[rtype(result = "usize")]
struct Publish(ByteString);

/// The `RoomActor`'s fan-out, without its database.
struct Room {
    members: HashMap<u64, Recipient<Deliver>>,
}

impl Actor for Room {
    type Context = Context<Self>;
}

impl Handler<Publish> for Room {
    type Result = usize;

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> usize {
        let mut reached = 0;
        for member in self.members.values() {
            if member.try_send(Deliver::Frame(msg.0.clone())).is_ok() {
                reached += 1;
            }
        }
        reached
    }
}

/// A room of `MEMBERS` members, placed on `arbiters` in turn (the current one when empty), and
/// the countdown they share.
fn room(arbiters: &[ArbiterHandle]) -> (Addr<Room>, Arc<Pending>) {
    let pending = Pending::new();
    let members = (0..MEMBERS)
        .map(|i| {
            let p = pending.clone();
            let member = move |_: &mut Context<Member>| Member { pending: p };
            let addr = match arbiters.get(i % arbiters.len().max(1)) {
                Some(a) => Member::start_in_arbiter(a, member),
                None => Member::create(member),
            };
            (i as u64, addr.recipient())
        })
        .collect();
    (Room { members }.start(), pending)
}

/// The frame every bench fans out: an `emergency_event` of about 380 bytes.
fn frame() -> ByteString {
    ByteString::from(format!(
        r#"{{"type":"emergency_event","room":"fleet:default","seq":1,"id":"x","padding":"{}"}}"#,
        "x".repeat(300)
    ))
}

/// Times `iters` broadcasts, each until its last member has handled it.
async fn broadcast(room: &Addr<Room>, pending: &Pending, iters: u64) -> Duration {
    let text = frame();
    let started = Instant::now();
    for _ in 0..iters {
        pending.left.store(MEMBERS, Ordering::Release);
        let reached = room.send(Publish(text.clone())).await.unwrap_or(0);
        assert_eq!(reached, MEMBERS, "a member's mailbox was full or closed");
        pending.done.notified().await;
    }
    started.elapsed()
}

/// A session as a worker's fan-out sees it: an outbox it drains when woken.
struct OutboxMember {
    pending: Arc<Pending>,
    outbox: Registration,
}

impl Actor for OutboxMember {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(self.outbox.ready());
    }
}

impl StreamHandler<FramesWaiting> for OutboxMember {
    fn handle(&mut self, _: FramesWaiting, _: &mut Context<Self>) {
        let mut frames = 0;
        self.outbox.drain(|text| {
            black_box(text.len());
            frames += 1;
        });
        if self.pending.left.fetch_sub(frames, Ordering::AcqRel) == frames {
            self.pending.done.notify_one();
        }
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Starts a fan-out and `count` members on the current arbiter; answers the fan-out's address
/// and the members' slots.
fn worker(
    count: usize,
    pending: Arc<Pending>,
) -> (Addr<rallypoint::actors::fanout::Fanout>, Vec<Slot>) {
    let local = Local::start(std::sync::Weak::new(), 1024);
    let slots = (0..count)
        .map(|_| {
            let outbox = local.register(rallypoint::protocol::SessionId(0));
            let slot = outbox.slot();
            OutboxMember {
                pending: pending.clone(),
                outbox,
            }
            .start();
            slot
        })
        .collect();
    (local.fanout().clone(), slots)
}

/// The room's side: one `FanOut` per worker with that worker's slots.
async fn fan_out(
    workers: &[(Addr<rallypoint::actors::fanout::Fanout>, Arc<[Slot]>)],
    pending: &Pending,
    iters: u64,
) -> Duration {
    let text = frame();
    let started = Instant::now();
    for _ in 0..iters {
        pending.left.store(MEMBERS, Ordering::Release);
        let frames: Arc<[ByteString]> = Arc::from(vec![text.clone()]);
        for (addr, slots) in workers {
            addr.do_send(FanOut {
                frames: frames.clone(),
                to: slots.clone(),
            });
        }
        pending.done.notified().await;
    }
    started.elapsed()
}

fn bench_broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    group.throughput(Throughput::Elements(MEMBERS as u64));

    let system = System::new();
    let (local, local_pending) = system.block_on(async { room(&[]) });
    group.bench_function(BenchmarkId::new("local", MEMBERS), |b| {
        b.iter_custom(|iters| system.block_on(broadcast(&local, &local_pending, iters)))
    });

    let workers = [Arbiter::new(), Arbiter::new()];
    let handles: Vec<ArbiterHandle> = workers.iter().map(|a| a.handle()).collect();
    let (cross, cross_pending) = system.block_on(async { room(&handles) });
    group.bench_function(BenchmarkId::new("cross_arbiter", MEMBERS), |b| {
        b.iter_custom(|iters| system.block_on(broadcast(&cross, &cross_pending, iters)))
    });

    let fanout_pending = Pending::new();
    let (tx, rx) = std::sync::mpsc::channel();
    for a in &handles {
        let (tx, p) = (tx.clone(), fanout_pending.clone());
        let per_worker = MEMBERS / handles.len();
        a.spawn(async move {
            let (addr, slots) = worker(per_worker, p);
            let _ = tx.send((addr, Arc::<[Slot]>::from(slots)));
        });
    }
    drop(tx);
    let shards: Vec<_> = rx.iter().collect();
    assert_eq!(
        shards.len(),
        handles.len(),
        "every worker started its fan-out"
    );
    group.bench_function(BenchmarkId::new("fanout", MEMBERS), |b| {
        b.iter_custom(|iters| system.block_on(fan_out(&shards, &fanout_pending, iters)))
    });
    group.finish();

    for a in &workers {
        a.stop();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_broadcast
}
criterion_main!(benches);
