//! Rallypoint: a realtime coordination engine for dispatch.
//!
//! Drivers, dispatchers and admins connect over WebSocket; a central `Dispatcher` actor scores
//! emergency reports, decides whether an order must move, picks the best available driver and
//! tells exactly the people affected. See `docs/PROTOCOL.md` for the wire protocol.

pub mod actors;
pub mod auth;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod crowd;
pub mod db;
pub mod demo;
pub mod demo_crowd;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod protocol;
pub mod ratelimit;
pub mod risk_client;
pub mod secret;
pub mod socketio;
pub mod startup;
pub mod stats;
pub mod telemetry;
pub mod units;

pub use startup::Application;
