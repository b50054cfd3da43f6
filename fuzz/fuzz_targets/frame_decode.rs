//! Any bytes as a client's text frame: `ClientFrame::decode` never panics, a decoded frame comes
//! from one JSON object with a known `type`, and a failure is `bad_request` with a message whose
//! `error` frame is `{"type":"error","code":<SPEC code>,"message",...}` keeping a valid `ref`.
//! A violated invariant panics, which libFuzzer reports as a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/spec.rs"]
mod spec;
use spec::{SPEC_CODES, TYPES};
use rallypoint::error::ErrorCode;
use rallypoint::protocol::client::{ClientFrame, MAX_REF_LEN};
use rallypoint::protocol::ServerMsg;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // A text frame is UTF-8; anything else is read as a lossy server would.
    let text = String::from_utf8_lossy(data);
    let parsed = serde_json::from_str::<Value>(&text).ok();
    let sent_ref = match &parsed {
        Some(Value::Object(m)) => match m.get("ref") {
            Some(Value::String(r)) if r.len() <= MAX_REF_LEN => Some(r.clone()),
            _ => None,
        },
        _ => None,
    };
    match ClientFrame::decode(&text) {
        Ok(frame) => {
            let Some(Value::Object(map)) = &parsed else {
                panic!("decoded a frame that is not one JSON object: {text:?}");
            };
            assert_eq!(
                map.get("type").and_then(Value::as_str),
                Some(frame.msg.kind())
            );
            assert_eq!(frame.reference, sent_ref, "{text:?}");
            if let Some(k) = &frame.idempotency_key {
                assert!(!k.is_empty() && k.len() <= MAX_REF_LEN, "{text:?}");
                assert!(frame.msg.is_state_changing(), "{text:?}");
            }
        }
        Err(e) => {
            assert_eq!(
                e.error.code(),
                ErrorCode::BadRequest,
                "{text:?}: {}",
                e.error
            );
            let message = e.error.client_message();
            assert!(!message.trim().is_empty(), "no message for {text:?}");
            // The message says what was wrong: a known `type` is not called unknown.
            if let Some(Value::Object(m)) = &parsed {
                if m.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| TYPES.contains(&t))
                {
                    assert!(
                        !message.contains("unknown message type"),
                        "{text:?}: {message}"
                    );
                }
            }
            // An object's valid `ref` is kept in its error.
            if sent_ref.is_some() {
                assert_eq!(e.reference, sent_ref, "{text:?}");
            }
            if let Some(r) = &e.reference {
                assert!(r.len() <= MAX_REF_LEN);
            }
            let wire = ServerMsg::error(e.reference.clone(), &e.error).to_text();
            let v: Value = serde_json::from_str(&wire).expect("the error frame is JSON");
            assert!(v.is_object(), "{wire}");
            assert_eq!(v["type"], "error", "{wire}");
            let code = v["code"].as_str().unwrap_or_default();
            assert!(SPEC_CODES.contains(&code), "not a SPEC code: {wire}");
            assert_eq!(v["message"].as_str(), Some(message.as_str()), "{wire}");
            assert_eq!(v.get("ref").and_then(Value::as_str), e.reference.as_deref());
        }
    }
});
