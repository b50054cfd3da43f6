//! Slow consumers: a client that never reads is closed (4008) once its outbound queue passes
//! `limits.outbound_queue`, its socket is shut down when the close cannot get out, 100 other
//! sessions get every message meanwhile, and memory does not grow with the stalled backlog.

use crate::helpers::{spawn_app_with, TestApp, TestDb, WsClient};
use crate::on_both_backends;
use rallypoint::actors::registry::PublishEphemeral;
use rallypoint::protocol::{Role, Room};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const QUEUE: usize = 64;

/// A WebSocket that completes the upgrade and then never reads: a tiny receive buffer, so the
/// server's writes stall after a few kilobytes.
async fn stalled_client(app: &TestApp, token: &str) -> tokio::net::TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", app.port).parse().unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut stream = tokio::net::TcpStream::from_std(sock.into()).unwrap();
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Read the response head byte by byte, so nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Publishes one ephemeral frame, `body` with the room's name added, to `room`.
async fn publish_frame(app: &TestApp, room: &Room, mut body: Value) {
    body["room"] = Value::String(room.to_string());
    app.hub
        .rooms
        .send(PublishEphemeral {
            room: room.clone(),
            kind: "locations",
            text: body.to_string().into(),
        })
        .await
        .unwrap();
}

/// Publishes one frame of about `size` bytes, numbered `n`, to `room`.
async fn publish(app: &TestApp, room: &Room, n: usize, size: usize) {
    let body = json!({"type":"locations","drivers":[],"n":n,"pad":"x".repeat(size)});
    publish_frame(app, room, body).await;
}

/// Reads `client` in the background, checking that the numbered frames come in order with
/// none missing, until the frame marked `end`; answers the client and how many came before it.
fn spawn_reader(mut client: WsClient) -> tokio::task::JoinHandle<(WsClient, usize)> {
    actix_rt::spawn(async move {
        let mut next = 0;
        loop {
            let m: Value = client.read().await.expect("the reader stays connected");
            if m["type"] != "locations" {
                continue;
            }
            if m["end"] == true {
                return (client, next);
            }
            assert_eq!(m["n"], next, "frames arrive in order, none missing");
            next += 1;
        }
    })
}

