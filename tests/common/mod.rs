//! What more than one test binary shares.
pub mod spec;
