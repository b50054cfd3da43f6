//! `Dispatcher`: the one writer of assignments within a node.
//!
//! It receives emergency reports (from sessions and REST), asks the risk model, decides, picks the
//! new driver, asks the order to move, and publishes to the rooms of the people affected. It also
//! dispatches new orders, hands declined ones on, applies admin overrides, assigns waiting orders
//! as soon as a driver is free, and batches presence and locations.
//!
//! The risk phase of many reports runs concurrently; the reports that reach it together are then
//! decided as one batch (`batch`). Every decision that takes capacity is an `AtomicResponse`, so
//! the Dispatcher commits it before it looks at the next, and no two decisions can take the same
//! free capacity. Its index of drivers (online, held, capacity,
//! location; `dispatch::index`, an R*-tree per fleet of the available ones) is kept current by
//! the driver actors and by its own commits, so picking a driver never scans them all.
//!
//! Here: the actor, its index and waiting orders, planning and committing a move. The emergency
//! path is in `report` (checks and risk) and `batch` (gathering, deciding and committing the
//! reports of a batch), the orders it places (new, declined, overridden) in `orders` and in bulk
//! in `bulk`, the
//! presence and location batches in `live`.

use super::driver::{OrderHeld, OrderReleased};
use super::order::{Adopt, ApplyChange, GetOrder, OrderActor, OrderState};
use super::{publish_timed, Hub};
use crate::auth::Claims;
use crate::db::queries::commit::{self, Change, OrderWrite, Publication, Published};
use crate::db::{self, queries};
use crate::dispatch::index::DriverIndex;
use crate::dispatch::{decision, matching, risk};
use crate::error::AppError;
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::server::{DriverLocation, PresenceChange};
use crate::protocol::*;
use crate::telemetry::{q, q_or_dash};
use actix::prelude::*;
use chrono::Utc;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

mod batch;
mod bulk;
mod live;
mod orders;
mod report;

pub use bulk::CreateOrders;
pub use live::DriverMoved;
pub use orders::{CreateOrder, DeclineOrder, OverrideAssignment};
pub use report::ReportIncident;

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
    batching: batch::Batching,
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
            batching: batch::Batching::default(),
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

impl Handler<OrderFreed> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: OrderFreed, ctx: &mut Context<Self>) {
        if let Some(d) = &msg.driver_id {
            self.index.release(d);
        }
        self.batching.forget(&msg.order_id);
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
                        Ok(order) => act.batching.note_assigned(&order, false),
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
