//! The emergency path in the Dispatcher (SPEC 4): a report is checked and scored (the risk phase
//! of many reports runs at once), then waits for its batch (`batch`): the reports that reach the
//! Dispatcher together are decided and committed as one, each with its announcement, the move of
//! its order and the answer under its idempotency key, in one transaction.

use super::batch::Scored;
use super::*;
use crate::db::models::to_db;
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
            let ticket = act.batching.begin_scoring(received);
            Box::pin(fut::wrap_future(scoring).then(move |(score, source), act: &mut Self, ctx| {
                let answer = act.scored(
                    ticket,
                    Scored {
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
                        attempts: 0,
                    },
                    ctx,
                );
                fut::wrap_future(async move {
                    answer.await.unwrap_or_else(|_| {
                        Err(AppError::internal("the Dispatcher dropped a report before deciding it"))
                    })
                })
            })) as Fut<_>
        }))
    }
}
