//! Enforcers shared between policies of equal entries (an enforcer depends on nothing else but
//! the namespace and the time): kept by (entries text, namespace), charged in bytes against a
//! part of the policy cache's budget and cleared when full.

use super::{enforcer_bytes, lock, CacheKey};
use crate::hub::Hub;
use crate::policy::Enforcer;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The enforcers kept for sharing (`Policies::shared`) are charged against this part of the
/// cache's budget (a quarter: 4 MiB of the default 16, ~1,100 distinct enforcers of Ditto's
/// default shape) and cleared when a new one would pass it. A count alone (256 until Dec 8)
/// let 256 distinct 100 KB policies keep ~950 MB of enforcers (3.7 MB each, measured).
pub(super) const SHARED_PART: usize = 4;

/// The enforcers kept for sharing by what they depend on, and the bytes charged for them
/// since the last clear (`share_bytes`; at most the cache's budget / `SHARED_PART`).
#[derive(Default)]
pub(super) struct Shared {
    pub(super) by_key: HashMap<CacheKey, (i64, Arc<Enforcer>)>,
    pub(super) charged: usize,
}

/// Bytes charged for an enforcer kept in `shared`: its key's text (twice: the map's slot is
/// between half and all full) and the enforcer's `enforcer_bytes`.
fn share_bytes(key: &CacheKey, enforcer_bytes: usize) -> usize {
    2 * std::mem::size_of::<(CacheKey, (i64, Arc<Enforcer>))>()
        + key.0.len()
        + key.1.len()
        + enforcer_bytes
}

impl Hub {
    /// The enforcer of `policy`'s entries, shared with every policy that has the same entries
    /// (an enforcer depends on nothing else but the namespace and the time, via `until`), with
    /// its `enforcer_bytes` if built here (0 if it was shared).
    pub(super) fn shared_enforcer(
        &self,
        policy: &Value,
        namespace: &str,
        now: i64,
        until: i64,
    ) -> (Arc<Enforcer>, usize) {
        let entries = policy
            .get("entries")
            .map(Value::to_string)
            .unwrap_or_default();
        let build = || Some(Enforcer::from_policy(policy, now, Some(namespace)));
        self.shared_or_built((entries, namespace.to_owned()), now, until, build)
            .expect("built")
    }

    /// `shared_enforcer` for the `entries` text of a policy that has nothing else an enforcer
    /// depends on (`PolicyState::plain_entries`): the same key, so both share one enforcer.
    pub(super) fn plain_enforcer(
        &self,
        entries: &str,
        namespace: &str,
        now: i64,
    ) -> Option<(Arc<Enforcer>, usize)> {
        let build = || {
            let mut policy = serde_json::Map::new();
            policy.insert("entries".into(), serde_json::from_str(entries).ok()?);
            let policy = Value::Object(policy);
            Some(Enforcer::from_policy(&policy, now, Some(namespace)))
        };
        let key = (entries.to_owned(), namespace.to_owned());
        self.shared_or_built(key, now, i64::MAX, build)
    }

    /// The enforcer kept for `key`, or the one `build` makes, kept from now on, with its
    /// `enforcer_bytes` (0 if it was kept already; `None` if `build` fails).
    fn shared_or_built(
        &self,
        key: CacheKey,
        now: i64,
        until: i64,
        build: impl FnOnce() -> Option<Enforcer>,
    ) -> Option<(Arc<Enforcer>, usize)> {
        if let Some(e) = self.shared_by(&key, now) {
            return Some((e, 0));
        }
        let e = Arc::new(build()?);
        let bytes = enforcer_bytes(&e);
        self.share(key, until, &e, bytes);
        Some((e, bytes))
    }

    fn shared_by(&self, key: &CacheKey, now: i64) -> Option<Arc<Enforcer>> {
        let shared = lock(&self.policies().shared);
        shared
            .by_key
            .get(key)
            .filter(|(u, _)| now < *u)
            .map(|(_, e)| e.clone())
    }

    /// Keeps `e` (of `enforcer_bytes` `heap`) for `key`.
    fn share(&self, key: CacheKey, until: i64, e: &Arc<Enforcer>, heap: usize) {
        let bytes = share_bytes(&key, heap);
        let mut shared = lock(&self.policies().shared);
        if shared.charged + bytes > self.policy_cache_bytes() / SHARED_PART {
            // one over the budget alone is still kept: the lookups of its policy share it
            shared.by_key.clear();
            shared.charged = 0;
        }
        // a rebuilt one (its subjects expired) replaces the old, whose charge stays until the clear
        shared.charged += bytes;
        shared.by_key.insert(key, (until, e.clone()));
    }
}
