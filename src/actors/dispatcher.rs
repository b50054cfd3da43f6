//! `Dispatcher`: the one writer of assignments within a node.
//!
//! It receives emergency reports (from sessions and REST), asks the risk model, decides, picks the
//! new driver, asks the order to move, and publishes to the rooms of the people affected. It also
//! dispatches new orders, hands declined ones on, applies admin overrides, assigns waiting orders
//! as soon as a driver is free, and batches presence and locations.
//!
//! The risk phase of many reports runs concurrently; every decision that takes capacity is an
//! `AtomicResponse`, so the Dispatcher commits it before it looks at the next, and no two
//! decisions can take the same free capacity. Its index of drivers (online, held, capacity,
//! location; `dispatch::index`, an R*-tree per fleet of the available ones) is kept current by
//! the driver actors and by its own commits, so picking a driver never scans them all.

use super::driver::{OrderHeld, OrderReleased};
use super::order::{ApplyChange, GetOrder, OrderActor, OrderState};
use super::{publish_timed, Hub};
use crate::auth::Claims;
use crate::db::models::{to_db, AuditRow, IncidentRow};
use crate::db::queries::commit::{self, Change, OrderWrite, Publication, Published};
use crate::db::{self, queries};
use crate::dispatch::index::DriverIndex;
use crate::dispatch::{decision, matching, risk};
use crate::error::AppError;
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::server::{DriverLocation, PresenceChange};
use crate::protocol::*;
use crate::risk_client;
use crate::telemetry::{q, q_or_dash};
use actix::prelude::*;
use chrono::{Timelike, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// A driver's availability or registration changed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DriverChanged {
    pub id: DriverId,
    pub name: String,
    pub fleet: String,
    pub capacity: i32,
    pub online: bool,
    pub held: i32,
    pub location: Option<Location>,
}

/// A driver moved.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DriverMoved {
    pub id: DriverId,
    pub location: Location,
}

/// An order is finished (delivered or cancelled): its driver's capacity is free.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct OrderFreed {
    pub order_id: OrderId,
    pub driver_id: Option<DriverId>,
}

/// An order waits for a driver (at start-up, rebuilt from the database).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct EnqueueOrder {
    pub state: OrderState,
}

/// An emergency report, from a session or REST. Answers the `emergency_event`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<EmergencyEvent, AppError>")]
pub struct ReportIncident {
    pub reporter: Claims,
    pub order_id: OrderId,
    pub kind: IncidentKind,
    pub comment: Option<String>,
    /// The request's idempotency key: the answer is committed with the decision.
    pub answer: Option<AnswerKey>,
}

/// A new order; dispatched to `driver` or, without one, to the best available driver.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Order, AppError>")]
pub struct CreateOrder {
    pub order: Order,
    pub driver: Option<DriverId>,
    pub answer: Option<AnswerKey>,
}

/// The driver an order was offered to declines it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Order, AppError>")]
pub struct DeclineOrder {
    pub driver_id: DriverId,
    pub order_id: OrderId,
    pub answer: Option<AnswerKey>,
}

/// An admin moves an order to a driver of its choice.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Order, AppError>")]
pub struct OverrideAssignment {
    pub actor: String,
    pub order_id: OrderId,
    pub driver_id: DriverId,
    pub reason: String,
    pub force: bool,
    pub answer: Option<AnswerKey>,
}

/// The decision phase of a report, once its risk is known.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<EmergencyEvent, AppError>")]
struct Decide {
    reporter: Claims,
    event_id: EventId,
    order_id: OrderId,
    reported_driver: Option<DriverId>,
    kind: IncidentKind,
    comment: Option<String>,
    risk_score: f64,
    risk_source: RiskSource,
    /// When the report arrived, for the report-to-broadcast time in the log.
    received: std::time::Instant,
    answer: Option<AnswerKey>,
}

/// Assigns the first waiting order that has an available driver.
#[derive(Message)]
#[rtype(result = "()")]
struct DispatchWaiting;

