//! `DriverActor`: one driver's availability, last location, capacity, current orders and the
//! sessions attached to it (a driver may have several tabs open).
//!
//! Availability changes are committed with their `driver_status` message before anyone hears of
//! them, then the Dispatcher is told (for matching and presence). A driver whose last session
//! drops stays online for `realtime.offline_grace_ms`, so a tab reload does not flap its status.

use super::dispatcher::{DriverChanged, DriverMoved};
use super::session::LeaveRooms;
use super::{publish, Hub};
use crate::db::queries::{self, commit};
use crate::db::{self};
use crate::error::AppError;
use crate::idempotency::{answer_ok, AnswerKey};
use crate::protocol::*;
use crate::telemetry::q;
use actix::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a driver whose going offline could not be committed waits before trying again.
const OFFLINE_RETRY: Duration = Duration::from_secs(1);

/// A driver's state, as rebuilt from the database or registered.
#[derive(Debug, Clone)]
pub struct DriverState {
    pub id: DriverId,
    pub name: String,
    pub fleet: String,
    pub capacity: i32,
    pub online: bool,
    pub location: Option<Location>,
    pub orders: BTreeSet<OrderId>,
    /// A unit fleet's driver's kind (SPEC 9).
    pub unit_type: Option<UnitType>,
    /// The emergency a unit is dispatched to: it is `busy` meanwhile (`crate::units`).
    pub emergency: Option<String>,
}

impl DriverState {
    /// Online and at capacity, or a unit on an emergency, is `busy`.
    pub fn status(&self) -> DriverStatus {
        if !self.online {
            DriverStatus::Offline
        } else if self.orders.len() as i32 >= self.capacity || self.emergency.is_some() {
            DriverStatus::Busy
        } else {
            DriverStatus::Online
        }
    }

    pub fn to_driver(&self) -> Driver {
        Driver {
            id: self.id.clone(),
            name: self.name.clone(),
            fleet: self.fleet.clone(),
            capacity: self.capacity,
            status: self.status(),
            location: self.location,
            orders: self.orders.iter().cloned().collect(),
            unit_type: self.unit_type,
        }
    }

    /// The `driver_status` message announcing `status` to `dispatch`.
    pub fn status_message(&self, status: DriverStatus) -> commit::Publication {
        commit::Publication::to(
            Room::Dispatch,
            ServerMsg::DriverStatus {
                driver_id: self.id.clone(),
                name: self.name.clone(),
                status,
                timestamp: chrono::Utc::now(),
            },
        )
    }

    /// What the Dispatcher's index needs to know.
    pub fn changed(&self) -> DriverChanged {
        DriverChanged {
            id: self.id.clone(),
            name: self.name.clone(),
            fleet: self.fleet.clone(),
            capacity: self.capacity,
            online: self.online,
            held: self.orders.len() as i32,
            location: self.location,
        }
    }
}

/// Attaches a session; answers the driver as it is now.
#[derive(Message)]
#[rtype(result = "Driver")]
pub struct AttachSession {
    pub session_id: SessionId,
    /// Where to tell the session to leave an order's room it may no longer be in.
    pub leave: Recipient<LeaveRooms>,
}

/// Detaches a closed session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachSession {
    pub session_id: SessionId,
}

/// Sets the driver online or offline; answers its status.
#[derive(Message)]
#[rtype(result = "Result<DriverStatus, AppError>")]
pub struct SetAvailability {
    pub status: AvailabilityStatus,
    pub answer: Option<AnswerKey>,
}

/// A new position from the driver's device.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateLocation {
    pub location: Location,
}

/// The driver now holds `order_id` (committed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderHeld {
    pub order_id: OrderId,
}

/// The driver no longer holds `order_id` (committed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderReleased {
    pub order_id: OrderId,
}

/// The driver was taken off `order_id` and its `order_unassigned` is delivered: its sessions
/// leave `order:<id>` (the `left` follows the `order_unassigned`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakenOff {
    pub order_id: OrderId,
}

/// A unit's emergency (committed by the emergency desk): `Some` while it is on one, and `busy`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EmergencyTaken {
    pub emergency: Option<String>,
}

/// Answers the driver object.
#[derive(Message)]
#[rtype(result = "Driver")]
pub struct GetDriver;

/// One driver.
pub struct DriverActor {
    hub: Arc<Hub>,
    state: DriverState,
    /// The sessions attached, each with where to tell it to leave an order's room (one or two:
    /// a list).
    sessions: Vec<(SessionId, Recipient<LeaveRooms>)>,
    /// Bumped on every attach, so a grace timer armed earlier knows it is stale.
    attach_epoch: u64,
    last_persisted: Option<Instant>,
    location_dirty: bool,
    /// When the orders' customers were last told where the driver is, and whether a newer
    /// position waits for the next `realtime.location_flush_ms`.
    last_courier: Option<Instant>,
    courier_dirty: bool,
    /// When the newest position kept for the driver's track was reported.
    last_sample: Option<chrono::DateTime<chrono::Utc>>,
}

