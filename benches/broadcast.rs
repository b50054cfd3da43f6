//! A room broadcast to 10,000 session-like actors, timed from the publication until the last
//! member has handled its frame.
//!
//! The members are small actix actors behind a `Recipient<Deliver>`, as a `RoomActor` sees its
//! sessions; they count the frame and drop it (no socket: the kernel's share is the load
//! generator's to measure). The room is a stand-in running the `RoomActor`'s fan-out loop
//! (`try_send` of one shared `ByteString` per member), since the real one reads its seq from the
//! database when it starts. Two layouts:
//! - `local`: room and members on one arbiter, the layout of a fan-out actor per worker thread;
//! - `cross_arbiter`: the room on one arbiter and the members spread over two others, as the
//!   engine's rooms and the HTTP workers' sessions are today.

use actix::prelude::*;
use bytestring::ByteString;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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
    let pending = Arc::new(Pending {
        left: AtomicUsize::new(0),
        done: Notify::new(),
    });
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

/// Times `iters` broadcasts, each until its last member has handled it.
async fn broadcast(room: &Addr<Room>, pending: &Pending, iters: u64) -> Duration {
    let text = ByteString::from(format!(
        r#"{{"type":"emergency_event","room":"fleet:default","seq":1,"id":"x","padding":"{}"}}"#,
        "x".repeat(300)
    ));
    let started = Instant::now();
    for _ in 0..iters {
        pending.left.store(MEMBERS, Ordering::Release);
        let reached = room.send(Publish(text.clone())).await.unwrap_or(0);
        assert_eq!(reached, MEMBERS, "a member's mailbox was full or closed");
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
