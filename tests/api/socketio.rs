//! Engine.IO v4 at `/socket.io/`, on the wire (SPEC 11, docs/SOCKETIO.md): the handshake, the
//! refusals with their codes, the server's pings and their timeout, overlapping polls, the
//! upgrade (probe, noop, `5`), CONNECT over the upgraded socket, binary attachments refused
//! without losing the session, and CORS by `server.cors_origins`. The socket.io-client suite
//! (tests/socketio) drives the same server the way the frontends do.

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestDb};
use crate::on_both_backends;
use actix_codec::Framed;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// `GET /socket.io/?<query>`: the status and the body.
async fn get(app: &TestApp, query: &str) -> (u16, String) {
    let mut resp = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .get(format!("{}/socket.io/?{query}", app.address))
        .send()
        .await
        .expect("answered");
    let body = resp.body().limit(1 << 22).await.expect("a body");
    (
        resp.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// `POST /socket.io/?<query>` with `body`.
async fn post(app: &TestApp, query: &str, body: &str) -> (u16, String) {
    let mut resp = awc::Client::default()
        .post(format!("{}/socket.io/?{query}", app.address))
        .insert_header(("content-type", "text/plain;charset=UTF-8"))
        .send_body(body.to_string())
        .await
        .expect("answered");
    let body = resp.body().limit(1 << 22).await.expect("a body");
    (
        resp.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Opens a polling session: its sid and handshake.
async fn open(app: &TestApp) -> (String, Value) {
    let (status, body) = get(app, "EIO=4&transport=polling").await;
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an open packet"))
        .expect("the handshake is JSON");
    let sid = open["sid"].as_str().expect("a sid").to_string();
    (sid, open)
}

fn code_of(body: &str) -> i64 {
    serde_json::from_str::<Value>(body).expect("a JSON refusal")["code"]
        .as_i64()
        .expect("a code")
}

pub type Socket = Framed<awc::BoxedSocket, ws::Codec>;

pub async fn ws_connect(app: &TestApp, query: &str) -> Socket {
    let url = format!("ws://127.0.0.1:{}/socket.io/?{query}", app.port);
    let (_, framed) = awc::Client::default()
        .ws(url)
        .connect()
        .await
        .expect("the WebSocket opens");
    framed
}

/// The next text frame (pings from the transport answered).
pub async fn next_text(s: &mut Socket) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, s.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a good frame");
        match frame {
            ws::Frame::Text(t) => return String::from_utf8_lossy(&t).into_owned(),
            ws::Frame::Ping(p) => s.send(ws::Message::Pong(p)).await.expect("pong"),
            ws::Frame::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

pub async fn send(s: &mut Socket, text: &str) {
    s.send(ws::Message::Text(text.to_string().into()))
        .await
        .expect("sent");
}

async fn the_handshake_and_the_refusals_follow_engine_io_v4(db: TestDb) {
    let app = spawn_app(db).await;
    let (sid, open) = open(&app).await;
    assert_eq!(sid.len(), 20, "{open}");
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], app.settings.socketio.ping_interval_ms);
    assert_eq!(open["pingTimeout"], app.settings.socketio.ping_timeout_ms);
    assert_eq!(open["maxPayload"], app.settings.limits.max_frame_bytes);

    for (query, code, what) in [
        ("transport=polling", 5, "no EIO"),
        ("EIO=3&transport=polling", 5, "revision 3"),
        ("EIO=4", 0, "no transport"),
        ("EIO=4&transport=webtransport", 0, "an unknown transport"),
        (
            "EIO=4&transport=polling&sid=nosuchsession",
            1,
            "an unknown sid",
        ),
    ] {
        let (status, body) = get(&app, query).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(code_of(&body), code, "{what}: {body}");
    }
    let (status, body) = post(&app, "EIO=4&transport=polling&sid=nosuchsession", "40").await;
    assert_eq!((status, code_of(&body)), (400, 1), "{body}");

    // A WebSocket-only session lists no upgrades and starts with its open packet.
    let mut s = ws_connect(&app, "EIO=4&transport=websocket").await;
    let first = next_text(&mut s).await;
    let open: Value = serde_json::from_str(first.strip_prefix('0').expect("open")).expect("JSON");
    assert_eq!(open["upgrades"], serde_json::json!([]), "{first}");
    assert_ne!(open["sid"], Value::from(sid));
}
on_both_backends!(the_handshake_and_the_refusals_follow_engine_io_v4);

async fn the_server_pings_and_closes_a_session_whose_pong_does_not_come(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.socketio.ping_interval_ms = 200;
        s.socketio.ping_timeout_ms = 300;
    })
    .await;
    let (sid, _) = open(&app).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    // Answered: the session lives on through several pings.
    for _ in 0..3 {
        let (status, body) = get(&app, &q).await;
        assert_eq!((status, body.as_str()), (200, "2"), "a ping");
        assert_eq!(post(&app, &q, "3").await, (200, "ok".to_string()));
    }
    // Not answered: closed after the timeout, and the sid is forgotten.
    let (status, body) = get(&app, &q).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    let mut gone = false;
    for _ in 0..50 {
        let (status, body) = get(&app, &q).await;
        if status == 400 && code_of(&body) == 1 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "a session whose pong never came is closed");
}
on_both_backends!(the_server_pings_and_closes_a_session_whose_pong_does_not_come);

async fn a_second_poll_at_once_is_refused_and_closes_the_session(db: TestDb) {
    let app = spawn_app(db).await;
    let (sid, _) = open(&app).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let first = get(&app, &q);
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        get(&app, &q).await
    };
    let ((s1, b1), (s2, b2)) = tokio::join!(first, second);
    assert_eq!((s2, code_of(&b2)), (400, 3), "the overlapping poll: {b2}");
    assert_eq!(
        (s1, b1.as_str()),
        (200, "1"),
        "the first poll is told the session closed"
    );
    let (status, body) = get(&app, &q).await;
    assert_eq!((status, code_of(&body)), (400, 1), "{body}");
}
on_both_backends!(a_second_poll_at_once_is_refused_and_closes_the_session);