/// The central Dispatcher.
pub struct Dispatcher {
    hub: Arc<Hub>,
    index: DriverIndex,
    /// The orders waiting for a driver, oldest first, as they are: only the Dispatcher makes an
    /// order wait or takes it out of waiting (a cancel tells it with `OrderFreed`), so it decides
    /// from its own copy without asking each order's actor.
    waiting: Vec<OrderState>,
    presence: BTreeMap<String, BTreeMap<DriverId, PresenceChange>>,
    moved: BTreeMap<DriverId, DriverLocation>,
    dispatch_queued: bool,
}

type Fut<T> = ResponseActFuture<Dispatcher, T>;

fn ready<T: 'static>(v: T) -> Fut<T> {
    Box::pin(fut::ready(v))
}

/// What a move of an order commits, and the order after it.
struct Move {
    change: Change,
    next: Order,
    /// The drivers the order must not go to, before this move's own exclusion.
    excluded: HashSet<DriverId>,
    from: Option<DriverId>,
    to: Option<DriverId>,
}

impl Dispatcher {
    pub fn new(hub: Arc<Hub>) -> Dispatcher {
        Dispatcher {
            hub,
            index: DriverIndex::new(),
            waiting: Vec::new(),
            presence: BTreeMap::new(),
            moved: BTreeMap::new(),
            dispatch_queued: false,
        }
    }

    fn location_of(&self, d: Option<&DriverId>) -> Option<LatLng> {
        d.and_then(|d| self.index.get(d)).and_then(|c| c.location)
    }

    /// The best available driver for `order`, from where the order is now.
    fn best_for(&self, state: &OrderState, also_excluded: Option<&DriverId>) -> Option<DriverId> {
        let order = &state.order;
        let from = decision::order_position(
            order.status,
            self.location_of(order.driver_id.as_ref()),
            order.pickup,
        );
        let mut excluded = state.excluded.clone();
        excluded.extend(order.driver_id.clone());
        excluded.extend(also_excluded.cloned());
        self.index
            .best(&order.fleet, from, &excluded)
            .map(|c| c.id.clone())
    }

    /// Plans moving an order to `to` (or back to waiting when `None`), with its messages.
    fn plan_move(
        &self,
        state: &OrderState,
        to: Option<&DriverId>,
        reason: AssignReason,
        event_id: Option<&EventId>,
        check_capacity: bool,
    ) -> Move {
        let current = &state.order;
        let now = Utc::now();
        let mut next = current.clone();
        next.driver_id = to.cloned();
        next.status = if to.is_some() {
            OrderStatus::Assigned
        } else {
            OrderStatus::Pending
        };
        next.accepted_at = None;
        next.version = current.version + 1;
        next.updated_at = now;
        next.eta = to.map(|d| {
            let at = decision::order_position(
                current.status,
                self.location_of(current.driver_id.as_ref()),
                current.pickup,
            );
            let km = decision::remaining_km(
                OrderStatus::Assigned,
                self.location_of(Some(d)),
                at,
                current.dropoff,
            );
            decision::eta(now, km, self.hub.settings.dispatch.average_speed_kmh)
        });
        let from = current.driver_id.clone().filter(|d| Some(d) != to);
        let mut messages = Vec::new();
        if let Some(d) = to {
            messages.push(Publication::to(
                Room::Driver(d.clone()),
                ServerMsg::OrderAssigned {
                    order_id: current.id.clone(),
                    driver_id: d.clone(),
                    previous_driver_id: current.driver_id.clone(),
                    reason,
                    event_id: event_id.cloned(),
                    order: next.clone(),
                },
            ));
        }
        if let Some(old) = &from {
            messages.push(Publication::to(
                Room::Driver(old.clone()),
                ServerMsg::OrderUnassigned {
                    order_id: current.id.clone(),
                    driver_id: old.clone(),
                    reason,
                    event_id: event_id.cloned(),
                },
            ));
        }
        messages.extend(OrderActor::updated_messages(&next));
        let capacity_check = match (to, check_capacity) {
            (Some(d), true) => Some((d.0.clone(), self.capacity_of(d))),
            _ => None,
        };
        Move {
            change: Change {
                order: Some(OrderWrite::Update {
                    new: next.clone(),
                    expected_version: current.version,
                }),
                capacity_check,
                messages,
                ..Default::default()
            },
            next,
            excluded: state.excluded.clone(),
            from,
            to: to.cloned(),
        }
    }

