//! `EmergencyDesk`: the one writer of emergencies within a node (the leader's, in a cluster).
//!
//! It keeps the open emergencies (pending and assigned) and the units as their driver actors
//! tell it (online, location, type), so a dispatch decides from its own state; every step is an
//! `AtomicResponse` that commits (the emergency's row, its room messages, the answer under the
//! request's key: one transaction through `db::queries::commit`) before the next is looked at,
//! so no two steps take the same unit. The database backs that up: a unit is on at most one
//! assigned emergency by a unique index, and each step's write is conditional on the status it
//! starts from. It rebuilds the open emergencies from the database at start (`Rebuild`).
//!
//! Here: the actor and its steps. What each step publishes is `plan`'s, which unit is picked
//! `logic`'s, and the units' feed (availability, positions, the `unit_tracking` batches) `feed`'s.

use super::logic::{self, Candidate, Unavailable};
use super::plan;
use super::write::{write_step, Write};
use crate::actors::{publish, Hub};
use crate::auth::Claims;
use crate::db;
use crate::db::queries::commit::{self, Publication};
use crate::error::{AppError, ErrorCode};
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::server::DriverLocation;
use crate::protocol::*;
use crate::telemetry::q;
use actix::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a step was not taken.
#[derive(Debug)]
pub enum DeskError {
    /// The emergency is not open here (unknown, or finished): the command reads which.
    NotOpen,
    Refused(AppError),
}

impl From<AppError> for DeskError {
    fn from(e: AppError) -> Self {
        DeskError::Refused(e)
    }
}

type Step = Result<Emergency, DeskError>;

/// Records a new emergency, and dispatches it at once when its severity is in
/// `units.auto_dispatch` and a unit is free. Answers it as it then stands.
#[derive(Message)]
#[rtype(result = "Result<Emergency, DeskError>")]
pub struct Create {
    pub emergency: Emergency,
    pub answer: Option<AnswerKey>,
}

/// Dispatches a pending emergency to `unit_id`, or to the unit `logic::pick` picks.
#[derive(Message)]
#[rtype(result = "Result<Emergency, DeskError>")]
pub struct Dispatch {
    pub request_id: String,
    pub unit_id: Option<DriverId>,
    pub answer: Option<AnswerKey>,
}

/// Completes (`COMPLETED`) or cancels (`CANCELLED`) an emergency for `by`, freeing its unit.
#[derive(Message)]
#[rtype(result = "Result<Emergency, DeskError>")]
pub struct Finish {
    pub request_id: String,
    pub to: EmergencyStatus,
    pub by: Claims,
    pub answer: Option<AnswerKey>,
}

/// Dispatches the oldest waiting auto-dispatch emergency that a free unit can take.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct DispatchWaiting;

/// A unit as the desk knows it.
#[derive(Debug, Clone)]
pub(super) struct UnitLive {
    pub name: String,
    pub fleet: String,
    pub unit_type: Option<UnitType>,
    pub online: bool,
    pub location: Option<Location>,
}

/// The emergency desk.
pub struct EmergencyDesk {
    pub(super) hub: Arc<Hub>,
    pub(super) units: BTreeMap<DriverId, UnitLive>,
    /// The open emergencies: pending and assigned.
    pub(super) open: BTreeMap<String, Emergency>,
    /// Positions since the last `unit_tracking` batch, newest wins.
    pub(super) moved: BTreeMap<DriverId, DriverLocation>,
    pub(super) dispatch_queued: bool,
}

type Fut<T> = ResponseActFuture<EmergencyDesk, T>;

fn ready<T: 'static>(v: T) -> Fut<T> {
    Box::pin(fut::ready(v))
}

/// The time to stamp, at the databases' precision (microseconds), so an answer given now and
/// the emergency read later agree.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)
}

/// A planned step: the emergency after it, the unit it takes or frees, and what it commits.
struct Planned {
    next: Emergency,
    unit: Option<DriverId>,
    messages: Vec<Publication>,
    write: Write,
}

impl EmergencyDesk {
    pub fn new(hub: Arc<Hub>) -> EmergencyDesk {
        EmergencyDesk {
            hub,
            units: BTreeMap::new(),
            open: BTreeMap::new(),
            moved: BTreeMap::new(),
            dispatch_queued: false,
        }
    }