impl DriverActor {
    pub fn new(hub: Arc<Hub>, state: DriverState) -> DriverActor {
        DriverActor {
            hub,
            state,
            sessions: Vec::new(),
            attach_epoch: 0,
            last_persisted: None,
            location_dirty: false,
            last_courier: None,
            courier_dirty: false,
            last_sample: None,
        }
    }

    /// Commits a new availability, then tells the Dispatcher and the dispatch room.
    fn set_online(
        &mut self,
        online: bool,
        answer: Option<AnswerKey>,
    ) -> ResponseActFuture<Self, Result<DriverStatus, AppError>> {
        if self.state.online == online {
            return Box::pin(fut::ready(Ok(self.state.status())));
        }
        let mut next = self.state.clone();
        next.online = online;
        let status = next.status();
        let change = commit::Change {
            driver_status: Some((
                self.state.id.0.clone(),
                if online { "online" } else { "offline" }.to_string(),
            )),
            messages: vec![self.state.status_message(status)],
            answer: answer_ok(answer.as_ref(), &status),
            ..Default::default()
        };
        let pool = self.hub.pool.clone();
        let write = async move {
            db::run(&pool, move |c| commit::apply(c, change, chrono::Utc::now())).await
        };
        Box::pin(write.into_actor(self).map(move |res, act, _| {
            let published = res?;
            act.state.online = online;
            log::info!(
                "[WEBSOCKET] driver={} status={} sessions={}",
                q(&act.state.id),
                status,
                act.sessions.len()
            );
            act.hub.dispatcher.do_send(act.state.changed());
            crate::units::feed::unit_changed(&act.hub, &act.state);
            let hub = act.hub.clone();
            actix::spawn(async move { publish(&hub, "driver_status", published).await });
            Ok(status)
        }))
    }

    fn persist_location(&mut self, ctx: &mut Context<Self>) {
        let Some(loc) = self.state.location else {
            return;
        };
        self.location_dirty = false;
        self.last_persisted = Some(Instant::now());
        let (pool, id) = (self.hub.pool.clone(), self.state.id.0.clone());
        let write = async move {
            if let Err(e) = db::run(&pool, move |c| {
                Ok(queries::drivers::set_location(c, &id, &loc)?)
            })
            .await
            {
                log::error!("[DB] storing a location failed: {e}");
            }
        };
        ctx.spawn(write.into_actor(self));
    }
}

impl Actor for DriverActor {
    type Context = Context<Self>;

    /// A driver rebuilt as online after a restart has no session yet: it gets the same grace.
    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.state.online {
            self.handle(
                DetachSession {
                    session_id: SessionId(0),
                },
                ctx,
            );
        }
    }
}

impl Handler<AttachSession> for DriverActor {
    type Result = MessageResult<AttachSession>;

    fn handle(&mut self, msg: AttachSession, _: &mut Context<Self>) -> Self::Result {
        self.attach_epoch += 1;
        match self
            .sessions
            .iter_mut()
            .find(|(id, _)| *id == msg.session_id)
        {
            Some((_, leave)) => *leave = msg.leave,
            None => {
                self.sessions.reserve_exact(1);
                self.sessions.push((msg.session_id, msg.leave));
            }
        }
        MessageResult(self.state.to_driver())
    }
}

impl Handler<DetachSession> for DriverActor {
    type Result = ();

    fn handle(&mut self, msg: DetachSession, ctx: &mut Context<Self>) {
        self.sessions.retain(|(id, _)| *id != msg.session_id);
        if self.sessions.is_empty() {
            self.sessions = Vec::new();
        }
        if !self.sessions.is_empty() || !self.state.online {
            return;
        }
        let epoch = self.attach_epoch;
        self.go_offline_after(self.hub.settings.realtime.offline_grace(), epoch, ctx);
    }
}

impl DriverActor {
    /// After `delay`, a driver still without a session since attach `epoch` goes offline. A
    /// commit that fails (the pool busy when thousands of drivers leave at once, the database
    /// away) is tried again a second later, so no driver the Dispatcher could pick stays online
    /// in the database with nobody connected.
    fn go_offline_after(&mut self, delay: Duration, epoch: u64, ctx: &mut Context<Self>) {
        ctx.run_later(delay, move |act, ctx| {
            if act.attach_epoch != epoch || !act.sessions.is_empty() || !act.state.online {
                return;
            }
            log::info!(
                "[WEBSOCKET] driver={} gone past the grace period: offline",
                q(&act.state.id)
            );
            ctx.wait(act.set_online(false, None).map(move |res, act, ctx| {
                if let Err(e) = res {
                    log::error!(
                        "[WEBSOCKET] driver={} could not go offline, trying again in 1 s: {}",
                        q(&act.state.id),
                        q(&e.to_string())
                    );
                    act.go_offline_after(OFFLINE_RETRY, epoch, ctx);
                }
            }));
        });
    }
}

impl Handler<SetAvailability> for DriverActor {
    // Atomic: availability changes of one driver are committed one at a time, in order.
    type Result = AtomicResponse<Self, Result<DriverStatus, AppError>>;

    fn handle(&mut self, msg: SetAvailability, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.set_online(msg.status == AvailabilityStatus::Online, msg.answer))
    }
}