    fn capacity_of(&self, d: &DriverId) -> i32 {
        self.index
            .get(d)
            .map(|c| c.capacity)
            .unwrap_or(self.hub.settings.dispatch.default_capacity)
    }

    /// After a committed move: the index, the driver actors and the waiting list follow.
    fn moved_order(&mut self, state: OrderState, from: Option<&DriverId>, to: Option<&DriverId>) {
        let order = &state.order;
        if let Some(d) = from {
            self.index.release(d);
            if let Some(a) = self.hub.driver(d) {
                a.do_send(OrderReleased {
                    order_id: order.id.clone(),
                });
            }
        }
        if let Some(d) = to {
            self.index.hold(d);
            if let Some(a) = self.hub.driver(d) {
                a.do_send(OrderHeld {
                    order_id: order.id.clone(),
                });
            }
        }
        let id = order.id.clone();
        self.waiting.retain(|w| w.order.id != id);
        if state.order.status == OrderStatus::Pending {
            self.waiting.push(state);
        }
    }

    /// Commits a planned move through the order's actor, then publishes it.
    fn commit_move(
        &mut self,
        order_addr: Addr<OrderActor>,
        mv: Move,
        exclude: Option<DriverId>,
        what: &'static str,
        started: Option<std::time::Instant>,
    ) -> Fut<Result<Order, AppError>> {
        let Move {
            change,
            next,
            mut excluded,
            from,
            to,
        } = mv;
        excluded.extend(exclude.clone());
        let send = order_addr.send(ApplyChange {
            change,
            next: next.clone(),
            exclude,
        });
        Box::pin(fut::wrap_future(send).map(move |res, act: &mut Self, ctx| {
            let published = res??;
            let state = OrderState {
                order: next.clone(),
                excluded,
            };
            act.moved_order(state, from.as_ref(), to.as_ref());
            if from.is_some() {
                // The driver it was taken from may take an order that waits.
                act.queue_dispatch(ctx);
            }
            if let Some(to) = &to {
                log::info!(
                    "[REASSIGNMENT] order={} from={} to={} reason={what} version={}",
                    q(&next.id),
                    q_or_dash(from.as_ref()),
                    q(to),
                    next.version
                );
            }
            act.spawn_publish_timed(what, published, started);
            Ok(next)
        }))
    }

    fn spawn_publish(&self, what: &'static str, published: Vec<Published>) {
        self.spawn_publish_timed(what, published, None);
    }

    fn spawn_publish_timed(
        &self,
        what: &'static str,
        published: Vec<Published>,
        started: Option<std::time::Instant>,
    ) {
        let hub = self.hub.clone();
        actix::spawn(async move { publish_timed(&hub, what, published, started).await });
    }

    /// The order's actor and current state. An order with no actor is answered at once, with no
    /// database read: the commands check first (`actors::missing_order`), so this only catches
    /// an order that finished a moment ago.
    fn load_order(&self, id: &OrderId) -> Fut<Result<(Addr<OrderActor>, OrderState), AppError>> {
        let Some(addr) = self.hub.order(id) else {
            return ready(Err(AppError::not_found(format!(
                "order {id} does not exist or is already finished"
            ))));
        };
        Box::pin(fut::wrap_future(async move {
            let state = addr.send(GetOrder).await?;
            Ok((addr, state))
        }))
    }

