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
use crate::actors::room::Endpoint;
use crate::actors::Hub;
use crate::protocol::{LeftReason, Room, SessionId};
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
        let gone = take_out(
            &self.hub,
            &mut self.rooms,
            rooms,
            self.id,
            self.outbox.endpoint(),
            reason,
        );
        if !gone.is_empty() {
            let names: Vec<String> = gone.iter().map(|r| r.to_string()).collect();
            log::info!(
                "[WEBSOCKET] session={} sub={:?} left rooms={names:?} reason={reason}",
                self.id,
                self.claims.sub
            );
        }
    }
}

/// Takes connection `id` (in `joined`) out of those of `rooms` it is in, for any transport:
/// they leave `joined`, and each room hands the connection its `left` through `endpoint`.
/// Answers the rooms it left.
pub(crate) fn take_out(
    hub: &Hub,
    joined: &mut Vec<Room>,
    rooms: Vec<Room>,
    id: SessionId,
    endpoint: Endpoint,
    reason: LeftReason,
) -> Vec<Room> {
    let gone: Vec<Room> = rooms.into_iter().filter(|r| joined.contains(r)).collect();
    if !gone.is_empty() {
        joined.retain(|r| !gone.contains(r));
        hub.rooms.do_send(RevokeRooms {
            rooms: gone.clone(),
            session_id: id,
            endpoint,
            reason,
        });
    }
    gone
}

impl Handler<LeaveRooms> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: LeaveRooms, _: &mut ws::WebsocketContext<Self>) {
        self.revoke(msg.rooms, msg.reason);
    }
}