impl Handler<UpdateLocation> for DriverActor {
    type Result = ();

    fn handle(&mut self, msg: UpdateLocation, ctx: &mut Context<Self>) {
        self.state.location = Some(msg.location);
        self.hub.dispatcher.do_send(DriverMoved {
            id: self.state.id.clone(),
            location: msg.location,
        });
        crate::units::feed::unit_moved(&self.hub, &self.state, msg.location);
        self.tell_customers(ctx);
        self.sample(&msg.location);
        // Coalesce writes: the newest position wins, stored at most once per interval.
        let interval = Duration::from_millis(self.hub.settings.limits.location_min_interval_ms);
        let due = self.last_persisted.is_none_or(|t| t.elapsed() >= interval);
        if due {
            self.persist_location(ctx);
        } else if !self.location_dirty {
            self.location_dirty = true;
            ctx.run_later(interval, |act, ctx| {
                if act.location_dirty {
                    act.persist_location(ctx);
                }
            });
        }
    }
}

impl DriverActor {
    /// Keeps `loc` for the driver's track when `tracking.sample_s` has passed since the last
    /// kept one (by the positions' own times); the batch writer stores it (`tracks`).
    fn sample(&mut self, loc: &Location) {
        let every = chrono::Duration::seconds(self.hub.settings.tracking.sample_s as i64);
        if self.last_sample.is_some_and(|t| loc.timestamp - t < every) {
            return;
        }
        self.last_sample = Some(loc.timestamp);
        self.hub
            .tracks
            .push(crate::db::models::TrackPointRow::sample(
                &self.state.id,
                loc,
            ));
    }

    /// Tells the actors of the orders held where the driver is, at most once per
    /// `realtime.location_flush_ms` (the newest position wins; one that came too soon goes at
    /// the end of the interval): each tells its customer (`order::CourierMoved`).
    fn tell_customers(&mut self, ctx: &mut Context<Self>) {
        if self.state.orders.is_empty() {
            return;
        }
        let interval = self.hub.settings.realtime.location_flush();
        if self.last_courier.is_none_or(|t| t.elapsed() >= interval) {
            self.send_courier();
        } else if !self.courier_dirty {
            self.courier_dirty = true;
            ctx.run_later(interval, |act, _| {
                if act.courier_dirty {
                    act.send_courier();
                }
            });
        }
    }

    fn send_courier(&mut self) {
        self.courier_dirty = false;
        self.last_courier = Some(Instant::now());
        let Some(location) = self.state.location else {
            return;
        };
        for o in &self.state.orders {
            if let Some(a) = self.hub.order(o) {
                a.do_send(super::order::CourierMoved {
                    driver_id: self.state.id.clone(),
                    location,
                });
            }
        }
    }

    /// Announces `busy` ↔ `online` to `dispatch` when the orders held cross the capacity.
    fn orders_changed(&mut self, before: DriverStatus, ctx: &mut Context<Self>) {
        let status = self.state.status();
        if status == before || !self.state.online {
            return;
        }
        let change = commit::Change {
            messages: vec![self.state.status_message(status)],
            ..Default::default()
        };
        let hub = self.hub.clone();
        let write = async move {
            let res = db::run(&hub.pool, move |c| {
                commit::apply(c, change, chrono::Utc::now())
            })
            .await;
            match res {
                Ok(published) => publish(&hub, "driver_status", published).await,
                Err(e) => log::error!("[BROADCAST] driver_status failed: {e}"),
            }
        };
        // Waited for, so this driver's status messages are committed in the order they happen.
        ctx.wait(write.into_actor(self));
    }
}

impl Handler<OrderHeld> for DriverActor {
    type Result = ();
    fn handle(&mut self, msg: OrderHeld, ctx: &mut Context<Self>) {
        let before = self.state.status();
        self.state.orders.insert(msg.order_id);
        self.orders_changed(before, ctx);
    }
}

impl Handler<OrderReleased> for DriverActor {
    type Result = ();
    fn handle(&mut self, msg: OrderReleased, ctx: &mut Context<Self>) {
        let before = self.state.status();
        self.state.orders.remove(&msg.order_id);
        self.orders_changed(before, ctx);
    }
}

impl Handler<EmergencyTaken> for DriverActor {
    type Result = ();
    fn handle(&mut self, msg: EmergencyTaken, ctx: &mut Context<Self>) {
        let before = self.state.status();
        self.state.emergency = msg.emergency;
        self.orders_changed(before, ctx);
    }
}

impl Handler<TakenOff> for DriverActor {
    type Result = ();
    fn handle(&mut self, msg: TakenOff, _: &mut Context<Self>) {
        // Given back meanwhile (an override): it may stay.
        if self.state.orders.contains(&msg.order_id) {
            return;
        }
        let room = Room::Order(msg.order_id);
        for (_, leave) in &self.sessions {
            leave.do_send(LeaveRooms {
                rooms: vec![room.clone()],
                reason: LeftReason::Unassigned,
            });
        }
    }
}

impl Handler<GetDriver> for DriverActor {
    type Result = MessageResult<GetDriver>;
    fn handle(&mut self, _: GetDriver, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.to_driver())
    }
}