    /// Loads the order, then runs `then` with its actor and state; a load failure is the answer.
    fn with_order<T: 'static>(
        &self,
        id: &OrderId,
        then: impl FnOnce(&mut Self, Addr<OrderActor>, OrderState) -> Fut<Result<T, AppError>> + 'static,
    ) -> Fut<Result<T, AppError>> {
        Box::pin(
            self.load_order(id)
                .then(move |res, act: &mut Self, _| match res {
                    Ok((addr, state)) => then(act, addr, state),
                    Err(e) => ready(Err(e)),
                }),
        )
    }

    /// Reads a waiting order back from its actor (after a failed assignment), without blocking
    /// anything: it waits again if it is still pending.
    fn refresh_waiting(&self, id: OrderId, ctx: &mut Context<Self>) {
        let Some(addr) = self.hub.order(&id) else {
            return;
        };
        let me = ctx.address();
        actix::spawn(async move {
            if let Ok(state) = addr.send(GetOrder).await {
                if state.order.status == OrderStatus::Pending {
                    me.do_send(EnqueueOrder { state });
                }
            }
        });
    }

    /// Queues one `DispatchWaiting` when orders wait. Through the mailbox, not `ctx.notify`: a
    /// notified message may run while an `AtomicResponse` (a decision, an order's creation) is
    /// still pending, and both would then pick the same free driver.
    fn queue_dispatch(&mut self, ctx: &mut Context<Self>) {
        if !self.waiting.is_empty() && !self.dispatch_queued {
            self.dispatch_queued = true;
            ctx.address().do_send(DispatchWaiting);
        }
    }

    fn record_presence(&mut self, fleet: &str, id: &DriverId, name: &str, status: DriverStatus) {
        self.presence.entry(fleet.to_string()).or_default().insert(
            id.clone(),
            PresenceChange {
                driver_id: id.clone(),
                name: name.to_string(),
                status,
            },
        );
    }

    /// At most once per `presence_flush_ms`: one `presence` batch per fleet that changed.
    fn flush_presence(&mut self, _: &mut Context<Self>) {
        for (fleet, changes) in std::mem::take(&mut self.presence) {
            let online = self.index.online_in(&fleet);
            let total = changes.len();
            let changes: Vec<_> = changes.into_values().take(50).collect();
            let msg = ServerMsg::Presence {
                fleet: fleet.clone(),
                online,
                changes,
                truncated: (total > 50).then(|| total - 50),
            };
            let room = Room::Fleet(fleet);
            let text = server::envelope(
                &msg,
                &room.to_string(),
                None,
                &uuid::Uuid::new_v4().to_string(),
            );
            self.hub.rooms.do_send(super::registry::PublishEphemeral {
                room,
                kind: "presence",
                text: text.into(),
            });
        }
    }

    /// At most once per `location_flush_ms`: one `locations` batch to `dispatch`, newest wins.
    fn flush_locations(&mut self, _: &mut Context<Self>) {
        if self.moved.is_empty() {
            return;
        }
        let drivers: Vec<_> = std::mem::take(&mut self.moved).into_values().collect();
        let msg = ServerMsg::Locations { drivers };
        let text = server::envelope(&msg, "dispatch", None, &uuid::Uuid::new_v4().to_string());
        self.hub.rooms.do_send(super::registry::PublishEphemeral {
            room: Room::Dispatch,
            kind: "locations",
            text: text.into(),
        });
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let rt = &self.hub.settings.realtime;
        ctx.run_interval(rt.presence_flush(), Self::flush_presence);
        ctx.run_interval(rt.location_flush(), Self::flush_locations);
    }
}

impl Handler<DriverChanged> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: DriverChanged, ctx: &mut Context<Self>) {
        let was_online = self.index.get(&msg.id).map(|c| c.online);
        if was_online.is_some_and(|w| w != msg.online) || (was_online.is_none() && msg.online) {
            let status = if msg.online {
                DriverStatus::Online
            } else {
                DriverStatus::Offline
            };
            self.record_presence(&msg.fleet, &msg.id, &msg.name, status);
        }
        self.index.upsert(matching::Candidate {
            id: msg.id,
            fleet: msg.fleet,
            online: msg.online,
            held: msg.held,
            capacity: msg.capacity,
            location: msg.location.map(|l| l.point()),
        });
        self.queue_dispatch(ctx);
    }
}

impl Handler<DriverMoved> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: DriverMoved, _: &mut Context<Self>) {
        self.index.set_location(&msg.id, msg.location.point());
        let l = msg.location;
        self.moved.insert(
            msg.id.clone(),
            DriverLocation {
                driver_id: msg.id,
                lat: l.lat,
                lng: l.lng,
                speed: l.speed,
                heading: l.heading,
                timestamp: l.timestamp,
            },
        );
    }
}

