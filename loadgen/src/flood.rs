//! `--flood N`: clients that attack while the run measures (Rallypoint only). They are not
//! measured: they count neither as recipients nor as connections held, and what they receive is
//! discarded. Half of them (rounded up) are drivers of their own (`LG-<run>-F<n>`, offline,
//! holding no order) that send `decline` of unknown order ids `NOPE-<k>`; the others are
//! dispatchers that loop `leave dispatch` / `join dispatch since=…`, so that every join replays
//! (nearly) the room's whole kept history: `since` is 0 until the room's seq passes 950, then
//! the highest seq seen less 950. Each sends `--flood-rate` messages a second, just under the
//! server's rate limit. They start once every measured client is ready and the reporters hold
//! their orders, before the first report, and stop sending when the drain begins.
//!
//! `FloodTally` counts what they sent and how it was answered, so the summary shows the flood
//! happened.

use crate::client::{wait_for, Notice};
use crate::error::LoadgenError;
use crate::net::{Target, Ws};
use crate::rallypoint::Signer;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

/// The server's default `realtime.history_per_room`: a join with `since` more than this far
/// behind the room's seq is answered `resync` with nothing replayed.
const KEPT_HISTORY: u64 = 1000;
/// How much less than `KEPT_HISTORY` a join asks for: the room's seq grows between the last seq
/// the rejoiner saw and its join's arrival, and a `since` past the kept history replays nothing.
const SEQ_MARGIN: u64 = 50;
/// A join whose ack has not come by then (its frame refused by the rate limit) is given up.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// The room the dispatchers leave and join.
const ROOM: &str = "dispatch";
/// Dropped flood connections reported one by one.
const DROPS_SHOWN: u64 = 5;

/// What a flood client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodRole {
    /// A driver sending `decline` of order ids no one has.
    Decliner,
    /// A dispatcher looping `leave` / `join since`.
    Rejoiner,
}

/// One flood client: its number, role and token.
pub struct FloodSpec {
    pub n: usize,
    /// The client number for the source address (after the measured clients).
    pub index: usize,
    pub role: FloodRole,
    pub token: String,
}

/// The flood's specs: the first half (rounded up) decliners, the rest rejoiners.
pub fn specs(
    count: usize,
    first_index: usize,
    run: &str,
    signer: &Signer,
) -> Result<Vec<FloodSpec>, LoadgenError> {
    let decliners = count.div_ceil(2);
    (0..count)
        .map(|n| {
            let role = if n < decliners {
                FloodRole::Decliner
            } else {
                FloodRole::Rejoiner
            };
            Ok(FloodSpec {
                n,
                index: first_index + n,
                role,
                token: signer.flood_token(n, role == FloodRole::Decliner, run)?,
            })
        })
        .collect()
}

/// What the flood clients share and count.
pub struct FloodTally {
    pub target: Target,
    pub rate: f64,
    pub connect_gate: Semaphore,
    pub ready: AtomicUsize,
    /// Messages sent (every `decline`, `leave` and `join`).
    pub sent: AtomicU64,
    /// Answered with an `ack`.
    pub acked: AtomicU64,
    /// `error` frames received, by code (`not_found`, `rate_limited`, ...).
    errors: Mutex<BTreeMap<String, u64>>,
    /// Joins answered `recovered: true`, and the frames their replays brought.
    pub replays: AtomicU64,
    pub replayed: AtomicU64,
    /// Joins answered `recovered: false` (a `resync` follows, nothing replayed).
    pub resyncs: AtomicU64,
    /// Flood connections lost before the end.
    pub dropped: AtomicU64,
}

impl FloodTally {
    pub fn new(target: Target, rate: f64, connect_concurrency: usize) -> FloodTally {
        FloodTally {
            target,
            rate,
            connect_gate: Semaphore::new(connect_concurrency),
            ready: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            replays: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn count_error(&self, code: &str) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *errors.entry(code.to_string()).or_default() += 1;
    }

    /// The errors received, by code.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The fields of a server frame a flood client looks at.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(rename = "ref", borrow, default)]
    reference: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    room: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    recovered: Option<bool>,
}

/// Where a rejoiner is in its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// In the room: the next message is `leave`.
    In,
    /// Left: the next message is `join` with `since`.
    Out,
    /// Its `join` (ref `j<k>`) is being answered since `Instant`: nothing is sent until its ack.
    Joining(u64, Instant),
}