    /// The emergency `unit` is on, if any.
    fn on_emergency(&self, unit: &DriverId) -> Option<&str> {
        self.open
            .values()
            .find(|e| e.status == EmergencyStatus::Assigned && e.unit_id.as_ref() == Some(unit))
            .map(|e| e.request_id.as_str())
    }

    fn candidate(&self, id: &DriverId, u: &UnitLive) -> Candidate {
        Candidate {
            id: id.clone(),
            unit_type: u.unit_type,
            online: u.online,
            busy: self.on_emergency(id).is_some(),
            location: u.location.map(|l| l.point()),
        }
    }

    /// The unit object of `id`, as it is once on `emergency` (or free, with `None`).
    fn unit_view(&self, id: &DriverId, emergency: Option<&str>) -> Unit {
        let u = self.units.get(id);
        Unit {
            unit_id: id.clone(),
            name: u.map_or_else(|| id.0.clone(), |u| u.name.clone()),
            fleet: u.map_or_else(String::new, |u| u.fleet.clone()),
            unit_type: u.and_then(|u| u.unit_type),
            status: plan::unit_status_of(u.is_some_and(|u| u.online), emergency),
            location: u.and_then(|u| u.location),
            emergency_id: emergency.map(str::to_string),
        }
    }

    /// The unit a dispatch of `e` takes: `named`, checked, or the one `logic::pick` picks.
    fn choose(&self, e: &Emergency, named: Option<&DriverId>) -> Result<DriverId, AppError> {
        if let Some(id) = named {
            let c = self.units.get(id).map(|u| self.candidate(id, u));
            return match logic::check_named(c.as_ref(), self.on_emergency(id)) {
                Ok(()) => Ok(id.clone()),
                Err(Unavailable::Unknown) => Err(AppError::not_found(format!(
                    "unit {id} is not a known unit"
                ))),
                Err(Unavailable::Offline) => {
                    Err(AppError::conflict(format!("unit {id} is offline")))
                }
                Err(Unavailable::Busy(other)) => Err(AppError::conflict(format!(
                    "unit {id} is on emergency {other} already"
                ))),
            };
        }
        let candidates: Vec<Candidate> = self
            .units
            .iter()
            .map(|(id, u)| self.candidate(id, u))
            .collect();
        logic::pick(&candidates, e.location, e.kind)
            .map(|c| c.id.clone())
            .ok_or_else(|| AppError::conflict("no unit is free: the emergency stays PENDING"))
    }

    /// Plans assigning `e` to `unit`.
    fn plan_assign(&self, e: &Emergency, unit: &DriverId, write: Write) -> Planned {
        let mut next = e.clone();
        next.status = EmergencyStatus::Assigned;
        next.unit_id = Some(unit.clone());
        next.updated_at = now();
        let view = self.unit_view(unit, Some(&next.request_id));
        let mut messages = match write {
            Write::Insert { .. } => plan::created(e),
            _ => Vec::new(),
        };
        messages.extend(plan::assigned(&next, &view));
        Planned {
            next,
            unit: Some(unit.clone()),
            messages,
            write,
        }
    }

    /// Commits `p` with `answer`, then (committed) updates the desk, tells the unit's driver
    /// actor and publishes. Answers the emergency after the step.
    fn commit(&mut self, p: Planned, answer: Option<AnswerKey>, what: &'static str) -> Fut<Step> {
        let value = match crate::commands::to_value(&p.next) {
            Ok(v) => v,
            Err(e) => return ready(Err(e.into())),
        };
        let change = commit::Change {
            messages: p.messages,
            answer: answer_ok(answer.as_ref(), &value),
            ..Default::default()
        };
        let next = p.next.clone();
        let unit = p.unit.clone();
        let write = p.write;
        let at = next.updated_at;
        let pool = self.hub.pool.clone();
        let job = async move {
            db::run(&pool, move |c| {
                diesel::Connection::transaction(c, |c| {
                    write_step(c, &next, unit.as_ref(), write)?;
                    commit::apply(c, change, at)
                })
            })
            .await
        };
        let next = p.next;
        let unit = p.unit;
        Box::pin(job.into_actor(self).map(move |res, act, ctx| {
            let published = res?;
            act.stepped(&next, unit.as_ref());
            if !next.status.is_open() {
                act.queue_dispatch(ctx);
            }
            log::info!(
                "[DECISION] emergency={} {what} status={} unit={}",
                q(&next.request_id),
                next.status,
                crate::telemetry::q_or_dash(unit.as_ref())
            );
            let hub = act.hub.clone();
            actix::spawn(async move { publish(&hub, what, published).await });
            Ok(next)
        }))
    }