/// Publishes the frame that tells readers the stream is over.
async fn publish_end(app: &TestApp, room: &Room) {
    publish_frame(
        app,
        room,
        json!({"type":"locations","drivers":[],"end":true}),
    )
    .await;
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

const STALLED: &str = "DRV-STALL";

/// Publishes 64 KiB frames to the stalled driver's own room, and numbered small frames to
/// `shared` (which the readers are in too), until the stalled session is gone; answers how
/// many of each were sent.
async fn publish_until_evicted(app: &TestApp, others: usize, shared: &Room) -> usize {
    let own = Room::Driver(STALLED.into());
    let mut n = 0;
    while app.hub.connections.load(Ordering::Relaxed) > others {
        assert!(n < 10_000, "the stalled client was never closed");
        publish(app, &own, n, 64 * 1024).await;
        publish(app, shared, n, 100).await;
        n += 1;
        if n % 8 == 0 {
            // Let the readers' sessions drain their queues: only the stalled one must fill.
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    }
    n
}

/// Waits until the server holds `n` connections.
async fn wait_for_connections(app: &TestApp, n: usize) {
    while app.hub.connections.load(Ordering::Relaxed) != n {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    // ... and until the last one's connect sequence (its room joins) has run.
    actix_rt::time::sleep(Duration::from_millis(100)).await;
}

async fn a_client_that_never_reads_is_closed_and_the_others_get_everything(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.limits.outbound_queue = QUEUE;
    })
    .await;
    let fleet = Room::fleet("default");
    let mut readers = Vec::new();
    for i in 0..100 {
        let token = app.token_for(&format!("dispatcher-{i}"), Role::Dispatcher, None);
        // Dispatchers are in `dispatch` alone by default: they join the fleet room.
        let mut reader = app.ws(&token).await;
        let ack = reader
            .request(json!({"type":"join","room":"fleet:default"}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        readers.push(spawn_reader(reader));
    }
    let stalled = stalled_client(&app, &app.driver_token(STALLED, "Stalled")).await;
    wait_for_connections(&app, 101).await;
    let evictions = slow_consumers();

    let sent = publish_until_evicted(&app, 100, &fleet).await;
    publish_end(&app, &fleet).await;
    assert!(
        sent * 64 > QUEUE,
        "closed after {sent} frames: before its queue could have filled"
    );
    assert!(slow_consumers() > evictions, "counted as a slow consumer");
    // Every other session got every frame of the shared room, in order, and still works.
    let mut last = None;
    for r in readers {
        let (client, got) = r.await.unwrap();
        assert_eq!(got, sent, "a reader got every frame");
        last = Some(client);
    }
    let mut last = last.unwrap();
    let ack = last.request(json!({"type":"ping"})).await;
    assert_eq!(ack["type"], "ack");
    // The stalled socket was shut down: reading it now ends (after what it had buffered).
    let mut stalled = stalled;
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stalled connection was closed by the server"
    );
    eprintln!("slow consumer: closed after {sent} frames of 64 KiB (outbound_queue = {QUEUE})");
}
on_both_backends!(a_client_that_never_reads_is_closed_and_the_others_get_everything);

/// How many slow consumers this process has evicted, from `/metrics`.
fn slow_consumers() -> f64 {
    rallypoint::stats::render(Default::default())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("rallypoint_slow_consumers_total "))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn a_stalled_backlog_does_not_grow_memory(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.limits.outbound_queue = QUEUE;
    })
    .await;
    const FRAME: usize = 64 * 1024;
    let own = Room::Driver(STALLED.into());
    // Warm up the allocator with the same traffic, read by a driver that keeps up.
    let reader = spawn_reader(app.ws(&app.driver_token(STALLED, "Stalled")).await);
    for n in 0..200 {
        publish(&app, &own, n, FRAME).await;
        if n % 8 == 0 {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    }
    publish_end(&app, &own).await;
    let (reader, got) = reader.await.unwrap();
    assert_eq!(got, 200);
    drop(reader);
    wait_for_connections(&app, 0).await;
    let before = rss_kib();

    let _stalled = stalled_client(&app, &app.driver_token(STALLED, "Stalled")).await;
    wait_for_connections(&app, 1).await;
    // 100 MiB for the stalled client: all of it would stay in memory if nothing bounded it.
    let total = 1600;
    let mut evicted_after = None;
    for n in 0..total {
        publish(&app, &own, n, FRAME).await;
        if evicted_after.is_none() && app.hub.connections.load(Ordering::Relaxed) == 0 {
            evicted_after = Some(n);
        }
        if n % 8 == 0 {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let after = rss_kib();
    let evicted_after = evicted_after.expect("the stalled client was closed");
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "stalled client: closed after {evicted_after} frames of 64 KiB; {} MiB published to it; \
         RSS {:.1} MiB -> {:.1} MiB (+{grown_mib:.1} MiB)",
        total * FRAME / (1024 * 1024),
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    assert!(
        grown_mib < 32.0,
        "RSS grew {grown_mib:.1} MiB while {} MiB went to a stalled client",
        total * FRAME / (1024 * 1024)
    );
}
on_both_backends!(a_stalled_backlog_does_not_grow_memory);

/// Commits `n` `driver_status` messages to `dispatch` in one transaction and publishes them at
/// once: a burst no session can drain as fast as the room hands it out.
async fn burst(app: &TestApp, n: usize) {
    use rallypoint::db::queries::commit::{self, Change, Publication};
    use rallypoint::protocol::{DriverId, DriverStatus, ServerMsg};
    let messages = (0..n)
        .map(|i| {
            Publication::to(
                Room::Dispatch,
                ServerMsg::DriverStatus {
                    driver_id: DriverId::from(format!("DRV-B{i:03}").as_str()),
                    name: format!("Burst {i}"),
                    status: DriverStatus::Online,
                    timestamp: chrono::Utc::now(),
                },
            )
        })
        .collect();
    let change = Change {
        messages,
        ..Default::default()
    };
    let published = rallypoint::db::run(&app.hub.pool, move |c| {
        commit::apply(c, change, chrono::Utc::now())
    })
    .await
    .unwrap();
    rallypoint::actors::publish(&app.hub, "burst", published).await;
}

async fn a_session_closed_4008_resumes_from_its_last_seq_with_nothing_lost(db: TestDb) {
    let app = spawn_app_with(db, |s| {
        s.limits.outbound_queue = 8;
    })
    .await;
    let token = app.dispatcher_token();
    let mut client = app.ws(&token).await;
    let start = client.welcome["rooms"]["dispatch"].as_i64().unwrap();
    burst(&app, 300).await;
    // It reads what it was sent, then the 4008 close.
    let mut last = start;
    while let Some(m) = client.read().await {
        if m["room"] == "dispatch" && m["type"] == "driver_status" {
            let seq = m["seq"].as_i64().unwrap();
            assert_eq!(seq, last + 1, "in order, none missing");
            last = seq;
        }
    }
    let code = client.closed.clone().flatten().map(|r| u16::from(r.code));
    assert_eq!(code, Some(4008), "closed as a slow consumer");
    assert!(last < start + 300, "the burst did not all fit in the queue");
    // It resumes from the last seq it saw and gets exactly the rest.
    let mut client = app
        .ws_query(&format!("token={token}&since=dispatch%3A{last}"))
        .await;
    let joined = client
        .find(|m| m["type"] == "joined" && m["room"] == "dispatch")
        .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    while last < start + 300 {
        let m = client
            .find(|m| m["room"] == "dispatch" && m["type"] == "driver_status")
            .await;
        assert_eq!(m["seq"].as_i64().unwrap(), last + 1, "in order, none twice");
        last += 1;
    }
}
on_both_backends!(a_session_closed_4008_resumes_from_its_last_seq_with_nothing_lost);
