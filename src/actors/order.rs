//! `OrderActor`: one active order's lifecycle (pending, assigned, picked_up, out_for_delivery,
//! delivered, cancelled) and its `version`, which grows on every change.
//!
//! Every change to the order passes through this actor one at a time and is committed (with a
//! version check) before it is announced. The Dispatcher decides who gets the order and asks the
//! order to move (`ApplyChange`); the driver's own steps (`Accept`, `SetDeliveryStatus`) and
//! cancellation are handled here. A delivered or cancelled order's actor stops.

use super::dispatcher::OrderFreed;
use super::driver::OrderReleased;
use super::{publish, Hub};
use crate::db::queries::commit::{self, Change, OrderWrite, Publication, Published};
use crate::db::{self};
use crate::dispatch::{decision, lifecycle};
use crate::error::AppError;
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::*;
use crate::telemetry::q;
use actix::prelude::*;
use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;

/// An order and the drivers it must not go to.
#[derive(Debug, Clone)]
pub struct OrderState {
    pub order: Order,
    pub excluded: HashSet<DriverId>,
}

/// Answers the order as it is now.
#[derive(Message)]
#[rtype(result = "OrderState")]
pub struct GetOrder;

/// Commits a change the Dispatcher planned; `next` is the order after it.
#[derive(Message)]
#[rtype(result = "Result<Vec<Published>, AppError>")]
pub struct ApplyChange {
    pub change: Change,
    pub next: Order,
    pub exclude: Option<DriverId>,
}

/// A change the Dispatcher committed itself, with other orders' in one transaction (a batch
/// decision): the order takes `next` as its state, unless it already holds a later version.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Adopt {
    pub next: Order,
    pub exclude: Option<DriverId>,
}

/// The order's driver accepts it.
#[derive(Message)]
#[rtype(result = "Result<Order, AppError>")]
pub struct Accept {
    pub driver_id: DriverId,
    pub answer: Option<AnswerKey>,
}

/// The order's driver moves it along: picked_up, out_for_delivery, delivered.
#[derive(Message)]
#[rtype(result = "Result<Order, AppError>")]
pub struct SetDeliveryStatus {
    pub driver_id: DriverId,
    pub status: DeliveryStatus,
    pub answer: Option<AnswerKey>,
}

/// A dispatcher or admin cancels the order; or a partner, only its own and only while pending.
#[derive(Message)]
#[rtype(result = "Result<Order, AppError>")]
pub struct Cancel {
    pub by: String,
    /// The partner cancelling, when it is one.
    pub partner: Option<String>,
    pub answer: Option<AnswerKey>,
}

/// One active order.
pub struct OrderActor {
    hub: Arc<Hub>,
    state: OrderState,
}

impl OrderActor {
    pub fn new(hub: Arc<Hub>, state: OrderState) -> OrderActor {
        OrderActor { hub, state }
    }

    /// The `order_updated` announcing `next`: one publication (one `id`) to its room, `dispatch`,
    /// and its customer's and partner's rooms when it has them (SPEC 10). Only this message goes
    /// to those rooms: never an assignment, an incident, presence or locations.
    pub fn updated_messages(next: &Order) -> Vec<Publication> {
        let msg = ServerMsg::OrderUpdated {
            order_id: next.id.clone(),
            status: next.status,
            driver_id: next.driver_id.clone(),
            version: next.version,
            eta: next.eta,
            timestamp: next.updated_at,
        };
        let mut rooms = vec![Room::Order(next.id.clone()), Room::Dispatch];
        rooms.extend(next.customer_id.clone().map(Room::Customer));
        rooms.extend(next.partner_id.clone().map(Room::Partner));
        vec![Publication::to_all(rooms, msg)]
    }

    /// Commits `change`, then takes `next` as the order's state.
    fn commit(
        &mut self,
        change: Change,
        next: Order,
        exclude: Option<DriverId>,
    ) -> ResponseActFuture<Self, Result<Vec<Published>, AppError>> {
        let pool = self.hub.pool.clone();
        let write =
            async move { db::run(&pool, move |c| commit::apply(c, change, Utc::now())).await };
        Box::pin(write.into_actor(self).map(move |res, act, ctx| {
            let published = res?;
            act.state.order = next;
            act.state.excluded.extend(exclude);
            if act.state.order.status.is_terminal() {
                act.hub.remove_order(&act.state.order.id);
                ctx.stop();
            }
            Ok(published)
        }))
    }

