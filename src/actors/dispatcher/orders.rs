//! Orders the Dispatcher places: a new order (dispatched to the best available driver unless one
//! is named), a declined offer handed on, and the admin override (audited).

use super::*;
use crate::db::models::{to_db, AuditRow};

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

impl Handler<CreateOrder> for Dispatcher {
    type Result = AtomicResponse<Self, Result<Order, AppError>>;

    fn handle(&mut self, msg: CreateOrder, _: &mut Context<Self>) -> Self::Result {
        let state = OrderState {
            order: msg.order,
            excluded: HashSet::new(),
        };
        let to = match self.new_order_driver(&state, msg.driver.as_ref()) {
            Ok(to) => to,
            Err(e) => return AtomicResponse::new(ready(Err(e))),
        };
        let (order, mut change) = self.plan_new(state.order, to.as_ref());
        change.answer = answer_ok(msg.answer.as_ref(), &order);
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
