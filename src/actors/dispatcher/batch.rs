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
use crate::db::models::IncidentRow;
use crate::dispatch::assignment::BatchOrder;
use crate::dispatch::storm::{self, Solver, StormParams};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often a batch is decided again after an order changed under it, before its reports are
/// answered with the conflict.
const MAX_ATTEMPTS: u32 = 3;

/// A scored report, waiting for its batch.
#[derive(Debug)]
pub(super) struct Scored {
    pub reporter: Claims,
    pub event_id: EventId,
    pub order_id: OrderId,
    pub fleet: String,
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

/// A move the batch committed, for what follows the commit.
struct Applied {
    addr: Addr<OrderActor>,
    next: OrderState,
    exclude: Option<DriverId>,
    from: Option<DriverId>,
    to: Option<DriverId>,
    reason: AssignReason,
}

/// What a batch does to one order.
struct Planned {
    state: OrderState,
    addr: Addr<OrderActor>,
    to: Option<DriverId>,
    reason: AssignReason,
    /// The report it answers, by index in the batch's reports.
    report: Option<usize>,
}

fn copy_error(e: &AppError) -> AppError {
    match e {
        AppError::Conflict(m) => AppError::conflict(m.clone()),
        AppError::NotFound(m) => AppError::not_found(m.clone()),
        other => AppError::internal(other.to_string()),
    }
}

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

    fn storm_params(&self) -> StormParams {
        let d = &self.hub.settings.dispatch;
        StormParams {
            k: d.candidates_per_order,
            move_penalty_m: d.move_penalty_m,
            max_batch: d.max_batch,
            budget: d.batch_budget(),
        }
    }

    /// Decides the fleet's moving reports (with its waiting orders, and its re-matchable orders
    /// when some order stays unserved); answers what each order of the batch gets.
    fn decide_fleet(
        &mut self,
        fleet: &str,
        moving: &[(usize, OrderState, Addr<OrderActor>)],
        reports: &[Pending],
        kept: &[(OrderState, Addr<OrderActor>)],
    ) -> Vec<Planned> {
        let started = Instant::now();
        let reporter =
            |i: usize| -> Option<&DriverId> { reports[i].scored.reported_driver.as_ref() };
        let waiting: Vec<OrderState> = self
            .waiting
            .iter()
            .filter(|w| w.order.fleet == fleet)
            .filter(|w| self.hub.order(&w.order.id).is_some())
            .cloned()
            .collect();
        if let ([(i, state, addr)], true) = (moving, waiting.is_empty()) {
            if let Some(to) = self.best_for(state, reporter(*i)) {
                log::info!(
                    "[DECISION] batch fleet={} reports=1 waiting=0 rematch=0 served=1/1 solver=nearest time_us={}",
                    q(fleet),
                    started.elapsed().as_micros()
                );
                crate::stats::batch_decision("nearest", started.elapsed());
                return vec![Planned {
                    state: state.clone(),
                    addr: addr.clone(),
                    to: Some(to),
                    reason: AssignReason::Emergency,
                    report: Some(*i),
                }];
            }
        }
        let mut orders: Vec<BatchOrder> = Vec::new();
        let mut released: HashMap<DriverId, u32> = HashMap::new();
        for (i, state, _) in moving {
            let mut excluded = state.excluded.clone();
            excluded.extend(reporter(*i).cloned());
            orders.push(self.batch_order(state, excluded, None));
            if let Some(d) = &state.order.driver_id {
                *released.entry(d.clone()).or_default() += 1;
            }
        }
        for w in &waiting {
            orders.push(self.batch_order(w, w.excluded.clone(), None));
        }
        let params = self.storm_params();
        let mut plan = storm::plan(&self.index, fleet, &orders, &released, &params);
        let mut rematch = 0;
        let mut wanted = orders.len();
        if plan.assignment.served < wanted && plan.solver == Solver::Exact && !kept.is_empty() {
            let mut wider = orders.clone();
            let mut freed = released.clone();
            for (state, _) in kept {
                let Some(d) = state.order.driver_id.clone() else {
                    continue;
                };
                wider.push(self.batch_order(state, state.excluded.clone(), Some(d.clone())));
                *freed.entry(d).or_default() += 1;
            }
            let second = storm::plan(&self.index, fleet, &wider, &freed, &params);
            let kept_served = second.assignment.pairs[orders.len()..]
                .iter()
                .all(|(_, d)| d.is_some());
            if second.assignment.served > plan.assignment.served && kept_served {
                rematch = kept.len();
                wanted = wider.len();
                plan = second;
            }
        }
        log::info!(
            "[DECISION] batch fleet={} reports={} waiting={} rematch={rematch} served={}/{wanted} cost_m={} solver={} k={} rounds={} drivers={} time_us={}",
            q(fleet),
            moving.len(),
            waiting.len(),
            plan.assignment.served,
            plan.assignment.total_cost,
            plan.solver.as_str(),
            plan.k,
            plan.rounds,
            plan.drivers,
            started.elapsed().as_micros()
        );
        crate::stats::batch_decision(plan.solver.as_str(), started.elapsed());
        let mut out = Vec::new();
        for (n, (_, to)) in plan.assignment.pairs.into_iter().enumerate() {
            if let Some((i, state, addr)) = moving.get(n) {
                out.push(Planned {
                    state: state.clone(),
                    addr: addr.clone(),
                    to,
                    reason: AssignReason::Emergency,
                    report: Some(*i),
                });
            } else if let Some(w) = waiting.get(n - moving.len()) {
                let Some(addr) = self.hub.order(&w.order.id) else {
                    continue;
                };
                if to.is_some() {
                    out.push(Planned {
                        state: w.clone(),
                        addr,
                        to,
                        reason: AssignReason::Dispatch,
                        report: None,
                    });
                }
            } else if let Some((state, addr)) = kept.get(n - moving.len() - waiting.len()) {
                if to.is_some() && to != state.order.driver_id {
                    out.push(Planned {
                        state: state.clone(),
                        addr: addr.clone(),
                        to,
                        reason: AssignReason::Rematch,
                        report: None,
                    });
                }
            }
        }
        out
    }