    /// A driver's own step on the order: checks, commits, announces.
    fn driver_step(
        &mut self,
        driver_id: &DriverId,
        answer: Option<&AnswerKey>,
        step: impl FnOnce(&Order, &mut Order) -> Result<bool, AppError>,
    ) -> ResponseActFuture<Self, Result<Order, AppError>> {
        let current = &self.state.order;
        if current.driver_id.as_ref() != Some(driver_id) {
            return Box::pin(fut::ready(Err(AppError::forbidden(format!(
                "order {} is not assigned to you",
                current.id
            )))));
        }
        let mut next = current.clone();
        match step(current, &mut next) {
            Ok(true) => {}
            // Nothing to change (a repeated accept): answer with the order as it is.
            Ok(false) => return Box::pin(fut::ready(Ok(current.clone()))),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        }
        next.version = current.version + 1;
        next.updated_at = Utc::now();
        let released = next.status.is_terminal();
        let change = Change {
            order: Some(OrderWrite::Update {
                new: next.clone(),
                expected_version: current.version,
            }),
            messages: Self::updated_messages(&next),
            answer: answer_ok(answer, &next),
            ..Default::default()
        };
        let result = next.clone();
        let driver = driver_id.clone();
        Box::pin(self.commit(change, next, None).map(move |res, act, _| {
            let published = res?;
            log::info!(
                "[EVENT_RECEIVED] order={} driver={} status={} version={}",
                q(&result.id),
                q(&driver),
                result.status,
                result.version
            );
            if released {
                act.release(&driver);
            }
            let hub = act.hub.clone();
            actix::spawn(async move { publish(&hub, "order_updated", published).await });
            Ok(result)
        }))
    }

    /// Frees the driver's capacity once the order is finished.
    fn release(&self, driver: &DriverId) {
        if let Some(d) = self.hub.driver(driver) {
            d.do_send(OrderReleased {
                order_id: self.state.order.id.clone(),
            });
        }
        self.hub.dispatcher.do_send(OrderFreed {
            order_id: self.state.order.id.clone(),
            driver_id: Some(driver.clone()),
        });
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;
}

/// The order's driver moved (at most once per `realtime.location_flush_ms`, `driver`): its
/// customer, if it has one, is told where its courier is.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct CourierMoved {
    pub driver_id: DriverId,
    pub location: crate::protocol::Location,
}

impl Handler<CourierMoved> for OrderActor {
    type Result = ();

    fn handle(&mut self, msg: CourierMoved, _: &mut Context<Self>) {
        let order = &self.state.order;
        // Only this order's customer, only while this driver has it: never the courier's other
        // orders, never after a reassignment.
        let Some(customer) = order.customer_id.clone() else {
            return;
        };
        if order.driver_id.as_ref() != Some(&msg.driver_id) || !order.status.holds_driver() {
            return;
        }
        let l = msg.location;
        let out = ServerMsg::CourierLocation {
            order_id: order.id.clone(),
            lat: l.lat,
            lng: l.lng,
            speed: l.speed,
            heading: l.heading,
            timestamp: l.timestamp,
        };
        crate::actors::publish_ephemeral(&self.hub, Room::Customer(customer), &out);
    }
}

impl Handler<GetOrder> for OrderActor {
    type Result = MessageResult<GetOrder>;
    fn handle(&mut self, _: GetOrder, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

impl Handler<ApplyChange> for OrderActor {
    type Result = AtomicResponse<Self, Result<Vec<Published>, AppError>>;

    fn handle(&mut self, msg: ApplyChange, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = lifecycle::check_transition(self.state.order.status, msg.next.status) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(AppError::conflict(e)))));
        }
        AtomicResponse::new(self.commit(msg.change, msg.next, msg.exclude))
    }
}

impl Handler<Adopt> for OrderActor {
    type Result = ();

