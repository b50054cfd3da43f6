//! The unit of work: one transaction that writes a change (an order moved or updated, a driver's
//! status, an incident, an audit row) together with the room messages announcing it.
//!
//! Messages get their room `seq` here, inside the transaction, so nobody hears of a change the
//! database does not hold, and what a room replays on resume is exactly what was published.

use crate::db::models::{to_db, AuditRow, IncidentRow, OrderRow, RoomEventRow};
use crate::db::queries::idempotency::StoredAnswer;
use crate::db::schema::{audit, incidents, order_exclusions, orders};
use crate::db::{queries, DbConnection};
use crate::error::AppError;
use crate::protocol::{server::Encoded, Order, OrderId, Room, ServerMsg};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeMap;

/// What the change does to an order.
#[derive(Debug, Clone)]
pub enum OrderWrite {
    /// A new order.
    Insert(Order),
    /// The order becomes `new`, provided its stored version is still `expected_version`.
    Update { new: Order, expected_version: i64 },
}

/// Everything one change writes.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub order: Option<OrderWrite>,
    /// The driver that now holds the order and its capacity: checked after the write.
    pub capacity_check: Option<(String, i32)>,
    /// (driver, reason): the order must never go back to this driver.
    pub exclusion: Option<(String, String)>,
    /// (driver, status): a driver's availability.
    pub driver_status: Option<(String, String)>,
    pub incident: Option<IncidentRow>,
    pub audit: Option<AuditRow>,
    /// The messages announcing the change, each to its rooms.
    pub messages: Vec<Publication>,
    /// The answer to the request that asked for the change, stored under its idempotency key
    /// in the same transaction (SPEC 4): a change acknowledged is never done twice.
    pub answer: Option<StoredAnswer>,
}

/// One message and the rooms it is published to. Every room's copy carries the same `id` (a
/// session in several of the rooms drops repeats by it), and that room's `room` and `seq`.
#[derive(Debug, Clone)]
pub struct Publication {
    pub rooms: Vec<Room>,
    pub msg: ServerMsg,
}

impl Publication {
    /// `msg` to one room.
    pub fn to(room: Room, msg: ServerMsg) -> Publication {
        Publication {
            rooms: vec![room],
            msg,
        }
    }

    /// `msg` to several rooms at once: one publication, one `id`.
    pub fn to_all(rooms: Vec<Room>, msg: ServerMsg) -> Publication {
        Publication { rooms, msg }
    }
}

/// A message as committed: its room, seq, id and the exact text every member receives.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub room: Room,
    pub seq: i64,
    pub id: String,
    pub kind: &'static str,
    pub text: String,
    /// For an `order_unassigned`: the order its driver was taken off. Once it is delivered,
    /// the driver's sessions leave `order:<id>` (see `actors::publish_timed`).
    pub taken_off: Option<OrderId>,
}

impl Published {
    fn from_row(room: Room, msg: &ServerMsg, row: RoomEventRow) -> Published {
        Published {
            room,
            seq: row.seq,
            id: row.id,
            kind: msg.kind(),
            text: row.payload,
            taken_off: match msg {
                ServerMsg::OrderUnassigned { order_id, .. } => Some(order_id.clone()),
                _ => None,
            },
        }
    }
}

/// Writes `change` in one transaction and returns the sequenced messages to publish.
/// A version mismatch or a driver over capacity rolls everything back with `conflict`.
pub fn apply(
    conn: &mut DbConnection,
    change: Change,
    now: DateTime<Utc>,
) -> Result<Vec<Published>, AppError> {
    apply_all(conn, vec![change], now)
}

/// Writes several changes in one transaction (a batch decision: a rotation of orders can only
/// be committed whole, each move needing the slot the next one frees), with every capacity
/// checked once all the orders are written. The messages keep the changes' order.
pub fn apply_all(
    conn: &mut DbConnection,
    changes: Vec<Change>,
    now: DateTime<Utc>,
) -> Result<Vec<Published>, AppError> {
    conn.transaction::<_, AppError, _>(|conn| {
        let now_db = to_db(now);
        // Writes first (see db/mod.rs): the drivers' locks, by id (two batches never wait on
        // each other in a cycle), then the orders.
        let mut capacities: BTreeMap<&str, i32> = BTreeMap::new();
        for (driver, capacity) in changes.iter().filter_map(|c| c.capacity_check.as_ref()) {
            capacities.insert(driver.as_str(), *capacity);
        }
        for driver in capacities.keys() {
            if queries::drivers::lock(conn, driver, now_db)? == 0 {
                return Err(AppError::not_found(format!(
                    "driver {driver} does not exist"
                )));
            }
        }
        for change in &changes {
            write_order(conn, change)?;
        }
        for (driver, capacity) in &capacities {
            let held = queries::orders::held_by(conn, driver)?;
            if held > i64::from(*capacity) {
                return Err(AppError::conflict(format!(
                    "driver {driver} is at capacity ({capacity})"
                )));
            }
        }
        for change in &changes {
            write_rest(conn, change, now_db)?;
        }
        let published = publish_all(conn, changes.iter().flat_map(|c| &c.messages), now)?;
        for answer in changes.iter().filter_map(|c| c.answer.as_ref()) {
            queries::idempotency::answer(conn, answer, now)?;
        }
        Ok(published)
    })
}

