//! `rallypoint-sim`, the storm simulator (issue 13, "storm dispatch"): many reports reaching the
//! Dispatcher at once, decided three ways over exactly the same seeded storm, so the engine's
//! batch planner can be read against what came before it and against the best possible answer.
//!
//! - [`city`]: the seeded storm (drivers, orders, reports, waiting orders) and the rules an
//!   answer must keep;
//! - [`deciders`]: greedy one report at a time, `storm::plan` (ours), and the offline optimum;
//! - [`scenarios`]: the built-in storms, a run over seeds, and the Markdown table.
//!
//! A tool beside the server, not part of it: it calls the engine's public `dispatch` API only.

pub mod city;
pub mod deciders;
pub mod rng;
pub mod scenarios;
