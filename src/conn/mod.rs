//! Connection admission and accounting: every accepted TCP connection takes a slot (in total
//! and per peer address, `limits.max_connections` / `max_connections_per_address`) that its
//! stream (`stream::Conn`) holds until the socket is closed; over a cap the connection gets a
//! short HTTP refusal (`refuse`). Counts for `/status/health`.

mod refuse;
pub mod stream;

pub use refuse::refuse;
pub use stream::Conn;

use crate::limits::Limits;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// File descriptors kept free of connections for the store, the MQTT bridge, refusals, logs.
const FD_RESERVE: u64 = 128;

/// Which cap a refused connection hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_connections`
    Total,
    /// `limits.max_connections_per_address`
    PerAddress,
}

/// Open connections per peer address, and the counters an operator sees.
#[derive(Debug)]
pub struct Tracker {
    max_total: usize,
    max_per_address: usize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    open: AtomicUsize,
    rejected: AtomicU64,
    send_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    /// refusal answers being written right now (bounded by `refuse`)
    pub(crate) refusing: AtomicUsize,
    /// refusals are logged at most once per 10 s (with the number suppressed)
    log_gate: Mutex<crate::mqtt::stats::Gate>,
}

/// A connection's place in the counts; released when dropped (with the socket).
#[derive(Debug)]
pub struct Slot {
    tracker: Arc<Tracker>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .tracker
            .per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.tracker.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slot {
    /// The tracker this slot counts in.
    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }
}

/// The soft limit of open files of this process (Linux `/proc/self/limits`), if known.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Tracker {
    /// A tracker for the configured caps. A total cap the process's open-files limit cannot
    /// hold is lowered to fit (with a warning): otherwise `accept` would fail with EMFILE before
    /// the cap is reached and nobody would get the documented answer.
    pub fn new(limits: &Limits) -> Arc<Tracker> {
        let mut max_total = limits.max_connections;
        if let Some(fds) = open_files_limit() {
            let fit = fds.saturating_sub(FD_RESERVE).max(1) as usize;
            if fit < max_total {
                tracing::warn!(
                    configured = max_total,
                    open_files_limit = fds,
                    using = fit,
                    "limits.max_connections lowered to fit the open-files limit (raise it with `ulimit -n` or LimitNOFILE=)"
                );
                max_total = fit;
            }
        }
        Arc::new(Tracker {
            max_total,
            max_per_address: limits.max_connections_per_address,
            per_address: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            send_timeouts: AtomicU64::new(0),
            idle_timeouts: AtomicU64::new(0),
            refusing: AtomicUsize::new(0),
            log_gate: Mutex::new(Default::default()),
        })
    }

    /// Takes a slot for a new connection from `ip`, or says which cap it is over (counted).
    /// An IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) counts as `a.b.c.d`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = ip.to_canonical();
        let mut m = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let refusal = if self.open.load(Ordering::Acquire) >= self.max_total {
            Some(Refusal::Total)
        } else if m.get(&ip).copied().unwrap_or(0) >= self.max_per_address {
            Some(Refusal::PerAddress)
        } else {
            None
        };
        if let Some(r) = refusal {
            drop(m);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            let now = crate::clock::now_millis();
            let gate = self
                .log_gate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pass(now);
            if let Some(suppressed) = gate {
                tracing::warn!(%ip, cap = ?r, open = self.open(), suppressed, "connection refused: limits.max_connections[_per_address] reached");
            }
            return Err(r);
        }
        *m.entry(ip).or_insert(0) += 1;
        self.open.fetch_add(1, Ordering::AcqRel);
        Ok(Slot {
            tracker: self.clone(),
            ip,
        })
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The effective total cap.
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// The per-address cap.
    pub fn max_per_address(&self) -> usize {
        self.max_per_address
    }

    /// A write made no progress for `limits.send_timeout_secs`: the connection is dropped.
    pub fn count_send_timeout(&self) {
        self.send_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket sent no complete frame for `limits.ws_idle_timeout_secs`.
    pub fn count_idle_timeout(&self) {
        self.idle_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// The `connections` object of `/status/health`.
    pub fn health(&self) -> Value {
        json!({
            "open": self.open(),
            "max": self.max_total,
            "maxPerAddress": self.max_per_address,
            "rejected": self.rejected.load(Ordering::Relaxed),
            "sendTimeouts": self.send_timeouts.load(Ordering::Relaxed),
            "idleTimeouts": self.idle_timeouts.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address_and_releases_on_drop() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..Limits::default()
        };
        let t = Tracker::new(&limits);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.admit(a).unwrap();
        let _s2 = t.admit(a).unwrap();
        assert_eq!(t.admit(a).err(), Some(Refusal::PerAddress));
        let _s3 = t.admit(b).unwrap();
        assert_eq!(t.admit(b).err(), Some(Refusal::Total));
        assert_eq!(t.open(), 3);
        drop(s1);
        assert_eq!(t.open(), 2);
        let _s4 = t.admit(a).unwrap();
        assert_eq!(t.health()["rejected"], 2);
        assert_eq!(t.health()["open"], 3);
    }
}
