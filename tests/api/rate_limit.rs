//! The rate limit (SPEC 6): every frame counts toward `limits.client_msgs_per_sec`, a frame
//! over it is refused unread (`rate_limited`, no `ref`), and three over-limit windows within
//! five seconds close the session with 1008.

use crate::helpers::{spawn_app_with, TestDb, WsClient};
use crate::on_both_backends;
use serde_json::json;
use std::time::Duration;

/// Sends `n` pings with refs `{tag}-{i}` at once and reads one answer per ping. Answers the refs
/// acked, in order, and how many were refused `rate_limited` (refused unread, so without their
/// ref); stops early if the socket closes.
async fn burst(c: &mut WsClient, tag: &str, n: usize) -> (Vec<String>, usize) {
    let refs: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    for r in &refs {
        c.send(&json!({"type":"ping","ref":r})).await;
    }
    let prefix = format!("{tag}-");
    let (mut acked, mut limited) = (Vec::new(), 0);
    while acked.len() + limited < n {
        let m = c
            .try_find(|m| {
                m["type"] == "error"
                    || (m["type"] == "ack"
                        && m["ref"].as_str().is_some_and(|r| r.starts_with(&prefix)))
            })
            .await;
        let Some(m) = m else { break };
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("ack"), _) => acked.push(m["ref"].as_str().unwrap_or_default().to_string()),
            (Some("error"), Some("rate_limited")) => {
                assert!(m["ref"].is_null(), "refused unread, so without a ref: {m}");
                limited += 1;
            }
            _ => panic!("{tag}: unexpected answer {m}"),
        }
    }
    (acked, limited)
}

async fn a_flood_gets_rate_limited_then_1008_and_a_calm_client_is_never_refused(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.client_msgs_per_sec = 5).await;
    let mut flood = app.ws(&app.dispatcher_token()).await;
    // A fresh session that has sent nothing yet: it goes exactly to the limit, never past it.
    let mut calm = app.ws(&app.admin_token()).await;
    let flooder = async {
        let mut windows = Vec::new();
        for w in 0..3 {
            let (acked, limited) = burst(&mut flood, &format!("w{w}"), 20).await;
            windows.push((acked, limited));
            if w < 2 {
                // The server's window began when it read this burst's first message, after the
                // client sent it: a second from now is past it.
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        }
        let code = flood.expect_close().await;
        (windows, code)
    };
    let calm_client = async {
        let mut answers = Vec::new();
        for w in 0..4 {
            let (acked, limited) = burst(&mut calm, &format!("c{w}"), 5).await;
            answers.push((acked, limited));
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        answers
    };
    let ((windows, code), calm_answers) = tokio::join!(flooder, calm_client);
    for (w, (acked, limited)) in windows.iter().take(2).enumerate() {
        let want: Vec<String> = (0..5).map(|i| format!("w{w}-{i}")).collect();
        assert_eq!(acked, &want, "window {w}: the first five are answered");
        assert_eq!(*limited, 15, "window {w}: the rest are rate_limited");
    }
    let (acked, limited) = &windows[2];
    assert_eq!(acked.len(), 5, "third window: {acked:?}");
    assert_eq!(
        *limited, 1,
        "the third strike's message gets its error, then the close"
    );
    assert_eq!(code, Some(1008));
    for (w, (acked, limited)) in calm_answers.iter().enumerate() {
        assert_eq!(acked.len(), 5, "calm window {w}: {acked:?} {limited:?}");
        assert_eq!(*limited, 0, "calm window {w}");
    }
    calm.assert_alive().await;
}
on_both_backends!(a_flood_gets_rate_limited_then_1008_and_a_calm_client_is_never_refused);

/// Reads the next `n` errors; answers their codes in order.
async fn errors(c: &mut WsClient, n: usize) -> Vec<String> {
    let mut codes = Vec::new();
    for _ in 0..n {
        let e = c.expect("error").await;
        codes.push(e["code"].as_str().unwrap_or_default().to_string());
    }
    codes
}

async fn ping_and_binary_frames_count_toward_the_rate_limit_and_a_flood_of_them_closes_1008(
    db: TestDb,
) {
    use awc::ws::Message;
    let app = spawn_app_with(db, |s| s.limits.client_msgs_per_sec = 5).await;
    let mut flood = app.ws(&app.dispatcher_token()).await;
    // Window 1: WebSocket pings. Five are answered with a pong frame, the rest refused.
    for _ in 0..20 {
        flood.send_frame(Message::Ping("p".into())).await;
    }
    let want: Vec<String> = vec!["rate_limited".into(); 15];
    assert_eq!(errors(&mut flood, 15).await, want, "pings past the limit");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Window 2: binary frames. Five are read (and refused: text only), the rest are not read.
    for _ in 0..20 {
        flood.send_frame(Message::Binary("b".into())).await;
    }
    let mut want: Vec<String> = vec!["bad_request".into(); 5];
    want.extend(vec!["rate_limited".to_string(); 15]);
    assert_eq!(errors(&mut flood, 20).await, want, "binary frames");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Window 3: pongs nobody asked for. The third window over the limit closes the session.
    for _ in 0..20 {
        flood.send_frame(Message::Pong("q".into())).await;
    }
    assert_eq!(
        errors(&mut flood, 1).await,
        vec!["rate_limited".to_string()]
    );
    assert_eq!(flood.expect_close().await, Some(1008));
    // Another session of the same sub is untouched.
    app.ws(&app.dispatcher_token()).await.assert_alive().await;
}
on_both_backends!(
    ping_and_binary_frames_count_toward_the_rate_limit_and_a_flood_of_them_closes_1008
);

async fn bursts_over_the_limit_in_seconds_one_three_and_five_close_with_1008(db: TestDb) {
    let app = spawn_app_with(db, |s| s.limits.client_msgs_per_sec = 5).await;
    let mut flood = app.ws(&app.dispatcher_token()).await;
    // Over, calm, over, calm, over: each burst waits a second after the last answer of the one
    // before, so each is a window of its own (windows start with their first frame). Three
    // windows over the limit begin within five seconds: the third closes the session, though
    // a calm window came between each.
    let mut seen = Vec::new();
    for w in 0..5 {
        let n = if w % 2 == 0 { 6 } else { 1 };
        let (acked, limited) = burst(&mut flood, &format!("a{w}"), n).await;
        seen.push((acked.len(), limited));
        if w < 4 {
            assert!(flood.closed.is_none(), "closed after window {w}: {seen:?}");
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    assert_eq!(
        seen,
        vec![(5, 1), (1, 0), (5, 1), (1, 0), (5, 1)],
        "windows: (answered, rate_limited)"
    );
    assert_eq!(flood.expect_close().await, Some(1008));
}
on_both_backends!(bursts_over_the_limit_in_seconds_one_three_and_five_close_with_1008);
