//! Opening one client connection: a TCP socket bound to one of several loopback source addresses
//! (each has its own ephemeral port range, so tens of thousands of clients never run short),
//! TCP_NODELAY as every server under test gets, then the WebSocket handshake.

use crate::error::LoadgenError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// One client's WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// Where and how clients connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: SocketAddr,
    /// `host:port` as the Host header names it.
    pub host: String,
    /// Bind client i to 127.0.0.(1 + i % source_addrs); 0 binds nothing.
    pub source_addrs: u8,
}

impl Target {
    /// Resolves `server` (host:port). Source binding is kept only for a loopback server.
    pub async fn resolve(server: &str, source_addrs: u8) -> Result<Target, LoadgenError> {
        let resolve_err = |detail: String| LoadgenError::Resolve {
            addr: server.to_string(),
            detail,
        };
        let addr = tokio::net::lookup_host(server)
            .await
            .map_err(|e| resolve_err(e.to_string()))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| resolve_err("no IPv4 address".into()))?;
        let source_addrs = if addr.ip().is_loopback() {
            source_addrs
        } else {
            0
        };
        Ok(Target {
            server: addr,
            host: server.to_string(),
            source_addrs,
        })
    }

    /// The source address client `i` binds to, if any.
    fn source_for(&self, i: usize) -> Option<SocketAddr> {
        if self.source_addrs == 0 {
            return None;
        }
        let last = 1 + (i % usize::from(self.source_addrs)) as u8;
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)),
            0,
        ))
    }

    /// Opens client `i`'s WebSocket at `path`, with `token` as a bearer token when given.
    pub async fn open(
        &self,
        i: usize,
        path: &str,
        token: Option<&str>,
    ) -> Result<Ws, LoadgenError> {
        let socket = TcpSocket::new_v4().map_err(|err| LoadgenError::Connect {
            client: i,
            server: self.server,
            err,
        })?;
        if let Some(source_addr) = self.source_for(i) {
            socket.bind(source_addr).map_err(|err| LoadgenError::Bind {
                client: i,
                source_addr,
                err,
            })?;
        }
        let stream = socket
            .connect(self.server)
            .await
            .map_err(|err| LoadgenError::Connect {
                client: i,
                server: self.server,
                err,
            })?;
        stream
            .set_nodelay(true)
            .map_err(|err| LoadgenError::Connect {
                client: i,
                server: self.server,
                err,
            })?;
        let handshake = |err| LoadgenError::Handshake {
            client: i,
            err: Box::new(err),
        };
        let mut request = format!("ws://{}{}", self.host, path)
            .into_client_request()
            .map_err(handshake)?;
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| {
                handshake(tokio_tungstenite::tungstenite::Error::HttpFormat(e.into()))
            })?;
            request.headers_mut().insert("authorization", value);
        }
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(small_buffers()))
                .await
                .map_err(handshake)?;
        Ok(ws)
    }
}

/// Buffers sized for many small JSON frames: tungstenite's default 128 KiB read buffer per
/// client would cost 1.3 GB at 10,000 clients.
fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}
