//! Connection state recovery for a `SioSession` (Socket.IO 4.6, SPEC 11; the design is in
//! `socketio::recovery`). A CONNECT whose auth carries `{pid, offset}` is checked here:
//!
//! 1. the pid's signature and owner (`RecoveryClaim::check`, no database);
//! 2. the socket's row (`queries::sockets`): its generation must be the offset's and its drop at
//!    most `socketio.recovery_s` ago (`Claimed::restore`);
//! 3. every room of the offset again against the token (a room no longer allowed is left out,
//!    with an `error` event), and its history still reaching back to the position (else the
//!    restore is refused: every missed event or none);
//! 4. the generation moved on with one compare-and-set, so a pid is restored at most once per
//!    disconnection, on whichever node.
//!
//! Then the rooms are joined from their positions and the replays merged: in commit order, each
//! publication once, skipping what the socket already had through another of its rooms.

use crate::actors::room::JoinReply;
use crate::actors::Hub;
use crate::auth::{self, Claims};
use crate::db::queries;
use crate::error::AppError;
use crate::protocol::Room;
use crate::socketio::recovery::{Claimed, Refused};
use crate::socketio::Offset;
use bytestring::ByteString;
use std::collections::HashMap;
use std::sync::Arc;

/// A restore granted: the socket id, the positions of the new generation, the rooms to join
/// from them, and the rooms the token no longer admits.
pub struct Restored {
    pub sid: String,
    pub offset: Offset,
    pub rooms: Vec<(Room, Option<i64>)>,
    pub dropped: Vec<String>,
}

/// Why a restore did not happen: a refusal (the client gets a new socket), or a failure.
#[derive(Debug, thiserror::Error)]
pub enum NotRestored {
    #[error("{0}")]
    Refused(#[from] Refused),
    #[error("the history of `{0}` no longer reaches back to the socket's position")]
    HistoryGone(String),
    #[error("{0}")]
    Failed(#[from] AppError),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Decides and claims the restore of `claimed` for `claims` (steps 2 to 4 above).
pub async fn restore(
    hub: Arc<Hub>,
    claims: Claims,
    claimed: Claimed,
) -> Result<Restored, NotRestored> {
    let window_ms = (hub.settings.socketio.recovery_s as i64).saturating_mul(1000);
    let sid = claimed.sid.clone();
    let row = crate::db::run(&hub.pool, {
        let sid = sid.clone();
        move |conn| queries::sockets::load(conn, &sid)
    })
    .await?;
    let record = row
        .as_ref()
        .filter(|r| r.sub == claims.sub)
        .map(|r| r.record());
    let decided = claimed.restore(record.as_ref(), now_ms(), window_ms)?;

    // The rooms again, against the token as it is now.
    let mut rooms = Vec::new();
    let mut dropped = Vec::new();
    let mut offset = Offset::new(decided.offset.generation());
    for (name, at) in decided.offset.positions() {
        let allowed = match Room::parse(name) {
            Some(room) => {
                crate::commands::session::may_enter(&hub, &claims, &room).await? && {
                    rooms.push((room, Some(at)));
                    true
                }
            }
            None => false,
        };
        if allowed {
            offset.join(name, at);
        } else {
            dropped.push(name.to_string());
        }
    }
    for room in auth::default_rooms(&claims) {
        if !rooms.iter().any(|(r, _)| *r == room) {
            rooms.push((room, None));
        }
    }

    // Every missed event or none: each room's history must still reach its position.
    let positions: Vec<(String, i64)> = rooms
        .iter()
        .filter_map(|(r, at)| at.map(|at| (r.to_string(), at)))
        .collect();
    let (expected, sub) = (decided.expected_generation, claims.sub.clone());
    let claim_sid = sid.clone();
    let outcome = crate::db::run(&hub.pool, move |conn| {
        for (room, at) in &positions {
            let oldest = queries::rooms::oldest_seq(conn, room)?;
            let current = queries::rooms::current_seq(conn, room)?;
            let gone = match oldest {
                Some(o) => o > at + 1,
                None => current > *at,
            };
            if gone {
                return Ok(Err(room.clone()));
            }
        }
        queries::sockets::claim(conn, &claim_sid, &sub, expected as i64).map(Ok)
    })
    .await?;
    match outcome {
        Err(room) => Err(NotRestored::HistoryGone(room)),
        Ok(false) => Err(NotRestored::Refused(Refused::AlreadyRestored {
            claimed: expected,
            current: expected + 1,
        })),
        Ok(true) => Ok(Restored {
            sid,
            offset,
            rooms,
            dropped,
        }),
    }
}

/// The replays of a restore's rooms merged: taken out of `joined`, ordered by commit, each
/// publication once, and none the socket had through another room (`Offset::has_seen` over
/// every copy of it).
pub async fn merge_replays(
    hub: &Hub,
    offset: &Offset,
    joined: &mut [(Room, JoinReply)],
) -> Result<Vec<ByteString>, AppError> {
    let mut frames: HashMap<String, ByteString> = HashMap::new();
    for (_, reply) in joined.iter_mut() {
        for frame in std::mem::take(&mut reply.replay) {
            if let Some(id) = publication_id(&frame) {
                frames.entry(id).or_insert(frame);
            }
        }
    }
    if frames.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = frames.keys().cloned().collect();
    let copies = crate::db::run(&hub.pool, move |conn| {
        queries::rooms::copies(conn, &ids).map_err(AppError::from)
    })
    .await?;
    let mut by_id: HashMap<&str, Vec<(&str, i64)>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (id, room, seq, _) in &copies {
        let entry = by_id.entry(id.as_str()).or_default();
        if entry.is_empty() {
            order.push(id.as_str());
        }
        entry.push((room.as_str(), *seq));
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let seen = by_id
            .get(id)
            .is_some_and(|c| offset.has_seen(c.iter().copied()));
        if !seen {
            if let Some(f) = frames.remove(id) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// A room frame's publication id.
fn publication_id(frame: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_str::<Id>(frame).ok().and_then(|i| i.id)
}
