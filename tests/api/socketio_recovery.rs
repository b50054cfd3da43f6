//! Socket.IO connection state recovery's rules, on the wire (SPEC 11, `socketio::recovery`):
//! a pid is restored once per drop and after every drop, never with another user's token, never
//! from an offset already used (socket.io issue 5419: no repeated offsets), after a long quiet
//! (5282), for a socket that got nothing before the drop (4888), and a publication the socket
//! had through one room is not replayed through another. The socket.io-client suite
//! (tests/socketio) checks the same through the real client.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb};
use crate::on_both_backends;
use actix_codec::Framed;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use rallypoint::protocol::Role;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A raw Socket.IO client over a WebSocket-only session.
struct Sio {
    framed: Framed<awc::BoxedSocket, ws::Codec>,
    /// The CONNECT answer's `sid` (the socket id) and `pid`.
    sid: String,
    pid: String,
    /// The last string argument of an event, as socket.io-client keeps it.
    offset: Option<String>,
    /// Every offset received, in order.
    offsets: Vec<String>,
}

impl Sio {
    /// Connects with `auth`; panics on a CONNECT_ERROR.
    async fn connect(app: &TestApp, auth: Value) -> Sio {
        let url = format!(
            "ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket",
            app.port
        );
        let (_, framed) = awc::Client::default()
            .ws(url)
            .connect()
            .await
            .expect("the WebSocket opens");
        let mut s = Sio {
            framed,
            sid: String::new(),
            pid: String::new(),
            offset: None,
            offsets: Vec::new(),
        };
        assert!(s.text().await.starts_with('0'), "the open packet first");
        s.send(&format!("40{auth}")).await;
        let answer = s.text().await;
        let body: Value =
            serde_json::from_str(answer.strip_prefix("40").expect("a CONNECT answer"))
                .expect("JSON");
        s.sid = body["sid"].as_str().expect("sid").to_string();
        s.pid = body["pid"].as_str().expect("pid").to_string();
        let (name, _) = s.event().await;
        assert_eq!(name, "connection:status");
        s
    }

    async fn send(&mut self, text: &str) {
        self.framed
            .send(ws::Message::Text(text.to_string().into()))
            .await
            .expect("sent");
    }

    /// The next text frame, pings answered.
    async fn text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(WAIT, self.framed.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("a good frame");
            if let ws::Frame::Text(t) = frame {
                let t = String::from_utf8_lossy(&t).into_owned();
                if t == "2" {
                    self.send("3").await;
                    continue;
                }
                return t;
            }
        }
    }

    /// The next event: its name and arguments; a trailing string is kept as the offset.
    async fn event(&mut self) -> (String, Vec<Value>) {
        loop {
            let t = self.text().await;
            let Some(body) = t.strip_prefix("42") else {
                continue;
            };
            let mut args: Vec<Value> = serde_json::from_str(body).expect("an event array");
            let name = args.remove(0).as_str().expect("a name").to_string();
            if let Some(Value::String(o)) = args.last() {
                self.offset = Some(o.clone());
                self.offsets.push(o.clone());
            }
            return (name, args);
        }
    }

    /// The next `n` events named `name`, their payloads.
    async fn events(&mut self, name: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let (got, args) = self.event().await;
            if got == name {
                out.push(args[0].clone());
            }
        }
        out
    }

    /// No event named `name` for `d`.
    async fn none_of(&mut self, name: &str, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok((got, args)) = tokio::time::timeout_at(deadline, self.event()).await {
            assert_ne!(got, name, "unexpected {got}: {args:?}");
        }
    }

    /// The restore claim socket.io-client sends after a drop.
    fn claim(&self, token: &str) -> Value {
        json!({"token": token, "pid": self.pid, "offset": self.offset})
    }
}

/// Publishes `tick {n}` to `dispatch`.
async fn tick(app: &TestApp, n: i64) {
    let body = json!({"type": "tick", "data": {"n": n}});
    let (status, answer) = app
        .post_json("/api/v1/rooms/dispatch/messages", &body, &app.admin_token())
        .await;
    assert_eq!(status, 201, "{answer}");
}

fn numbers(payloads: &[Value]) -> Vec<i64> {
    payloads
        .iter()
        .map(|p| p["n"].as_i64().expect("n"))
        .collect()
}

