//! The in-memory overlay of submitted-but-uncommitted writes: latest value (or delete) per key per
//! `Tree` with the seq that wrote it, point lookups, ordered range snapshots, post-commit cleanup,
//! and the merge of an overlay snapshot over a backend scan.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::backend::{scan_start, Entries, Op, Tree};

/// Latest pending write of one key.
pub(crate) struct Pending {
    pub(crate) seq: u64,
    /// `None` = pending delete.
    pub(crate) value: Option<Vec<u8>>,
}

/// One ordered map per `Tree` (ordered so scans can merge).
#[derive(Default)]
pub(crate) struct Overlay {
    trees: [BTreeMap<Vec<u8>, Pending>; 5],
}

/// Overlay entries of a scan range; `None` values hide backend entries.
pub(crate) type PendingEntries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

impl Overlay {
    /// Records `ops` as written by `seq` (later ops of the same key win).
    pub(crate) fn record(&mut self, seq: u64, ops: &[Op]) {
        for op in ops {
            let map = &mut self.trees[op.tree.index()];
            match map.get_mut(op.key.as_slice()) {
                Some(p) => {
                    p.seq = seq;
                    p.value.clone_from(&op.value);
                }
                None => {
                    let value = op.value.clone();
                    map.insert(op.key.clone(), Pending { seq, value });
                }
            }
        }
    }

    /// `Some(value_or_delete)` if `key` has a pending write.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.trees[tree.index()].get(key).map(|p| &p.value)
    }

    /// After ops up to `last` are committed the backend serves them: drop their entries unless a
    /// later (still pending) seq overwrote them.
    pub(crate) fn remove_committed(&mut self, ops: &[Op], last: u64) {
        for op in ops {
            let map = &mut self.trees[op.tree.index()];
            if map.get(op.key.as_slice()).is_some_and(|p| p.seq <= last) {
                map.remove(op.key.as_slice());
            }
        }
    }

    /// Entries with `prefix` after `after`, ascending, up to and including the `limit`-th put
    /// (anything past it cannot be among the first `limit` results).
    pub(crate) fn range(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> PendingEntries {
        let (start, exclusive) = scan_start(prefix, after);
        let lower = if exclusive {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        let mut out = Vec::new();
        let mut puts = 0;
        for (k, p) in self.trees[tree.index()].range::<[u8], _>((lower, Bound::Unbounded)) {
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.clone(), p.value.clone()));
            if p.value.is_some() {
                puts += 1;
                if puts >= limit {
                    break;
                }
            }
        }
        out
    }
}

/// Merges a sorted overlay snapshot (which shadows the backend: puts replace, deletes hide) with
/// sorted backend entries, returning at most `limit` entries.
pub(crate) fn merge(pending: PendingEntries, base: Entries, limit: usize) -> Entries {
    let mut out = Vec::with_capacity(limit.min(pending.len() + base.len()));
    let mut p = pending.into_iter().peekable();
    let mut b = base.into_iter().peekable();
    while out.len() < limit {
        let take_pending = match (p.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((pk, _)), Some((bk, _))) => {
                if pk == bk {
                    b.next(); // shadowed by the overlay
                    true
                } else {
                    pk < bk
                }
            }
        };
        if take_pending {
            if let Some((k, Some(v))) = p.next() {
                out.push((k, v));
            }
        } else if let Some(kv) = b.next() {
            out.push(kv);
        }
    }
    out
}
