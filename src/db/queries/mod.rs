//! Query functions: plain functions taking the connection first, one file per table, and
//! `commit`, the one unit of work that writes a change and its room messages together.

pub mod audit;
pub mod commit;
pub mod drivers;
pub mod emergencies;
pub mod idempotency;
pub mod incidents;
pub mod orders;
pub mod rooms;
pub mod sockets;
pub mod sos;
pub mod stats;
pub mod tracks;
