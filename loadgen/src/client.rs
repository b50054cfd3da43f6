//! One client task: connect, go through its protocol's set-up, then read until told to stop,
//! recording every `emergency_event` in the `Tally` and, for a reporter, sending the reports the
//! scheduler hands it. The protocols themselves live in `rallypoint.rs`, `socketio.rs` and
//! `rallypoint_sio.rs`.

use crate::cli::Protocol;
use crate::error::LoadgenError;
use crate::net::{Target, Ws};
use crate::tally::{Seen, Tally};
use crate::{rallypoint, rallypoint_sio, socketio};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// How long one set-up step (welcome, an ack) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a closing client waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Rallypoint only: staff in `dispatch` and `fleet:<f>`; it also calls the REST API.
    Admin,
    /// Driver number `n`: goes online with a location.
    Driver(usize),
    /// Receives events only.
    Observer,
}

/// One client of the run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub index: usize,
    pub role: Role,
    /// The token to connect with (rallypoint).
    pub token: Option<String>,
}

/// What the scheduler tells a reporter.
#[derive(Debug)]
pub enum Command {
    /// Send report `n` on `order_id`.
    Report { n: u64, order_id: Arc<str> },
}

/// What clients tell the scheduler.
#[derive(Debug)]
pub enum Notice {
    /// A client could not connect or set up.
    Failed(LoadgenError),
    /// A ready client lost its connection.
    Dropped(LoadgenError),
    /// Driver `driver`'s report was decided otherwise than MAINTAIN: it no longer holds `order_id`.
    OrderLost { driver: usize },
    /// Driver `driver` now holds `order_id` (given by the REST call).
    OrderGiven { driver: usize, order_id: Arc<str> },
}

/// A decoded server frame, as far as the run cares.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// The `emergency_event` of report `n` of this run.
    Event(u64),
    /// An `emergency_event` of another run or client.
    ForeignEvent,
    /// The server's answer to report `n`: refused with `refused`, and whether the reporter lost
    /// its order.
    Answer {
        n: u64,
        refused: Option<String>,
        order_lost: bool,
    },
    /// An Engine.IO ping, to be answered with a pong.
    EnginePing,
    /// Anything else.
    Other,
}

/// What every client task shares.
pub struct Shared {
    pub protocol: Protocol,
    pub target: Target,
    pub run_id: String,
    pub fleet: String,
    pub kind: String,
    pub tally: Arc<Tally>,
    pub connect_gate: Semaphore,
    pub ready: AtomicUsize,
    pub connected: AtomicUsize,
    pub notices: mpsc::UnboundedSender<Notice>,
}

/// The location of driver `n`: spread over a few kilometres of Paris, the same every run.
pub fn driver_location(n: usize) -> (f64, f64) {
    let a = (n as f64) * 2.399_963; // the golden angle: points spread without a grid
    let r = 0.04 * ((n % 97) as f64 / 97.0).sqrt();
    (48.8566 + r * a.sin(), 2.3522 + r * a.cos())
}

/// Runs one client to the end: set-up, then events and reports until `stop`.
pub async fn run(
    shared: Arc<Shared>,
    spec: ClientSpec,
    mut commands: Option<mpsc::UnboundedReceiver<Command>>,
    mut stop: watch::Receiver<bool>,
) {
    let ws = {
        let Ok(_permit) = shared.connect_gate.acquire().await else {
            return;
        };
        match connect_and_set_up(&shared, &spec).await {
            Ok(ws) => ws,
            Err(e) => {
                let _ = shared.notices.send(Notice::Failed(e));
                return;
            }
        }
    };
    shared.connected.fetch_add(1, Relaxed);
    shared.ready.fetch_add(1, Relaxed);
    let result = serve(&shared, &spec, ws, &mut commands, &mut stop).await;
    shared.connected.fetch_sub(1, Relaxed);
    if let Err(e) = result {
        if !*stop.borrow() {
            let _ = shared.notices.send(Notice::Dropped(e));
        }
    }
}

async fn connect_and_set_up(shared: &Shared, spec: &ClientSpec) -> Result<Ws, LoadgenError> {
    match shared.protocol {
        Protocol::Rallypoint => {
            let mut ws = shared
                .target
                .open(spec.index, "/ws", spec.token.as_deref())
                .await?;
            rallypoint::set_up(&mut ws, spec, &shared.fleet).await?;
            Ok(ws)
        }
        Protocol::Socketio => {
            let mut ws = shared.target.open(spec.index, socketio::PATH, None).await?;
            socketio::set_up(&mut ws, spec, &shared.run_id).await?;
            Ok(ws)
        }
        Protocol::RallypointSocketio => {
            let mut ws = shared.target.open(spec.index, socketio::PATH, None).await?;
            rallypoint_sio::set_up(&mut ws, spec, &shared.fleet).await?;
            Ok(ws)
        }
    }
}

