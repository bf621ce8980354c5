//! A read handle for one query (a search page or count): reads like `Store::get`/`scan`, but
//! the backend part of every read goes through ONE backend view (redb: one read transaction,
//! each table opened once) instead of a fresh transaction per call, and `each` hands entries
//! out borrowed. Without views (sled) it reads the live backend, as `Store` does.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::backend::{Entries, StoreError, Tree, View};
use super::{codec, failed_error, overlay, Shared, Store};

/// Reads of one query. Each key reads as `Store::get` would at the moment of the read
/// (read-your-writes: the overlay of writes not yet checkpointed, then the backend); it is not
/// a cut across keys while writes go on (`Store::snapshot` is, at the price of copying the
/// overlay). The view is replaced when a checkpoint has moved entries out of the overlay since
/// it was taken (it would not hold them), so a checkpoint never hides a write from a reader.
pub struct Reader {
    shared: Arc<Shared>,
    /// the backend view and the overlay evictions it covers (taken on first use)
    view: RefCell<Option<(Box<dyn View>, u64)>>,
}

impl Store {
    /// A reader for one query (cheap: the backend view is taken on its first read). Drop it
    /// when the query ends: a redb view keeps the pages it sees from being reused meanwhile.
    pub fn reader(&self) -> Reader {
        Reader {
            shared: Arc::clone(&self.inner.shared),
            view: RefCell::new(None),
        }
    }
}

/// Where the backend part of a read goes.
enum Base<'r> {
    View(&'r dyn View),
    Live,
}

impl Reader {
    /// `Store::watched_changes`.
    pub fn watched_changes(&self) -> u64 {
        self.shared.watched.load(Ordering::Acquire)
    }

    /// `Ok(None)` when nothing is pending (the backend holds everything), else the overlay's
    /// answer under the state lock via `f`; either way the eviction count to read the backend
    /// at. Order as in `Store::scan`: the overlay first, the backend second.
    fn overlay<T>(
        &self,
        f: impl FnOnce(&mut overlay::Overlay) -> T,
    ) -> Result<(Option<T>, u64), StoreError> {
        let sh = &self.shared;
        if sh.nothing_pending() {
            // `pending` is stored after the eviction count (both Release): seeing the first
            // means seeing every eviction before it
            return Ok((None, sh.evictions.load(Ordering::Acquire)));
        }
        let mut st = sh.lock();
        if st.failed {
            return Err(failed_error(&st));
        }
        Ok((
            Some(f(&mut st.overlay)),
            sh.evictions.load(Ordering::Acquire),
        ))
    }

    /// Runs `f` on the backend as of at least `evicted` evictions: the held view if it covers
    /// them, else a new one (taken now: every commit before those evictions is in it).
    fn base<T>(
        &self,
        evicted: u64,
        f: impl FnOnce(Base) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.shared.has_views {
            return f(Base::Live);
        }
        let mut slot = self.view.borrow_mut();
        if slot.as_ref().is_none_or(|(_, e)| *e < evicted) {
            *slot = None;
            // the count is read before the view is taken: the view holds every commit it counts
            let now = self.shared.evictions.load(Ordering::Acquire);
            if let Some(v) = self.shared.backend.view()? {
                *slot = Some((v, now.max(evicted)));
            }
        }
        match slot.as_ref() {
            Some((v, _)) => f(Base::View(v.as_ref())),
            None => f(Base::Live),
        }
    }

    /// `Store::get`.
    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let (pending, evicted) = self.overlay(|o| o.get(tree, key))?;
        if let Some(Some(v)) = pending {
            return Ok(v);
        }
        let stored = self.base(evicted, |b| match b {
            Base::View(v) => v.get(tree, key),
            Base::Live => self.shared.backend.get(tree, key),
        })?;
        codec::decode_value(tree, key, stored)
    }

    /// `Store::scan`.
    pub fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (pending, evicted) = self.overlay(|o| o.range(tree, prefix, after, limit))?;
        let pending = pending.unwrap_or_default();
        // at most `pending.len()` backend entries are shadowed, so this many always suffice
        let want = limit.saturating_add(pending.len());
        let base = self.base(evicted, |b| match b {
            Base::View(v) => v.scan(tree, prefix, after, want),
            Base::Live => self.shared.backend.scan(tree, prefix, after, want),
        })?;
        let base = codec::decode_entries(tree, base)?;
        Ok(match pending.is_empty() {
            true => base,
            false => overlay::merge(pending, base, limit),
        })
    }

    /// `scan`, handing each entry to `f` (false: stop) without copying it when nothing in the
    /// range is pending and its value is stored as written (not a document of the codec).
    pub fn each(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        if limit == 0 {
            return Ok(());
        }
        let (pending, evicted) = self.overlay(|o| o.range(tree, prefix, after, limit))?;
        if pending.as_ref().is_some_and(|p| !p.is_empty()) {
            for (k, v) in self.scan(tree, prefix, after, limit)? {
                if !f(&k, &v) {
                    break;
                }
            }
            return Ok(());
        }
        let mut failed = None;
        let mut visit = |k: &[u8], v: &[u8]| {
            if !codec::applies(tree, k) {
                return f(k, v);
            }
            match codec::decode_value(tree, k, Some(v.to_vec())) {
                Ok(Some(d)) => f(k, &d),
                Ok(None) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        };
        self.base(evicted, |b| match b {
            Base::View(v) => v.each(tree, prefix, after, limit, &mut visit),
            Base::Live => {
                for (k, v) in self.shared.backend.scan(tree, prefix, after, limit)? {
                    if !visit(&k, &v) {
                        break;
                    }
                }
                Ok(())
            }
        })?;
        failed.map_or(Ok(()), Err)
    }
}
