//! The contract's words (SPEC 3), written down once for the test oracles: the decoder's property
//! tests, the WebSocket fuzz test and the fuzz target include this file. Kept apart from the
//! code under test on purpose, so that a test does not take its expectations from it.

/// The contract's error codes.
#[allow(dead_code)]
pub const SPEC_CODES: [&str; 9] = [
    "bad_request",
    "unauthorized",
    "token_expired",
    "forbidden",
    "not_found",
    "conflict",
    "rate_limited",
    "too_large",
    "internal",
];

/// The message types a client sends.
#[allow(dead_code)]
pub const TYPES: [&str; 12] = [
    "join",
    "leave",
    "status",
    "location",
    "accept",
    "decline",
    "order_status",
    "report",
    "sos",
    "complete_emergency",
    "ping",
    "refresh",
];
