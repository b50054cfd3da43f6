//! New orders in bulk (`POST /api/v1/orders/bulk`): each planned exactly as a single
//! `CreateOrder` is (to its named driver, to the best available one, or waiting), the drivers'
//! capacity taken as the plan goes so two orders of the batch never count on the same free slot;
//! then every order and its messages committed in one transaction, and only then the actors,
//! the index and the waiting list follow and the messages go out.

use super::*;

/// New orders, each with the driver it is given to (`None`: dispatched).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<Order>, AppError>")]
pub struct CreateOrders {
    pub orders: Vec<(Order, Option<DriverId>)>,
    pub answer: Option<AnswerKey>,
}

impl Dispatcher {
    /// The driver a new order goes to: the one named (which must exist, in the order's fleet),
    /// or the best available one.
    pub(super) fn new_order_driver(
        &self,
        state: &OrderState,
        named: Option<&DriverId>,
    ) -> Result<Option<DriverId>, AppError> {
        let Some(d) = named else {
            return Ok(self.best_for(state, None));
        };
        match self.index.get(d) {
            None => Err(AppError::not_found(format!("driver {d} does not exist"))),
            Some(c) if c.fleet != state.order.fleet => Err(AppError::conflict(format!(
                "driver {d} is in fleet {}, the order in fleet {}",
                c.fleet, state.order.fleet
            ))),
            Some(_) => Ok(Some(d.clone())),
        }
    }

    /// What creating `order` for `to` commits, and the order as inserted: planned as a move from
    /// "version 0", so the new order is version 1 and its `order_assigned` and `order_updated`
    /// carry exactly what is inserted.
    pub(super) fn plan_new(&self, order: Order, to: Option<&DriverId>) -> (Order, Change) {
        match to {
            Some(d) => {
                let mut before = OrderState {
                    order,
                    excluded: HashSet::new(),
                };
                before.order.version = 0;
                let mv = self.plan_move(&before, Some(d), AssignReason::Dispatch, None, true);
                let mut change = mv.change;
                change.order = Some(OrderWrite::Insert(mv.next.clone()));
                (mv.next, change)
            }
            None => {
                let change = Change {
                    order: Some(OrderWrite::Insert(order.clone())),
                    messages: OrderActor::updated_messages(&order),
                    ..Default::default()
                };
                (order, change)
            }
        }
    }

    /// Plans every order of a bulk request; the capacity each takes is held in the index while
    /// planning (so the next is planned around it) and given back at the end, whatever the
    /// outcome: a committed plan takes it again in `moved_order`.
    fn plan_bulk(
        &mut self,
        orders: Vec<(Order, Option<DriverId>)>,
    ) -> Result<Vec<(Order, Option<DriverId>, Change)>, AppError> {
        let mut planned = Vec::with_capacity(orders.len());
        let mut failed = None;
        for (order, named) in orders {
            let state = OrderState {
                order,
                excluded: HashSet::new(),
            };
            let to = match self.new_order_driver(&state, named.as_ref()) {
                Ok(to) => to,
                Err(e) => {
                    failed = Some(AppError::bad_request(format!(
                        "orders[{}].driver_id: {}",
                        planned.len(),
                        e.client_message()
                    )));
                    break;
                }
            };
            if let Some(d) = &to {
                self.index.hold(d);
            }
            let (next, change) = self.plan_new(state.order, to.as_ref());
            planned.push((next, to, change));
        }
        for (_, to, _) in &planned {
            if let Some(d) = to {
                self.index.release(d);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(planned),
        }
    }
}

impl Handler<CreateOrders> for Dispatcher {
    type Result = AtomicResponse<Self, Result<Vec<Order>, AppError>>;

    fn handle(&mut self, msg: CreateOrders, _: &mut Context<Self>) -> Self::Result {
        let planned = match self.plan_bulk(msg.orders) {
            Ok(p) => p,
            Err(e) => return AtomicResponse::new(ready(Err(e))),
        };
        let mut changes = Vec::with_capacity(planned.len());
        let mut created = Vec::with_capacity(planned.len());
        for (order, to, change) in planned {
            changes.push(change);
            created.push((order, to));
        }
        let orders: Vec<Order> = created.iter().map(|(o, _)| o.clone()).collect();
        if let Some(first) = changes.first_mut() {
            first.answer = answer_ok(msg.answer.as_ref(), &orders);
        }
        let pool = self.hub.pool.clone();
        let write =
            async move { db::run(&pool, move |c| commit::apply_all(c, changes, Utc::now())).await };
        AtomicResponse::new(Box::pin(fut::wrap_future(write).map(
            move |res, act: &mut Self, ctx| {
                let published = res?;
                let assigned = created.iter().filter(|(_, to)| to.is_some()).count();
                for (order, to) in created {
                    let state = OrderState {
                        order,
                        excluded: HashSet::new(),
                    };
                    act.hub.spawn_order(state.clone());
                    log::info!(
                        "[DECISION] order={} created fleet={} driver={}",
                        q(&state.order.id),
                        q(&state.order.fleet),
                        q_or_dash(to.as_ref())
                    );
                    act.moved_order(state, None, to.as_ref());
                }
                log::info!(
                    "[DECISION] bulk created={} assigned={assigned}",
                    orders.len()
                );
                act.spawn_publish("order_created", published);
                act.queue_dispatch(ctx);
                Ok(orders)
            },
        )))
    }
}
