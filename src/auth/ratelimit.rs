//! Failed-login limits (sans-IO: plain data and the clock as an argument). A password attempt
//! first takes a reservation, counted as a failure for its (address, user) pair, its address and
//! its user name *before* argon2 runs, so concurrent attempts cannot race past a limit; a success
//! only gives back its own reservation. Every table is bounded (`max_tracked` entries).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// How long an address where a user logged in stays "known good" for that user (it keeps
/// getting verifications while the address or user ceiling is reached; see `reserve`).
pub const KNOWN_GOOD_MS: i64 = 24 * 3600 * 1000;

/// A user name as the limits see it: a keyed digest (fixed size, never the attacker's text).
pub type UserKey = [u8; 16];

/// The limits (from `[auth]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// failures per (address, user) pair and window; 0 = all limits off
    pub per_pair: u32,
    /// failures per address and window, any user (0 = no ceiling)
    pub per_address: u32,
    /// failures per user and window, any address (0 = no ceiling)
    pub per_user: u32,
    /// the window, millis
    pub window_ms: i64,
    /// most entries of each table
    pub max_tracked: usize,
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// this user name from this address
    Pair,
    /// this address, any user name
    Address,
    /// this user name, any address
    User,
}

/// A refused attempt: which limit, and seconds until its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// the limit that was reached
    pub by: Locked,
    /// seconds until the attempt may be made again (>= 1)
    pub retry_after_secs: u64,
}

/// A counted attempt; give it back with [`FailedLogins::succeeded`] or [`FailedLogins::not_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    addr: IpAddr,
    user: UserKey,
    /// window starts of the pair, address and user counters when the reservation was made
    starts: [i64; 3],
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    n: u32,
}

/// A bounded table of failure windows.
struct Counters<K> {
    map: HashMap<K, Window>,
}

impl<K: Hash + Eq + Copy> Counters<K> {
    fn new() -> Self {
        Counters {
            map: HashMap::new(),
        }
    }

    fn count(&self, k: &K, now: i64, window: i64) -> Option<Window> {
        self.map.get(k).copied().filter(|w| now - w.start < window)
    }

    /// Adds one failure; returns the window start. When full, expired windows go first, then
    /// the entry with the fewest failures (locked entries are the last to be forgotten).
    fn add(&mut self, k: K, now: i64, window: i64, max: usize) -> i64 {
        if !self.map.contains_key(&k) && self.map.len() >= max {
            self.map.retain(|_, w| now - w.start < window);
            if self.map.len() >= max {
                let victim = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| (w.n, w.start))
                    .map(|(k, _)| *k);
                if let Some(v) = victim {
                    self.map.remove(&v);
                }
            }
        }
        let w = self.map.entry(k).or_insert(Window { start: now, n: 0 });
        if now - w.start >= window {
            *w = Window { start: now, n: 0 };
        }
        w.n = w.n.saturating_add(1);
        w.start
    }

    /// Takes back one failure counted in the window that started at `start`.
    fn refund(&mut self, k: &K, start: i64) {
        if let Some(w) = self.map.get_mut(k) {
            if w.start == start {
                w.n = w.n.saturating_sub(1);
            }
        }
    }
}

struct Tables {
    pairs: Counters<(IpAddr, UserKey)>,
    addrs: Counters<IpAddr>,
    users: Counters<UserKey>,
    /// (address, user) -> last success, millis
    good: HashMap<(IpAddr, UserKey), i64>,
}

/// The failed-login limits of one gateway.
pub struct FailedLogins {
    limits: Limits,
    tables: Mutex<Tables>,
}

