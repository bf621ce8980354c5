//! A bounded cache of twins (with how each is indexed and its policy's enforcer), so that
//! writing a twin neither reads and decodes it from the store nor rebuilds the index entries of
//! its old state nor looks up its policy. Two tiers share one budget: decoded twins (written in
//! place) and, behind them, twins evicted from the first kept compact (their stored form,
//! compressed), decoded on use. Only `twin_command` fills it, under the twin's lock, right after
//! handing the write to the store (it is the one writer of `Tree::Things`); each tier evicts
//! FIFO by the bytes its entries hold.

use super::arena::{Arena, Compact};
use crate::engine::ThingState;
use crate::fasthash::Map;
use crate::policy::Enforcer;
use crate::search::index::Size;
use crate::store::codec;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

/// Bytes the cache holds by default (`twin_cache_mib`): 2 MiB of decoded twins (~400 of 8
/// attributes and a feature of 8 properties), 14 MiB of compact ones (~100,000 of the bench's
/// shape, ~120 B each: a small attribute or a few and a feature).
pub const BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// The decoded tier gets the budget up to this, the compact tier the rest.
pub const DECODED_MAX: usize = 2 * 1024 * 1024;

/// The enforcer of a cached twin's policy, valid while no policy was written since it was
/// looked up (`generation`) and until `until` (a subject expires). Weak: the policy cache
/// (bounded in bytes, `policy_cache_mib`) owns the enforcers; thousands of cached twins of
/// distinct policies would otherwise keep as many enforcers alive (up to 3.7 MB each).
#[derive(Clone)]
pub struct Memo {
    pub generation: u64,
    pub until: i64,
    pub enforcer: Weak<Enforcer>,
}

/// A cached twin: its state (tombstones included), how that state is indexed, its policy's
/// enforcer when known, and its compact form when the write made it (`compact`).
#[derive(Clone)]
pub struct Cached {
    pub state: Arc<ThingState>,
    pub size: Size,
    pub policy: Option<Memo>,
    /// the stored form compressed (`codec::encode`); made when evicted if `None`
    pub compact: Option<Arc<[u8]>>,
}

impl Compact {
    /// Decoded again (`None`: it does not decode, which `compact` never makes). Not under
    /// the cache's lock: this is the work of a hit in the compact tier.
    pub fn cached(self) -> Option<Cached> {
        let compact = Arc::<[u8]>::from(&self.stored[..]);
        let bytes = codec::decode(self.stored).ok()?;
        let state = ThingState::from_bytes(&bytes).ok()?;
        Some(Cached {
            state: Arc::new(state),
            size: self.size,
            policy: self.policy,
            compact: Some(compact),
        })
    }
}

/// The compact form of a twin's stored bytes (`None`: empty).
pub fn compact(stored: &[u8]) -> Option<Arc<[u8]>> {
    (!stored.is_empty()).then(|| Arc::from(codec::encode(stored.to_vec())))
}

/// A twin found in the cache, decoded or compact.
pub enum Hit {
    Decoded(Cached),
    Compact(Compact),
}

impl Hit {
    /// The twin decoded (`None`: a compact one that does not decode, which never happens).
    pub fn cached(self) -> Option<Cached> {
        match self {
            Hit::Decoded(c) => Some(c),
            Hit::Compact(c) => c.cached(),
        }
    }
}

/// Entries by ID, evicted oldest first down to a budget of bytes (each entry's own count).
struct Fifo<V> {
    map: Map<Arc<str>, Slot<V>>,
    /// insertion order; entries whose stamp no longer matches the map's were removed
    order: VecDeque<(u64, Arc<str>)>,
    stamp: u64,
    bytes: usize,
    budget: usize,
}

struct Slot<V> {
    value: V,
    bytes: usize,
    stamp: u64,
}

impl<V> Fifo<V> {
    fn new(budget: usize) -> Self {
        Fifo {
            map: Map::default(),
            order: VecDeque::new(),
            stamp: 0,
            bytes: 0,
            budget,
        }
    }

    fn get(&self, id: &str) -> Option<&V> {
        self.map.get(id).map(|s| &s.value)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        self.map.get_mut(id).map(|s| &mut s.value)
    }

