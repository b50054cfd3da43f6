//! The integration suite: one binary. Every scenario runs on SQLite and, when
//! RALLYPOINT_TEST_DATABASE_URL is set, on PostgreSQL (each test in a fresh schema).

mod helpers;
#[path = "../common/spec.rs"]
mod spec;

mod actors;
mod authz;
mod bad_input;
mod bulk;
mod caps;
mod cluster;
mod cluster_leader;
mod cluster_nodes;
mod copies;
mod crowd;
mod crowd_cluster;
mod crowd_map;
mod crowd_ops;
mod crowd_restart;
mod crowd_rooms;
mod customers;
mod durability;
mod emergency;
mod exactly_once;
mod fuzz_ws;
mod health;
mod history;
mod lifecycle;
mod limits;
mod loadgen;
mod metrics;
mod presence;
mod publish;
mod races;
mod rate_limit;
mod restart;
mod resume;
mod rights;
mod risk_service;
mod rooms;
mod session;
mod slow_consumer;
mod socketio;
mod socketio_recovery;
mod sos;
mod stats;
mod storm;
mod tracks;
mod units;
mod units_cluster;
mod units_durability;
mod units_lifecycle;