impl Handler<OrderFreed> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: OrderFreed, ctx: &mut Context<Self>) {
        if let Some(d) = &msg.driver_id {
            self.index.release(d);
        }
        self.waiting.retain(|w| w.order.id != msg.order_id);
        self.queue_dispatch(ctx);
    }
}

impl Handler<EnqueueOrder> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: EnqueueOrder, ctx: &mut Context<Self>) {
        if !self
            .waiting
            .iter()
            .any(|w| w.order.id == msg.state.order.id)
        {
            self.waiting.push(msg.state);
        }
        self.queue_dispatch(ctx);
    }
}

impl Handler<DispatchWaiting> for Dispatcher {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: DispatchWaiting, _: &mut Context<Self>) -> Self::Result {
        self.dispatch_queued = false;
        // Orders whose actor is gone (finished meanwhile) wait no more.
        let hub = self.hub.clone();
        self.waiting.retain(|w| hub.order(&w.order.id).is_some());
        if !self.index.any_available() {
            return AtomicResponse::new(ready(()));
        }
        // The first waiting order (oldest first) that some available driver can take, decided
        // from the Dispatcher's own state: no message to any order's actor.
        let found = self.waiting.iter().find_map(|w| {
            let to = self.best_for(w, None)?;
            Some((w.clone(), to))
        });
        let Some((state, to)) = found else {
            return AtomicResponse::new(ready(()));
        };
        let Some(addr) = self.hub.order(&state.order.id) else {
            return AtomicResponse::new(ready(()));
        };
        let mv = self.plan_move(&state, Some(&to), AssignReason::Dispatch, None, true);
        log::info!(
            "[DECISION] order={} waiting -> driver={}",
            q(&state.order.id),
            q(&to)
        );
        AtomicResponse::new(Box::pin(
            self.commit_move(addr, mv, None, "order_assigned", None)
                .map(move |res, act, ctx| {
                    match res {
                        Ok(_) => {}
                        // The order changed meanwhile (a cancel raced it): it is re-read from its
                        // actor, outside this section, before it is tried again.
                        Err(e) => {
                            log::warn!(
                                "[DECISION] assigning a waiting order failed: {}",
                                q(&e.to_string())
                            );
                            act.waiting.retain(|w| w.order.id != state.order.id);
                            act.refresh_waiting(state.order.id.clone(), ctx);
                        }
                    }
                    act.queue_dispatch(ctx);
                }),
        ))
    }
}

