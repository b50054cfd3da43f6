//! Exactly-once for what clients send: a state-changing message or REST `POST` carrying an
//! idempotency key is done once per (`sub`, key) within `realtime.idempotency_window_s`; a repeat
//! gets the first answer (SPEC 3, 4).
//!
//! The key is claimed in the database before anything else (so two sends at once can never both
//! do the work: the second gets `conflict` while the first runs, its answer after), and the work
//! is given an `AnswerKey`: the actor that commits the effect writes the answer under the key in
//! the same transaction (`commit::Change::answer`). So an acknowledged change and its answer are
//! durable together: a crash between them cannot make a resend do the work twice. Work without a
//! committed effect (a refusal, a repeated accept) has its answer written after it. A claim left
//! unanswered by another process (an earlier run that stopped before the change committed) is
//! taken over after `realtime.idempotency_claim_s`; until then a resend gets `conflict`.

use crate::actors::Hub;
use crate::db::queries::idempotency::{Claim, Horizon, StoredAnswer};
use crate::db::{self, queries};
use crate::error::{AppError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A stored answer: the work's value, or the error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(serde_json::Value),
    Error { code: ErrorCode, message: String },
}

impl Outcome {
    pub fn from_result(r: &Result<serde_json::Value, AppError>) -> Outcome {
        match r {
            Ok(v) => Outcome::Ok(v.clone()),
            Err(e) => Outcome::Error {
                code: e.code(),
                message: e.client_message(),
            },
        }
    }

    /// The answer as a work's result: an error comes back as `AppError::Answered`, its code and
    /// client message as they were given.
    pub fn into_result(self) -> Result<serde_json::Value, AppError> {
        match self {
            Outcome::Ok(v) => Ok(v),
            Outcome::Error { code, message } => Err(AppError::Answered { code, message }),
        }
    }

    /// An internal failure is not a definite answer: it is not kept, and may be retried.
    fn is_definite(&self) -> bool {
        !matches!(
            self,
            Outcome::Error {
                code: ErrorCode::Internal,
                ..
            }
        )
    }
}

/// The key a request's work runs under: whoever commits the work's effect stores its answer
/// with it (`answer_ok`).
#[derive(Debug, Clone)]
pub struct AnswerKey {
    sub: String,
    key: String,
    /// Set once a successful answer was handed to a change's commit: a work that then answers
    /// `Ok` committed it (every path that fails to commit answers an error), so it needs no
    /// second write.
    handed: Arc<AtomicBool>,
}

impl AnswerKey {
    /// The answer a successful work returning `value` gives, to store with its effect. The value
    /// must be exactly what the work's future returns.
    pub fn answer_ok<T: Serialize>(&self, value: &T) -> Option<StoredAnswer> {
        let value = serde_json::to_value(value).ok()?;
        let stored = self.stored(&Outcome::Ok(value))?;
        self.handed.store(true, Ordering::Release);
        Some(stored)
    }

    fn stored(&self, outcome: &Outcome) -> Option<StoredAnswer> {
        Some(StoredAnswer {
            sub: self.sub.clone(),
            key: self.key.clone(),
            response: serde_json::to_string(outcome).ok()?,
        })
    }
}

/// The answer to store for `key`, if there is a key: what the effect's commit takes.
pub fn answer_ok<T: Serialize>(key: Option<&AnswerKey>, value: &T) -> Option<StoredAnswer> {
    key.and_then(|k| k.answer_ok(value))
}

/// Counts a request's work among those running, for a graceful shutdown to wait for.
struct Running(Arc<Hub>);

impl Running {
    fn new(hub: &Arc<Hub>) -> Running {
        hub.actions_running.fetch_add(1, Ordering::AcqRel);
        Running(hub.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.actions_running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `work` once per (`sub`, `key`); without a key, simply runs it. `work` is given the
/// claimed key, to pass to the actor that commits its effect.
///
/// The work runs as its own task: a client that disconnects, or a session that stops, while it
/// runs does not cancel it halfway, so what it commits is also recorded under its key, and a
/// resend after the reconnect gets the first answer.
pub async fn once<W, F>(hub: Arc<Hub>, sub: String, key: Option<String>, work: W) -> Outcome
where
    W: FnOnce(Option<AnswerKey>) -> F + 'static,
    F: Future<Output = Result<serde_json::Value, AppError>> + 'static,
{
    let running = Running::new(&hub);
    let task = actix_rt::spawn(async move {
        let outcome = run_once(hub, sub, key, work).await;
        drop(running);
        outcome
    });
    task.await.unwrap_or_else(|e| {
        Outcome::from_result(&Err(AppError::internal(format!(
            "the request's task failed: {e}"
        ))))
    })
}

async fn run_once<W, F>(hub: Arc<Hub>, sub: String, key: Option<String>, work: W) -> Outcome
where
    W: FnOnce(Option<AnswerKey>) -> F,
    F: Future<Output = Result<serde_json::Value, AppError>>,
{
    let Some(key) = key else {
        return Outcome::from_result(&work(None).await);
    };
    let rt = &hub.settings.realtime;
    let window = chrono::Duration::seconds(rt.idempotency_window_s as i64);
    let lease = chrono::Duration::seconds(rt.idempotency_claim_s as i64);
    let (s, k, node) = (sub.clone(), key.clone(), hub.node_id.clone());
    let claimed = db::run(&hub.pool, move |c| {
        let now = chrono::Utc::now();
        let at = Horizon {
            now,
            window_start: now - window,
            claim_stale: now - lease,
        };
        Ok(queries::idempotency::claim(c, &s, &k, &node, at)?)
    })
    .await;
    match claimed {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Answered(stored)) => match serde_json::from_str::<Outcome>(&stored) {
            Ok(outcome) => {
                log::info!(
                    "[EVENT_RECEIVED] repeat sub={sub:?} idempotency_key={key:?}: first answer"
                );
                return outcome;
            }
            Err(e) => {
                return Outcome::from_result(&Err(AppError::internal(format!(
                    "the stored answer of idempotency_key {key:?} is unreadable: {e}"
                ))))
            }
        },
        Ok(Claim::Running) => {
            return Outcome::from_result(&Err(AppError::conflict(
                "a request with this idempotency_key is still running; retry shortly",
            )))
        }
        Err(e) => return Outcome::from_result(&Err(e)),
    }
    let answer_key = AnswerKey {
        sub: sub.clone(),
        key: key.clone(),
        handed: Arc::default(),
    };
    let outcome = Outcome::from_result(&work(Some(answer_key.clone())).await);
    let committed_with_answer =
        matches!(outcome, Outcome::Ok(_)) && answer_key.handed.load(Ordering::Acquire);
    if committed_with_answer {
        // The effect's transaction wrote it: no second write on the way to the ack.
        return outcome;
    }
    let pool = hub.pool.clone();
    let written = if outcome.is_definite() {
        // Still a no-op if the effect's transaction wrote it after all.
        let stored = answer_key.stored(&outcome);
        db::run(&pool, move |c| match stored {
            Some(a) => Ok(queries::idempotency::answer_if_unanswered(c, &a)?),
            None => Ok(0),
        })
        .await
    } else {
        // Free the key for a retry, unless the effect committed with its answer after all.
        db::run(&pool, move |c| {
            Ok(queries::idempotency::release(c, &sub, &key)?)
        })
        .await
    };
    if let Err(e) = written {
        log::error!("[EVENT_RECEIVED] recording the answer of an idempotency key failed: {e}");
    }
    outcome
}
