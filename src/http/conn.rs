//! The TCP socket under an HTTP connection, noted when the connection is accepted, so that a
//! WebSocket session whose peer stopped reading can be cut off.
//!
//! A session writes through actix-web's response stream, and actix-web stops polling that
//! stream (and with it the session actor) while the socket does not drain. A close frame queued
//! for such a session is never written, so the only way to end it is to shut the socket down
//! under it: the connection then fails, actix-web drops the stream, and the actor stops.

use actix_web::dev::Extensions;
use std::any::Any;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// The descriptor and peer of a connection's socket (no second descriptor is opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnSocket {
    fd: RawFd,
    peer: Option<SocketAddr>,
}

/// `HttpServer::on_connect` hook: records every TCP connection's socket in its extensions.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        ext.insert(ConnSocket {
            fd: tcp.as_raw_fd(),
            peer: tcp.peer_addr().ok(),
        });
    }
}

impl ConnSocket {
    /// Shuts the connection down both ways.
    ///
    /// Call it only while the WebSocket session on this connection is still registered in the
    /// hub (the hub's session lock held): the session is removed when its actor stops, which
    /// happens when actix-web drops the response stream, before the connection closes its
    /// socket. As a second guard, the descriptor's peer must still be the one recorded.
    pub fn shut_down(&self) -> std::io::Result<()> {
        // SAFETY: the descriptor is open for as long as the session is registered (above), and
        // it is only borrowed for this call, never closed here.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let sock = socket2::SockRef::from(&fd);
        let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
        if peer != self.peer {
            return Err(std::io::Error::other(
                "the descriptor no longer belongs to this connection",
            ));
        }
        sock.shutdown(Shutdown::Both)
    }
}
