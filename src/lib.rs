//! Rallypoint: a realtime coordination engine for dispatch.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod protocol;
