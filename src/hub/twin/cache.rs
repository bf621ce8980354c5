//! A bounded cache of decoded twins (with how each is indexed), so that writing a hot twin
//! neither reads and decodes it from the store nor rebuilds the index entries of its old state.
//! Only `twin_command` fills it, under the twin's lock, right after handing the write to the
//! store (it is the one writer of `Tree::Things`); eviction is FIFO by an estimate of bytes.

use crate::engine::ThingState;
use crate::search::index::Size;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Bytes (estimated) the cache holds by default (`twin_cache_mib`): ~1,000 small twins.
pub const BUDGET_BYTES: usize = 4 * 1024 * 1024;

/// A cached twin: its state (tombstones included) and how that state is indexed.
#[derive(Clone)]
pub struct Cached {
    pub state: Arc<ThingState>,
    pub size: Size,
}

pub struct Twins {
    /// `None`: taken by a write in progress (`take`)
    map: HashMap<String, (Option<Cached>, usize)>,
    order: VecDeque<String>,
    bytes: usize,
    /// most bytes (estimated) held; 0 caches nothing
    budget: usize,
}

impl Default for Twins {
    fn default() -> Self {
        Twins {
            map: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            budget: BUDGET_BYTES,
        }
    }
}

impl Twins {
    /// Sets the budget (`twin_cache_mib`), evicting the oldest down to it.
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
        self.evict();
    }

    fn evict(&mut self) {
        while self.bytes > self.budget {
            let Some(first) = self.order.pop_front() else {
                break;
            };
            if let Some((_, s)) = self.map.remove(&first) {
                self.bytes -= s;
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Cached> {
        self.map.get(id).and_then(|(c, _)| c.clone())
    }

    /// Takes the cached twin out for a write (under the twin's lock), leaving its place: the
    /// only `Arc` of it, unless an event or a reader still holds one, so the write can change
    /// it in place. Until `put` (or `restore`) reads of `id` go to the store, which holds the
    /// same state.
    pub fn take(&mut self, id: &str) -> Option<Cached> {
        self.map.get_mut(id).and_then(|(c, _)| c.take())
    }

    /// Puts back what `take` took, when the write wrote nothing (unless it was evicted since).
    pub fn restore(&mut self, id: &str, c: Cached) {
        if let Some((slot @ None, _)) = self.map.get_mut(id) {
            *slot = Some(c);
        }
    }

    /// Caches `c` for `id`; `encoded` is the length of the stored form (the size estimate).
    pub fn put(&mut self, id: &str, c: Cached, encoded: usize) {
        // decoded JSON (order-preserving maps) takes ~12x its text: 3.9 KB for a 335-byte twin
        // with 8 attributes and a feature, counted with a counting allocator
        let size = 64 + id.len() + 12 * encoded;
        if size > self.budget / 8 {
            // a huge twin would evict everything else: not cached
            self.remove(id);
            return;
        }
        // a rewritten twin keeps its key (no new String per write)
        match self.map.get_mut(id) {
            Some(slot) => {
                self.bytes -= slot.1;
                *slot = (Some(c), size);
            }
            None => {
                self.map.insert(id.to_owned(), (Some(c), size));
                self.order.push_back(id.to_owned());
            }
        }
        self.bytes += size;
        self.evict();
    }

    fn remove(&mut self, id: &str) {
        if let Some((_, s)) = self.map.remove(id) {
            self.bytes -= s;
            self.order.retain(|k| k != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cached(n: usize) -> Cached {
        Cached {
            state: Arc::new(ThingState {
                thing: json!({"thingId": "a:b"}),
                revision: 1,
                created: 0,
                modified: 0,
                metadata: None,
                deleted: false,
            }),
            size: Size::Entries(n),
        }
    }

    #[test]
    fn evicts_oldest_first_within_the_budget() {
        let mut t = Twins::default();
        let each = BUDGET_BYTES / 10;
        for i in 0..30 {
            t.put(&format!("n:{i}"), cached(1), each / 12);
        }
        assert!(t.bytes <= BUDGET_BYTES);
        assert!(t.get("n:0").is_none(), "oldest evicted");
        assert!(t.get("n:29").is_some(), "newest kept");
        assert_eq!(t.map.len(), t.order.len());
    }

    #[test]
    fn replacing_keeps_one_entry_and_huge_twins_are_not_cached() {
        let mut t = Twins::default();
        t.put("n:a", cached(1), 100);
        t.put("n:a", cached(2), 200);
        assert_eq!((t.map.len(), t.order.len()), (1, 1));
        assert_eq!(t.get("n:a").unwrap().size, Size::Entries(2));
        t.put("n:a", cached(1), BUDGET_BYTES);
        assert!(t.get("n:a").is_none());
        assert_eq!((t.bytes, t.order.len()), (0, 0));
    }

    #[test]
    fn a_taken_twin_is_not_served_until_put_or_restored() {
        let mut t = Twins::default();
        t.put("n:a", cached(1), 100);
        let taken = t.take("n:a").unwrap();
        assert_eq!(Arc::strong_count(&taken.state), 1, "the only Arc");
        assert!(t.get("n:a").is_none() && t.take("n:a").is_none());
        t.restore("n:a", taken);
        assert_eq!(t.get("n:a").unwrap().size, Size::Entries(1));
        let taken = t.take("n:a").unwrap();
        t.put("n:a", cached(2), 100);
        t.restore("n:a", taken);
        assert_eq!(t.get("n:a").unwrap().size, Size::Entries(2), "a put wins");
        assert_eq!((t.map.len(), t.order.len()), (1, 1));
    }

    #[test]
    fn a_smaller_budget_evicts_down_to_it_and_zero_caches_nothing() {
        let mut t = Twins::default();
        for i in 0..10 {
            t.put(&format!("n:{i}"), cached(1), 1000);
        }
        let each = t.bytes / 10;
        t.set_budget(each * 3);
        assert_eq!(t.map.len(), 3, "the three newest stay");
        assert!(t.get("n:9").is_some() && t.get("n:6").is_none());
        t.set_budget(0);
        assert_eq!((t.map.len(), t.bytes), (0, 0));
        t.put("n:x", cached(1), 10);
        assert!(t.get("n:x").is_none(), "a zero budget caches nothing");
    }
}
