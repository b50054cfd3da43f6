//! `Tally`: what every client task records, shared. One slot per report (its send time, how many
//! clients got its event, the latency of the last of them) and sharded histograms of every
//! delivery's latency. Clients keep their own `Seen` set so that an event arriving twice (an admin
//! is in both `dispatch` and `fleet:<f>`) counts once.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

/// Highest latency a histogram holds, in microseconds (an hour); above is clamped.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Histogram shards: clients record into `client % SHARDS`, so locks are rarely contended.
const SHARDS: usize = 32;
/// A report not sent yet.
const UNSENT: u64 = u64::MAX;

/// The fate of one report's send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReportState {
    Pending = 0,
    Sent = 1,
    Acked = 2,
    Failed = 3,
}

/// How the reports fared: `acked` and `unanswered` reports' events are expected.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReportCounts {
    /// Answered with an ack.
    pub acked: u64,
    /// Sent, answered with an error.
    pub refused: u64,
    /// Sent, not answered (yet).
    pub unanswered: u64,
    /// Never sent: no reporter could.
    pub not_sent: u64,
}

impl ReportCounts {
    /// Reports whose events every client should get.
    pub fn expecting_events(&self) -> u64 {
        self.acked + self.unanswered
    }
}

/// One report's measurements.
struct Slot {
    sent_us: AtomicU64,
    state: AtomicU8,
    received: AtomicU64,
    last_us: AtomicU64,
}

/// A new, empty latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Everything measured during a run, shared by all client tasks.
pub struct Tally {
    epoch: Instant,
    slots: Vec<Slot>,
    shards: Vec<Mutex<Histogram<u64>>>,
    /// Latency from each acked report's send to its `ack` (a few per second: one lock will do).
    acks: Mutex<Histogram<u64>>,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub foreign: AtomicU64,
    last_receipt_us: AtomicU64,
}

impl Tally {
    /// A tally for `reports` reports.
    pub fn new(reports: u64) -> Tally {
        let slots = (0..reports)
            .map(|_| Slot {
                sent_us: AtomicU64::new(UNSENT),
                state: AtomicU8::new(ReportState::Pending as u8),
                received: AtomicU64::new(0),
                last_us: AtomicU64::new(0),
            })
            .collect();
        Tally {
            epoch: Instant::now(),
            slots,
            shards: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            acks: Mutex::new(new_histogram()),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            last_receipt_us: AtomicU64::new(0),
        }
    }