    /// After a committed step: the open emergencies and the unit's driver actor follow.
    fn stepped(&mut self, next: &Emergency, unit: Option<&DriverId>) {
        if next.status.is_open() {
            self.open.insert(next.request_id.clone(), next.clone());
        } else {
            self.open.remove(&next.request_id);
        }
        if let Some(u) = unit {
            let on = (next.status == EmergencyStatus::Assigned).then(|| next.request_id.clone());
            super::feed::tell_driver(&self.hub, u, on);
        }
    }

    /// Queues one `DispatchWaiting` when an auto-dispatch emergency waits (through the mailbox,
    /// so it runs after the step in progress, never beside it).
    pub(super) fn queue_dispatch(&mut self, ctx: &mut Context<Self>) {
        if self.dispatch_queued || !self.open.values().any(|e| self.waits(e)) {
            return;
        }
        self.dispatch_queued = true;
        ctx.address().do_send(DispatchWaiting);
    }

    /// Whether `e` waits to be dispatched without a click.
    fn waits(&self, e: &Emergency) -> bool {
        e.status == EmergencyStatus::Pending && self.hub.settings.units.auto_dispatches(e.severity)
    }
}

impl Actor for EmergencyDesk {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(
            self.hub.settings.realtime.location_flush(),
            Self::flush_locations,
        );
    }
}

impl Handler<Create> for EmergencyDesk {
    type Result = AtomicResponse<Self, Step>;

    fn handle(&mut self, msg: Create, _: &mut Context<Self>) -> Self::Result {
        let e = msg.emergency;
        let auto = self.hub.settings.units.auto_dispatches(e.severity);
        let unit = if auto {
            self.choose(&e, None).ok()
        } else {
            None
        };
        let plain = Planned {
            next: e.clone(),
            unit: None,
            messages: plan::created(&e),
            write: Write::Insert { then_assign: false },
        };
        log::info!(
            "[EVENT_RECEIVED] emergency={} type={} severity={} by={} auto_dispatch={auto}",
            q(&e.request_id),
            e.kind,
            e.severity,
            q(&e.reported_by)
        );
        let Some(u) = unit else {
            return AtomicResponse::new(self.commit(plain, msg.answer, "emergency_created"));
        };
        // Created and assigned in one transaction. Should the database refuse the assignment
        // (it disagrees with the desk about the unit), the emergency is still created, waiting.
        let planned = self.plan_assign(&e, &u, Write::Insert { then_assign: true });
        let answer = msg.answer.clone();
        AtomicResponse::new(Box::pin(
            self.commit(planned, msg.answer, "emergency_created").then(
                move |res, act: &mut Self, _| match res {
                    Err(DeskError::Refused(err)) if err.code() == ErrorCode::Conflict => {
                        log::warn!(
                            "[DECISION] emergency={} auto-dispatch to unit={} refused: {}",
                            q(&plain.next.request_id),
                            q(&u),
                            q(&err.to_string())
                        );
                        act.commit(plain, answer, "emergency_created")
                    }
                    other => ready(other),
                },
            ),
        ))
    }
}

impl Handler<Dispatch> for EmergencyDesk {
    type Result = AtomicResponse<Self, Step>;

