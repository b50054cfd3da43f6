//! Exactly-once for what clients send: a state-changing message or REST `POST` carrying an
//! idempotency key is done once per (`sub`, key) within `realtime.idempotency_window_s`; a repeat
//! gets the first answer. Answers are kept in the database, so they survive a restart. A repeat
//! that arrives while the first is still running is refused with `conflict` (retry shortly).

use crate::actors::Hub;
use crate::db::{self, queries};
use crate::error::{AppError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A stored answer: the ack body, or the error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(serde_json::Value),
    Error { code: ErrorCode, message: String },
}

impl Outcome {
    fn from_result(r: &Result<serde_json::Value, AppError>) -> Outcome {
        match r {
            Ok(v) => Outcome::Ok(v.clone()),
            Err(e) => Outcome::Error {
                code: e.code(),
                message: e.client_message(),
            },
        }
    }
}

/// Keys being worked on in this node.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<(String, String)>>);

impl InFlight {
    /// Claims (`sub`, `key`); the claim is released when the returned guard is dropped.
    fn claim(hub: &Arc<Hub>, sub: &str, key: &str) -> Option<Claimed> {
        let entry = (sub.to_string(), key.to_string());
        let mut set = hub.inflight.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(entry.clone()).then(|| Claimed {
            hub: hub.clone(),
            entry,
        })
    }
}

/// A claimed key, released on drop whatever happens to the work.
struct Claimed {
    hub: Arc<Hub>,
    entry: (String, String),
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let mut set = self
            .hub
            .inflight
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        set.remove(&self.entry);
    }
}

/// Counts a request's work among those running, for a graceful shutdown to wait for.
struct Running(Arc<Hub>);

impl Running {
    fn new(hub: &Arc<Hub>) -> Running {
        hub.actions_running
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Running(hub.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0
            .actions_running
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Runs `work` once per (`sub`, `key`); without a key, simply runs it.
///
/// The work runs as its own task: a client that disconnects, or a session that stops, while it
/// runs does not cancel it halfway, so what it commits is also recorded under its key, and a
/// resend after the reconnect gets the first answer.
pub async fn once<F>(hub: Arc<Hub>, sub: String, key: Option<String>, work: F) -> Outcome
where
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

async fn run_once<F>(hub: Arc<Hub>, sub: String, key: Option<String>, work: F) -> Outcome
where
    F: Future<Output = Result<serde_json::Value, AppError>>,
{
    let Some(key) = key else {
        return Outcome::from_result(&work.await);
    };
    let window = chrono::Duration::seconds(hub.settings.realtime.idempotency_window_s as i64);
    let (s, k) = (sub.clone(), key.clone());
    let found = db::run(&hub.pool, move |c| {
        Ok(queries::idempotency::find(
            c,
            &s,
            &k,
            chrono::Utc::now() - window,
        )?)
    })
    .await;
    match found {
        Ok(Some(stored)) => {
            if let Ok(outcome) = serde_json::from_str::<Outcome>(&stored) {
                log::info!("[EVENT_RECEIVED] repeat sub={sub} idempotency_key={key}: first answer");
                return outcome;
            }
        }
        Ok(None) => {}
        Err(e) => return Outcome::from_result(&Err(e)),
    }
    let Some(claimed) = InFlight::claim(&hub, &sub, &key) else {
        return Outcome::from_result(&Err(AppError::conflict(
            "a request with this idempotency_key is still running; retry shortly",
        )));
    };
    let result = work.await;
    let outcome = Outcome::from_result(&result);
    // Only definite answers are kept: an internal failure may be retried.
    let keep = !matches!(
        &outcome,
        Outcome::Error {
            code: ErrorCode::Internal,
            ..
        }
    );
    if keep {
        if let Ok(text) = serde_json::to_string(&outcome) {
            let (s, k) = (sub.clone(), key.clone());
            if let Err(e) = db::run(&hub.pool, move |c| {
                Ok(queries::idempotency::store(
                    c,
                    &s,
                    &k,
                    &text,
                    chrono::Utc::now(),
                )?)
            })
            .await
            {
                log::error!("[EVENT_RECEIVED] storing idempotency key failed: {e}");
            }
        }
    }
    drop(claimed);
    outcome
}