impl Handler<ReportIncident> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<EmergencyEvent, AppError>>;

    fn handle(&mut self, msg: ReportIncident, _: &mut Context<Self>) -> Self::Result {
        let received = std::time::Instant::now();
        let event_id = EventId(uuid::Uuid::new_v4().to_string());
        log::info!(
            "[EVENT_RECEIVED] event={} order={} kind={} sub={} role={} comment={}",
            event_id,
            q(&msg.order_id),
            msg.kind,
            q(&msg.reporter.sub),
            msg.reporter.role,
            q_or_dash(msg.comment.as_ref())
        );
        if msg.reporter.role == Role::Observer {
            return ready(Err(AppError::forbidden("an observer may not report")));
        }
        let risk_url = self.hub.settings.risk.url.clone();
        let timeout = self.hub.settings.risk.timeout();
        let pool = self.hub.pool.clone();
        Box::pin(self.load_order(&msg.order_id).then(move |res, act: &mut Self, _| {
            let (_, state) = match res {
                Ok(v) => v,
                Err(e) => return ready(Err(e)),
            };
            let order = state.order.clone();
            if let Some(me) = msg.reporter.driver() {
                if order.driver_id.as_ref() != Some(me) {
                    return ready(Err(AppError::forbidden(format!(
                        "order {} is not assigned to you",
                        order.id
                    ))));
                }
            }
            if !order.status.holds_driver() {
                return ready(Err(AppError::conflict(format!(
                    "order {} is {}: only an order with a driver can be reported on",
                    order.id, order.status
                ))));
            }
            let driver = order.driver_id.clone();
            let remaining = decision::remaining_km(
                order.status,
                act.location_of(driver.as_ref()),
                order.pickup,
                order.dropoff,
            );
            let req = risk_client::RiskRequest {
                event_id: event_id.0.clone(),
                order_id: order.id.0.clone(),
                driver_id: driver.as_ref().map(|d| d.0.clone()),
                kind: msg.kind.as_str().to_string(),
                comment: msg.comment.clone(),
                priority: order.priority.as_str().to_string(),
                remaining_km: remaining,
                driver_incidents_24h: 0,
                hour_of_day: Utc::now().hour(),
            };
            let scoring = async move {
                let mut req = req;
                if let Some(d) = req.driver_id.clone() {
                    let since = to_db(Utc::now() - chrono::Duration::hours(24));
                    req.driver_incidents_24h = db::run(&pool, move |c| {
                        Ok(queries::incidents::count_for_driver_since(c, &d, since)?)
                    })
                    .await
                    .unwrap_or(0);
                }
                let model = risk::score(&risk::RiskInput {
                    kind: msg.kind,
                    priority: order.priority,
                    remaining_km: req.remaining_km,
                    driver_incidents_24h: req.driver_incidents_24h,
                    hour_of_day: req.hour_of_day,
                });
                let (score, source) = if risk_url.is_empty() {
                    (model, RiskSource::Model)
                } else {
                    match risk_client::score(&risk_url, timeout, &req).await {
                        Ok(s) => {
                            crate::stats::risk_call("ok");
                            (s, RiskSource::Service)
                        }
                        Err(e) => {
                            crate::stats::risk_call(e.outcome());
                            log::warn!(
                                "[RISK] event={} service failed ({}): built-in model",
                                req.event_id,
                                q(&e.to_string())
                            );
                            (model, RiskSource::Fallback)
                        }
                    }
                };
                log::info!(
                    "[RISK] event={} order={} score={score:.3} source={source} remaining_km={:.1} incidents_24h={}",
                    req.event_id,
                    q(&req.order_id),
                    req.remaining_km,
                    req.driver_incidents_24h
                );
                (score, source)
            };
            Box::pin(fut::wrap_future(scoring).then(move |(score, source), _act: &mut Self, ctx| {
                let decide = ctx.address().send(Decide {
                    reporter: msg.reporter,
                    event_id,
                    order_id: msg.order_id,
                    reported_driver: driver,
                    kind: msg.kind,
                    comment: msg.comment,
                    risk_score: score,
                    risk_source: source,
                    received,
                    answer: msg.answer,
                });
                fut::wrap_future(async move { decide.await? })
            })) as Fut<_>
        }))
    }
}

impl Handler<Decide> for Dispatcher {
    type Result = AtomicResponse<Self, Result<EmergencyEvent, AppError>>;

