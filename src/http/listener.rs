//! The listening socket, made here rather than by `std::net::TcpListener::bind`:
//! - a backlog of `BACKLOG` (std's is 128: a few hundred clients connecting at once overflowed it
//!   and waited a second for their SYN to be sent again);
//! - `TCP_NODELAY`, which Linux copies to every accepted socket: actix leaves Nagle on, and a
//!   small frame written after another then waits for the peer's delayed ACK (up to 40 ms);
//! - `SO_REUSEADDR`, so a restart does not wait for the old connections' TIME_WAIT.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

/// Pending connections the kernel queues before `accept` (capped by `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Binds `addr` (`host:port`; port 0 picks a free one) with the options above.
pub fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match bind_one(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let listener = bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(false).expect("blocking");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        assert!(accepted.nodelay().expect("read TCP_NODELAY"));
    }

    #[test]
    fn a_bad_address_says_so() {
        assert!(bind("not an address").is_err());
    }
}
