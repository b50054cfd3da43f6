//! The emergency path in the Dispatcher (SPEC 4): a report is checked and scored (the risk phase
//! of many reports runs at once), then decided and committed one at a time (`Decide`, an
//! `AtomicResponse`), with its announcement, the move of the order and the answer under its
//! idempotency key in one transaction.

use super::*;
use crate::db::models::{to_db, IncidentRow};
use crate::risk_client;
use chrono::Timelike;

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