async fn the_upgrade_probes_ends_the_pending_poll_and_carries_the_socket(db: TestDb) {
    let app = spawn_app(db).await;
    let token = app.dispatcher_token();
    let (sid, _) = open(&app).await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        post(&app, &q, &format!("40{{\"token\":\"{token}\"}}"))
            .await
            .0,
        200
    );
    let (_, payload) = get(&app, &q).await;
    let packets: Vec<&str> = payload.split('\x1e').collect();
    let answer: Value =
        serde_json::from_str(packets[0].strip_prefix("40").expect("CONNECT answer")).expect("JSON");
    assert!(
        answer["sid"].is_string() && answer["pid"].is_string(),
        "{payload}"
    );
    assert_ne!(
        answer["sid"],
        Value::from(sid.clone()),
        "the socket id is not the sid"
    );
    assert!(
        packets[1].starts_with("42[\"connection:status\",{"),
        "connection:status follows the answer: {payload}"
    );

    let pending = get(&app, &q);
    let upgrade = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut s = ws_connect(&app, &format!("EIO=4&transport=websocket&sid={sid}")).await;
        send(&mut s, "2probe").await;
        assert_eq!(next_text(&mut s).await, "3probe");
        s
    };
    let ((status, noop), mut s) = tokio::join!(pending, upgrade);
    assert_eq!(
        (status, noop.as_str()),
        (200, "6"),
        "the pending poll ends with a noop"
    );
    send(&mut s, "5").await;
    // Upgraded: an event with an ack is answered over the WebSocket, and polling is refused.
    send(&mut s, "421[\"ping\",{}]").await;
    assert_eq!(next_text(&mut s).await, "431[{}]");
    let (status, body) = get(&app, &q).await;
    assert_eq!((status, code_of(&body)), (400, 3), "{body}");
}
on_both_backends!(the_upgrade_probes_ends_the_pending_poll_and_carries_the_socket);

async fn binary_attachments_are_refused_and_the_session_goes_on(db: TestDb) {
    let app = spawn_app(db).await;
    let token = app.dispatcher_token();
    let mut s = ws_connect(&app, "EIO=4&transport=websocket").await;
    assert!(next_text(&mut s).await.starts_with('0'));
    send(&mut s, &format!("40{{\"token\":\"{token}\"}}")).await;
    assert!(next_text(&mut s).await.starts_with("40{"));
    send(
        &mut s,
        "451-7[\"location\",{\"_placeholder\":true,\"num\":0}]",
    )
    .await;
    s.send(ws::Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .expect("sent");
    let answer = loop {
        let t = next_text(&mut s).await;
        if t.starts_with("437") {
            break t;
        }
    };
    let body: Value = serde_json::from_str(&answer[3..]).expect("JSON");
    assert_eq!(body[0]["error"]["code"], "bad_request", "{answer}");
    // Not a crash: the session answers the next event.
    send(&mut s, "428[\"ping\"]").await;
    loop {
        let t = next_text(&mut s).await;
        if t.starts_with("438") {
            assert_eq!(t, "438[{}]");
            break;
        }
    }
    // A client ping (Engine.IO v3's direction) closes the session.
    send(&mut s, "2").await;
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match s.next().await {
                None | Some(Err(_)) | Some(Ok(ws::Frame::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true));
}
on_both_backends!(binary_attachments_are_refused_and_the_session_goes_on);

async fn cors_headers_go_to_the_configured_origins_only(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.server.cors_origins = vec!["http://localhost:3000".into()];
    })
    .await;
    let client = awc::Client::default();
    for path in ["/socket.io/?EIO=4&transport=polling", "/api/v1/orders"] {
        let resp = client
            .request(
                actix_web::http::Method::OPTIONS,
                format!("{}{path}", app.address),
            )
            .insert_header(("Origin", "http://localhost:3000"))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header((
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ))
            .send()
            .await
            .expect("answered");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        assert_eq!(
            resp.headers()
                .get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(&b"http://localhost:3000"[..]),
            "{path}"
        );
        let resp = client
            .get(format!("{}{path}", app.address))
            .insert_header(("Origin", "http://evil.example"))
            .send()
            .await
            .expect("answered");
        assert!(
            resp.headers().get("access-control-allow-origin").is_none(),
            "{path}: another origin gets no CORS header"
        );
    }
    let resp = client
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            app.address
        ))
        .insert_header(("Origin", "http://localhost:3000"))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_some());

    // Without the setting, nothing is added.
    let plain = spawn_app(TestDb::sqlite()).await;
    let resp = client
        .get(format!(
            "{}/socket.io/?EIO=4&transport=polling",
            plain.address
        ))
        .insert_header(("Origin", "http://localhost:3000"))
        .send()
        .await
        .expect("answered");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
on_both_backends!(cors_headers_go_to_the_configured_origins_only);
