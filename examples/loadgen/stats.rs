//! Figures of a run: latency samples and their percentiles, and what /proc says about a
//! process (resident set, peak, CPU time), so the load generator can report a server's cost
//! without any cooperation from it.

use std::time::Duration;

/// Latency samples in nanoseconds (a run keeps every sample: 10 s at 200k/s is 16 MB).
#[derive(Default, Debug)]
pub struct Samples(pub Vec<u64>);

impl Samples {
    /// Adds all samples of another set.
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// p50/p99/p999 in microseconds, `None` without samples.
    pub fn percentiles(&mut self) -> Option<[f64; 3]> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let at = |q: f64| {
            let i = ((self.0.len() as f64 - 1.0) * q).round() as usize;
            self.0[i.min(self.0.len() - 1)] as f64 / 1000.0
        };
        Some([at(0.50), at(0.99), at(0.999)])
    }
}

/// One line: `p50 0.412 ms  p99 1.203 ms  p999 2.004 ms (n=12345)`.
pub fn format_latency(s: &mut Samples) -> String {
    let n = s.0.len();
    match s.percentiles() {
        None => "no samples".into(),
        Some([a, b, c]) => format!(
            "p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms  (n={n})",
            a / 1000.0,
            b / 1000.0,
            c / 1000.0
        ),
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Context switches (voluntary + involuntary) of all threads of a process.
pub fn context_switches(pid: u32) -> Option<u64> {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        total += text
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some(total)
}

/// Time the threads of a process spent runnable but waiting for a CPU (sum over threads, from
/// `/proc/<pid>/task/*/schedstat`, second field): a latency figure includes the run-queue waits
/// of every thread on its way, the client's own included.
pub fn run_delay(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(Duration::from_nanos(total))
}

/// Resident set of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// User + system CPU time of a process (all threads) from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    // USER_HZ is 100 on every Linux ABI this runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Busy CPU time of the whole machine (all processes, all CPUs) from `/proc/stat`: tells
/// whether something else ran during a measurement on a shared box.
pub fn machine_busy() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    let busy: u64 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(Duration::from_millis(busy * 10))
}

/// Mebibytes from KiB, for printing.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut s = Samples((1..=1000).map(|i| i * 1000).collect());
        assert_eq!(s.percentiles(), Some([501.0, 990.0, 999.0]));
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|k| k > 0));
        assert!(cpu_time(pid).is_some());
    }
}