    fn handle(&mut self, msg: Adopt, ctx: &mut Context<Self>) {
        // The commit checked the version this actor held, so a later one can only be its own.
        if msg.next.version <= self.state.order.version {
            return;
        }
        self.state.order = msg.next;
        self.state.excluded.extend(msg.exclude);
        if self.state.order.status.is_terminal() {
            self.hub.remove_order(&self.state.order.id);
            ctx.stop();
        }
    }
}

impl Handler<Accept> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: Accept, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.driver_step(
            &msg.driver_id,
            msg.answer.as_ref(),
            |current, next| {
                if current.status != OrderStatus::Assigned {
                    return Err(AppError::conflict(format!(
                        "order {} is {}, there is nothing to accept",
                        current.id, current.status
                    )));
                }
                if current.accepted_at.is_some() {
                    return Ok(false);
                }
                next.accepted_at = Some(Utc::now());
                Ok(true)
            },
        ))
    }
}

impl Handler<SetDeliveryStatus> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: SetDeliveryStatus, _: &mut Context<Self>) -> Self::Result {
        let to = OrderStatus::from(msg.status);
        let speed = self.hub.settings.dispatch.average_speed_kmh;
        AtomicResponse::new(self.driver_step(
            &msg.driver_id,
            msg.answer.as_ref(),
            move |current, next| {
                if current.status == to {
                    return Ok(false);
                }
                if current.status == OrderStatus::Assigned && current.accepted_at.is_none() {
                    return Err(AppError::conflict(format!(
                        "accept order {} before moving it to {to}",
                        current.id
                    )));
                }
                lifecycle::check_transition(current.status, to).map_err(AppError::conflict)?;
                next.status = to;
                next.eta = if to == OrderStatus::Delivered {
                    None
                } else {
                    let km = decision::remaining_km(to, None, current.pickup, current.dropoff);
                    Some(decision::eta(Utc::now(), km, speed))
                };
                Ok(true)
            },
        ))
    }
}

impl Handler<Cancel> for OrderActor {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: Cancel, _: &mut Context<Self>) -> Self::Result {
        let current = self.state.order.clone();
        if let Some(p) = &msg.partner {
            if current.partner_id.as_ref() != Some(p) {
                return AtomicResponse::new(Box::pin(fut::ready(Err(AppError::forbidden(
                    format!("order {} is not yours to cancel", current.id),
                )))));
            }
            if current.status != OrderStatus::Pending {
                return AtomicResponse::new(Box::pin(fut::ready(Err(AppError::conflict(
                    format!(
                        "order {} is {}: a partner cancels only pending orders",
                        current.id, current.status
                    ),
                )))));
            }
        }
        if let Err(e) = lifecycle::check_transition(current.status, OrderStatus::Cancelled) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(AppError::conflict(e)))));
        }
        let mut next = current.clone();
        next.status = OrderStatus::Cancelled;
        next.version += 1;
        next.eta = None;
        next.updated_at = Utc::now();
        let mut messages = Self::updated_messages(&next);
        if let Some(d) = &current.driver_id {
            messages.push(Publication::to(
                Room::Driver(d.clone()),
                ServerMsg::OrderUnassigned {
                    order_id: current.id.clone(),
                    driver_id: d.clone(),
                    reason: AssignReason::Cancelled,
                    event_id: None,
                },
            ));
        }
        let change = Change {
            order: Some(OrderWrite::Update {
                new: next.clone(),
                expected_version: current.version,
            }),
            messages,
            answer: answer_ok(msg.answer.as_ref(), &next),
            ..Default::default()
        };
        let by = msg.by;
        AtomicResponse::new(Box::pin(self.commit(change, next.clone(), None).map(
            move |res, act, _| {
                let published = res?;
                log::info!("[OVERRIDE] order={} cancelled by={}", q(&next.id), q(&by));
                match &current.driver_id {
                    Some(d) => act.release(d),
                    None => act.hub.dispatcher.do_send(OrderFreed {
                        order_id: next.id.clone(),
                        driver_id: None,
                    }),
                }
                let hub = act.hub.clone();
                actix::spawn(async move { publish(&hub, "order_cancelled", published).await });
                Ok(next)
            },
        )))
    }
}