    fn batch_order(
        &self,
        state: &OrderState,
        excluded: HashSet<DriverId>,
        keep: Option<DriverId>,
    ) -> BatchOrder {
        let o = &state.order;
        BatchOrder {
            id: o.id.clone(),
            at: decision::order_position(
                o.status,
                self.location_of(o.driver_id.as_ref()),
                o.pickup,
            ),
            excluded,
            keep,
        }
    }
}

impl Handler<RunBatch> for Dispatcher {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: RunBatch, _: &mut Context<Self>) -> Self::Result {
        self.batching.queued = false;
        let mut reports = std::mem::take(&mut self.batching.pending);
        // One report per order in a batch; a second one for the same order waits for the next
        // batch, where it finds the order as the first one left it.
        let mut seen = HashSet::new();
        let mut later = Vec::new();
        let mut kept_reports = Vec::new();
        for p in reports.drain(..) {
            if seen.insert(p.scored.order_id.clone()) {
                kept_reports.push(p);
            } else {
                later.push(p);
            }
        }
        self.batching.pending = later;
        let reports = kept_reports;
        if reports.is_empty() {
            return AtomicResponse::new(ready(()));
        }
        // Orders a decision assigned within the window, in the batch's fleets.
        let window = self.hub.settings.dispatch.rematch_window();
        self.batching.recent.retain(|_, r| r.at.elapsed() <= window);
        let fleets: HashSet<&str> = reports.iter().map(|p| p.scored.fleet.as_str()).collect();
        let recent: Vec<OrderId> = if window.is_zero() {
            Vec::new()
        } else {
            self.batching
                .recent
                .iter()
                .filter(|(id, r)| {
                    !r.rematched && fleets.contains(r.fleet.as_str()) && !seen.contains(*id)
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        let hub = self.hub.clone();
        let ids: Vec<OrderId> = reports
            .iter()
            .map(|p| p.scored.order_id.clone())
            .chain(recent)
            .collect();
        let reads = ids.into_iter().map(move |id| {
            let addr = hub.order(&id);
            async move {
                let addr = addr?;
                let state = addr.send(GetOrder).await.ok()?;
                Some((id, addr, state))
            }
        });
        let read = futures_util::future::join_all(reads);
        AtomicResponse::new(Box::pin(fut::wrap_future(read).then(
            move |states, act: &mut Self, ctx| {
                let states: HashMap<OrderId, (Addr<OrderActor>, OrderState)> = states
                    .into_iter()
                    .flatten()
                    .map(|(id, addr, state)| (id, (addr, state)))
                    .collect();
                act.decide_batch(reports, states, ctx)
            },
        )))
    }
}

impl Dispatcher {
    fn decide_batch(
        &mut self,
        reports: Vec<Pending>,
        mut states: HashMap<OrderId, (Addr<OrderActor>, OrderState)>,
        _ctx: &mut Context<Self>,
    ) -> Fut<()> {
        let threshold = self.hub.settings.dispatch.reassign_threshold;
        let mut live: Vec<Pending> = Vec::new();
        let mut maintain: Vec<(usize, OrderState)> = Vec::new();
        let mut moving: BTreeMap<String, Vec<(usize, OrderState, Addr<OrderActor>)>> =
            BTreeMap::new();
        for p in reports {
            let s = &p.scored;
            let Some((addr, state)) = states.remove(&s.order_id) else {
                let _ = p.reply.send(Err(AppError::not_found(format!(
                    "order {} does not exist or is already finished",
                    s.order_id
                ))));
                continue;
            };
            if state.order.driver_id != s.reported_driver {
                let _ = p.reply.send(Err(AppError::conflict(format!(
                    "order {} moved to another driver while the report was scored; report again if needed",
                    state.order.id
                ))));
                continue;
            }
            let i = live.len();
            if s.risk_score > threshold {
                moving
                    .entry(state.order.fleet.clone())
                    .or_default()
                    .push((i, state, addr));
            } else {
                maintain.push((i, state));
            }
            live.push(p);
        }
        if live.is_empty() {
            return ready(());
        }
        // What is left in `states`: re-matchable orders, still assigned and not picked up, whose
        // driver is online.
        let mut kept_by_fleet: HashMap<String, Vec<(OrderState, Addr<OrderActor>)>> =
            HashMap::new();
        for (_, (addr, state)) in states {
            let o = &state.order;
            let online = o
                .driver_id
                .as_ref()
                .and_then(|d| self.index.get(d))
                .is_some_and(|c| c.online);
            if o.status == OrderStatus::Assigned && online {
                kept_by_fleet
                    .entry(o.fleet.clone())
                    .or_default()
                    .push((state, addr));
            }
        }
        for list in kept_by_fleet.values_mut() {
            list.sort_by(|a, b| a.0.order.id.cmp(&b.0.order.id));
        }
        let mut planned: Vec<Planned> = Vec::new();
        for (fleet, group) in &moving {
            let kept = kept_by_fleet.get(fleet).map(Vec::as_slice).unwrap_or(&[]);
            planned.extend(self.decide_fleet(fleet, group, &live, kept));
        }
        self.commit_batch(live, maintain, planned)
    }

    /// Builds each report's event and every change, commits them in one transaction, then lets
    /// the actors, the index and the rooms know.
    fn commit_batch(
        &mut self,
        reports: Vec<Pending>,
        maintain: Vec<(usize, OrderState)>,
        planned: Vec<Planned>,
    ) -> Fut<()> {
        let threshold = self.hub.settings.dispatch.reassign_threshold;
        let now = Utc::now();
        let mut events: Vec<Option<EmergencyEvent>> = vec![None; reports.len()];
        let event_of = |p: &Pending, state: &OrderState, action: Action, to: Option<DriverId>| {
            let s = &p.scored;
            EmergencyEvent {
                event_id: s.event_id.clone(),
                order_id: state.order.id.clone(),
                driver_id: s.reported_driver.clone(),
                kind: s.kind,
                reason: kind_reason(s.kind).to_string(),
                comment: s.comment.clone(),
                risk_score: s.risk_score,
                risk_source: s.risk_source,
                action_taken: action,
                new_driver_id: to,
                reported_by: s.reporter.sub.clone(),
                timestamp: now,
            }
        };
        let announce = |e: &EmergencyEvent, fleet: &str| {
            Publication::to_all(
                vec![Room::Fleet(fleet.to_string()), Room::Dispatch],
                ServerMsg::EmergencyEvent(e.clone()),
            )
        };
        let mut changes: Vec<Change> = Vec::new();
        for (i, state) in &maintain {
            let p = &reports[*i];
            let event = event_of(p, state, Action::Maintain, None);
            changes.push(Change {
                incident: Some(IncidentRow::from(&event)),
                messages: vec![announce(&event, &state.order.fleet)],
                answer: answer_ok(p.scored.answer.as_ref(), &event),
                ..Default::default()
            });
            events[*i] = Some(event);
        }
        // The reports' own moves first (each announcement before its effects), then the moves
        // they made room for.
        let mut order: Vec<&Planned> = planned.iter().filter(|m| m.report.is_some()).collect();
        order.extend(planned.iter().filter(|m| m.report.is_none()));
        let mut applied: Vec<Applied> = Vec::new();
        for m in order {
            let event = m.report.map(|i| {
                let action =
                    decision::decide(reports[i].scored.risk_score, threshold, m.to.as_ref());
                (i, event_of(&reports[i], &m.state, action, m.to.clone()))
            });
            let mut mv = self.plan_move(
                &m.state,
                m.to.as_ref(),
                m.reason,
                event.as_ref().map(|(_, e)| &e.event_id),
                true,
            );
            let mut exclude = None;
            if let Some((i, e)) = &event {
                let mut messages = vec![announce(e, &m.state.order.fleet)];
                messages.append(&mut mv.change.messages);
                mv.change.messages = messages;
                mv.change.incident = Some(IncidentRow::from(e));
                mv.change.answer = answer_ok(reports[*i].scored.answer.as_ref(), e);
                exclude = reports[*i].scored.reported_driver.clone();
                mv.change.exclusion = exclude
                    .as_ref()
                    .map(|d| (d.0.clone(), "reported".to_string()));
                events[*i] = Some(e.clone());
            }
            changes.push(mv.change);
            let mut excluded = m.state.excluded.clone();
            excluded.extend(exclude.clone());
            applied.push(Applied {
                addr: m.addr.clone(),
                next: OrderState {
                    order: mv.next,
                    excluded,
                },
                exclude,
                from: mv.from,
                to: mv.to,
                reason: m.reason,
            });
        }
        let pool = self.hub.pool.clone();
        let write =
            async move { db::run(&pool, move |c| commit::apply_all(c, changes, Utc::now())).await };
        Box::pin(fut::wrap_future(write).map(move |res, act: &mut Self, ctx| {
            match res {
                Ok(published) => {
                    for a in applied {
                        let next = &a.next.order;
                        a.addr.do_send(Adopt {
                            next: next.clone(),
                            exclude: a.exclude,
                        });
                        if a.to.is_some() {
                            act.batching
                                .note_assigned(next, a.reason == AssignReason::Rematch);
                            log::info!(
                                "[REASSIGNMENT] order={} from={} to={} reason={} version={}",
                                q(&next.id),
                                q_or_dash(a.from.as_ref()),
                                q_or_dash(a.to.as_ref()),
                                a.reason,
                                next.version
                            );
                        }
                        act.moved_order(a.next, a.from.as_ref(), a.to.as_ref());
                    }
                    let first = reports.iter().map(|p| p.scored.received).min();
                    for (p, event) in reports.into_iter().zip(events) {
                        let Some(event) = event else { continue };
                        crate::stats::decision(event.action_taken.as_str(), p.scored.received.elapsed());
                        log::info!(
                            "[DECISION] event={} order={} driver={} risk={:.2} threshold={threshold} action={} new_driver={}",
                            event.event_id,
                            q(&event.order_id),
                            q_or_dash(event.driver_id.as_ref()),
                            event.risk_score,
                            event.action_taken,
                            q_or_dash(event.new_driver_id.as_ref())
                        );
                        let _ = p.reply.send(Ok(event));
                    }
                    act.spawn_publish_timed("emergency_event", published, first);
                }
                Err(e) => {
                    let retry = matches!(e, AppError::Conflict(_));
                    log::warn!(
                        "[DECISION] batch of {} reports rolled back: {}{}",
                        reports.len(),
                        q(&e.to_string()),
                        if retry { "; deciding it again" } else { "" }
                    );
                    for mut p in reports {
                        p.scored.attempts += 1;
                        if retry && p.scored.attempts < MAX_ATTEMPTS {
                            act.batching.pending.push(p);
                        } else {
                            let _ = p.reply.send(Err(copy_error(&e)));
                        }
                    }
                }
            }
            act.queue_dispatch(ctx);
            act.schedule_batch(ctx);
        }))
    }
}
