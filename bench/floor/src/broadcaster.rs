//! `Broadcaster`: the one actor that knows every session and, the naive way, messages each of
//! them for every report (from whatever worker thread the session lives on). It keeps no state
//! but the sessions: no rooms, no orders, no database. It does not parse frames (the session does).

use actix::prelude::*;
use bytestring::ByteString;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A text frame for one session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Frame {
    pub text: ByteString,
}

/// A new session; answers its id.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Connect {
    pub session: Recipient<Frame>,
}

/// A session has ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub id: u64,
}

/// Session `from` reports: everyone gets an `emergency_event`, the reporter an `ack` too.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Report {
    pub from: u64,
    /// The report's `ref`, echoed in the ack.
    pub reference: Option<String>,
    pub order_id: Value,
    pub kind: Value,
    pub comment: Value,
}

/// Keeps the sessions and broadcasts reports to all of them.
#[derive(Default)]
pub struct Broadcaster {
    sessions: HashMap<u64, Recipient<Frame>>,
    next_id: u64,
    next_event: u64,
}

impl Actor for Broadcaster {
    type Context = Context<Self>;
}

impl Handler<Connect> for Broadcaster {
    type Result = u64;

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> u64 {
        self.next_id += 1;
        self.sessions.insert(self.next_id, msg.session);
        self.next_id
    }
}

impl Handler<Disconnect> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.sessions.remove(&msg.id);
    }
}

impl Handler<Report> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Report, _: &mut Context<Self>) {
        self.next_event += 1;
        let event = json!({
            "event_id": self.next_event.to_string(),
            "order_id": msg.order_id,
            "kind": msg.kind,
            "comment": msg.comment,
            "action_taken": "MAINTAIN",
        });
        let mut broadcast = event.clone();
        broadcast["type"] = json!("emergency_event");
        let frame = Frame {
            text: broadcast.to_string().into(),
        };
        for session in self.sessions.values() {
            session.do_send(frame.clone());
        }
        if let Some(reporter) = self.sessions.get(&msg.from) {
            let ack = json!({"type": "ack", "ref": msg.reference, "event": event});
            reporter.do_send(Frame {
                text: ack.to_string().into(),
            });
        }
        log::debug!(
            "[BROADCAST] event={} sessions={}",
            self.next_event,
            self.sessions.len()
        );
    }
}