    /// Number of report slots.
    pub fn reports(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Microseconds since the tally began.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Records that report `n` was handed to its reporter: from now on an answer is awaited.
    pub fn mark_handed(&self, n: u64) {
        if let Some(slot) = self.slots.get(n as usize) {
            slot.state.store(ReportState::Sent as u8, Relaxed);
        }
    }

    /// Stamps report `n` as sent now; the reporter calls it right before writing the frame.
    pub fn mark_sent(&self, n: u64) {
        if let Some(slot) = self.slots.get(n as usize) {
            slot.sent_us.store(self.now_us(), Relaxed);
            self.sent.fetch_add(1, Relaxed);
        }
    }

    /// Records the server's answer to report `n` (or, not ok, that it could not be sent); an
    /// ack's latency goes into the report-ack histogram.
    pub fn mark_answered(&self, n: u64, ok: bool) {
        if let Some(slot) = self.slots.get(n as usize) {
            let sent = slot.sent_us.load(Relaxed);
            if ok && sent != UNSENT {
                let latency = self.now_us().saturating_sub(sent);
                let mut acks = self.acks.lock().unwrap_or_else(|p| p.into_inner());
                acks.saturating_record(latency.max(1));
            }
            let state = if ok {
                ReportState::Acked
            } else {
                ReportState::Failed
            };
            slot.state.store(state as u8, Relaxed);
        }
    }

    /// How the reports fared so far.
    pub fn report_counts(&self) -> ReportCounts {
        let mut counts = ReportCounts::default();
        for slot in &self.slots {
            let sent = slot.sent_us.load(Relaxed) != UNSENT;
            match slot.state.load(Relaxed) {
                1 => counts.unanswered += 1,
                2 => counts.acked += 1,
                3 if sent => counts.refused += 1,
                3 => counts.not_sent += 1,
                _ => {}
            }
        }
        counts
    }

    /// The state of report `n`.
    pub fn state(&self, n: u64) -> ReportState {
        match self.slots[n as usize].state.load(Relaxed) {
            0 => ReportState::Pending,
            1 => ReportState::Sent,
            2 => ReportState::Acked,
            _ => ReportState::Failed,
        }
    }

    /// Records that `client` received the event of report `n` now. `seen` is that client's set.
    pub fn record_event(&self, client: usize, seen: &mut Seen, n: u64) {
        let Some(slot) = self.slots.get(n as usize) else {
            self.foreign.fetch_add(1, Relaxed);
            return;
        };
        if !seen.insert(n) {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        let now = self.now_us();
        let sent = slot.sent_us.load(Relaxed);
        // An event can only follow its report's send, which is stamped before the write.
        let latency = if sent == UNSENT {
            0
        } else {
            now.saturating_sub(sent)
        };
        slot.received.fetch_add(1, Relaxed);
        slot.last_us.fetch_max(latency, Relaxed);
        self.received.fetch_add(1, Relaxed);
        self.last_receipt_us.fetch_max(now, Relaxed);
        let mut shard = self.shards[client % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shard.saturating_record(latency.max(1));
    }

    /// Microseconds (since the epoch) of the latest receipt, 0 when none.
    pub fn last_receipt_us(&self) -> u64 {
        self.last_receipt_us.load(Relaxed)
    }

    /// The send time of report `n` in microseconds since the epoch, if sent.
    pub fn sent_at_us(&self, n: u64) -> Option<u64> {
        let sent = self.slots.get(n as usize)?.sent_us.load(Relaxed);
        (sent != UNSENT).then_some(sent)
    }

    /// How many clients received report `n`'s event, and the latency of the last of them.
    pub fn report_outcome(&self, n: u64) -> (u64, u64) {
        let slot = &self.slots[n as usize];
        (slot.received.load(Relaxed), slot.last_us.load(Relaxed))
    }

    /// Every acked report's latency from its send to its `ack`.
    pub fn report_acks(&self) -> Histogram<u64> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every delivery's latency, merged from the shards.
    pub fn all_deliveries(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds on both sides: adding cannot fail.
            let _ = all.add(&*shard);
        }
        all
    }
}

/// The reports one client has received an event for.
pub struct Seen {
    bits: Vec<u64>,
}

impl Seen {
    pub fn new(reports: u64) -> Seen {
        Seen {
            bits: vec![0; reports.div_ceil(64) as usize],
        }
    }

    /// Adds report `n`; false when it was already there.
    pub fn insert(&mut self, n: u64) -> bool {
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        match self.bits.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_received_twice_by_one_client_counts_once() {
        let tally = Tally::new(3);
        let mut seen = Seen::new(3);
        tally.mark_handed(1);
        tally.mark_sent(1);
        tally.record_event(0, &mut seen, 1);
        tally.record_event(0, &mut seen, 1);
        assert_eq!(tally.received.load(Relaxed), 1);
        assert_eq!(tally.duplicates.load(Relaxed), 1);
        assert_eq!(tally.report_outcome(1).0, 1);
    }

    #[test]
    fn an_event_of_an_unknown_report_is_foreign() {
        let tally = Tally::new(2);
        let mut seen = Seen::new(2);
        tally.record_event(0, &mut seen, 7);
        assert_eq!(tally.foreign.load(Relaxed), 1);
        assert_eq!(tally.received.load(Relaxed), 0);
    }

    #[test]
    fn refused_and_unsent_reports_expect_no_events() {
        let tally = Tally::new(4);
        for n in 0..4 {
            tally.mark_handed(n);
        }
        tally.mark_sent(0);
        tally.mark_answered(0, false);
        tally.mark_answered(1, false);
        tally.mark_sent(2);
        tally.mark_answered(2, true);
        tally.mark_sent(3);
        let counts = tally.report_counts();
        assert_eq!(
            (
                counts.refused,
                counts.not_sent,
                counts.acked,
                counts.unanswered
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(counts.expecting_events(), 2);
        assert_eq!(tally.state(0), ReportState::Failed);
        // Only the ack of a sent report has a latency.
        assert_eq!(tally.report_acks().len(), 1);
    }
}
