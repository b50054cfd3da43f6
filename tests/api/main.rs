//! The integration suite: one binary. Every scenario runs on SQLite and, when
//! RALLYPOINT_TEST_DATABASE_URL is set, on PostgreSQL (each test in a fresh schema).

mod helpers;

mod actors;
mod authz;
mod bad_input;
mod emergency;
mod health;
mod lifecycle;
mod limits;
mod restart;
mod resume;
mod risk_service;
mod session;
