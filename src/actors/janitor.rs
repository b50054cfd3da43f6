//! `Janitor`: trims what only needs keeping for a while, in the background, every
//! `realtime.trim_interval_s`: room history beyond `realtime.history_per_room` messages per room
//! or older than `realtime.history_ttl_s`, and idempotency keys older than
//! `realtime.idempotency_window_s`, and Socket.IO sockets dropped longer ago than
//! `socketio.recovery_s` (no longer restorable), and drivers' track samples older than
//! `tracking.retention_h`. Several nodes on one database may all run it:
//! the deletes are idempotent.

use super::Hub;
use crate::db::{self, queries};
use actix::prelude::*;
use std::sync::Arc;

/// Runs one trim now; answers what it removed.
#[derive(Message)]
#[rtype(result = "Result<Trimmed, crate::error::AppError>")]
pub struct TrimNow;

/// What one trim removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Room messages beyond the kept history.
    pub events: usize,
    /// Idempotency keys older than the window.
    pub keys: usize,
    /// Socket.IO sockets dropped longer ago than the recovery window.
    pub sockets: usize,
    /// Track samples older than `tracking.retention_h`.
    pub tracks: usize,
}

pub struct Janitor {
    hub: Arc<Hub>,
}

impl Janitor {
    pub fn new(hub: Arc<Hub>) -> Janitor {
        Janitor { hub }
    }

    async fn trim(hub: Arc<Hub>) -> Result<Trimmed, crate::error::AppError> {
        let rt = &hub.settings.realtime;
        let now = chrono::Utc::now();
        let history_before = now - chrono::Duration::seconds(rt.history_ttl_s);
        let keys_before = now - chrono::Duration::seconds(rt.idempotency_window_s as i64);
        let recovery = chrono::Duration::from_std(hub.settings.socketio.recovery())
            .unwrap_or(chrono::Duration::MAX);
        let sockets_before = now.checked_sub_signed(recovery).unwrap_or(now);
        let tracks_before = now - hub.settings.tracking.retention();
        let keep = rt.history_per_room;
        let removed = db::run(&hub.pool, move |c| {
            Ok(Trimmed {
                events: queries::rooms::trim(c, history_before, keep)?,
                keys: queries::idempotency::purge(c, keys_before)?,
                sockets: queries::sockets::purge(c, sockets_before)?,
                tracks: queries::tracks::purge(c, tracks_before.naive_utc())?,
            })
        })
        .await?;
        if removed != Trimmed::default() {
            log::info!(
                "[BROADCAST] trimmed {} room messages, {} idempotency keys, {} dropped sockets and {} track samples",
                removed.events,
                removed.keys,
                removed.sockets,
                removed.tracks
            );
        }
        Ok(removed)
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.hub.settings.realtime.trim_interval(), |act, ctx| {
            let hub = act.hub.clone();
            // One trim at a time: the next tick waits for this one.
            ctx.wait(fut::wrap_future(async move {
                if let Err(e) = Janitor::trim(hub).await {
                    log::error!("[BROADCAST] trimming history failed: {e}");
                }
            }));
        });
    }
}

impl Handler<TrimNow> for Janitor {
    type Result = ResponseFuture<Result<Trimmed, crate::error::AppError>>;

    fn handle(&mut self, _: TrimNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(Janitor::trim(self.hub.clone()))
    }
}
