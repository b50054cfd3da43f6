//! `Janitor`: trims what only needs keeping for a while, in the background, every
//! `realtime.trim_interval_s`: room history beyond `realtime.history_per_room` messages per room
//! or older than `realtime.history_ttl_s`, and idempotency keys older than
//! `realtime.idempotency_window_s`, and Socket.IO sockets dropped longer ago than
//! `socketio.recovery_s` (no longer restorable). Several nodes on one database may all run it: the deletes
//! are idempotent.

use super::Hub;
use crate::db::{self, queries};
use actix::prelude::*;
use std::sync::Arc;

/// Runs one trim now; answers (room messages, idempotency keys) removed.
#[derive(Message)]
#[rtype(result = "Result<(usize, usize), crate::error::AppError>")]
pub struct TrimNow;

pub struct Janitor {
    hub: Arc<Hub>,
}

impl Janitor {
    pub fn new(hub: Arc<Hub>) -> Janitor {
        Janitor { hub }
    }

    async fn trim(hub: Arc<Hub>) -> Result<(usize, usize), crate::error::AppError> {
        let rt = &hub.settings.realtime;
        let now = chrono::Utc::now();
        let history_before = now - chrono::Duration::seconds(rt.history_ttl_s);
        let keys_before = now - chrono::Duration::seconds(rt.idempotency_window_s as i64);
        let sockets_before =
            now - chrono::Duration::seconds(hub.settings.socketio.recovery_s as i64);
        let keep = rt.history_per_room;
        let (events, keys, sockets) = db::run(&hub.pool, move |c| {
            let events = queries::rooms::trim(c, history_before, keep)?;
            let keys = queries::idempotency::purge(c, keys_before)?;
            let sockets = queries::sockets::purge(c, sockets_before)?;
            Ok((events, keys, sockets))
        })
        .await?;
        if (events, keys, sockets) != (0, 0, 0) {
            log::info!(
                "[BROADCAST] trimmed {events} room messages, {keys} idempotency keys and {sockets} dropped Socket.IO sockets"
            );
        }
        Ok((events, keys))
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
    type Result = ResponseFuture<Result<(usize, usize), crate::error::AppError>>;

    fn handle(&mut self, _: TrimNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(Janitor::trim(self.hub.clone()))
    }
}
