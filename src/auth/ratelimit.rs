//! Failed-login limit per peer address: after `max` failures within a fixed window further
//! attempts from that address are refused (429) until the window ends. Bounded memory: at
//! most `MAX_TRACKED` addresses; expired windows are evicted first, then arbitrary ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most addresses tracked at once.
pub const MAX_TRACKED: usize = 4096;

/// Failed attempts per address.
pub struct FailedLogins {
    max: u32,
    window_ms: i64,
    seen: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl FailedLogins {
    /// `max` failures per `window_ms` (0 = no limit).
    pub fn new(max: u32, window_ms: i64) -> FailedLogins {
        FailedLogins {
            max,
            window_ms,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The window length in seconds (for messages).
    pub fn window_secs(&self) -> i64 {
        self.window_ms / 1000
    }

    /// True if `ip` used up its failures in the current window.
    pub fn blocked(&self, ip: IpAddr, now: i64) -> bool {
        if self.max == 0 {
            return false;
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&ip)
            .is_some_and(|(start, n)| now - start < self.window_ms && *n >= self.max)
    }

    /// Records a failed attempt.
    pub fn failed(&self, ip: IpAddr, now: i64) {
        if self.max == 0 {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&ip) {
            let w = self.window_ms;
            seen.retain(|_, (start, _)| now - *start < w);
            if seen.len() >= MAX_TRACKED {
                if let Some(k) = seen.keys().next().copied() {
                    seen.remove(&k);
                }
            }
        }
        let e = seen.entry(ip).or_insert((now, 0));
        if now - e.0 >= self.window_ms {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    /// Forgets the failures of an address that authenticated successfully.
    pub fn succeeded(&self, ip: IpAddr) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }

    /// Number of tracked addresses.
    pub fn tracked(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let f = FailedLogins::new(3, 60_000);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!f.blocked(ip, 1000));
            f.failed(ip, 1000);
        }
        assert!(f.blocked(ip, 2000));
        assert!(!f.blocked(other, 2000));
        assert!(!f.blocked(ip, 61_000), "window over");
        f.failed(ip, 61_000);
        assert!(!f.blocked(ip, 61_000));
        f.succeeded(ip);
        assert_eq!(f.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let f = FailedLogins::new(3, 60_000);
        for i in 0..(MAX_TRACKED as u32 + 100) {
            f.failed(IpAddr::from(i.to_be_bytes()), 0);
        }
        assert!(f.tracked() <= MAX_TRACKED);
    }
}
