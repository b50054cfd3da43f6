//! Operators' actions (`action:created`) and reports from the field (`report:new`), committed
//! by the event's desk with their message (SPEC 8), and the commands that ask for them and for
//! insights and predictions: `POST /api/v1/actions`, `/api/v1/reports`, `/api/v1/ai/insights`,
//! `/api/v1/ai/predictions`.

use super::commands::{require_event, OPERATORS};
use super::desk::{now, EventDesk};
use super::insight::{self, TakeFeatures, DEFAULT_HORIZON_MIN};
use super::logic;
use super::store;
use crate::actors::Hub;
use crate::auth::Claims;
use crate::db::queries::commit::Publication;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::crowd::{Action, Report};
use crate::protocol::{Role, ServerMsg};
use actix::prelude::*;
use std::sync::Arc;

type Reply = Result<serde_json::Value, AppError>;

/// Who asks for insights and predictions.
pub const ANALYSTS: &[Role] = &[Role::Operator, Role::Dispatcher, Role::Admin];
/// The longest report `type`.
pub const MAX_REPORT_TYPE_LEN: usize = 64;

/// An action or a report to store and announce.
pub enum Recorded {
    Action(Action),
    Report(Report),
}

/// Commits a `Recorded` with its message; answers its object.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, AppError>")]
pub struct Record {
    pub recorded: Recorded,
    pub answer: Option<AnswerKey>,
}

impl Handler<Record> for EventDesk {
    type Result = AtomicResponse<Self, Reply>;

    fn handle(&mut self, msg: Record, _: &mut Context<Self>) -> Self::Result {
        let room = self.room();
        let event = self.id.clone();
        let planned: Result<_, AppError> = match msg.recorded {
            Recorded::Action(a) => match &a.zone_id {
                Some(z) if !self.zones.contains_key(z) => Err(AppError::not_found(format!(
                    "event {event} has no zone {z}"
                ))),
                _ => crate::commands::to_value(&a).map(|v| {
                    let m = Publication::to(room, ServerMsg::ActionCreated { data: a.clone() });
                    let write = Box::new(move |c: &mut DbConnection| -> Result<(), AppError> {
                        store::insert_action(c, &a)?;
                        Ok(())
                    })
                        as Box<dyn FnOnce(&mut DbConnection) -> Result<(), AppError> + Send>;
                    ("crowd_action", v, m, write)
                }),
            },
            Recorded::Report(r) => crate::commands::to_value(&r).map(|v| {
                let m = Publication::to(room, ServerMsg::ReportNew { data: r.clone() });
                let write = Box::new(move |c: &mut DbConnection| -> Result<(), AppError> {
                    store::insert_report(c, &event, &r)?;
                    Ok(())
                })
                    as Box<dyn FnOnce(&mut DbConnection) -> Result<(), AppError> + Send>;
                ("crowd_report", v, m, write)
            }),
        };
        AtomicResponse::new(match planned {
            Ok((what, value, m, write)) => self.commit(what, write, vec![m], value, msg.answer),
            Err(e) => Box::pin(fut::ready(Err(e))),
        })
    }
}

/// `POST /api/v1/actions` `{event_id, command, zone_id?}` (operator of the event, admin).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAction {
    pub event_id: String,
    pub command: String,
    #[serde(default)]
    pub zone_id: Option<String>,
}

impl CreateAction {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(OPERATORS, "create actions")?;
        logic::check_id("event_id", &self.event_id)?;
        require_event(claims, &self.event_id)?;
        logic::check_text("command", &self.command)?;
        if let Some(z) = &self.zone_id {
            logic::check_id("zone_id", z)?;
        }
        Ok(())
    }

    pub(crate) async fn run(
        self,
        hub: &Arc<Hub>,
        claims: &Claims,
        answer: Option<AnswerKey>,
    ) -> Reply {
        let desk = hub.crowd.desk(hub, &self.event_id).await?;
        let action = Action {
            id: format!("ACT-{}", uuid::Uuid::new_v4().simple()),
            event_id: self.event_id,
            command: self.command,
            zone_id: self.zone_id,
            created_by: claims.sub.clone(),
            created_at: now(),
        };
        desk.send(Record {
            recorded: Recorded::Action(action),
            answer,
        })
        .await?
    }
}

/// `POST /api/v1/reports` `{event_id, message, type}` (anyone who may watch the event).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateReport {
    pub event_id: String,
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl CreateReport {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        logic::check_id("event_id", &self.event_id)?;
        require_event(claims, &self.event_id)?;
        logic::check_text("message", &self.message)?;
        let len = self.kind.chars().count();
        if self.kind.trim().is_empty() || len > MAX_REPORT_TYPE_LEN {
            return Err(AppError::bad_request(format!(
                "`type` must be 1 to {MAX_REPORT_TYPE_LEN} characters"
            )));
        }
        Ok(())
    }

    pub(crate) async fn run(
        self,
        hub: &Arc<Hub>,
        claims: &Claims,
        answer: Option<AnswerKey>,
    ) -> Reply {
        let desk = hub.crowd.desk(hub, &self.event_id).await?;
        let report = Report {
            id: format!("REP-{}", uuid::Uuid::new_v4().simple()),
            message: self.message,
            kind: self.kind,
            created_at: now(),
            created_by: claims.sub.clone(),
        };
        desk.send(Record {
            recorded: Recorded::Report(report),
            answer,
        })
        .await?
    }
}

/// `POST /api/v1/ai/insights` `{event_id}` (operator, dispatcher, admin): the insight, also
/// sent as `insight:update`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskInsight {
    pub event_id: String,
}

impl AskInsight {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(ANALYSTS, "ask for insights")?;
        logic::check_id("event_id", &self.event_id)?;
        require_event(claims, &self.event_id)
    }

    pub(crate) async fn run(self, hub: &Arc<Hub>) -> Reply {
        let desk = hub.crowd.desk(hub, &self.event_id).await?;
        let f = desk.send(TakeFeatures).await?;
        crate::commands::to_value(&insight::insight(hub, f).await)
    }
}

/// `POST /api/v1/ai/predictions` `{event_id, horizon_minutes?}` (operator, dispatcher, admin):
/// the prediction, also sent as `prediction:update`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskPrediction {
    pub event_id: String,
    #[serde(default)]
    pub horizon_minutes: Option<u32>,
}

/// The longest horizon a prediction looks ahead, in minutes.
pub const MAX_HORIZON_MIN: u32 = 240;

impl AskPrediction {
    pub(crate) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(ANALYSTS, "ask for predictions")?;
        logic::check_id("event_id", &self.event_id)?;
        require_event(claims, &self.event_id)?;
        match self.horizon_minutes {
            Some(h) if !(1..=MAX_HORIZON_MIN).contains(&h) => Err(AppError::bad_request(format!(
                "`horizon_minutes` must be 1 to {MAX_HORIZON_MIN}"
            ))),
            _ => Ok(()),
        }
    }

    pub(crate) async fn run(self, hub: &Arc<Hub>) -> Reply {
        let desk = hub.crowd.desk(hub, &self.event_id).await?;
        let f = desk.send(TakeFeatures).await?;
        let horizon = self.horizon_minutes.unwrap_or(DEFAULT_HORIZON_MIN);
        crate::commands::to_value(&insight::prediction(hub, f, horizon).await)
    }
}