    /// Inserts or replaces (a replaced entry keeps its key and its place); `evicted` gets what
    /// had to make room.
    fn put(&mut self, id: &str, value: V, bytes: usize, mut evicted: impl FnMut(&str, V)) {
        match self.map.get_mut(id) {
            Some(slot) => {
                self.bytes -= slot.bytes;
                slot.value = value;
                slot.bytes = bytes;
            }
            None => {
                self.stamp += 1;
                let key: Arc<str> = Arc::from(id);
                self.order.push_back((self.stamp, key.clone()));
                let slot = Slot {
                    value,
                    bytes,
                    stamp: self.stamp,
                };
                self.map.insert(key, slot);
            }
        }
        self.bytes += bytes;
        self.evict(&mut evicted);
    }

    fn remove(&mut self, id: &str) -> Option<V> {
        let slot = self.map.remove(id)?;
        self.bytes -= slot.bytes;
        // its place in `order` goes when it comes first; removals alone never evict, so the
        // order is rebuilt when it holds mostly removed entries
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(stamp, k)| map.get(k).is_some_and(|s| s.stamp == *stamp));
        }
        Some(slot.value)
    }

    fn set_budget(&mut self, budget: usize, evicted: impl FnMut(&str, V)) {
        self.budget = budget;
        let mut evicted = evicted;
        self.evict(&mut evicted);
    }

    fn evict(&mut self, evicted: &mut impl FnMut(&str, V)) {
        while self.bytes > self.budget {
            let Some((stamp, first)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&first).is_some_and(|s| s.stamp == stamp) {
                if let Some(slot) = self.map.remove(&first) {
                    self.bytes -= slot.bytes;
                    evicted(&first, slot.value);
                }
            }
        }
    }
}

/// Both tiers; a twin is in at most one of them.
pub struct Twins {
    /// `None`: taken by a write in progress (`take`)
    decoded: Fifo<Option<Cached>>,
    compact: Arena,
}

impl Default for Twins {
    fn default() -> Self {
        let mut t = Twins {
            decoded: Fifo::new(0),
            compact: Arena::new(0),
        };
        t.set_budget(BUDGET_BYTES);
        t
    }
}

impl Twins {
    /// Sets the budget of both tiers (`twin_cache_mib`), evicting the oldest down to it.
    pub fn set_budget(&mut self, bytes: usize) {
        self.set_budgets(bytes.min(DECODED_MAX), bytes.saturating_sub(DECODED_MAX));
    }

    /// Sets the budget of each tier.
    pub fn set_budgets(&mut self, decoded: usize, compact: usize) {
        if compact != self.compact.budget() {
            self.compact = Arena::new(compact);
        }
        let compact = &mut self.compact;
        let mut dropped = Vec::new();
        self.decoded
            .set_budget(decoded, |id, c| demote(compact, id, c, &mut dropped));
    }

    /// The decoded tier's budget: whether a write should make the compact form of what it
    /// caches (it will be evicted into the compact tier) or not (nothing is evicted).
    pub fn evicting(&self) -> bool {
        self.compact.budget() > 0
            && self.decoded.budget > 0
            && self.decoded.bytes + self.decoded.budget / 16 >= self.decoded.budget
    }

    /// The cached twin (`Compact::cached` decodes a compact one).
    pub fn get(&self, id: &str) -> Option<Hit> {
        match self.decoded.get(id) {
            Some(c) => c.clone().map(Hit::Decoded),
            None => self.compact.get(id).map(Hit::Compact),
        }
    }

    /// Takes the cached twin out for a write (under the twin's lock), leaving its place in the
    /// decoded tier: the only `Arc` of it, unless an event or a reader still holds one, so the
    /// write can change it in place. Until `put` (or `restore`) reads of `id` go to the store,
    /// which holds the same state.
    pub fn take(&mut self, id: &str) -> Option<Hit> {
        if let Some(slot) = self.decoded.get_mut(id) {
            return slot.take().map(Hit::Decoded);
        }
        // from the compact tier: decoded for the write, which puts it back decoded
        self.compact.remove(id).map(Hit::Compact)
    }

    /// Puts back what `take` took, when the write wrote nothing (under the twin's lock, so
    /// nothing else was written meanwhile): into its place, or compact if it has none.
    pub fn restore(&mut self, id: &str, c: Cached) {
        match self.decoded.get_mut(id) {
            Some(slot @ None) => *slot = Some(c),
            Some(Some(_)) => {}
            None => demote(&mut self.compact, id, Some(c), &mut Vec::new()),
        }
    }

