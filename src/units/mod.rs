//! Emergency units (SPEC 9), a system of its own on the engine's core: reporters create
//! emergencies, authorities dispatch the nearest available unit (a driver of a unit fleet,
//! `units.fleets`, with its `unit_type`), the unit or an authority completes it.
//!
//! `desk` is the actor owning the open emergencies (the one writer of their steps), `feed` what
//! it hears of units, `logic` its pure decisions (unit tested without actix), `plan` what each
//! step publishes to whom, `write` what it writes, `commands` the commands every transport calls (`commands::run`).
//! Units are drivers: their sessions, presence, positions and the delivery Dispatcher's index
//! are the ones deliveries use; this system only reads them.

pub mod commands;
pub mod desk;
pub mod feed;
pub mod logic;
pub mod plan;
mod write;

pub use desk::EmergencyDesk;
