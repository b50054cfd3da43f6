//! `LoadgenError`: everything that can stop a run, each saying what was wrong and where.
//! Missing events are not an error here: they are a result, reported in the table and the JSON.

use std::net::SocketAddr;

/// Why the load generator could not do its run.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("bad arguments: {0}")]
    Args(String),
    #[error("cannot resolve the server address `{addr}`: {detail}")]
    Resolve { addr: String, detail: String },
    #[error("open-file limit: {0}")]
    FileLimit(String),
    #[error("client {client}: cannot bind the source address {source_addr}: {err}")]
    Bind {
        client: usize,
        source_addr: SocketAddr,
        #[source]
        err: std::io::Error,
    },
    #[error("client {client}: TCP connect to {server} failed: {err}")]
    Connect {
        client: usize,
        server: SocketAddr,
        #[source]
        err: std::io::Error,
    },
    #[error("client {client}: WebSocket handshake failed: {err}")]
    Handshake {
        client: usize,
        #[source]
        err: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("client {client}: WebSocket error: {err}")]
    Socket {
        client: usize,
        #[source]
        err: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("client {client}: the server closed the connection {during}")]
    Closed { client: usize, during: &'static str },
    #[error("client {client}: no {waiting_for} within {secs} s")]
    Timeout {
        client: usize,
        waiting_for: String,
        secs: u64,
    },
    #[error("client {client}: the server refused {what}: {answer}")]
    Refused {
        client: usize,
        what: String,
        answer: String,
    },
    #[error("client {client}: unexpected frame {what}: {frame}")]
    Protocol {
        client: usize,
        what: &'static str,
        frame: String,
    },
    #[error("cannot sign a token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error("REST {method} {path}: {detail}")]
    Http {
        method: &'static str,
        path: String,
        detail: String,
    },
    #[error("only {ready} of {wanted} clients were ready after {secs} s")]
    NotReady {
        ready: usize,
        wanted: usize,
        secs: u64,
    },
    #[error("cannot write the JSON report to `{path}`: {err}")]
    WriteJson {
        path: String,
        #[source]
        err: std::io::Error,
    },
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl LoadgenError {
    /// Wraps a WebSocket error of `client` (boxed: tungstenite's error is large).
    pub fn socket(client: usize, err: tokio_tungstenite::tungstenite::Error) -> LoadgenError {
        LoadgenError::Socket {
            client,
            err: Box::new(err),
        }
    }
}
