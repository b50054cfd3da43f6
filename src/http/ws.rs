//! `GET /ws`: authenticates (401 before the upgrade), applies `limits.max_connections` (503) and
//! `limits.max_connections_per_sub` (429),
//! reads `since=ROOM:SEQ,...` and `event_id=` (SPEC 8), and starts a `WsSession`.

use crate::actors::{session::WsSession, Hub, SlotRefused};
use crate::auth::bearer_token;
use crate::error::AppError;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use std::collections::HashMap;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

/// Parses `since=ROOM:SEQ,ROOM:SEQ` (room names contain `:`, so the seq is after the last one).
pub fn parse_since(query: &str) -> Result<HashMap<String, i64>, AppError> {
    let params = web::Query::<HashMap<String, String>>::from_query(query)
        .map_err(|e| AppError::bad_request(format!("invalid query: {e}")))?;
    let mut out = HashMap::new();
    if let Some(since) = params.get("since") {
        for part in since.split(',').filter(|p| !p.is_empty()) {
            let parsed = part
                .rsplit_once(':')
                .and_then(|(room, seq)| seq.parse::<i64>().ok().map(|s| (room.to_string(), s)));
            match parsed {
                Some((room, seq)) if seq >= 0 => {
                    out.insert(room, seq);
                }
                _ => {
                    return Err(AppError::bad_request(format!(
                        "`since` must be ROOM:SEQ,ROOM:SEQ; `{part}` is not"
                    )))
                }
            }
        }
    }
    Ok(out)
}

/// `GET /ws`: the WebSocket endpoint.
async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let token = bearer_token(&req).ok_or_else(|| {
        crate::stats::connection_refused("unauthorized");
        AppError::Unauthorized("no token: pass ?token= or Authorization: Bearer".into())
    })?;
    let claims = hub.keys.verify(&token).inspect_err(|e| {
        crate::stats::connection_refused(e.code().as_str());
    })?;
    let since = parse_since(req.query_string())?;
    let event = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("event_id").cloned())
        .filter(|e| !e.is_empty());
    if hub.is_shutting_down() {
        crate::stats::connection_refused("shutting_down");
        return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": {"code": "internal", "message": "the server is restarting; reconnect in a moment"}
        })));
    }
    let hub = hub.into_inner();
    // Taken atomically, so many clients connecting at once cannot overshoot the limits.
    let slot = match hub.reserve_connection(&claims.sub, claims.role) {
        Ok(slot) => slot,
        Err(SlotRefused::Node(max)) => {
            log::warn!(
                "[WEBSOCKET] refused sub={:?}: {max} connections",
                claims.sub
            );
            crate::stats::connection_refused("max_connections");
            return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({
                "error": {"code": "internal", "message": format!("this node holds its maximum of {max} connections; retry later or another node")}
            })));
        }
        Err(SlotRefused::Sub(max)) => {
            log::warn!(
                "[WEBSOCKET] refused sub={:?}: it holds {max} connections",
                claims.sub
            );
            crate::stats::connection_refused("max_connections_per_sub");
            return Err(AppError::RateLimited(format!(
                "`{}` holds its maximum of {max} connections (limits.max_connections_per_sub): close one first",
                claims.sub
            ))
            .into());
        }
    };
    let frame_size = hub.settings.limits.max_frame_bytes;
    let socket = req.conn_data::<crate::http::conn::ConnSocket>().copied();
    let session = WsSession::new(hub, claims, since, event, socket, slot);
    ws::WsResponseBuilder::new(session, &req, stream)
        .frame_size(frame_size)
        .start()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_names_rooms_with_colons() {
        let s = parse_since("token=x&since=fleet%3Adefault%3A41%2Cdriver%3AD1%3A3").unwrap();
        assert_eq!(s.get("fleet:default"), Some(&41));
        assert_eq!(s.get("driver:D1"), Some(&3));
    }

    #[test]
    fn a_malformed_since_is_a_bad_request() {
        assert!(parse_since("since=fleet%3Adefault").is_err());
    }
}