/// Runs one flood client: connect, set up, tell `ready`, send until `flood_stop`, read (and
/// discard) until `stop`. A setup failure is sent on `failed` (it ends the run); a connection
/// lost later is counted in `dropped`, never as a measured client's.
pub async fn run(
    tally: Arc<FloodTally>,
    spec: FloodSpec,
    failed: mpsc::UnboundedSender<Notice>,
    mut flood_stop: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let set_up = async {
        let _permit = tally.connect_gate.acquire().await;
        let mut ws = tally
            .target
            .open(spec.index, "/ws", Some(&spec.token))
            .await?;
        let seq = set_up(&mut ws, &spec).await?;
        Ok::<_, LoadgenError>((ws, seq))
    };
    let (mut ws, mut seq) = match set_up.await {
        Ok(ready) => ready,
        Err(e) => {
            let _ = failed.send(Notice::Failed(e));
            return;
        }
    };
    tally.ready.fetch_add(1, Relaxed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / tally.rate));
    // A late tick is not made up with a burst: the flood stays under the rate limit.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sending = !*flood_stop.borrow();
    let mut step = Step::In;
    let mut k: u64 = 0;
    let lost = loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(close))) => {
                        break close.map_or("closed".into(), |f| format!("closed: {f}"));
                    }
                    None => break "closed".to_string(),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break e.to_string(),
                };
                on_frame(&tally, &text, &mut step, &mut seq);
            }
            _ = tick.tick(), if sending => {
                let message = match (spec.role, step) {
                    (FloodRole::Decliner, _) => json!({
                        "type": "decline", "ref": format!("d{k}"), "order_id": format!("NOPE-{k}"),
                    }),
                    (FloodRole::Rejoiner, Step::In) => {
                        step = Step::Out;
                        json!({"type": "leave", "ref": format!("l{k}"), "room": ROOM})
                    }
                    (FloodRole::Rejoiner, Step::Out) => {
                        step = Step::Joining(k, Instant::now());
                        let since = join_since(seq);
                        json!({"type": "join", "ref": format!("j{k}"), "room": ROOM, "since": since})
                    }
                    (FloodRole::Rejoiner, Step::Joining(_, at)) => {
                        if at.elapsed() > JOIN_WAIT {
                            // Its frame was refused unread: in the room or not, leave again.
                            step = Step::In;
                        }
                        continue;
                    }
                };
                k += 1;
                tally.sent.fetch_add(1, Relaxed);
                if let Err(e) = ws.send(Message::text(message.to_string())).await {
                    break e.to_string();
                }
            }
            _ = flood_stop.changed(), if sending => sending = false,
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                let rest = async { while let Some(Ok(_)) = ws.next().await {} };
                let _ = tokio::time::timeout(Duration::from_secs(2), rest).await;
                return;
            }
        }
    };
    if !*stop.borrow() {
        let dropped = tally.dropped.fetch_add(1, Relaxed) + 1;
        if dropped <= DROPS_SHOWN {
            eprintln!(
                "loadgen: flood client {} lost its connection: {lost}",
                spec.n
            );
        }
    }
}

/// The `since` of a rejoiner's join when the highest seq it saw of the room is `seq`: all the
/// kept history, less the margin.
fn join_since(seq: u64) -> u64 {
    seq.saturating_sub(KEPT_HISTORY - SEQ_MARGIN)
}

/// Counts one frame the flood client received, and moves a rejoiner's loop on.
fn on_frame(tally: &FloodTally, text: &str, step: &mut Step, seq: &mut u64) {
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else {
        return;
    };
    let joining = match *step {
        Step::Joining(k, _) => Some(k),
        _ => None,
    };
    let is_our_join = |frame: &Frame<'_>| {
        let reference = frame.reference.as_deref().and_then(|r| r.strip_prefix('j'));
        joining.is_some() && reference.and_then(|r| r.parse().ok()) == joining
    };
    if let (Some(ROOM), Some(at)) = (frame.room.as_deref(), frame.seq) {
        *seq = (*seq).max(at);
    }
    match frame.ty.as_ref() {
        "ack" => {
            tally.acked.fetch_add(1, Relaxed);
            if is_our_join(&frame) {
                *step = Step::In;
            }
        }
        "error" => {
            tally.count_error(frame.code.as_deref().unwrap_or("?"));
            if is_our_join(&frame) {
                // Refused (say `conflict`: already in): leave, then join again.
                *step = Step::In;
            }
        }
        "joined" if frame.room.as_deref() == Some(ROOM) => {
            match frame.recovered {
                Some(true) => tally.replays.fetch_add(1, Relaxed),
                Some(false) => tally.resyncs.fetch_add(1, Relaxed),
                None => 0,
            };
        }
        // Between `joined` and the join's ack: the replay (and live messages meanwhile).
        _ if joining.is_some() && frame.room.as_deref() == Some(ROOM) => {
            tally.replayed.fetch_add(1, Relaxed);
        }
        _ => {}
    }
}

