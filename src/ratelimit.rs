//! Rate limits as plain values: no actix, no clock of their own (`now` is passed in).
//!
//! `FrameRate` is a WebSocket session's budget of `limits.client_msgs_per_sec` frames: one-second
//! windows, each starting with the first frame after the previous window ended, and the
//! "sustained" rule that closes a session over the limit in three windows that begin within five
//! seconds. `PerSub` counts requests per `sub` in the same one-second windows (REST history
//! reads, `limits.rest_per_sub_per_sec`). Per-sub connection counting lives in the `Hub`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One window's length.
const WINDOW: Duration = Duration::from_secs(1);

/// Over-limit windows that close a session, and the span they must begin within.
const STRIKES: usize = 3;
const STRIKE_SPAN: Duration = Duration::from_secs(5);

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: handle it.
    Allow,
    /// Over the limit: refuse it (`rate_limited`), unread.
    Refuse,
    /// Over the limit, and the third over-limit window within five seconds: refuse it and close
    /// the session (1008). Answered once, for the first refused frame of that window.
    Close,
}

/// A session's frame budget.
#[derive(Debug)]
pub struct FrameRate {
    limit: u32,
    window_start: Option<Instant>,
    count: u32,
    /// Starts of the recent windows that went over the limit, oldest first.
    strikes: VecDeque<Instant>,
}

impl FrameRate {
    pub fn new(limit: u32) -> FrameRate {
        FrameRate {
            limit,
            window_start: None,
            count: 0,
            strikes: VecDeque::with_capacity(STRIKES),
        }
    }

    /// Counts one frame arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let start = match self.window_start {
            Some(s) if now.duration_since(s) < WINDOW => s,
            _ => {
                self.window_start = Some(now);
                self.count = 0;
                now
            }
        };
        self.count = self.count.saturating_add(1);
        if self.count <= self.limit {
            return Verdict::Allow;
        }
        if self.count > self.limit + 1 {
            return Verdict::Refuse;
        }
        // The first frame over the limit in this window: a strike.
        while self
            .strikes
            .front()
            .is_some_and(|s| start.duration_since(*s) >= STRIKE_SPAN)
        {
            self.strikes.pop_front();
        }
        self.strikes.push_back(start);
        if self.strikes.len() >= STRIKES {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

/// Requests per key (a `sub`) in one-second windows, for many keys at once. Keys idle for a
/// window are forgotten as the map grows, so it stays as small as the set of active callers.
#[derive(Debug)]
pub struct PerSub {
    limit: u32,
    windows: HashMap<String, (Instant, u32)>,
    last_sweep: Option<Instant>,
}

/// Keys kept before idle ones are swept out.
const SWEEP_ABOVE: usize = 1024;

impl PerSub {
    pub fn new(limit: u32) -> PerSub {
        PerSub {
            limit,
            windows: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Counts one request of `key` at `now`; `false` when it is over the limit.
    pub fn allow(&mut self, key: &str, now: Instant) -> bool {
        self.sweep(now);
        let entry = self.windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.limit
    }

    /// The keys counted and not yet swept.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    fn sweep(&mut self, now: Instant) {
        if self.windows.len() < SWEEP_ABOVE
            || self
                .last_sweep
                .is_some_and(|s| now.duration_since(s) < WINDOW)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.windows
            .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Sends `n` frames at `ms`; answers the verdicts that were not `Allow`.
    fn burst(r: &mut FrameRate, t0: Instant, ms: u64, n: usize) -> Vec<Verdict> {
        (0..n)
            .map(|_| r.check(at(t0, ms)))
            .filter(|v| *v != Verdict::Allow)
            .collect()
    }

    #[test]
    fn frames_up_to_the_limit_pass_and_the_rest_of_the_window_is_refused() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(5);
        assert_eq!(burst(&mut r, t0, 0, 5), vec![]);
        assert_eq!(burst(&mut r, t0, 500, 3), vec![Verdict::Refuse; 3]);
        // A new window starts with the first frame a second after the last one began.
        assert_eq!(burst(&mut r, t0, 1000, 5), vec![]);
    }

    #[test]
    fn a_window_starts_with_the_first_frame_after_the_previous_one_ended() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(2);
        assert_eq!(burst(&mut r, t0, 0, 1), vec![]);
        // 1.5 s later: a new window from here, so 2 pass even though 0.5 s later is 2.0 s.
        assert_eq!(burst(&mut r, t0, 1500, 2), vec![]);
        assert_eq!(burst(&mut r, t0, 2000, 1), vec![Verdict::Refuse]);
    }

    #[test]
    fn three_consecutive_windows_over_the_limit_close() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(5);
        assert_eq!(burst(&mut r, t0, 0, 7), vec![Verdict::Refuse; 2]);
        assert_eq!(burst(&mut r, t0, 1000, 7), vec![Verdict::Refuse; 2]);
        assert_eq!(
            burst(&mut r, t0, 2000, 7),
            vec![Verdict::Close, Verdict::Refuse]
        );
    }

    #[test]
    fn alternating_bursts_over_the_limit_in_seconds_one_three_and_five_close() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(5);
        assert_eq!(burst(&mut r, t0, 0, 6), vec![Verdict::Refuse]);
        assert_eq!(burst(&mut r, t0, 1000, 1), vec![]);
        assert_eq!(burst(&mut r, t0, 2000, 6), vec![Verdict::Refuse]);
        assert_eq!(burst(&mut r, t0, 3000, 1), vec![]);
        assert_eq!(burst(&mut r, t0, 4000, 6), vec![Verdict::Close]);
    }

    #[test]
    fn over_limit_windows_further_apart_than_five_seconds_never_close() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(5);
        for s in 0..10 {
            // Over the limit every third second: at most two strikes begin within 5 s.
            assert_eq!(
                burst(&mut r, t0, s * 3000, 6),
                vec![Verdict::Refuse],
                "window at {s}"
            );
        }
    }

    #[test]
    fn per_sub_counts_each_sub_alone_and_resets_each_window() {
        let t0 = Instant::now();
        let mut p = PerSub::new(3);
        assert!((0..3).all(|_| p.allow("a", t0)));
        assert!(!p.allow("a", at(t0, 10)));
        assert!(p.allow("b", at(t0, 10)), "another sub has its own budget");
        assert!(p.allow("a", at(t0, 1000)), "a new window");
    }

    #[test]
    fn per_sub_forgets_idle_subs_as_it_grows() {
        let t0 = Instant::now();
        let mut p = PerSub::new(1);
        for i in 0..SWEEP_ABOVE {
            p.allow(&format!("s{i}"), t0);
        }
        assert_eq!(p.len(), SWEEP_ABOVE);
        p.allow("late", at(t0, 1500));
        assert_eq!(p.len(), 1, "only the sub seen in the last second is kept");
    }
}
