//! Dispatch rules as pure functions over plain structs: the built-in risk model, nearest-driver
//! matching (a linear scan, and the spatial index that answers the same in a few steps), the
//! reassignment decision with position and ETA arithmetic, the batch assignment of a storm's orders
//! (minimum total distance, and greedy), and the legal order
//! status transitions. Nothing here touches actix, the database, the clock or the network; every
//! time-dependent function takes `now` (the batch solver only compares the clock with the deadline
//! it is given).

pub mod assignment;
pub mod decision;
pub mod index;
pub mod lifecycle;
pub mod matching;
pub mod risk;
pub mod storm;
