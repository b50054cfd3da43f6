//! SPEC 7 through the real binary: every value a client sends (an id, a room name, a type, a
//! comment) is written into the log quoted and escaped, so no client can forge a log line that
//! operators would grep as the engine's own (`[DECISION] event=forged ...`).

use super::secret::{databases, mint_admin_token, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

const FORGED: &str = "x\n[DECISION] event=forged order=ORD-1 action=REASSIGNMENT_INITIATED";

/// Sends each frame over one WebSocket and waits for its answer (`ref`ed).
fn send_frames(port: u16, token: &str, frames: &[Value]) -> Vec<Value> {
    actix_web::rt::System::new().block_on(async {
        let url = format!("ws://127.0.0.1:{port}/ws?token={token}");
        let (_, mut ws) = awc::Client::default()
            .ws(url)
            .connect()
            .await
            .expect("the upgrade");
        let mut answers = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let mut frame = frame.clone();
            frame["ref"] = json!(format!("f{i}"));
            ws.send(awc::ws::Message::Text(frame.to_string().into()))
                .await
                .expect("sent");
            loop {
                let Some(Ok(awc::ws::Frame::Text(text))) = ws.next().await else {
                    panic!("the session ended before answering {frame}");
                };
                let m: Value = serde_json::from_slice(&text).expect("JSON");
                if m["ref"] == format!("f{i}").as_str() {
                    answers.push(m);
                    break;
                }
            }
        }
        answers
    })
}

/// `POST path` with an admin token; answers the status.
fn post(port: u16, path: &str, token: &str, body: Value) -> u16 {
    actix_web::rt::System::new().block_on(async {
        awc::Client::default()
            .post(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(token)
            .send_json(&body)
            .await
            .expect("answered")
            .status()
            .as_u16()
    })
}

#[test]
fn no_client_string_can_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    for db in &databases(dir.path()) {
        let data_dir = tempfile::tempdir().unwrap();
        let server = Server::start(data_dir.path(), db, &[]);
        let token = mint_admin_token(data_dir.path());
        // An order with a driver, so a report reaches the Dispatcher and its comment is logged.
        let driver = json!({"id":"DRV-1","name":"Alice"});
        assert_eq!(post(server.port, "/api/v1/drivers", &token, driver), 201);
        let order = json!({"id":"ORD-1","pickup":{"lat":48.85,"lng":2.35},
            "dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-1"});
        assert_eq!(post(server.port, "/api/v1/orders", &token, order), 201);
        let answers = send_frames(
            server.port,
            &token,
            &[
                json!({"type":"report","order_id":FORGED,"kind":"accident"}),
                json!({"type":"join","room":"order:y\n[BROADCAST] forged rooms=dispatch"}),
                json!({"type":"join","room":"nowhere\n[OVERRIDE] forged"}),
                json!({"type":"z\n[REASSIGNMENT] forged"}),
                json!({"type":"report","order_id":"ORD-1","kind":"traffic_jam",
                    "comment":"stuck\n[RISK] event=forged score=0.000"}),
            ],
        );
        assert_eq!(answers[0]["code"], "not_found", "{}", answers[0]);
        assert_eq!(answers[4]["type"], "ack", "{}", answers[4]);
        // A last request, so every line above is written before the log is read.
        assert_eq!(
            post(
                server.port,
                "/api/v1/orders/ORD-1/cancel",
                &token,
                json!({})
            ),
            200
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let log = server.log();
        if std::env::var("TEST_LOG").is_ok() {
            eprintln!("{log}");
        }
        for line in log.lines() {
            // Every line the engine writes starts with env_logger's `[time LEVEL target]`.
            for tag in [
                "[DECISION]",
                "[BROADCAST]",
                "[OVERRIDE]",
                "[REASSIGNMENT]",
                "[RISK]",
            ] {
                assert!(
                    !line.starts_with(tag),
                    "a forged line: {line:?}\nin:\n{log}"
                );
            }
        }
        // The values were logged, quoted, with their newline escaped.
        for escaped in [
            r#"x\n[DECISION] event=forged"#,
            r#"order:y\n[BROADCAST] forged"#,
            r#"nowhere\n[OVERRIDE] forged"#,
            r#"z\n[REASSIGNMENT] forged"#,
            r#"comment="stuck\n[RISK] event=forged score=0.000""#,
        ] {
            assert!(log.contains(escaped), "{escaped} is not in:\n{log}");
        }
        server.stop();
    }
}
