//! Batch decisions (SPEC 4, docs/PROTOCOL.md "Batch decisions"): the scored reports that reach
//! the Dispatcher together are decided as one batch with the fleet's waiting orders.
//!
//! - Gathering: a report joins the open batch when it reached the Dispatcher within
//!   `dispatch.batch_window_ms` of the batch's first report, or while a batch was being decided.
//!   The batch is decided once the window has passed and every report of it has its risk score.
//! - Deciding, per fleet: a report alone, with no waiting order, takes the nearest available
//!   driver (today's fast path); otherwise `dispatch::storm` assigns the batch at minimum total
//!   distance, a reporter free for every order but its own. When an order stays unserved,
//!   orders a decision assigned within `dispatch.rematch_window_ms`, not yet picked up and not
//!   re-matched before, join as orders their driver keeps (moving one costs
//!   `dispatch.move_penalty_m`), and that answer is taken when it serves more.
//! - Committing: every change of the batch (incidents, moves, announcements, idempotent answers)
//!   in one transaction, each order's version and each driver's capacity checked: a rotation
//!   cannot be committed one move at a time, each needing the slot the next one frees. Then the
//!   orders' actors adopt their new state, and only then is anyone told. An order changed
//!   meanwhile rolls the batch back, which is decided again from fresh state.

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod commit;
mod decide;

/// A scored report, waiting for its batch.
#[derive(Debug)]
pub(in crate::actors::dispatcher) struct Scored {
    pub reporter: Claims,
    pub event_id: EventId,
    pub order_id: OrderId,
    pub reported_driver: Option<DriverId>,
    pub kind: IncidentKind,
    pub comment: Option<String>,
    pub risk_score: f64,
    pub risk_source: RiskSource,
    /// When the report reached the Dispatcher.
    pub received: Instant,
    pub answer: Option<AnswerKey>,
    /// Batches that tried it and were rolled back.
    pub attempts: u32,
}

struct Pending {
    scored: Scored,
    reply: oneshot::Sender<Result<EmergencyEvent, AppError>>,
}

/// An order a decision assigned lately: it may be re-matched once within the window.
struct Recent {
    fleet: String,
    at: Instant,
    rematched: bool,
}

/// The Dispatcher's batching state.
#[derive(Default)]
pub(super) struct Batching {
    /// Reports in their risk phase, by ticket: when each reached the Dispatcher.
    intake: HashMap<u64, Instant>,
    next_ticket: u64,
    pending: Vec<Pending>,
    /// A `RunBatch` is in the mailbox.
    queued: bool,
    timer: Option<SpawnHandle>,
    recent: HashMap<OrderId, Recent>,
}

impl Batching {
    /// A report starts its risk phase.
    pub fn begin_scoring(&mut self, received: Instant) -> u64 {
        self.next_ticket += 1;
        self.intake.insert(self.next_ticket, received);
        self.next_ticket
    }

    /// An order was assigned by a decision: it may be re-matched once (`rematched`: it just was).
    pub fn note_assigned(&mut self, order: &Order, rematched: bool) {
        self.recent.insert(
            order.id.clone(),
            Recent {
                fleet: order.fleet.clone(),
                at: Instant::now(),
                rematched,
            },
        );
    }

    pub fn forget(&mut self, order: &OrderId) {
        self.recent.remove(order);
    }
}

/// Decides the pending reports.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct RunBatch;

/// An order's actor and its state as read for a batch.
type Read = HashMap<OrderId, (Addr<OrderActor>, OrderState)>;

impl Dispatcher {
    /// A report has its score: it waits for its batch; the receiver gets its `emergency_event`.
    pub(super) fn scored(
        &mut self,
        ticket: u64,
        scored: Scored,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<EmergencyEvent, AppError>> {
        self.batching.intake.remove(&ticket);
        let (reply, answer) = oneshot::channel();
        self.batching.pending.push(Pending { scored, reply });
        self.schedule_batch(ctx);
        answer
    }

    /// Queues the batch once it is complete: its window has passed and the reports that reached
    /// the Dispatcher within it have their scores (a slow risk service is waited for at most its
    /// timeout). Through the mailbox, as `queue_dispatch` is.
    pub(super) fn schedule_batch(&mut self, ctx: &mut Context<Self>) {
        let b = &mut self.batching;
        if b.queued {
            return;
        }
        let Some(first) = b.pending.iter().map(|p| p.scored.received).min() else {
            return;
        };
        let settings = &self.hub.settings;
        let window = settings.dispatch.batch_window();
        let closes = first + window;
        let cap = closes + settings.risk.timeout() + Duration::from_millis(100);
        let now = Instant::now();
        let scoring = !window.is_zero() && b.intake.values().any(|r| *r <= closes);
        if (now >= closes && !scoring) || now >= cap {
            if let Some(t) = b.timer.take() {
                ctx.cancel_future(t);
            }
            b.queued = true;
            ctx.address().do_send(RunBatch);
            return;
        }
        let wake = if now < closes { closes } else { cap };
        if let Some(t) = b.timer.take() {
            ctx.cancel_future(t);
        }
        b.timer = Some(ctx.run_later(wake - now, |act, ctx| {
            act.batching.timer = None;
            act.schedule_batch(ctx);
        }));
    }
}

impl Handler<RunBatch> for Dispatcher {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: RunBatch, _: &mut Context<Self>) -> Self::Result {
        self.batching.queued = false;
        // One report per order in a batch; a second one for the same order waits for the next
        // batch, where it finds the order as the first one left it.
        let mut seen = HashSet::new();
        let (reports, later): (Vec<Pending>, Vec<Pending>) =
            std::mem::take(&mut self.batching.pending)
                .into_iter()
                .partition(|p| seen.insert(p.scored.order_id.clone()));
        self.batching.pending = later;
        if reports.is_empty() {
            return AtomicResponse::new(ready(()));
        }
        let ids: Vec<OrderId> = reports.iter().map(|p| p.scored.order_id.clone()).collect();
        AtomicResponse::new(Box::pin(
            self.read_orders(ids)
                .then(move |states, act: &mut Self, _| act.decide_batch(reports, states)),
        ))
    }
}

impl Dispatcher {
    /// The current state of each order that still has an actor, read from the actors at once.
    fn read_orders(&self, ids: Vec<OrderId>) -> impl ActorFuture<Self, Output = Read> {
        let hub = self.hub.clone();
        let reads = ids.into_iter().map(move |id| {
            let addr = hub.order(&id);
            async move {
                let addr = addr?;
                let state = addr.send(GetOrder).await.ok()?;
                Some((id, (addr, state)))
            }
        });
        fut::wrap_future(futures_util::future::join_all(reads))
            .map(|states: Vec<_>, _, _| states.into_iter().flatten().collect())
    }

    /// Orders of `fleet` a decision assigned within the re-match window, not re-matched yet and
    /// not among `batch`.
    fn rematchable(&mut self, fleet: &str, batch: &HashSet<OrderId>) -> Vec<OrderId> {
        let window = self.hub.settings.dispatch.rematch_window();
        if window.is_zero() {
            return Vec::new();
        }
        self.batching.recent.retain(|_, r| r.at.elapsed() <= window);
        let mut ids: Vec<OrderId> = self
            .batching
            .recent
            .iter()
            .filter(|(id, r)| !r.rematched && r.fleet == fleet && !batch.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}
