//! Crowd operations (SPEC 8), a system of its own on the engine's core: events with zones,
//! cameras' counts and overcrowding alerts, devices' pings and the live density map, operators'
//! actions and reports, and the crowd risk insight, all to the event's room `event:<id>`.
//!
//! `desk` is the actor of one event (the one writer of its facts), `map` its live map,
//! `records` its actions and reports, `insight` its insights and predictions; `logic` its pure
//! decisions, `grid` the density grid and `risk` the built-in crowd risk model (unit tested
//! without actix); `store` its rows; `commands` and `records` the commands every transport calls
//! (`commands::run`). `Directory` (in the `Hub`)
//! finds or starts an event's desk, and keeps each event's latest ephemeral messages for the
//! sessions that join its room.

pub mod commands;
pub mod desk;
pub mod grid;
pub mod insight;
pub mod logic;
pub mod map;
pub mod records;
pub mod risk;
pub mod store;

pub use desk::EventDesk;

use crate::actors::Hub;
use crate::db;
use crate::error::AppError;
use actix::prelude::*;
use bytestring::ByteString;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The event desks running on this node, and each event's latest ephemeral messages.
#[derive(Default)]
pub struct Directory {
    desks: Mutex<HashMap<String, Addr<EventDesk>>>,
    /// Per event, its latest message of each ephemeral type (`map:update`, ...).
    latest: Mutex<HashMap<String, BTreeMap<&'static str, ByteString>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Directory {
    /// The desk of event `id`, started from the database if it is not running; `not_found`
    /// when the event does not exist.
    pub async fn desk(&self, hub: &Arc<Hub>, id: &str) -> Result<Addr<EventDesk>, AppError> {
        if let Some(a) = self.running(id) {
            return Ok(a);
        }
        let (key, at, ttl) = (id.to_string(), desk::now(), desk::ttl(hub));
        let loaded = db::run(&hub.pool, move |c| desk::load(c, &key, at, ttl)).await?;
        let Some(loaded) = loaded else {
            return Err(AppError::not_found(format!("event {id} does not exist")));
        };
        let mut desks = lock(&self.desks);
        if let Some(a) = desks.get(id).filter(|a| a.connected()) {
            return Ok(a.clone());
        }
        let h = hub.clone();
        let addr = EventDesk::start_in_arbiter(&hub.engine, move |_| EventDesk::new(h, loaded));
        desks.insert(id.to_string(), addr.clone());
        Ok(addr)
    }

    fn running(&self, id: &str) -> Option<Addr<EventDesk>> {
        lock(&self.desks).get(id).filter(|a| a.connected()).cloned()
    }

    /// Keeps `text` as event `id`'s latest message of type `kind`.
    pub fn keep_latest(&self, id: &str, kind: &'static str, text: ByteString) {
        lock(&self.latest)
            .entry(id.to_string())
            .or_default()
            .insert(kind, text);
    }

    /// Event `id`'s latest ephemeral messages, for a session joining its room.
    pub fn latest(&self, id: &str) -> Vec<ByteString> {
        lock(&self.latest)
            .get(id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// A session joins `event:<id>`: it gets the latest map and insight (appended to its replay),
/// and the event's desk is started if it is not (so a map of live devices follows).
pub fn joining(hub: &Arc<Hub>, id: &str, replay: &mut Vec<ByteString>) {
    replay.extend(hub.crowd.latest(id));
    if hub.cluster.forwards() || hub.crowd.running(id).is_some() {
        return;
    }
    let (hub, id) = (hub.clone(), id.to_string());
    actix::spawn(async move {
        // An unknown event has no desk: nothing to start.
        let _ = hub.crowd.desk(&hub, &id).await;
    });
}
