//! `GET /api/v1/rooms/{room}/events?since=N`: missed room messages, for recovery and for polling
//! while a socket is down. Whoever may join the room may read it (`commands::session::may_enter`,
//! the rule `join` applies), at most `limits.rest_per_sub_per_sec` times a second per `sub` (429
//! past it).
//!
//! `POST /api/v1/rooms/{room}/messages` `{"type","data"}`: an admin's message to the room
//! (`commands::publish`), answered 201 with `{"room","seq","id"}`.

use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::commands::publish::Publish;
use crate::commands::session::may_enter;
use crate::commands::Command;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::Room;
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/rooms/{room}/events", web::get().to(events))
        .route("/api/v1/rooms/{room}/messages", web::post().to(messages));
}

/// A publish request's body. A missing `data` is `null`.
#[derive(Debug, Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

/// `POST /api/v1/rooms/{room}/messages`: 201 `{"room","seq","id"}` (admin).
async fn messages(
    hub: web::Data<Hub>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<Message>,
) -> Result<HttpResponse, AppError> {
    let b = body.into_inner();
    let command = Command::Publish(Publish {
        room: path.into_inner(),
        kind: b.kind,
        data: b.data,
    });
    super::run(hub, user, &req, StatusCode::CREATED, command).await
}

#[derive(Debug, Deserialize)]
struct Since {
    since: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/rooms/{room}/events?since=N&limit=`: `{"room","seq","recovered","events":[...]}`.
async fn events(
    hub: web::Data<Hub>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<Since>,
) -> Result<HttpResponse, AppError> {
    let name = path.into_inner();
    if !hub.allow_history_read(&user.0.sub) {
        let max = hub.settings.limits.rest_per_sub_per_sec;
        log::warn!(
            "[HTTP] history read refused sub={:?}: over {max} per second",
            user.0.sub
        );
        return Err(AppError::RateLimited(format!(
            "more than {max} history reads per second (limits.rest_per_sub_per_sec): slow down"
        )));
    }
    let room = Room::parse(&name)
        .ok_or_else(|| AppError::bad_request(format!("`{name}` is not a room")))?;
    if !may_enter(&hub, &user.0, &room).await? {
        return Err(AppError::forbidden(format!("you may not read `{name}`")));
    }
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(AppError::bad_request("`since` must be 0 or more"));
    }
    let limit = q
        .limit
        .unwrap_or(hub.settings.realtime.history_per_room)
        .clamp(1, 10_000);
    let n = name.clone();
    let (seq, oldest, rows) = db::run(&hub.pool, move |c| {
        Ok((
            queries::rooms::current_seq(c, &n)?,
            queries::rooms::oldest_seq(c, &n)?,
            queries::rooms::since(c, &n, since, limit)?,
        ))
    })
    .await?;
    // As on the socket: a `since` beyond the room's seq is from another history.
    let recovered = since == seq || (since < seq && oldest.is_some_and(|o| o <= since + 1));
    let events: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.payload).ok())
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "room": name,
        "seq": seq,
        "recovered": recovered,
        "events": events,
    })))
}
