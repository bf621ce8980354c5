//! Verified credentials remembered so that argon2 (or a signature check) runs once per secret:
//! keyed by a BLAKE2b digest under a per-process random key (no password or token is kept in
//! memory, and nobody can compute a key offline), bounded in entries, each valid until its
//! token expires; when full, expired entries go first, then the oldest.

use super::who::Authenticated;
use blake2::{Blake2b256, Digest};
use std::collections::HashMap;
use std::sync::Mutex;

/// A per-process secret for digests of credentials and user names.
pub struct Keyed {
    key: [u8; 32],
}

impl Keyed {
    /// A fresh random key (from the OS).
    pub fn random() -> Keyed {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&argon2::password_hash::generate_salt());
        key[16..].copy_from_slice(&argon2::password_hash::generate_salt());
        Keyed { key }
    }

    /// Digest of `parts` (each length-prefixed, so parts never run into each other) in `domain`.
    pub fn digest(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Blake2b256::new();
        h.update(self.key);
        h.update(domain.as_bytes());
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().into()
    }

    /// The fixed-size key of a user name in the failed-login tables.
    pub fn user(&self, name: &str) -> super::ratelimit::UserKey {
        let d = self.digest("user", &[name.as_bytes()]);
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        k
    }
}

/// True if a remembered token has expired at `now` (with the JWT leeway).
fn expired(a: &Authenticated, now: i64) -> bool {
    a.expires_at
        .is_some_and(|exp| now > exp + super::jwt::LEEWAY_MS)
}

/// Verified credentials by digest.
pub struct Verified {
    max: usize,
    entries: Mutex<HashMap<[u8; 32], (Authenticated, u64)>>,
    next: std::sync::atomic::AtomicU64,
}

impl Verified {
    /// At most `max` entries (0 = remember nothing).
    pub fn new(max: usize) -> Verified {
        Verified {
            max,
            entries: Mutex::new(HashMap::new()),
            next: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Authenticated, u64)>> {
        // entries are inserted whole: a panic elsewhere cannot leave one half-written
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `key` if it has not expired at `now` (epoch millis).
    pub fn get(&self, key: &[u8; 32], now: i64) -> Option<Authenticated> {
        let mut m = self.lock();
        let a = m.get(key).map(|(a, _)| a.clone())?;
        if a.expires_at
            .is_some_and(|exp| now > exp + super::jwt::LEEWAY_MS)
        {
            m.remove(key);
            return None;
        }
        Some(a)
    }

    /// Remembers a verified credential.
    pub fn put(&self, key: [u8; 32], a: Authenticated, now: i64) {
        if self.max == 0 {
            return;
        }
        let seq = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = self.lock();
        if !m.contains_key(&key) && m.len() >= self.max {
            m.retain(|_, (a, _)| !expired(a, now));
            if m.len() >= self.max {
                let oldest = m.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    m.remove(&k);
                }
            }
        }
        m.insert(key, (a, seq));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn auth(s: &str, exp: Option<i64>) -> Authenticated {
        Authenticated {
            subjects: Arc::from(vec![s.to_owned()]),
            expires_at: exp,
        }
    }

    #[test]
    fn bounded_expiring_and_keyed() {
        let k = Keyed::random();
        let k2 = Keyed::random();
        assert_ne!(
            k.digest("basic", &[b"a", b"b"]),
            k2.digest("basic", &[b"a", b"b"])
        );
        assert_ne!(
            k.digest("basic", &[b"ab", b""]),
            k.digest("basic", &[b"a", b"b"])
        );
        let c = Verified::new(2);
        let (a, b, x) = (
            k.digest("t", &[b"a"]),
            k.digest("t", &[b"b"]),
            k.digest("t", &[b"x"]),
        );
        c.put(a, auth("s:a", Some(1000)), 0);
        c.put(b, auth("s:b", None), 0);
        assert_eq!(c.get(&a, 0).unwrap().subjects[0], "s:a");
        assert!(
            c.get(&a, 1000 + super::super::jwt::LEEWAY_MS + 1).is_none(),
            "expired"
        );
        c.put(a, auth("s:a", None), 0);
        c.put(x, auth("s:x", None), 0);
        assert_eq!(c.len(), 2);
        assert!(c.get(&b, 0).is_none(), "oldest evicted");
        assert!(c.get(&a, 0).is_some() && c.get(&x, 0).is_some());
    }
}
