//! Rights re-checked when they change: a session taken out of rooms it may no longer be in.
//!
//! Two things take a session out of a room without its asking. A driver taken off an order
//! (emergency, override, cancel, decline) leaves `order:<id>`: its driver actor sends
//! `LeaveRooms` once the `order_unassigned` is delivered (see `actors::publish_timed`). A
//! `refresh` leaves the joined rooms the new claims no longer admit (`commands::session`
//! decides which). Either way the room removes the session, then hands it
//! `{"type":"left","room","reason"}` after the last message it sent it, so nothing of that room
//! follows a `left`.

use super::WsSession;
use crate::actors::registry::RevokeRooms;
use crate::protocol::{LeftReason, Room};
use actix::prelude::*;
use actix_web_actors::ws;

/// Takes the session out of `rooms` (those it is in), telling it why with `left`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LeaveRooms {
    pub rooms: Vec<Room>,
    pub reason: LeftReason,
}

impl WsSession {
    /// Takes the session out of those of `rooms` it is in; each room then writes `left`.
    pub(super) fn revoke(&mut self, rooms: Vec<Room>, reason: LeftReason) {
        let gone: Vec<Room> = rooms
            .into_iter()
            .filter(|r| self.rooms.contains(r))
            .collect();
        if gone.is_empty() {
            return;
        }
        self.rooms.retain(|r| !gone.contains(r));
        let names: Vec<String> = gone.iter().map(|r| r.to_string()).collect();
        log::info!(
            "[WEBSOCKET] session={} sub={:?} left rooms={names:?} reason={reason}",
            self.id,
            self.claims.sub
        );
        self.hub.rooms.do_send(RevokeRooms {
            rooms: gone,
            session_id: self.id,
            endpoint: self.outbox.endpoint(),
            reason,
        });
    }
}

impl Handler<LeaveRooms> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: LeaveRooms, _: &mut ws::WebsocketContext<Self>) {
        self.revoke(msg.rooms, msg.reason);
    }
}
