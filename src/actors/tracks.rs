//! Drivers' tracks (SPEC 10): each driver's actor keeps one position per `tracking.sample_s`
//! (`DriverActor`'s location handler, where the position is handled on the node that leads, so
//! one writer per fact) and hands it to the `Buffer`; the `TrackWriter` writes everything
//! buffered, every driver's at once, in one batch every `tracking.sample_s`, and once more when
//! a graceful shutdown ends. So a thousand drivers cost one insert per interval, never a row per
//! location update. The janitor purges samples older than `tracking.retention_h`.
//!
//! Samples buffered when the process dies are lost (at most one interval of them): a track is a
//! replay aid, not a record the contract makes durable.

use super::Hub;
use crate::db::models::TrackPointRow;
use crate::db::{self, queries};
use crate::error::AppError;
use actix::prelude::*;
use std::sync::{Arc, Mutex};

/// Samples waiting for the next batch write, every driver's.
#[derive(Debug, Default)]
pub struct Buffer {
    pending: Mutex<Vec<TrackPointRow>>,
}

impl Buffer {
    /// Queues one sample for the next write.
    pub fn push(&self, row: TrackPointRow) {
        self.lock().push(row);
    }

    /// Everything queued, leaving the buffer empty.
    fn take(&self) -> Vec<TrackPointRow> {
        std::mem::take(&mut *self.lock())
    }

    /// Samples waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A poisoned lock only means another thread panicked while holding it; the samples stay.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TrackPointRow>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes every buffered sample in one batch now; answers how many were written. A failed
/// write is logged and its samples dropped: the next interval brings new ones.
pub async fn flush(hub: &Hub) -> Result<usize, AppError> {
    let rows = hub.tracks.take();
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    let written = db::run(&hub.pool, move |c| {
        Ok(queries::tracks::insert_batch(c, &rows)?)
    })
    .await;
    match written {
        Ok(w) => {
            log::debug!("[DB] track samples written ={w} buffered={n}");
            Ok(w)
        }
        Err(e) => {
            log::error!("[DB] writing {n} track samples failed: {e}");
            Err(e)
        }
    }
}

/// Flushes the buffer every `tracking.sample_s`.
pub struct TrackWriter {
    hub: Arc<Hub>,
}

impl TrackWriter {
    pub fn new(hub: Arc<Hub>) -> TrackWriter {
        TrackWriter { hub }
    }
}

impl Actor for TrackWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.hub.settings.tracking.sample(), |act, ctx| {
            let hub = act.hub.clone();
            // One write at a time: the next tick waits for this one.
            ctx.wait(fut::wrap_future(async move {
                let _ = flush(&hub).await;
            }));
        });
    }
}