    fn handle(&mut self, msg: Decide, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.with_order(
            &msg.order_id.clone(),
            move |act: &mut Self, addr, state| {
                if state.order.driver_id != msg.reported_driver {
                    return ready(Err(AppError::conflict(format!(
                        "order {} moved to another driver while the report was scored; report again if needed",
                        state.order.id
                    ))));
                }
                let threshold = act.hub.settings.dispatch.reassign_threshold;
                let best = if msg.risk_score > threshold {
                    act.best_for(&state, msg.reported_driver.as_ref())
                } else {
                    None
                };
                let action = decision::decide(msg.risk_score, threshold, best.as_ref());
                crate::stats::decision(action.as_str(), msg.received.elapsed());
                let event = EmergencyEvent {
                    event_id: msg.event_id.clone(),
                    order_id: state.order.id.clone(),
                    driver_id: msg.reported_driver.clone(),
                    kind: msg.kind,
                    reason: kind_reason(msg.kind).to_string(),
                    comment: msg.comment.clone(),
                    risk_score: msg.risk_score,
                    risk_source: msg.risk_source,
                    action_taken: action,
                    new_driver_id: best.clone(),
                    reported_by: msg.reporter.sub.clone(),
                    timestamp: Utc::now(),
                };
                log::info!(
                    "[DECISION] event={} order={} driver={} risk={:.2} threshold={threshold} action={} new_driver={}",
                    event.event_id,
                    q(&event.order_id),
                    q_or_dash(event.driver_id.as_ref()),
                    event.risk_score,
                    action,
                    q_or_dash(best.as_ref())
                );
                let mut announce_to = vec![Publication::to_all(
                    vec![Room::Fleet(state.order.fleet.clone()), Room::Dispatch],
                    ServerMsg::EmergencyEvent(event.clone()),
                )];
                let incident = IncidentRow::from(&event);
                if action == Action::Maintain {
                    let change = Change {
                        incident: Some(incident),
                        messages: announce_to,
                        answer: answer_ok(msg.answer.as_ref(), &event),
                        ..Default::default()
                    };
                    let pool = act.hub.pool.clone();
                    let write = async move {
                        db::run(&pool, move |c| commit::apply(c, change, Utc::now())).await
                    };
                    let received = msg.received;
                    return Box::pin(fut::wrap_future(write).map(move |res, act: &mut Self, _| {
                        act.spawn_publish_timed("emergency_event", res?, Some(received));
                        Ok(event)
                    })) as Fut<_>;
                }
                let mut mv = act.plan_move(
                    &state,
                    best.as_ref(),
                    AssignReason::Emergency,
                    Some(&event.event_id),
                    true,
                );
                // The announcement goes first, so everyone reads the event before its effects.
                announce_to.append(&mut mv.change.messages);
                mv.change.messages = announce_to;
                mv.change.incident = Some(incident);
                mv.change.answer = answer_ok(msg.answer.as_ref(), &event);
                mv.change.exclusion = msg
                    .reported_driver
                    .as_ref()
                    .map(|d| (d.0.clone(), "reported".to_string()));
                let exclude = msg.reported_driver.clone();
                Box::pin(
                    act.commit_move(addr, mv, exclude, "emergency_event", Some(msg.received))
                        .map(move |res, _, _| res.map(|_| event)),
                )
            },
        ))
    }
}

impl Handler<CreateOrder> for Dispatcher {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: CreateOrder, _: &mut Context<Self>) -> Self::Result {
        let order = msg.order;
        let state = OrderState {
            order: order.clone(),
            excluded: HashSet::new(),
        };
        let to = match &msg.driver {
            Some(d) => match self.index.get(d) {
                None => {
                    return AtomicResponse::new(ready(Err(AppError::not_found(format!(
                        "driver {d} does not exist"
                    )))))
                }
                Some(c) if c.fleet != order.fleet => {
                    return AtomicResponse::new(ready(Err(AppError::conflict(format!(
                        "driver {d} is in fleet {}, the order in fleet {}",
                        c.fleet, order.fleet
                    )))))
                }
                Some(_) => Some(d.clone()),
            },
            None => self.best_for(&state, None),
        };
        let (order, change) = match &to {
            // Planned as a move from "version 0": the new order is version 1, and its
            // `order_assigned` and `order_updated` carry exactly what is inserted.
            Some(d) => {
                let mut before = state;
                before.order.version = 0;
                let mv = self.plan_move(&before, Some(d), AssignReason::Dispatch, None, true);
                let mut change = mv.change;
                change.order = Some(OrderWrite::Insert(mv.next.clone()));
                change.answer = answer_ok(msg.answer.as_ref(), &mv.next);
                (mv.next, change)
            }
            None => {
                let change = Change {
                    order: Some(OrderWrite::Insert(order.clone())),
                    messages: OrderActor::updated_messages(&order),
                    answer: answer_ok(msg.answer.as_ref(), &order),
                    ..Default::default()
                };
                (order, change)
            }
        };
        let pool = self.hub.pool.clone();
        let write =
            async move { db::run(&pool, move |c| commit::apply(c, change, Utc::now())).await };
        AtomicResponse::new(Box::pin(fut::wrap_future(write).map(
            move |res, act: &mut Self, ctx| {
                let published = res?;
                act.hub.spawn_order(OrderState {
                    order: order.clone(),
                    excluded: HashSet::new(),
                });
                act.moved_order(
                    OrderState {
                        order: order.clone(),
                        excluded: HashSet::new(),
                    },
                    None,
                    to.as_ref(),
                );
                log::info!(
                    "[DECISION] order={} created fleet={} driver={}",
                    q(&order.id),
                    q(&order.fleet),
                    q_or_dash(to.as_ref())
                );
                act.spawn_publish("order_created", published);
                act.queue_dispatch(ctx);
                Ok(order)
            },
        )))
    }
}