    fn handle(&mut self, msg: Dispatch, _: &mut Context<Self>) -> Self::Result {
        let Some(e) = self.open.get(&msg.request_id).cloned() else {
            return AtomicResponse::new(ready(Err(DeskError::NotOpen)));
        };
        if e.status != EmergencyStatus::Pending {
            return AtomicResponse::new(ready(Err(AppError::conflict(format!(
                "emergency {} is {}, not PENDING",
                e.request_id, e.status
            ))
            .into())));
        }
        let unit = match self.choose(&e, msg.unit_id.as_ref()) {
            Ok(u) => u,
            Err(err) => return AtomicResponse::new(ready(Err(err.into()))),
        };
        let planned = self.plan_assign(&e, &unit, Write::Assign);
        AtomicResponse::new(self.commit(planned, msg.answer, "emergency_assigned"))
    }
}

impl Handler<Finish> for EmergencyDesk {
    type Result = AtomicResponse<Self, Step>;

    fn handle(&mut self, msg: Finish, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(match self.plan_finish(&msg) {
            Ok(planned) => self.commit(planned, msg.answer, "emergency_finished"),
            Err(e) => ready(Err(e)),
        })
    }
}

impl EmergencyDesk {
    /// Plans a completion or a cancel, with its rules: a completion is of an assigned
    /// emergency, by staff or its unit; a cancel of an open one, by staff.
    fn plan_finish(&self, msg: &Finish) -> Result<Planned, DeskError> {
        let e = self.open.get(&msg.request_id).ok_or(DeskError::NotOpen)?;
        let (action, from): (_, &'static [&'static str]) = match msg.to {
            EmergencyStatus::Completed => (EmergencyAction::Completed, &["ASSIGNED"]),
            EmergencyStatus::Cancelled => (EmergencyAction::Cancelled, &["PENDING", "ASSIGNED"]),
            other => return Err(AppError::internal(format!("no step finishes as {other}")).into()),
        };
        let its_unit = msg.by.driver().is_some() && msg.by.driver() == e.unit_id.as_ref();
        let allowed = match action {
            EmergencyAction::Completed => msg.by.is_staff() || its_unit,
            _ => msg.by.is_staff(),
        };
        if !allowed {
            return Err(AppError::forbidden(format!(
                "role `{}` may not {} emergency {}",
                msg.by.role,
                if action == EmergencyAction::Completed {
                    "complete"
                } else {
                    "cancel"
                },
                e.request_id
            ))
            .into());
        }
        if action == EmergencyAction::Completed && e.status != EmergencyStatus::Assigned {
            return Err(AppError::conflict(format!(
                "emergency {} is {}: only an ASSIGNED one completes",
                e.request_id, e.status
            ))
            .into());
        }
        let mut next = e.clone();
        next.status = msg.to;
        next.updated_at = now();
        let unit = e
            .unit_id
            .clone()
            .filter(|_| e.status == EmergencyStatus::Assigned);
        let view = unit.as_ref().map(|u| self.unit_view(u, None));
        Ok(Planned {
            messages: plan::finished(&next, action, view.as_ref()),
            next,
            unit,
            write: Write::Finish { from },
        })
    }
}

impl Handler<DispatchWaiting> for EmergencyDesk {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: DispatchWaiting, _: &mut Context<Self>) -> Self::Result {
        self.dispatch_queued = false;
        // Oldest first: `open` is by id, so order by creation here.
        let mut waiting: Vec<&Emergency> = self.open.values().filter(|e| self.waits(e)).collect();
        waiting.sort_by_key(|e| e.created_at);
        let found = waiting
            .into_iter()
            .find_map(|e| self.choose(e, None).ok().map(|u| (e.clone(), u)));
        let Some((e, unit)) = found else {
            return AtomicResponse::new(ready(()));
        };
        log::info!(
            "[DECISION] emergency={} waiting -> unit={}",
            q(&e.request_id),
            q(&unit)
        );
        let planned = self.plan_assign(&e, &unit, Write::Assign);
        AtomicResponse::new(Box::pin(
            self.commit(planned, None, "emergency_assigned")
                .map(|res, act, ctx| match res {
                    // The next waiting one may have a unit too.
                    Ok(_) => act.queue_dispatch(ctx),
                    // Not retried at once (it would fail alike): the next unit freed or online
                    // tries again.
                    Err(DeskError::Refused(e)) => {
                        log::warn!("[DECISION] auto-dispatch failed: {}", q(&e.to_string()))
                    }
                    Err(DeskError::NotOpen) => {}
                }),
        ))
    }
}