/// The client's life once ready.
async fn serve(
    shared: &Shared,
    spec: &ClientSpec,
    mut ws: Ws,
    commands: &mut Option<mpsc::UnboundedReceiver<Command>>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), LoadgenError> {
    let client = spec.index;
    let mut seen = Seen::new(shared.tally.reports());
    // One wait for the stop signal for the whole loop: a new one per frame showed in profiles.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        return Err(LoadgenError::Closed { client, during: "during the run" });
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(LoadgenError::socket(client, e)),
                };
                let incoming = match shared.protocol {
                    Protocol::Rallypoint => rallypoint::decode(&text, &shared.run_id),
                    Protocol::Socketio => socketio::decode(&text, &shared.run_id),
                    Protocol::RallypointSocketio => rallypoint_sio::decode(&text, &shared.run_id),
                };
                on_incoming(shared, spec, &mut ws, &mut seen, incoming).await?;
            }
            Some(command) = next_command(commands) => {
                let Command::Report { n, order_id } = command;
                let frame = match shared.protocol {
                    Protocol::Rallypoint => rallypoint::report(n, &order_id, &shared.kind, &shared.run_id),
                    Protocol::Socketio => socketio::report(n, spec, &shared.kind, &shared.run_id),
                    Protocol::RallypointSocketio => rallypoint_sio::report(n, &order_id, &shared.kind, &shared.run_id),
                };
                shared.tally.mark_sent(n);
                ws.send(Message::text(frame)).await.map_err(|e| LoadgenError::socket(client, e))?;
            }
            _ = &mut stopped => {
                close(&mut ws).await;
                return Ok(());
            }
        }
    }
}

async fn on_incoming(
    shared: &Shared,
    spec: &ClientSpec,
    ws: &mut Ws,
    seen: &mut Seen,
    incoming: Incoming,
) -> Result<(), LoadgenError> {
    match incoming {
        Incoming::Event(n) => shared.tally.record_event(spec.index, seen, n),
        Incoming::ForeignEvent => {
            shared.tally.foreign.fetch_add(1, Relaxed);
        }
        Incoming::Answer {
            n,
            refused,
            order_lost,
        } => {
            shared.tally.mark_answered(n, refused.is_none());
            if let Some(why) = refused {
                eprintln!("loadgen: report {n} refused: {why}");
            }
            if let (true, Role::Driver(driver)) = (order_lost, spec.role) {
                let _ = shared.notices.send(Notice::OrderLost { driver });
            }
        }
        Incoming::EnginePing => {
            ws.send(Message::text(socketio::PONG))
                .await
                .map_err(|e| LoadgenError::socket(spec.index, e))?;
        }
        Incoming::Other => {}
    }
    Ok(())
}

/// Closes the WebSocket with the handshake: a close frame, then reading until the server's
/// answering close ends the stream (briefly: a server that does not answer is left).
async fn close(ws: &mut Ws) {
    if ws.close(None).await.is_err() {
        return;
    }
    let rest = async { while let Some(Ok(_)) = ws.next().await {} };
    let _ = tokio::time::timeout(CLOSE_WAIT, rest).await;
}

/// The next command, or never for a client that takes none.
async fn next_command(commands: &mut Option<mpsc::UnboundedReceiver<Command>>) -> Option<Command> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads text frames until `pick` answers one (Some), within `STEP_TIMEOUT`. `pick` may fail.
pub async fn wait_for<T>(
    ws: &mut Ws,
    client: usize,
    waiting_for: &str,
    mut pick: impl FnMut(&str) -> Result<Option<T>, LoadgenError>,
) -> Result<T, LoadgenError> {
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Some(found) = pick(&text)? {
                        return Ok(found);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(LoadgenError::Refused {
                        client,
                        what: format!("the connection while waiting for {waiting_for}"),
                        answer: frame.map_or("close".into(), |f| format!("close {f}")),
                    });
                }
                None => {
                    return Err(LoadgenError::Closed {
                        client,
                        during: "during set-up",
                    })
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(LoadgenError::socket(client, e)),
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, read)
        .await
        .map_err(|_| LoadgenError::Timeout {
            client,
            waiting_for: waiting_for.to_string(),
            secs: STEP_TIMEOUT.as_secs(),
        })?
}

/// Sends one text frame during set-up.
pub async fn send_text(ws: &mut Ws, client: usize, text: String) -> Result<(), LoadgenError> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| LoadgenError::socket(client, e))
}
