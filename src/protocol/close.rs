//! WebSocket close codes the server uses, each a named, documented value.

/// The session's token expired (after an `error` with code `token_expired`).
pub const TOKEN_EXPIRED: u16 = 4001;
/// The session's outbound queue passed `limits.outbound_queue`: it can resume from its last seq.
pub const SLOW_CONSUMER: u16 = 4008;
/// Policy violation: too many messages per second, sustained.
pub const RATE_LIMITED: u16 = 1008;
/// A frame larger than `limits.max_frame_bytes`.
pub const TOO_LARGE: u16 = 1009;
/// The server is shutting down or restarting: reconnect and resume.
pub const SERVICE_RESTART: u16 = 1012;
/// The peer missed heartbeats for 2.5 intervals.
pub const HEARTBEAT_TIMEOUT: u16 = 1001;
/// Socket.IO only: the socket was restored on another connection, which holds it now (said in
/// the `error` event before the DISCONNECT).
pub const TAKEN_OVER: u16 = 4009;
