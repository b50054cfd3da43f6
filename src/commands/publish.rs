//! `POST /api/v1/rooms/{room}/messages` (SPEC 11): an admin publishes a message of its own type
//! to a room. It is committed like every room message (one transaction: its seq, its history row
//! and the request's answer), then fanned out, so members receive it live as
//! `{type, data, room, seq, id}` and a resume replays it.

use super::Reply;
use crate::actors::{self, Hub};
use crate::auth::Claims;
use crate::db::{self, queries, queries::commit};
use crate::error::AppError;
use crate::idempotency::AnswerKey;
use crate::protocol::server::{CustomMsg, SERVER_TYPES, SOCKET_IO_RESERVED};
use crate::protocol::{Role, Room, ServerMsg};
use crate::telemetry::q;

/// The longest `type` a publisher may give.
pub const MAX_TYPE_LEN: usize = 64;

/// Publishes `data` as a message of type `kind` to `room`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Publish {
    /// The room's name as the path gave it.
    pub room: String,
    pub kind: String,
    pub data: serde_json::Value,
}

/// Whether `kind` may be a custom message's `type`: `Err` says why not.
pub fn check_type(kind: &str) -> Result<(), AppError> {
    if kind.is_empty() || kind.len() > MAX_TYPE_LEN {
        return Err(AppError::bad_request(format!(
            "`type` must be 1 to {MAX_TYPE_LEN} characters"
        )));
    }
    if !kind
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'))
    {
        return Err(AppError::bad_request(
            "`type` may hold only letters, digits and `_:.-`",
        ));
    }
    if SERVER_TYPES.contains(&kind) {
        return Err(AppError::bad_request(format!(
            "`{kind}` is a message type of the engine's own"
        )));
    }
    if SOCKET_IO_RESERVED.contains(&kind) {
        return Err(AppError::bad_request(format!(
            "`{kind}` is an event name Socket.IO reserves"
        )));
    }
    Ok(())
}

impl Publish {
    /// The room, parsed.
    fn target(&self) -> Result<Room, AppError> {
        Room::parse(&self.room)
            .ok_or_else(|| AppError::bad_request(format!("`{}` is not a room", self.room)))
    }

    pub(super) fn admit(&self, claims: &Claims) -> Result<(), AppError> {
        claims.require(&[Role::Admin], "publish to a room")?;
        self.target()?;
        check_type(&self.kind)
    }

    pub(super) async fn run(self, hub: &Hub, claims: &Claims, answer: Option<AnswerKey>) -> Reply {
        let room = self.target()?;
        let kind = self.kind.clone();
        let msg = ServerMsg::Custom(CustomMsg {
            kind: self.kind,
            data: self.data,
        });
        let change = commit::Change {
            messages: vec![commit::Publication::to(room, msg)],
            ..Default::default()
        };
        // The answer holds the seq and id the commit gives, so it is written inside the same
        // transaction, after them (a savepoint around `apply`'s own transaction).
        let (published, value) = db::run(&hub.pool, move |c| {
            diesel::Connection::transaction(c, |c| {
                let now = chrono::Utc::now();
                let published = commit::apply(c, change, now)?;
                let first = published
                    .first()
                    .ok_or_else(|| AppError::internal("the publication was not sequenced"))?;
                let value = serde_json::json!({
                    "room": first.room.to_string(),
                    "seq": first.seq,
                    "id": first.id,
                });
                if let Some(a) = crate::idempotency::answer_ok(answer.as_ref(), &value) {
                    queries::idempotency::answer(c, &a, now)?;
                }
                Ok((published, value))
            })
        })
        .await?;
        log::info!(
            "[EVENT_RECEIVED] publish sub={} room={} type={} seq={}",
            q(&claims.sub),
            q(&value["room"].as_str().unwrap_or_default()),
            q(&kind),
            value["seq"]
        );
        actors::publish(hub, "custom", published).await;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_of_its_own_is_accepted() {
        for kind in [
            "crowd:alert",
            "units.moved",
            "a",
            "X_1-2",
            &"t".repeat(MAX_TYPE_LEN),
        ] {
            assert!(check_type(kind).is_ok(), "{kind}");
        }
    }

    #[test]
    fn engine_reserved_empty_long_and_odd_types_are_bad_requests() {
        let long = "t".repeat(MAX_TYPE_LEN + 1);
        let refused = SERVER_TYPES
            .iter()
            .chain(SOCKET_IO_RESERVED.iter())
            .copied()
            .chain(["", long.as_str(), "a b", "é", "a/b", "x\n"]);
        for kind in refused {
            let e = check_type(kind).expect_err(kind);
            assert_eq!(e.code(), crate::error::ErrorCode::BadRequest, "{kind}");
        }
    }
}
