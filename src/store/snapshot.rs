//! A consistent point-in-time copy of the whole store, read while the gateway goes on writing
//! (backups): a copy of the in-memory overlay taken together with a view of the backend, so
//! every key reads as of one seq. redb gives that view by itself (an MVCC read transaction);
//! for sled the store holds its checkpoints while the snapshot lives (writes go on into the
//! log and the overlay until one of them is full, then wait for the snapshot to end).

use std::sync::Arc;

use super::backend::{Entries, StoreError, Tree, View};
use super::overlay::{self, Overlay};
use super::{codec, failed_error, Shared, Store};

/// The store as of one seq. Dropping it releases what it holds.
pub struct Snapshot {
    shared: Arc<Shared>,
    /// the backend as of the snapshot (`None`: the live backend, checkpoints held)
    view: Option<Box<dyn View>>,
    /// the overlay as of the snapshot
    pending: Overlay,
    seq: u64,
}

impl Store {
    /// Takes a snapshot. Blocking (it may wait for a running checkpoint to end): call it off
    /// the executor.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let sh = &self.inner.shared;
        let mut st = sh.lock();
        if st.failed || st.closing {
            return Err(if st.failed {
                failed_error(&st)
            } else {
                StoreError::new("store closed")
            });
        }
        // Under the state lock nothing is submitted or taken out of the overlay: the overlay
        // copy and the backend as seen now together hold the state as of `last_seq` (a
        // checkpoint that commits meanwhile only moves entries the copy still has).
        let view = if sh.has_views {
            sh.backend.view()?
        } else {
            while st.committing {
                st = sh.gate.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.snapshots += 1;
            None
        };
        let mut pending = st.overlay.copy();
        let seq = st.last_seq;
        drop(st);
        pending.order_all();
        Ok(Snapshot {
            shared: Arc::clone(sh),
            view,
            pending,
            seq,
        })
    }
}

impl Snapshot {
    /// The seq the snapshot holds the state of.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Up to `limit` entries of `tree` after `after`, ascending, as written (decoded). Fails
    /// once the store is closing or failed (a backup then ends incomplete).
    pub fn scan(
        &self,
        tree: Tree,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        {
            let st = self.shared.lock();
            if st.failed {
                return Err(failed_error(&st));
            }
            if st.closing {
                return Err(StoreError::new("store closing"));
            }
        }
        let pending = self.pending.range_ordered(tree, b"", after, limit);
        let want = limit.saturating_add(pending.len());
        let base = match &self.view {
            Some(v) => v.scan(tree, b"", after, want)?,
            None => self.shared.backend.scan(tree, b"", after, want)?,
        };
        let base = codec::decode_entries(tree, base)?;
        Ok(overlay::merge(pending, base, limit))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.view.is_none() {
            let mut st = self.shared.lock();
            st.snapshots = st.snapshots.saturating_sub(1);
            if st.snapshots == 0 {
                self.shared.gate.notify_all();
                // a checkpoint may have been put off
                self.shared.wake_writer(&st);
            }
        }
    }
}