impl Handler<DeclineOrder> for Dispatcher {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: DeclineOrder, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.with_order(
            &msg.order_id.clone(),
            move |act: &mut Self, addr, state| {
                let o = &state.order;
                if o.driver_id.as_ref() != Some(&msg.driver_id) {
                    return ready(Err(AppError::forbidden(format!(
                        "order {} was not offered to you",
                        o.id
                    ))));
                }
                if o.status != OrderStatus::Assigned || o.accepted_at.is_some() {
                    return ready(Err(AppError::conflict(format!(
                        "order {} is already accepted or under way: report an issue instead",
                        o.id
                    ))));
                }
                let to = act.best_for(&state, Some(&msg.driver_id));
                let mut mv = act.plan_move(&state, to.as_ref(), AssignReason::Decline, None, true);
                mv.change.exclusion = Some((msg.driver_id.0.clone(), "declined".into()));
                mv.change.answer = answer_ok(msg.answer.as_ref(), &mv.next);
                log::info!(
                    "[DECISION] order={} declined by={} next={}",
                    q(&o.id),
                    q(&msg.driver_id),
                    q_or_dash(to.as_ref())
                );
                act.commit_move(
                    addr,
                    mv,
                    Some(msg.driver_id.clone()),
                    "order_declined",
                    None,
                )
            },
        ))
    }
}

impl Handler<OverrideAssignment> for Dispatcher {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: OverrideAssignment, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.with_order(
            &msg.order_id.clone(),
            move |act: &mut Self, addr, state| {
                let Some(c) = act.index.get(&msg.driver_id) else {
                    return ready(Err(AppError::not_found(format!(
                        "driver {} does not exist",
                        msg.driver_id
                    ))));
                };
                if state.order.driver_id.as_ref() == Some(&msg.driver_id) {
                    return ready(Err(AppError::conflict(format!(
                        "order {} is already assigned to {}",
                        state.order.id, msg.driver_id
                    ))));
                }
                if !msg.force {
                    let refusal = if !c.online {
                        Some("is offline")
                    } else if c.held >= c.capacity {
                        Some("is at capacity")
                    } else if c.fleet != state.order.fleet {
                        Some("is in another fleet")
                    } else {
                        None
                    };
                    if let Some(why) = refusal {
                        return ready(Err(AppError::conflict(format!(
                            "driver {} {why}; send \"force\": true to assign anyway",
                            msg.driver_id
                        ))));
                    }
                }
                let mut mv = act.plan_move(
                    &state,
                    Some(&msg.driver_id),
                    AssignReason::Override,
                    None,
                    !msg.force,
                );
                mv.change.audit = Some(AuditRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    actor: msg.actor.clone(),
                    action: "reassign".into(),
                    order_id: state.order.id.0.clone(),
                    from_driver_id: state.order.driver_id.as_ref().map(|d| d.0.clone()),
                    to_driver_id: Some(msg.driver_id.0.clone()),
                    reason: msg.reason.clone(),
                    forced: i32::from(msg.force),
                    created_at: to_db(Utc::now()),
                });
                mv.change.answer = answer_ok(msg.answer.as_ref(), &mv.next);
                log::info!(
                    "[OVERRIDE] order={} from={} to={} by={} force={} reason={:?}",
                    q(&state.order.id),
                    q_or_dash(state.order.driver_id.as_ref()),
                    q(&msg.driver_id),
                    q(&msg.actor),
                    msg.force,
                    msg.reason
                );
                act.commit_move(addr, mv, None, "order_override", None)
            },
        ))
    }
}