/// Waits for the welcome; a rejoiner also waits for its `joined` of `dispatch` and answers the
/// room's seq.
async fn set_up(ws: &mut Ws, spec: &FloodSpec) -> Result<u64, LoadgenError> {
    let client = spec.index;
    let refused = |what: &str, f: &Frame<'_>| LoadgenError::Refused {
        client,
        what: format!("flood client {}: {what}", spec.n),
        answer: f.code.as_deref().unwrap_or(&f.ty).to_string(),
    };
    wait_for(ws, client, "welcome", |text| {
        match serde_json::from_str::<Frame<'_>>(text) {
            Ok(f) if f.ty == "welcome" => Ok(Some(())),
            Ok(f) if f.ty == "error" => Err(refused("the session", &f)),
            _ => Ok(None),
        }
    })
    .await?;
    if spec.role == FloodRole::Decliner {
        return Ok(0);
    }
    wait_for(
        ws,
        client,
        "joined dispatch",
        |text| match serde_json::from_str::<Frame<'_>>(text) {
            Ok(f) if f.ty == "joined" && f.room.as_deref() == Some(ROOM) => {
                Ok(Some(f.seq.unwrap_or(0)))
            }
            Ok(f) if f.ty == "error" => Err(refused("the default rooms", &f)),
            _ => Ok(None),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> FloodTally {
        let target = Target {
            server: "127.0.0.1:1".parse().expect("an address"),
            host: "127.0.0.1:1".into(),
            source_addrs: 0,
        };
        FloodTally::new(target, 45.0, 1)
    }

    #[test]
    fn half_rounded_up_decline_the_rest_rejoin() {
        let signer = Signer::new("s", "default");
        let specs = specs(3, 10, "run1", &signer).expect("tokens sign");
        let roles: Vec<_> = specs.iter().map(|s| (s.index, s.role)).collect();
        assert_eq!(
            roles,
            [
                (10, FloodRole::Decliner),
                (11, FloodRole::Decliner),
                (12, FloodRole::Rejoiner)
            ]
        );
    }

    #[test]
    fn a_rejoiner_counts_its_replay_and_goes_on_after_the_ack() {
        let tally = tally();
        let (mut step, mut seq) = (Step::Joining(4, Instant::now()), 7);
        on_frame(
            &tally,
            r#"{"type":"joined","room":"dispatch","seq":9,"recovered":true}"#,
            &mut step,
            &mut seq,
        );
        on_frame(
            &tally,
            r#"{"type":"order_created","room":"dispatch","seq":8}"#,
            &mut step,
            &mut seq,
        );
        on_frame(
            &tally,
            r#"{"type":"ack","ref":"j3","room":"dispatch","seq":9}"#,
            &mut step,
            &mut seq,
        );
        assert!(matches!(step, Step::Joining(4, _)), "another join's ack");
        on_frame(
            &tally,
            r#"{"type":"ack","ref":"j4","room":"dispatch","seq":9}"#,
            &mut step,
            &mut seq,
        );
        assert_eq!(step, Step::In);
        assert_eq!(seq, 9);
        assert_eq!(tally.replays.load(Relaxed), 1);
        assert_eq!(tally.replayed.load(Relaxed), 1);
        assert_eq!(tally.acked.load(Relaxed), 2);
    }

    #[test]
    fn a_join_asks_for_the_kept_history_less_the_margin() {
        assert_eq!(join_since(0), 0);
        assert_eq!(join_since(950), 0);
        assert_eq!(join_since(2000), 1050);
    }

    #[test]
    fn errors_are_counted_by_code() {
        let tally = tally();
        let (mut step, mut seq) = (Step::In, 0);
        for _ in 0..2 {
            on_frame(
                &tally,
                r#"{"type":"error","ref":"d1","code":"not_found","message":"no"}"#,
                &mut step,
                &mut seq,
            );
        }
        on_frame(
            &tally,
            r#"{"type":"error","code":"rate_limited","message":"slow"}"#,
            &mut step,
            &mut seq,
        );
        let errors = tally.errors();
        assert_eq!(errors.get("not_found"), Some(&2));
        assert_eq!(errors.get("rate_limited"), Some(&1));
    }
}