    /// Caches `c` for `id` decoded; `encoded` is the length of its stored form (the size
    /// estimate). Returns the decoded twins it made compact: drop them outside the lock.
    #[must_use]
    pub fn put(&mut self, id: &str, c: Cached, encoded: usize) -> Vec<Arc<ThingState>> {
        // decoded JSON (order-preserving maps) takes ~10x its text: 5.3 KB for a 538-byte twin
        // with 8 attributes and a feature with 8 properties, counted with a counting allocator
        let size = 64 + id.len() + 12 * encoded + c.compact.as_ref().map_or(0, |s| s.len());
        self.compact.discard(id);
        let mut dropped = Vec::new();
        if size > self.decoded.budget / 8 {
            // a huge twin would evict everything else: not cached
            self.decoded.remove(id);
            dropped.push(c.state);
            return dropped;
        }
        let compact = &mut self.compact;
        self.decoded.put(id, Some(c), size, |id, c| {
            demote(compact, id, c, &mut dropped)
        });
        dropped
    }
}

/// Moves a twin evicted from the decoded tier into the compact tier.
fn demote(compact: &mut Arena, id: &str, c: Option<Cached>, dropped: &mut Vec<Arc<ThingState>>) {
    let Some(c) = c else { return };
    if compact.budget() == 0 {
        return dropped.push(c.state);
    }
    let made;
    let stored = match &c.compact {
        Some(s) => &s[..],
        None => {
            made = codec::encode(c.state.to_bytes());
            &made[..]
        }
    };
    if !stored.is_empty() {
        compact.put(id, stored, c.size, c.policy.as_ref());
    }
    dropped.push(c.state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(id: &str, rev: u64) -> Arc<ThingState> {
        Arc::new(ThingState {
            thing: json!({"thingId": id, "attributes": {"a": "x".repeat(100)}}),
            revision: rev,
            created: 0,
            modified: 0,
            metadata: None,
            deleted: false,
        })
    }

    fn cached(n: usize) -> Cached {
        Cached {
            state: state("a:b", 1),
            size: Size::Entries(n),
            policy: None,
            compact: None,
        }
    }

    /// A twin as `persist` caches it (its compact form made from its stored bytes).
    fn written(id: &str, rev: u64) -> (Cached, usize) {
        let state = state(id, rev);
        let bytes = state.to_bytes();
        let c = Cached {
            state,
            size: Size::Entries(rev as usize),
            policy: None,
            compact: compact(&bytes),
        };
        (c, bytes.len())
    }

    #[test]
    fn evicted_twins_stay_compact_and_decode_to_what_was_cached() {
        let mut t = Twins::default();
        t.set_budgets(32 * 1024, 224 * 1024);
        for i in 0..2000 {
            let (c, len) = written(&format!("n:{i}"), i + 1);
            // half of them without a compact form: made when evicted
            let c = if i % 2 == 0 {
                Cached { compact: None, ..c }
            } else {
                c
            };
            let _ = t.put(&format!("n:{i}"), c, len);
        }
        assert!(t.decoded.bytes <= t.decoded.budget && t.compact.bytes() <= t.compact.budget());
        assert!(
            t.decoded.get("n:0").is_none(),
            "oldest evicted from the decoded tier"
        );
        assert!(t.decoded.get("n:1999").is_some(), "newest kept decoded");
        assert!(t.compact.len() > t.decoded.map.len(), "most are compact");
        for i in 0..2000u64 {
            let id = format!("n:{i}");
            if let Some(c) = t.get(&id).and_then(Hit::cached) {
                assert_eq!(c.state, state(&id, i + 1), "{id}");
                assert_eq!(c.size, Size::Entries(i as usize + 1));
            }
        }
        assert!(t.get("n:0").is_none(), "the compact tier is bounded too");
        let oldest_compact = (0..2000).find(|i| t.compact.get(&format!("n:{i}")).is_some());
        let i = oldest_compact.expect("some are compact");
        let id = format!("n:{i}");
        // a write takes it out of the compact tier: the only Arc, decoded
        let taken = t
            .take(&id)
            .and_then(Hit::cached)
            .expect("compact twin taken");
        assert_eq!(Arc::strong_count(&taken.state), 1);
        assert!(t.compact.get(&id).is_none() && t.get(&id).is_none());
        // a refused write puts it back (compact, as it has no decoded place)
        t.restore(&id, taken);
        assert_eq!(
            t.get(&id).and_then(Hit::cached).unwrap().state,
            state(&id, i as u64 + 1)
        );
        // a written twin is decoded and compact no more
        let (c, len) = written(&id, 1000);
        let _ = t.put(&id, c, len);
        assert!(t.compact.get(&id).is_none());
        assert_eq!(
            t.get(&id).and_then(Hit::cached).unwrap().state.revision,
            1000
        );
    }

    #[test]
    fn replacing_keeps_one_entry_and_huge_twins_are_not_cached() {
        let mut t = Twins::default();
        let _ = t.put("n:a", cached(1), 100);
        let _ = t.put("n:a", cached(2), 200);
        assert_eq!((t.decoded.map.len(), t.decoded.order.len()), (1, 1));
        assert_eq!(
            t.get("n:a").and_then(Hit::cached).unwrap().size,
            Size::Entries(2)
        );
        let _ = t.put("n:a", cached(1), BUDGET_BYTES);
        assert!(t.get("n:a").is_none());
        assert_eq!(t.decoded.bytes, 0);
        assert_eq!(t.compact.len(), 0);
    }

    #[test]
    fn a_taken_twin_is_not_served_until_put_or_restored() {
        let mut t = Twins::default();
        let _ = t.put("n:a", cached(1), 100);
        let taken = t.take("n:a").and_then(Hit::cached).unwrap();
        assert_eq!(Arc::strong_count(&taken.state), 1, "the only Arc");
        assert!(t.get("n:a").is_none() && t.take("n:a").is_none());
        t.restore("n:a", taken);
        assert_eq!(
            t.get("n:a").and_then(Hit::cached).unwrap().size,
            Size::Entries(1)
        );
        let taken = t.take("n:a").and_then(Hit::cached).unwrap();
        let _ = t.put("n:a", cached(2), 100);
        t.restore("n:a", taken);
        assert_eq!(
            t.get("n:a").and_then(Hit::cached).unwrap().size,
            Size::Entries(2),
            "a put wins"
        );
        assert_eq!((t.decoded.map.len(), t.decoded.order.len()), (1, 1));
    }

    #[test]
    fn a_smaller_budget_evicts_down_to_it_and_zero_caches_nothing() {
        let mut t = Twins::default();
        for i in 0..10 {
            let (c, len) = written(&format!("n:{i}"), 1);
            let _ = t.put(&format!("n:{i}"), c, len);
        }
        let each = t.decoded.bytes / 10;
        t.set_budgets(each * 3, 1 << 20);
        assert_eq!(t.decoded.map.len(), 3, "the three newest stay decoded");
        assert!(t.decoded.get("n:9").is_some() && t.decoded.get("n:6").is_none());
        assert!(t.get("n:6").is_some(), "the others compact");
        t.set_budget(0);
        assert_eq!((t.decoded.map.len(), t.decoded.bytes), (0, 0));
        assert_eq!((t.compact.len(), t.compact.bytes()), (0, 0));
        let (c, len) = written("n:x", 1);
        let _ = t.put("n:x", c, len);
        assert!(t.get("n:x").is_none(), "a zero budget caches nothing");
    }

    #[test]
    fn removed_entries_do_not_pile_up_in_the_order() {
        let mut f = Fifo::new(1 << 20);
        for round in 0..100u32 {
            for i in 0..50 {
                let id = format!("n:{i}");
                assert_eq!(f.remove(&id), round.checked_sub(1));
                f.put(&id, round, 10, |_, _| panic!("nothing to evict"));
            }
        }
        assert_eq!(f.map.len(), 50);
        assert!(f.order.len() <= 2 * 50 + 64, "{}", f.order.len());
        // what is left in the order still evicts oldest first
        f.set_budget(10 * 10, |_, _| {});
        assert_eq!(f.map.len(), 10);
        assert!(f.get("n:49").is_some() && f.get("n:39").is_none());
    }
}