async fn a_pid_is_restored_after_every_drop_once_and_only_for_its_owner(db: TestDb) {
    let app = spawn_app(db).await;
    let token = app.dispatcher_token();
    let mut s = Sio::connect(&app, json!({ "token": token })).await;
    let first_sid = s.sid.clone();
    tick(&app, 1).await;
    assert_eq!(numbers(&s.events("tick", 1).await), [1]);

    for round in 1..=3 {
        let claim = s.claim(&token);
        drop(s); // the TCP connection cut, no close frame
        let base = round * 100;
        for n in base + 1..=base + 10 {
            tick(&app, n).await;
        }
        s = Sio::connect(&app, claim.clone()).await;
        assert_eq!(
            s.sid, first_sid,
            "round {round}: restored as the same socket"
        );
        let got = numbers(&s.events("tick", 10).await);
        assert_eq!(
            got,
            (base + 1..=base + 10).collect::<Vec<_>>(),
            "round {round}"
        );
        s.none_of("tick", Duration::from_millis(300)).await;

        // The same claim again: that offset was used; a new socket, nothing replayed.
        let mut again = Sio::connect(&app, claim).await;
        assert_ne!(
            again.sid, first_sid,
            "round {round}: an offset restores once"
        );
        again.none_of("tick", Duration::from_millis(300)).await;
    }

    // Another user's token with this socket's pid and offset: a new socket.
    let other = app.token_for("dispatcher-2", Role::Dispatcher, None);
    let claim = s.claim(&other);
    drop(s);
    let stranger = Sio::connect(&app, claim).await;
    assert_ne!(stranger.sid, first_sid);

    // Offsets never repeat on one socket: each event's is newer than the last.
    let mut seen = std::collections::HashSet::new();
    for o in &stranger.offsets {
        assert!(seen.insert(o.clone()), "offset {o} repeated");
    }
}
on_both_backends!(a_pid_is_restored_after_every_drop_once_and_only_for_its_owner);

async fn a_quiet_socket_and_one_that_got_nothing_are_restored(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.socketio.ping_interval_ms = 100;
        s.socketio.ping_timeout_ms = 2000;
    })
    .await;
    let token = app.dispatcher_token();
    // Got nothing but connection:status before its drop (issue 4888).
    let s = Sio::connect(&app, json!({ "token": token })).await;
    let (sid, claim) = (s.sid.clone(), s.claim(&token));
    drop(s);
    tick(&app, 7).await;
    let mut s = Sio::connect(&app, claim).await;
    assert_eq!(s.sid, sid);
    assert_eq!(numbers(&s.events("tick", 1).await), [7]);

    // Quiet through many pings (issue 5282): its position is a seq, not a packet kept a while.
    s.none_of("tick", Duration::from_millis(1500)).await;
    let claim = s.claim(&token);
    drop(s);
    tick(&app, 8).await;
    let mut s = Sio::connect(&app, claim).await;
    assert_eq!(s.sid, sid);
    assert_eq!(numbers(&s.events("tick", 1).await), [8]);
}
on_both_backends!(a_quiet_socket_and_one_that_got_nothing_are_restored);

async fn a_publication_had_through_one_room_is_not_replayed_through_another(db: TestDb) {
    let app = spawn_app(db).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.8566, 2.3522).await;
    app.give_order(&mut alice, "DRV-001", "ORD-1", true).await;
    let token = app.dispatcher_token();
    let mut s = Sio::connect(&app, json!({ "token": token })).await;
    s.send("421[\"join\",{\"room\":\"order:ORD-1\"}]").await;
    loop {
        let t = s.text().await;
        if t.starts_with("431") {
            assert!(t.contains("order:ORD-1"), "{t}");
            break;
        }
    }
    // Live: one order_updated for its two rooms (`order:ORD-1` and `dispatch`), the last event
    // before the drop, so the client's offset moved in only one of them.
    let ack = alice
        .request(json!({"type":"order_status","order_id":"ORD-1","status":"picked_up"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let live = s.events("order_updated", 1).await;
    assert_eq!(live[0]["status"], "picked_up", "{live:?}");
    s.none_of("order_updated", Duration::from_millis(500)).await;

    // Restored: the other room's copy is not sent again, and nothing is missing.
    let claim = s.claim(&token);
    let sid = s.sid.clone();
    drop(s);
    tick(&app, 1).await;
    let mut s = Sio::connect(&app, claim).await;
    assert_eq!(s.sid, sid);
    let mut names = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok((name, _)) = tokio::time::timeout_at(deadline, s.event()).await {
        names.push(name);
    }
    assert!(names.contains(&"tick".to_string()), "{names:?}");
    assert!(
        !names.contains(&"order_updated".to_string()),
        "replayed again: {names:?}"
    );
}
on_both_backends!(a_publication_had_through_one_room_is_not_replayed_through_another);

async fn a_restore_takes_the_socket_over_from_a_connection_still_open(db: TestDb) {
    let app = spawn_app(db).await;
    let token = app.dispatcher_token();
    let mut old = Sio::connect(&app, json!({ "token": token })).await;
    tick(&app, 1).await;
    old.events("tick", 1).await;
    // The client saw a drop the server did not: it reconnects while the old connection is open.
    let mut new = Sio::connect(&app, old.claim(&token)).await;
    assert_eq!(new.sid, old.sid, "restored");
    // The old connection is told why, then disconnected; the new one gets what follows.
    let (name, args) = old.event().await;
    assert_eq!(name, "error", "{args:?}");
    assert_eq!(args[0]["close_code"], 4009, "{args:?}");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match old.framed.next().await {
                None | Some(Err(_)) | Some(Ok(ws::Frame::Close(_))) => return true,
                Some(Ok(ws::Frame::Text(t))) if t.as_ref() == b"41" => {}
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the old connection is closed");
    tick(&app, 2).await;
    assert_eq!(numbers(&new.events("tick", 1).await), [2]);
}
on_both_backends!(a_restore_takes_the_socket_over_from_a_connection_still_open);
