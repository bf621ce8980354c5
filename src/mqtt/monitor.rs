//! What the bridge's Ditto connection view shows beyond running totals: counts over Ditto's
//! metric windows (last minute, hour and day, from totals sampled every 10 s, every minute and
//! every hour) and the last log entries (a bounded ring of the rate-limited warnings and of
//! connects). Pure data; `Stats` holds one and a timer task samples it.

use std::collections::VecDeque;

/// Log entries kept (Ditto shows the last entries of a connection).
pub const LOG_ENTRIES: usize = 100;
/// Sampling period of the totals.
pub const SAMPLE_EVERY_MS: i64 = 10_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// One connection log entry (Ditto's `LogEntry`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// when (epoch millis)
    pub at: i64,
    /// `connection`, `source` or `target`
    pub category: &'static str,
    /// `consumed`, `mapped`, `dropped`, `published`, `other`, ...
    pub kind: &'static str,
    /// `success` or `failure`
    pub level: &'static str,
    /// what happened
    pub message: String,
}

/// Totals of `N` counters at a time.
type Sample<const N: usize> = (i64, [u64; N]);

/// Samples of `N` counters at three resolutions, each ring bounded.
#[derive(Debug, Clone)]
pub struct Windows<const N: usize> {
    fine: VecDeque<Sample<N>>,
    minutes: VecDeque<Sample<N>>,
    hours: VecDeque<Sample<N>>,
}

impl<const N: usize> Default for Windows<N> {
    fn default() -> Self {
        Windows {
            fine: VecDeque::new(),
            minutes: VecDeque::new(),
            hours: VecDeque::new(),
        }
    }
}

fn push<const N: usize>(ring: &mut VecDeque<Sample<N>>, s: Sample<N>, every: i64, keep: usize) {
    if ring.back().is_none_or(|b| s.0 - b.0 >= every) {
        ring.push_back(s);
        while ring.len() > keep {
            ring.pop_front();
        }
    }
}

impl<const N: usize> Windows<N> {
    /// Records the totals at `now` (call every [`SAMPLE_EVERY_MS`], first at the start).
    pub fn record(&mut self, now: i64, totals: [u64; N]) {
        push(&mut self.fine, (now, totals), 0, 8);
        push(&mut self.minutes, (now, totals), MINUTE, 62);
        push(&mut self.hours, (now, totals), HOUR, 26);
    }

    /// Counts within the last `window` ms: `totals` minus the earliest sample not older than
    /// the window (so at most the window, or everything since the first sample when younger).
    pub fn count(&self, now: i64, window: i64, totals: [u64; N]) -> [u64; N] {
        let since = now - window;
        let all = || self.fine.iter().chain(&self.minutes).chain(&self.hours);
        let base = all()
            .filter(|s| s.0 >= since)
            .min_by_key(|s| s.0)
            .or_else(|| all().max_by_key(|s| s.0))
            .map_or([0; N], |s| s.1);
        let mut out = [0; N];
        for i in 0..N {
            out[i] = totals[i].saturating_sub(base[i]);
        }
        out
    }
}

/// Windows and log ring of the bridge.
#[derive(Debug, Default)]
pub struct Monitor<const N: usize> {
    /// counter samples
    pub windows: Windows<N>,
    /// the last log entries, oldest first
    pub logs: VecDeque<LogEntry>,
    /// when the monitor took its first sample (epoch millis)
    pub since: Option<i64>,
}

impl<const N: usize> Monitor<N> {
    /// Keeps an entry, dropping the oldest beyond [`LOG_ENTRIES`].
    pub fn log(&mut self, e: LogEntry) {
        self.logs.push_back(e);
        while self.logs.len() > LOG_ENTRIES {
            self.logs.pop_front();
        }
    }

    /// Records a sample of the totals.
    pub fn sample(&mut self, now: i64, totals: [u64; N]) {
        self.since.get_or_insert(now);
        self.windows.record(now, totals);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_what_happened_within_them() {
        let mut w = Windows::<1>::default();
        assert_eq!(w.count(0, MINUTE, [5]), [5], "no sample: all");
        // one message every 10 s for 3 hours: 6 a minute, 360 an hour
        let mut total = 0;
        let mut t = 0;
        while t <= 3 * HOUR {
            w.record(t, [total]);
            total += 1;
            t += SAMPLE_EVERY_MS;
        }
        let now = t - SAMPLE_EVERY_MS;
        let total = total - 1;
        assert_eq!(w.count(now, MINUTE, [total]), [6]);
        assert_eq!(w.count(now, HOUR, [total]), [360]);
        assert_eq!(
            w.count(now, 24 * HOUR, [total]),
            [total],
            "younger than a day"
        );
        assert!(w.fine.len() <= 8 && w.minutes.len() <= 62 && w.hours.len() <= 26);
    }

    #[test]
    fn a_stalled_sampler_counts_since_its_last_sample() {
        let mut w = Windows::<2>::default();
        w.record(0, [1, 1]);
        w.record(SAMPLE_EVERY_MS, [3, 1]);
        assert_eq!(w.count(10 * HOUR, MINUTE, [7, 1]), [4, 0]);
    }

    #[test]
    fn the_log_ring_is_bounded() {
        let mut m = Monitor::<1>::default();
        for i in 0..(LOG_ENTRIES + 5) {
            m.log(LogEntry {
                at: i as i64,
                category: "source",
                kind: "mapped",
                level: "failure",
                message: format!("{i}"),
            });
        }
        assert_eq!(m.logs.len(), LOG_ENTRIES);
        assert_eq!(m.logs.front().map(|e| e.at), Some(5));
    }
}
