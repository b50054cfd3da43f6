//! `/socket.io/`: Engine.IO v4's HTTP side (SPEC 11, docs/SOCKETIO.md). A request is classified
//! by `socketio::handshake::classify` (the query's `EIO`, `transport`, `sid`), then:
//! - `GET` without `sid` opens a polling session and answers its `open` packet;
//! - `GET` with `sid` is a long poll, answered with the packets waiting (or when some come);
//! - `POST` with `sid` carries packets, answered `ok`; a body over `limits.max_frame_bytes` is 413;
//! - a WebSocket upgrade without `sid` is a WebSocket-only session, with `sid` an upgrade.
//!
//! Refusals are HTTP 400 (403 for policy) with the reference server's `{"code","message"}`.

use crate::actors::sio::{ws::SioWs, Poll, Post, SioSession};
use crate::actors::Hub;
use crate::socketio::handshake::{self, BadRequestReason, EngineError, EngineRequest, Method};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/socket.io/", "/socket.io"] {
        cfg.route(path, web::get().to(get))
            .route(path, web::post().to(post));
    }
}

/// An Engine.IO refusal: its HTTP status and JSON body.
fn refuse(e: &EngineError) -> HttpResponse {
    log::info!("[WEBSOCKET] socket.io request refused: {e}");
    crate::stats::connection_refused("socketio_bad_request");
    HttpResponse::build(actix_web::http::StatusCode::from_u16(e.status()).unwrap_or_default())
        .content_type("application/json")
        .body(e.body())
}

/// The query's pairs, decoded.
fn pairs(req: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

fn classify(method: Method, pairs: &[(String, String)]) -> Result<EngineRequest, EngineError> {
    handshake::classify(method, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// A polling answer: packets as text.
fn packets(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=UTF-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Waits for a session's answer to a poll.
async fn poll(session: actix::Addr<SioSession>, sid: &str) -> HttpResponse {
    let (reply, answer) = oneshot::channel();
    if session.send(Poll { reply }).await.is_err() {
        return refuse(&EngineError::UnknownSid(sid.to_string()));
    }
    match answer.await {
        Ok(Ok(body)) => packets(body),
        Ok(Err(e)) => refuse(&e),
        Err(_) => refuse(&EngineError::UnknownSid(sid.to_string())),
    }
}

async fn get(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let method = if is_upgrade(&req) {
        Method::WebSocket
    } else {
        Method::Get
    };
    let pairs = pairs(&req);
    let request = match classify(method, &pairs) {
        Ok(r) => r,
        Err(e) => return Ok(refuse(&e)),
    };
    let hub: Arc<Hub> = hub.into_inner();
    let frame_size = hub.settings.limits.max_frame_bytes;
    match request {
        EngineRequest::OpenPolling => {
            if hub.is_shutting_down() {
                return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
                    "error": {"code": "internal", "message": "the server is restarting; reconnect in a moment"}
                })));
            }
            let query: HashMap<String, String> = pairs.into_iter().collect();
            let (sid, session) = SioSession::open(hub, None, query);
            Ok(poll(session, &sid).await)
        }
        EngineRequest::Poll { sid } => match hub.socketio.get(&sid) {
            Some(session) => Ok(poll(session, &sid).await),
            None => Ok(refuse(&EngineError::UnknownSid(sid))),
        },
        EngineRequest::OpenWebsocket => {
            let query: HashMap<String, String> = pairs.into_iter().collect();
            ws::WsResponseBuilder::new(SioWs::open(hub, query), &req, stream)
                .frame_size(frame_size)
                .start()
        }
        EngineRequest::Upgrade { sid } => match hub.socketio.get(&sid) {
            Some(session) => ws::WsResponseBuilder::new(SioWs::upgrade(hub, session), &req, stream)
                .frame_size(frame_size)
                .start(),
            None => Ok(refuse(&EngineError::UnknownSid(sid))),
        },
        EngineRequest::Send { .. } => Ok(refuse(&EngineError::BadHandshakeMethod)),
    }
}

async fn post(
    req: HttpRequest,
    mut body: web::Payload,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let pairs = pairs(&req);
    let sid = match classify(Method::Post, &pairs) {
        Ok(EngineRequest::Send { sid }) => sid,
        Ok(_) => return Ok(refuse(&EngineError::BadHandshakeMethod)),
        Err(e) => return Ok(refuse(&e)),
    };
    let binary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    if binary {
        return Ok(refuse(&EngineError::BadRequest(
            BadRequestReason::BinaryBody,
        )));
    }
    let Some(session) = hub.socketio.get(&sid) else {
        return Ok(refuse(&EngineError::UnknownSid(sid)));
    };
    let max = hub.settings.limits.max_frame_bytes;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > max {
            return Ok(HttpResponse::PayloadTooLarge().json(serde_json::json!({
                "code": 3, "message": format!("a polling payload may be at most {max} bytes (maxPayload)")
            })));
        }
        bytes.extend_from_slice(&chunk);
    }
    let Ok(text) = String::from_utf8(bytes.to_vec()) else {
        return Ok(refuse(&EngineError::BadRequest(
            BadRequestReason::BadPayload,
        )));
    };
    match session.send(Post { body: text }).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().content_type("text/html").body("ok")),
        Ok(Err(e)) => Ok(refuse(&e)),
        Err(_) => Ok(refuse(&EngineError::UnknownSid(sid))),
    }
}