fn write_order(conn: &mut DbConnection, change: &Change) -> Result<(), AppError> {
    match &change.order {
        Some(OrderWrite::Insert(order)) => {
            diesel::insert_into(orders::table)
                .values(OrderRow::from(order))
                .execute(conn)?;
        }
        Some(OrderWrite::Update {
            new,
            expected_version,
        }) => {
            let n = diesel::update(
                orders::table
                    .filter(orders::id.eq(new.id.as_str()))
                    .filter(orders::version.eq(*expected_version)),
            )
            .set(OrderRow::from(new))
            .execute(conn)?;
            if n == 0 {
                return Err(AppError::conflict(format!(
                    "order {} changed meanwhile (expected version {expected_version}); reload it and retry",
                    new.id
                )));
            }
        }
        None => {}
    }
    Ok(())
}

/// Everything a change writes besides its order and its messages.
fn write_rest(
    conn: &mut DbConnection,
    change: &Change,
    now_db: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    if let Some((driver, status)) = &change.driver_status {
        queries::drivers::set_status(conn, driver, status, now_db)?;
    }
    if let (Some((driver, reason)), Some(order)) = (&change.exclusion, order_id(change)) {
        let exists: i64 = order_exclusions::table
            .filter(order_exclusions::order_id.eq(&order))
            .filter(order_exclusions::driver_id.eq(driver))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            diesel::insert_into(order_exclusions::table)
                .values((
                    order_exclusions::order_id.eq(&order),
                    order_exclusions::driver_id.eq(driver),
                    order_exclusions::reason.eq(reason),
                    order_exclusions::created_at.eq(now_db),
                ))
                .execute(conn)?;
        }
    }
    if let Some(row) = &change.incident {
        diesel::insert_into(incidents::table)
            .values(row)
            .execute(conn)?;
    }
    if let Some(row) = &change.audit {
        diesel::insert_into(audit::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Sequences and stores the messages. The rooms' counters are taken in one order (by name) in
/// every transaction, so two changes touching the same rooms never wait on each other in a cycle
/// (a PostgreSQL deadlock); the messages keep their order within each room.
fn publish_all<'a>(
    conn: &mut DbConnection,
    messages: impl Iterator<Item = &'a Publication> + Clone,
    now: DateTime<Utc>,
) -> Result<Vec<Published>, AppError> {
    let names: Vec<String> = messages
        .clone()
        .flat_map(|p| p.rooms.iter().map(|r| r.to_string()))
        .collect();
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    for name in &names {
        *next.entry(name.as_str()).or_default() += 1;
    }
    for (name, first) in next.iter_mut() {
        let n = *first;
        *first = queries::rooms::reserve(conn, name, n)? - n + 1;
    }
    let mut published = Vec::with_capacity(names.len());
    for p in messages {
        // One id and one encoding of the body per publication; each room's copy gets its seq,
        // reserved above.
        let id = uuid::Uuid::new_v4().to_string();
        let body = Encoded::new(&p.msg);
        for room in &p.rooms {
            let name = room.to_string();
            let slot = next
                .get_mut(name.as_str())
                .ok_or_else(|| AppError::internal(format!("no seq reserved for room {name}")))?;
            let seq = *slot;
            *slot += 1;
            let row = queries::rooms::insert(conn, &name, seq, &id, now, |seq| {
                body.envelope(&name, Some(seq), &id)
            })?;
            published.push(Published::from_row(room.clone(), &p.msg, row));
        }
    }
    Ok(published)
}

fn order_id(change: &Change) -> Option<String> {
    match &change.order {
        Some(OrderWrite::Insert(o)) => Some(o.id.0.clone()),
        Some(OrderWrite::Update { new, .. }) => Some(new.id.0.clone()),
        None => change.incident.as_ref().map(|i| i.order_id.clone()),
    }
}
