//! The commands that change a connection itself: `join`, `leave`, `refresh`. Each is decided
//! here (who may be in which room, what a refresh may change) and answers what the transport
//! applies to its own state: subscribing to a room from a position, unsubscribing, taking new
//! claims and leaving the rooms they no longer admit. The transport holds the connection's
//! rooms and passes them in; it writes `joined`, the replay and the acks.

use crate::actors::order::GetOrder;
use crate::actors::Hub;
use crate::auth::{self, Claims, OrderParties};
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{client, Order, Role, Room};
use std::future::Future;
use std::sync::Arc;

/// A client message that changes the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    /// `join`: `room` from `since` (the last seq seen).
    Join { room: String, since: Option<i64> },
    /// `leave`.
    Leave { room: String },
    /// `refresh`: the connection goes on under `token`.
    Refresh { token: String },
}

/// A `join` decided: subscribe the connection to `room` from `since`.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRoom {
    pub room: Room,
    pub since: Option<i64>,
}

impl JoinRoom {
    /// The ack, once joined at `seq`.
    pub fn ack(&self, seq: i64) -> serde_json::Value {
        serde_json::json!({"room": self.room.to_string(), "seq": seq})
    }
}

/// Decides a `join` of room `name` by a connection in `joined`: a room it may be in, within
/// `limits.max_rooms_per_session`, and not one it is in already unless `since` asks for what it
/// missed. What needs no actor is checked at once; the rights, which may ask the order's actor,
/// when the future runs.
pub fn join(
    hub: &Arc<Hub>,
    claims: &Claims,
    joined: &[Room],
    name: &str,
    since: Option<i64>,
) -> impl Future<Output = Result<JoinRoom, AppError>> + 'static {
    let checked = check_join(hub, joined, name, since);
    let (hub, claims) = (hub.clone(), claims.clone());
    async move {
        let (room, already) = checked?;
        if !may_enter(&hub, &claims, &room).await? {
            return Err(AppError::forbidden(format!(
                "role `{}` may not join `{room}`",
                claims.role
            )));
        }
        if already && since.is_none() {
            return Err(AppError::conflict(format!("you are already in `{room}`")));
        }
        Ok(JoinRoom { room, since })
    }
}

/// The room `name` is, and whether the connection is in it already.
fn check_join(
    hub: &Hub,
    joined: &[Room],
    name: &str,
    since: Option<i64>,
) -> Result<(Room, bool), AppError> {
    client::check_room_name(name)?;
    client::check_since(since)?;
    let Some(room) = Room::parse(name) else {
        return Err(AppError::bad_request(format!(
            "`{name}` is not a room: use dispatch, fleet:<f>, driver:<id>, order:<id>, customer:<id>, partner:<id>, unit_tracking, reporter:<sub> or event:<id>"
        )));
    };
    let already = joined.contains(&room);
    let max = hub.settings.limits.max_rooms_per_session;
    if !already && joined.len() >= max {
        return Err(AppError::conflict(format!(
            "a session may be in at most {max} rooms (limits.max_rooms_per_session): leave one first"
        )));
    }
    Ok((room, already))
}

/// A `leave` decided: unsubscribe the connection from `room`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaveRoom {
    pub room: Room,
    /// The room as the client named it, for the ack.
    name: String,
}

impl LeaveRoom {
    /// The ack: the room as the client named it.
    pub fn ack(&self) -> serde_json::Value {
        serde_json::json!({ "room": self.name })
    }
}

/// Decides a `leave` of room `name` by a connection in `joined`: only a room it is in.
pub fn leave(joined: &[Room], name: &str) -> Result<LeaveRoom, AppError> {
    client::check_room_name(name)?;
    match Room::parse(name) {
        Some(room) if joined.contains(&room) => Ok(LeaveRoom {
            room,
            name: name.to_string(),
        }),
        _ => Err(AppError::not_found(format!("you are not in room `{name}`"))),
    }
}

/// A `refresh` decided: the connection goes on under `claims` (and their expiry), and leaves
/// `lost`, the rooms they no longer admit.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    pub claims: Claims,
    pub lost: Vec<Room>,
}

impl Refreshed {
    /// The ack: the new expiry.
    pub fn ack(&self) -> serde_json::Value {
        serde_json::json!({ "exp": self.claims.exp })
    }
}

/// Decides a `refresh` to `token` of a connection under `current`, in `joined`: the new token
/// must verify and be for the same sub, role, driver, customer and partner (its expiry, fleet
/// and room patterns may change).
pub fn refresh(
    hub: &Hub,
    current: &Claims,
    joined: &[Room],
    token: &str,
) -> Result<Refreshed, AppError> {
    let claims = hub.keys.verify(token)?;
    if claims.sub != current.sub
        || claims.role != current.role
        || claims.driver_id != current.driver_id
        || claims.customer_id != current.customer_id
        || claims.partner_id != current.partner_id
    {
        return Err(AppError::forbidden(
            "a refresh token must be for the same sub, role, driver, customer and partner",
        ));
    }
    let lost = rooms_lost(&claims, joined);
    Ok(Refreshed { claims, lost })
}

/// The rooms of `joined` that `claims` no longer admit.
pub fn rooms_lost(claims: &Claims, joined: &[Room]) -> Vec<Room> {
    joined
        .iter()
        .filter(|room| {
            // A refresh keeps the driver and the customer (`refresh` checks it), so whether it
            // still holds an order is not the token's to say: taking a driver off an order leaves
            // that room, and an order's customer never changes.
            let order = match room {
                Room::Order(_) => OrderParties {
                    driver: claims.driver(),
                    customer: claims.customer(),
                },
                _ => OrderParties::default(),
            };
            !auth::may_join(claims, room, order)
        })
        .cloned()
        .collect()
}

/// Whether `claims` may be in `room` (SPEC 3, 10), to join it or to read its history: for a
/// driver or a customer and an order's room, the order's actor says whose it is now.
pub async fn may_enter(hub: &Hub, claims: &Claims, room: &Room) -> Result<bool, AppError> {
    let order = match room {
        Room::Order(o) if matches!(claims.role, Role::Driver | Role::Customer) => {
            match hub.order(o) {
                Some(a) => Some(a.send(GetOrder).await?.order),
                // A cluster node that does not lead runs no order actors: the database, where
                // every change is committed before it is announced, says whose it is.
                None if hub.cluster.forwards() => {
                    let key = o.0.clone();
                    db::run(&hub.pool, move |c| Ok(queries::orders::find(c, &key)?))
                        .await?
                        .map(Order::try_from)
                        .transpose()?
                }
                None => None,
            }
        }
        _ => None,
    };
    let parties = order
        .as_ref()
        .map_or_else(OrderParties::default, |o| OrderParties {
            driver: o.driver_id.as_ref(),
            customer: o.customer_id.as_deref(),
        });
    Ok(auth::may_join(claims, room, parties))
}