/// The address the limits count: IPv4 as is (also IPv4-mapped IPv6), IPv6 by its /64 prefix
/// (one host usually owns a whole /64); `None` (no socket) counts as one address.
pub fn address_key(ip: Option<IpAddr>) -> IpAddr {
    match ip {
        None => IpAddr::from([0u8, 0, 0, 0]),
        Some(IpAddr::V4(v4)) => IpAddr::V4(v4),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

impl FailedLogins {
    /// Limits as configured.
    pub fn new(limits: Limits) -> FailedLogins {
        FailedLogins {
            limits,
            tables: Mutex::new(Tables {
                pairs: Counters::new(),
                addrs: Counters::new(),
                users: Counters::new(),
                good: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // a panic while holding the lock cannot leave the tables inconsistent: keep going
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the limits for an attempt of `user` from `ip` and, if none is reached, counts it
    /// as a failure right away. The (address, user) limit always applies; the address and user
    /// ceilings do not apply where this user logged in within [`KNOWN_GOOD_MS`] (so a valid
    /// user behind a NAT with a password sprayer keeps working, still under the pair limit).
    pub fn reserve(&self, ip: Option<IpAddr>, user: UserKey, now: i64) -> Result<Ticket, Refused> {
        let addr = address_key(ip);
        let l = self.limits;
        if l.per_pair == 0 {
            return Ok(Ticket {
                addr,
                user,
                starts: [now; 3],
            });
        }
        let w = l.window_ms;
        let mut t = self.lock();
        let refused = |by, start: i64| Refused {
            by,
            retry_after_secs: ((start + w - now).max(1) as u64).div_ceil(1000).max(1),
        };
        if let Some(c) = t.pairs.count(&(addr, user), now, w) {
            if c.n >= l.per_pair {
                return Err(refused(Locked::Pair, c.start));
            }
        }
        let known = t
            .good
            .get(&(addr, user))
            .is_some_and(|at| now - at < KNOWN_GOOD_MS);
        if !known {
            if let Some(c) = t.addrs.count(&addr, now, w) {
                if l.per_address > 0 && c.n >= l.per_address {
                    return Err(refused(Locked::Address, c.start));
                }
            }
            if let Some(c) = t.users.count(&user, now, w) {
                if l.per_user > 0 && c.n >= l.per_user {
                    return Err(refused(Locked::User, c.start));
                }
            }
        }
        let max = l.max_tracked;
        let starts = [
            t.pairs.add((addr, user), now, w, max),
            t.addrs.add(addr, now, w, max),
            t.users.add(user, now, w, max),
        ];
        Ok(Ticket { addr, user, starts })
    }

    /// The attempt succeeded: its own reservation is given back (nobody else's failures are
    /// forgotten) and the address becomes known good for this user.
    pub fn succeeded(&self, ticket: Ticket, now: i64) {
        if self.limits.per_pair == 0 {
            return;
        }
        let mut t = self.lock();
        t.refund(&ticket);
        let key = (ticket.addr, ticket.user);
        if !t.good.contains_key(&key) && t.good.len() >= self.limits.max_tracked {
            t.good.retain(|_, at| now - *at < KNOWN_GOOD_MS);
            if t.good.len() >= self.limits.max_tracked {
                let oldest = t.good.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    t.good.remove(&k);
                }
            }
        }
        t.good.insert(key, now);
    }

    /// The verification never ran (the verifier queue was full): the reservation is given back.
    pub fn not_run(&self, ticket: Ticket) {
        if self.limits.per_pair > 0 {
            self.lock().refund(&ticket);
        }
    }

    /// Entries in the largest table (for tests of the bound).
    pub fn tracked(&self) -> usize {
        let t = self.lock();
        t.pairs
            .map
            .len()
            .max(t.addrs.map.len())
            .max(t.users.map.len())
            .max(t.good.len())
    }
}

impl Tables {
    fn refund(&mut self, ticket: &Ticket) {
        let [p, a, u] = ticket.starts;
        self.pairs.refund(&(ticket.addr, ticket.user), p);
        self.addrs.refund(&ticket.addr, a);
        self.users.refund(&ticket.user, u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 60_000;

    fn limits(pair: u32, addr: u32, user: u32) -> Limits {
        Limits {
            per_pair: pair,
            per_address: addr,
            per_user: user,
            window_ms: W,
            max_tracked: 64,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    const ALICE: UserKey = [1; 16];
    const BOB: UserKey = [2; 16];

    #[test]
    fn pair_limit_counts_before_the_check_and_ends_with_the_window() {
        let f = FailedLogins::new(limits(3, 100, 100));
        for _ in 0..3 {
            f.reserve(ip("10.0.0.1"), ALICE, 1000).unwrap();
        }
        let r = f.reserve(ip("10.0.0.1"), ALICE, 2000).unwrap_err();
        assert_eq!(r.by, Locked::Pair);
        assert_eq!(r.retry_after_secs, 59);
        assert!(f.reserve(ip("10.0.0.1"), BOB, 2000).is_ok(), "other user");
        assert!(
            f.reserve(ip("10.0.0.2"), ALICE, 2000).is_ok(),
            "other address"
        );
        assert!(
            f.reserve(ip("10.0.0.1"), ALICE, 61_000).is_ok(),
            "window over"
        );
    }

    #[test]
    fn a_success_gives_back_only_its_own_reservation() {
        let f = FailedLogins::new(limits(3, 100, 100));
        let a = ip("10.0.0.1");
        for _ in 0..2 {
            f.reserve(a, ALICE, 0).unwrap();
        }
        for _ in 0..10 {
            let t = f.reserve(a, BOB, 0).unwrap();
            f.succeeded(t, 0);
        }
        f.reserve(a, ALICE, 0).unwrap();
        assert_eq!(f.reserve(a, ALICE, 0).unwrap_err().by, Locked::Pair);
        let t = f.reserve(a, BOB, 0).unwrap();
        f.not_run(t);
        for _ in 0..3 {
            f.reserve(a, BOB, 0).unwrap();
        }
        assert!(
            f.reserve(a, BOB, 0).is_err(),
            "refunds never go below the failures"
        );
    }

    #[test]
    fn ceilings_spare_known_good_pairs_but_not_their_pair_limit() {
        let f = FailedLogins::new(limits(3, 5, 8));
        let nat = ip("192.0.2.7");
        let t = f.reserve(nat, BOB, 0).unwrap();
        f.succeeded(t, 0);
        for i in 0..5u8 {
            f.reserve(nat, [10 + i; 16], 0).unwrap();
        }
        let carol = [3; 16];
        assert_eq!(f.reserve(nat, carol, 0).unwrap_err().by, Locked::Address);
        assert!(f.reserve(nat, BOB, 0).is_ok(), "known good");
        f.reserve(nat, BOB, 0).unwrap();
        f.reserve(nat, BOB, 0).unwrap();
        assert_eq!(f.reserve(nat, BOB, 0).unwrap_err().by, Locked::Pair);
        // per user, from many addresses
        for i in 0..8u8 {
            f.reserve(Some(IpAddr::from([10, 1, 0, i])), ALICE, 0)
                .unwrap();
        }
        let r = f.reserve(ip("10.2.0.1"), ALICE, 0).unwrap_err();
        assert_eq!(r.by, Locked::User);
    }

    #[test]
    fn zero_turns_the_limits_off() {
        let f = FailedLogins::new(limits(0, 1, 1));
        for _ in 0..100 {
            f.reserve(ip("10.0.0.1"), ALICE, 0).unwrap();
        }
        assert_eq!(f.tracked(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_prefix() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            address_key(ip("::ffff:10.0.0.1")),
            address_key(ip("10.0.0.1"))
        );
    }

    #[test]
    fn memory_is_bounded_and_locked_entries_are_kept() {
        let f = FailedLogins::new(limits(3, 1000, 1000));
        let target = ip("10.9.9.9");
        for _ in 0..3 {
            f.reserve(target, ALICE, 0).unwrap();
        }
        for i in 0..1000u32 {
            let _ = f.reserve(Some(IpAddr::from(i.to_be_bytes())), [7; 16], 1);
            let mut u = [0u8; 16];
            u[..4].copy_from_slice(&i.to_be_bytes());
            let _ = f.reserve(target, u, 1);
        }
        assert!(f.tracked() <= 64);
        assert_eq!(
            f.reserve(target, ALICE, 2).unwrap_err().by,
            Locked::Pair,
            "the locked pair survives the churn"
        );
    }
}
