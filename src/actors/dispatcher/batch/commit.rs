//! Committing a batch: every report's incident, announcement and idempotent answer, and every
//! move, in one transaction (each order's version and each driver's capacity checked); then the
//! orders' actors adopt their state, the index follows, and the rooms are told. A batch rolled
//! back by an order that changed meanwhile is decided again from fresh state.

use super::decide::{FleetDecision, Groups, Planned};
use super::*;
use crate::db::models::IncidentRow;

/// How often a batch is decided again after an order changed under it, before its reports are
/// answered with the conflict.
const MAX_ATTEMPTS: u32 = 3;

/// A move the batch committed, for what follows the commit.
struct Applied {
    addr: Addr<OrderActor>,
    next: OrderState,
    exclude: Option<DriverId>,
    from: Option<DriverId>,
    to: Option<DriverId>,
    reason: AssignReason,
}

impl Dispatcher {
    /// Builds each report's event and every change, commits them in one transaction, then lets
    /// the actors, the index and the rooms know.
    pub(super) fn commit_batch(
        &mut self,
        groups: Groups,
        decisions: Vec<FleetDecision>,
    ) -> Fut<()> {
        let Groups {
            live: reports,
            maintain,
            ..
        } = groups;
        for d in &decisions {
            log::info!(
                "[DECISION] batch {} time_us={}",
                d.line,
                d.elapsed.as_micros()
            );
            crate::stats::batch_decision(d.solver, d.elapsed);
        }
        let planned: Vec<Planned> = decisions.into_iter().flat_map(|d| d.planned).collect();
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
        let write = async move {
            db::run(&pool, move |c| {
                crate::db::queries::commit::apply_all(c, changes, Utc::now())
            })
            .await
        };
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
                    // One answer for every report the batch gives up on, reduced (and its
                    // internal detail logged) once.
                    let (code, message) = (e.code(), e.client_message());
                    for mut p in reports {
                        p.scored.attempts += 1;
                        if retry && p.scored.attempts < MAX_ATTEMPTS {
                            act.batching.pending.push(p);
                        } else {
                            let _ = p.reply.send(Err(AppError::Answered {
                                code,
                                message: message.clone(),
                            }));
                        }
                    }
                }
            }
            act.queue_dispatch(ctx);
            act.schedule_batch(ctx);
        }))
    }
}
