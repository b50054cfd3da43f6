//! Deciding a batch: its reports checked against their orders as they are now, then per fleet
//! the fast path (one report, nothing waiting: the nearest available driver) or `storm::plan`
//! over the moving reports and the waiting orders; where orders stay unserved, the fleet's
//! re-matchable orders are read and the fleet decided again with them.

use super::*;
use crate::dispatch::assignment::BatchOrder;
use crate::dispatch::storm::{self, Solver, StormParams};

/// A report of the batch whose order moves, by its index among the live reports.
pub(super) type Moving = (usize, OrderState, Addr<OrderActor>);

/// The batch's reports, checked.
pub(super) struct Groups {
    /// The reports still standing, in arrival order.
    pub live: Vec<Pending>,
    /// Reports at or under the threshold: the order stays.
    pub maintain: Vec<(usize, OrderState)>,
    /// Reports above it, by fleet.
    pub moving: BTreeMap<String, Vec<Moving>>,
}

/// What a batch does to one order.
pub(super) struct Planned {
    pub state: OrderState,
    pub addr: Addr<OrderActor>,
    pub to: Option<DriverId>,
    pub reason: AssignReason,
    /// The report it answers, by index among the live reports.
    pub report: Option<usize>,
}

/// One fleet's decision, with what its `[DECISION]` line says.
pub(super) struct FleetDecision {
    pub planned: Vec<Planned>,
    /// Orders were left unserved by an exact decision (re-matching may help).
    pub unserved: bool,
    pub solver: &'static str,
    pub line: String,
    pub elapsed: Duration,
}

impl Dispatcher {
    pub(super) fn decide_batch(&mut self, reports: Vec<Pending>, states: Read) -> Fut<()> {
        let groups = self.group(reports, states);
        if groups.live.is_empty() {
            return ready(());
        }
        let mut decided = self.decide_all(&groups);
        let in_batch: HashSet<OrderId> = groups
            .live
            .iter()
            .map(|p| p.scored.order_id.clone())
            .collect();
        let mut wanted = Vec::new();
        for (fleet, d) in &decided {
            if d.unserved {
                wanted.extend(self.rematchable(fleet, &in_batch));
            }
        }
        if wanted.is_empty() {
            return self.commit_batch(groups, decided.into_values().collect());
        }
        Box::pin(
            self.read_orders(wanted)
                .then(move |read, act: &mut Self, _| {
                    // Only the fleets that have orders to re-match are decided again.
                    for (fleet, kept) in act.keepable(read) {
                        if let Some(group) = groups.moving.get(&fleet) {
                            let again = act.decide_fleet(&fleet, group, &groups.live, &kept);
                            decided.insert(fleet, again);
                        }
                    }
                    act.commit_batch(groups, decided.into_values().collect())
                }),
        )
    }

