//! `GET /metrics`: valid Prometheus text whose counters move when the emergency story runs.
//!
//! The recorder is process-wide and other tests run alongside, so the checks are "grew by at
//! least", never exact values.

use crate::helpers::{spawn_app, TestApp, TestDb};
use crate::on_both_backends;
use serde_json::json;
use std::collections::HashMap;

/// Samples by series (`name{labels}` as printed), after checking every line's syntax.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed: HashMap<String, String> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(valid_name(name), "bad metric name, {}", at());
            match kind {
                "TYPE" => {
                    let t = parts.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad TYPE, {}",
                        at()
                    );
                    typed.insert(name.to_string(), t.to_string());
                }
                "HELP" => {}
                _ => panic!("unknown comment, {}", at()),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{}", at()));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value, {}", at())),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels, {}", at()));
                for pair in split_labels(labels) {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label, {}", at()));
                    assert!(valid_name(k), "bad label name, {}", at());
                    assert!(
                        v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                        "label value not quoted, {}",
                        at()
                    );
                }
                name
            }
            None => series,
        };
        assert!(valid_name(name), "bad sample name, {}", at());
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains_key(*f)))
            .unwrap_or(name);
        assert!(
            typed.contains_key(family),
            "sample before its # TYPE, {}",
            at()
        );
        samples.insert(series.to_string(), value);
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Splits `a="x",b="y,z"` on the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        out.push(&labels[start..]);
    }
    out
}

pub async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let mut resp = awc::Client::default()
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("the request is answered");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let body = resp.body().limit(8 << 20).await.expect("a body");
    parse_prometheus(std::str::from_utf8(&body).expect("UTF-8"))
}

pub fn get(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn metrics_parse_and_move_with_the_emergency_story(db: TestDb) {
    let app = spawn_app(db).await;
    let before = scrape(&app).await;
    let mut alice = app.online_driver("DRV-001", "Alice", 48.85, 2.35).await;
    let mut bob = app.online_driver("DRV-002", "Bob", 48.86, 2.35).await;
    let (status, _) = app
        .post_json(
            "/api/v1/orders",
            &json!({"id":"ORD-M","pickup":{"lat":48.85,"lng":2.35},"dropoff":{"lat":48.87,"lng":2.30},"driver_id":"DRV-001"}),
            &app.dispatcher_token(),
        )
        .await;
    assert_eq!(status, 201);
    alice
        .request(json!({"type":"accept","order_id":"ORD-M"}))
        .await;
    let ack = alice
        .request(json!({"type":"report","order_id":"ORD-M","kind":"vehicle_breakdown"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    bob.expect("order_assigned").await;
    alice.send_text("{not json").await;
    alice.expect("error").await;
    let (status, _) = app.post_json("/api/v1/orders", &json!({}), "garbage").await;
    assert_eq!(status, 401);
    assert_eq!(
        app.try_ws("token=garbage").await.err(),
        Some(401),
        "a bad token is refused before the upgrade"
    );
    let mut closing = app.ws(&app.dispatcher_token()).await;
    closing.close().await;
    // The close is handled asynchronously: scrape until it is counted.
    let mut after = scrape(&app).await;
    for _ in 0..50 {
        if get(&after, "rallypoint_sessions_closed_total{code=\"client\"}")
            > get(&before, "rallypoint_sessions_closed_total{code=\"client\"}")
        {
            break;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        after = scrape(&app).await;
    }

    let grew = |series: &str, by: f64| {
        let (b, a) = (get(&before, series), get(&after, series));
        assert!(a - b >= by, "{series}: {b} -> {a}, expected +{by}");
    };
    grew("rallypoint_messages_in_total{type=\"report\"}", 1.0);
    grew("rallypoint_messages_in_total{type=\"accept\"}", 1.0);
    grew("rallypoint_messages_in_total{type=\"invalid\"}", 1.0);
    grew(
        "rallypoint_messages_out_total{type=\"emergency_event\"}",
        2.0,
    );
    grew("rallypoint_messages_out_total{type=\"welcome\"}", 3.0);
    grew("rallypoint_messages_out_total{type=\"ack\"}", 2.0);
    grew(
        "rallypoint_frames_refused_total{reason=\"bad_request\"}",
        1.0,
    );
    grew(
        "rallypoint_connections_refused_total{reason=\"unauthorized\"}",
        1.0,
    );
    grew("rallypoint_sessions_closed_total{code=\"client\"}", 1.0);
    grew(
        "rallypoint_room_events_published_total{room=\"fleet\"}",
        1.0,
    );
    grew(
        "rallypoint_room_events_published_total{room=\"dispatch\"}",
        1.0,
    );
    grew(
        "rallypoint_room_events_published_total{room=\"driver\"}",
        2.0,
    );
    grew(
        "rallypoint_decisions_total{action_taken=\"REASSIGNMENT_INITIATED\"}",
        1.0,
    );
    grew("rallypoint_decision_seconds_count", 1.0);
    grew("rallypoint_report_to_broadcast_seconds_count", 1.0);
    assert!(
        after.contains_key("rallypoint_decision_seconds_bucket{le=\"+Inf\"}"),
        "decision time is a histogram"
    );
    assert!(
        get(&after, "rallypoint_sessions{role=\"driver\"}") >= 2.0,
        "two drivers are connected"
    );
    assert!(get(&after, "rallypoint_connections") >= 2.0);
}
on_both_backends!(metrics_parse_and_move_with_the_emergency_story);

#[test]
fn the_parser_refuses_what_prometheus_would() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{b=\"c,d\"} 3\n";
    assert_eq!(parse_prometheus(ok)["a_total{b=\"c,d\"}"], 3.0);
    for bad in [
        "# TYPE a counter\na{b=c} 1\n",
        "# TYPE a counter\na 1x\n",
        "a 1\n",
        "# TYPE 1a counter\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_prometheus(bad)).is_err(),
            "{bad:?} must be refused"
        );
    }
}
