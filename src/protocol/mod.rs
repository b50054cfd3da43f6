//! Wire types only: what crosses the WebSocket and REST, with no actix and no diesel.
//!
//! `client` holds what clients send, `server` what the server sends, `types` the plain objects
//! both embed (orders, drivers, events) and the id newtypes, `room` the room names, `close` the
//! close codes, `crowd` the crowd operations' payloads (SPEC 8).

pub mod client;
pub mod close;
pub mod crowd;
pub mod room;
pub mod server;
pub mod types;

pub use client::{ClientFrame, ClientMsg};
pub use room::Room;
pub use server::ServerMsg;
pub use types::*;
