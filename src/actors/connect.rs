//! The connect sequence every transport runs for a new connection: its driver attached (when
//! the token names one) and its rooms joined, each from its position; and a client's `join`,
//! decided by the command layer, then the room joined. The transport then writes
//! what it got in its own framing (natively `welcome`, `joined` and the replays; over Socket.IO
//! the CONNECT answer, `connection:status` and the replays with their offsets).

use super::driver::AttachSession;
use super::order::GetOrder;
use super::registry::Join;
use super::room::{Endpoint, JoinReply};
use super::session::LeaveRooms;
use super::{ensure_driver, Deliver, Hub};
use crate::auth::Claims;
use crate::commands::session::JoinRoom;
use crate::error::AppError;
use crate::protocol::{DriverStatus, Order, Room, SessionId};
use actix::prelude::*;
use std::sync::Arc;

/// A connection about to be set up: who it is, how it is reached, which rooms from where.
pub struct Connecting {
    pub hub: Arc<Hub>,
    pub claims: Claims,
    pub id: SessionId,
    /// Where the driver actor reaches the connection.
    pub deliver: Recipient<Deliver>,
    /// Where it tells the connection to leave an order's room.
    pub leave: Recipient<LeaveRooms>,
    /// How rooms reach it.
    pub endpoint: Endpoint,
    /// The rooms to join, each from the last seq seen (`None`: from now).
    pub rooms: Vec<(Room, Option<i64>)>,
}

/// A connection set up: its driver as it is now (status and orders), and each room joined.
pub struct Connected {
    pub driver: Option<(DriverStatus, Vec<Order>)>,
    pub joined: Vec<(Room, JoinReply)>,
}

/// Attaches the driver, then joins the rooms in order.
pub async fn connect(c: Connecting) -> Result<Connected, AppError> {
    let Connecting {
        hub,
        claims,
        id,
        deliver,
        leave,
        endpoint,
        rooms,
    } = c;
    let mut driver = None;
    if claims.driver().is_some() {
        driver = Some(if hub.cluster.forwards() {
            crate::cluster::node::attach(&hub, &claims, id, deliver, leave).await?
        } else {
            attach_here(&hub, &claims, id, leave).await?
        });
    }
    let mut joined = Vec::new();
    for (room, since) in rooms {
        let mut reply = hub
            .rooms
            .send(Join {
                room: room.clone(),
                session_id: id,
                endpoint: endpoint.clone(),
                since,
            })
            .await??;
        if let Room::Event(e) = &room {
            crate::crowd::joining(&hub, e, &mut reply.replay);
        }
        joined.push((room, reply));
    }
    Ok(Connected { driver, joined })
}

/// Attaches session `id` of the driver `claims` name to its actor on this node (registering the
/// driver when it is new); answers the driver's status and orders as they are now. On a
/// cluster's leader, another node's session is attached here too, through its proxy.
pub async fn attach_here(
    hub: &Arc<Hub>,
    claims: &Claims,
    id: SessionId,
    leave: Recipient<LeaveRooms>,
) -> Result<(DriverStatus, Vec<Order>), AppError> {
    let Some(d) = claims.driver() else {
        return Err(AppError::bad_request("not a driver's token"));
    };
    let addr = ensure_driver(hub, d, claims.name.clone(), &claims.fleet).await?;
    let snapshot = addr
        .send(AttachSession {
            session_id: id,
            leave,
        })
        .await?;
    let mut orders = Vec::new();
    for o in &snapshot.orders {
        if let Some(a) = hub.order(o) {
            orders.push(a.send(GetOrder).await?.order);
        }
    }
    Ok((snapshot.status, orders))
}

/// A driver's session `id` closed: detached from its actor here, or on the leader.
pub fn detach(hub: &Arc<Hub>, claims: &Claims, id: SessionId) {
    let Some(d) = claims.driver() else { return };
    if hub.cluster.forwards() {
        crate::cluster::node::detach(hub, id);
    } else if let Some(a) = hub.driver(d) {
        a.do_send(super::driver::DetachSession { session_id: id });
    }
}

/// A client's `join` of room `name` by connection `id` (in `joined`, under `claims`): decided by
/// the command layer (`commands::session::join`), then the room joined with `endpoint`. Answers
/// the decision (for the ack) and the room's reply (its seq and replay).
pub fn join(
    hub: &Arc<Hub>,
    claims: &Claims,
    joined: &[Room],
    name: &str,
    since: Option<i64>,
    id: SessionId,
    endpoint: Endpoint,
) -> impl std::future::Future<Output = Result<(JoinRoom, JoinReply), AppError>> + 'static {
    let decided = crate::commands::session::join(hub, claims, joined, name, since);
    let hub = hub.clone();
    async move {
        let join = decided.await?;
        let mut reply = hub
            .rooms
            .send(Join {
                room: join.room.clone(),
                session_id: id,
                endpoint,
                since: join.since,
            })
            .await??;
        // A crowd event's room: its latest map and insight after the replay (ephemeral).
        if let Room::Event(e) = &join.room {
            crate::crowd::joining(&hub, e, &mut reply.replay);
        }
        Ok((join, reply))
    }
}