    /// Checks each report against its order as read: gone, or moved since it was scored, is
    /// answered at once; the rest is split by the risk threshold.
    fn group(&self, reports: Vec<Pending>, mut states: Read) -> Groups {
        let threshold = self.hub.settings.dispatch.reassign_threshold;
        let mut g = Groups {
            live: Vec::new(),
            maintain: Vec::new(),
            moving: BTreeMap::new(),
        };
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
            let i = g.live.len();
            if s.risk_score > threshold {
                g.moving
                    .entry(state.order.fleet.clone())
                    .or_default()
                    .push((i, state, addr));
            } else {
                g.maintain.push((i, state));
            }
            g.live.push(p);
        }
        g
    }

    /// The re-matchable orders as read, by fleet: still assigned, not picked up, their driver
    /// online.
    fn keepable(&self, read: Read) -> HashMap<String, Vec<(OrderState, Addr<OrderActor>)>> {
        let mut kept: HashMap<String, Vec<(OrderState, Addr<OrderActor>)>> = HashMap::new();
        for (_, (addr, state)) in read {
            let o = &state.order;
            let online = o
                .driver_id
                .as_ref()
                .and_then(|d| self.index.get(d))
                .is_some_and(|c| c.online);
            if o.status == OrderStatus::Assigned && online {
                kept.entry(o.fleet.clone()).or_default().push((state, addr));
            }
        }
        for list in kept.values_mut() {
            list.sort_by(|a, b| a.0.order.id.cmp(&b.0.order.id));
        }
        kept
    }

    /// Every fleet of the batch decided without re-matching.
    fn decide_all(&self, g: &Groups) -> BTreeMap<String, FleetDecision> {
        g.moving
            .iter()
            .map(|(fleet, group)| (fleet.clone(), self.decide_fleet(fleet, group, &g.live, &[])))
            .collect()
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

    /// Decides one fleet's moving reports with its waiting orders, and with `kept` (re-matchable
    /// orders) when that serves more.
    fn decide_fleet(
        &self,
        fleet: &str,
        moving: &[Moving],
        reports: &[Pending],
        kept: &[(OrderState, Addr<OrderActor>)],
    ) -> FleetDecision {
        let started = Instant::now();
        let reporter =
            |i: usize| -> Option<&DriverId> { reports[i].scored.reported_driver.as_ref() };
        let waiting: Vec<OrderState> = self
            .waiting
            .iter()
            .filter(|w| w.order.fleet == fleet && self.hub.order(&w.order.id).is_some())
            .cloned()
            .collect();
        if let ([(i, state, addr)], true) = (moving, waiting.is_empty()) {
            if let Some(to) = self.best_for(state, reporter(*i)) {
                return FleetDecision {
                    planned: vec![Planned {
                        state: state.clone(),
                        addr: addr.clone(),
                        to: Some(to),
                        reason: AssignReason::Emergency,
                        report: Some(*i),
                    }],
                    unserved: false,
                    solver: "nearest",
                    line: format!(
                        "fleet={} reports=1 waiting=0 rematch=0 served=1/1 solver=nearest",
                        q(fleet)
                    ),
                    elapsed: started.elapsed(),
                };
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
        let unserved = plan.assignment.served < orders.len() && plan.solver == Solver::Exact;
        let mut rematch = 0;
        let mut wanted = orders.len();
        if unserved && !kept.is_empty() {
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
        let line = format!(
            "fleet={} reports={} waiting={} rematch={rematch} served={}/{wanted} cost_m={} solver={} k={} rounds={} drivers={}",
            q(fleet),
            moving.len(),
            waiting.len(),
            plan.assignment.served,
            plan.assignment.total_cost,
            plan.solver.as_str(),
            plan.k,
            plan.rounds,
            plan.drivers,
        );
        let mut planned = Vec::new();
        for (n, (_, to)) in plan.assignment.pairs.into_iter().enumerate() {
            if let Some((i, state, addr)) = moving.get(n) {
                planned.push(Planned {
                    state: state.clone(),
                    addr: addr.clone(),
                    to,
                    reason: AssignReason::Emergency,
                    report: Some(*i),
                });
            } else if let Some(w) = waiting.get(n - moving.len()) {
                if let (Some(addr), Some(_)) = (self.hub.order(&w.order.id), &to) {
                    planned.push(Planned {
                        state: w.clone(),
                        addr,
                        to,
                        reason: AssignReason::Dispatch,
                        report: None,
                    });
                }
            } else if let Some((state, addr)) = kept.get(n - moving.len() - waiting.len()) {
                if to.is_some() && to != state.order.driver_id {
                    planned.push(Planned {
                        state: state.clone(),
                        addr: addr.clone(),
                        to,
                        reason: AssignReason::Rematch,
                        report: None,
                    });
                }
            }
        }
        FleetDecision {
            planned,
            unserved,
            solver: plan.solver.as_str(),
            line,
            elapsed: started.elapsed(),
        }
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
