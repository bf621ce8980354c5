//! The overlay as it was before round 4 (one `BTreeMap` per tree), kept as the reference model
//! of `overlay_equiv.rs`: the hash-map overlay must answer every call as this one does.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::store::backend::{scan_start, Op, Tree};
use crate::store::codec;
use crate::store::overlay::PendingEntries;

/// Latest pending write of one key.
#[derive(Clone)]
pub(super) struct Pending {
    pub(super) seq: u64,
    /// `None` = pending delete.
    pub(super) value: Option<Vec<u8>>,
    /// the value's stored form (`codec`), once the writer made it for the log (not counted in
    /// `bytes`: it is at most the value's size, and the bound keeps its meaning)
    pub(super) stored: Option<Vec<u8>>,
    /// a put of a key the store did not hold (`Op::fresh`), over no pending write
    pub(super) fresh: bool,
    /// the seq of the last `take_dirty` that gave it
    pub(super) taken: u64,
}

/// One ordered map per `Tree` (ordered so scans can merge).
#[derive(Default)]
pub(super) struct Overlay {
    trees: [BTreeMap<Vec<u8>, Pending>; 5],
    /// keys changed since the last `take_dirty` (each once)
    dirty: Vec<(Tree, Vec<u8>)>,
    /// seq of the last `take_dirty`: a key written at or below it is clean again when rewritten
    snap_seq: u64,
    /// keys and values held (the memory bound)
    bytes: usize,
    entries: usize,
}

impl Overlay {
    /// Records `ops` as written by `seq` (later ops of the same key win). A delete of a fresh
    /// put (`Op::create`) not yet taken for the log or a checkpoint forgets the key: neither
    /// the log nor the backend ever saw it, and the backend does not hold it.
    pub(super) fn record(&mut self, seq: u64, ops: Vec<Op>) {
        for op in ops {
            let map = &mut self.trees[op.tree.index()];
            let vlen = op.value.as_ref().map_or(0, Vec::len);
            match map.get_mut(op.key.as_slice()) {
                Some(p) if op.value.is_none() && p.fresh && p.seq > self.snap_seq => {
                    // still in `dirty`: `take_dirty` skips a key it does not find
                    let len = p.value.as_ref().map_or(0, Vec::len);
                    map.remove(op.key.as_slice());
                    self.bytes -= op.key.len() + len;
                    self.entries -= 1;
                }
                Some(p) => {
                    if p.seq <= self.snap_seq {
                        self.dirty.push((op.tree, op.key));
                    }
                    self.bytes = self.bytes - p.value.as_ref().map_or(0, Vec::len) + vlen;
                    p.seq = seq;
                    p.value = op.value;
                    p.stored = None;
                    // over a pending write (a delete: the backend may hold the key) never fresh
                    p.fresh = false;
                }
                None => {
                    self.bytes += op.key.len() + vlen;
                    self.entries += 1;
                    self.dirty.push((op.tree, op.key.clone()));
                    map.insert(
                        op.key,
                        Pending {
                            seq,
                            fresh: op.fresh && op.value.is_some(),
                            value: op.value,
                            stored: None,
                            taken: 0,
                        },
                    );
                }
            }
        }
    }

    /// The latest writes of every key changed since the previous call whose seq is above
    /// `logged` (what the next log record must hold), as of `seq` (the last seq handed out).
    pub(super) fn take_dirty(&mut self, seq: u64, logged: u64) -> Vec<Op> {
        self.snap_seq = seq;
        let keys = std::mem::take(&mut self.dirty);
        let mut ops = Vec::with_capacity(keys.len());
        for (tree, key) in keys {
            if let Some(p) = self.trees[tree.index()].get_mut(key.as_slice()) {
                // a key forgotten (fresh, deleted) and written again is listed twice
                if p.seq > logged && p.taken != seq {
                    p.taken = seq;
                    let value = p.value.clone();
                    ops.push(Op {
                        tree,
                        key,
                        value,
                        fresh: false,
                    });
                }
            }
        }
        ops
    }

    /// After a checkpoint that did not happen: every key written after `logged` is dirty again.
    pub(super) fn mark_dirty_above(&mut self, logged: u64) {
        self.dirty.clear();
        for tree in Tree::ALL {
            for (k, p) in self.trees[tree.index()].iter_mut() {
                if p.seq > logged {
                    p.taken = 0; // to be taken again, whatever the seq of that take
                    self.dirty.push((tree, k.clone()));
                }
            }
        }
        self.snap_seq = logged;
    }

    /// Keeps the stored forms of values the writer logged (`ops`: what `take_dirty(seq, _)`
    /// gave, encoded); a key written again since then (a seq above `seq`) keeps none.
    pub(super) fn keep_stored(&mut self, seq: u64, ops: Vec<Op>) {
        for op in ops {
            let Some(v) = op.value.filter(|_| codec::applies(op.tree, &op.key)) else {
                continue;
            };
            if let Some(p) = self.trees[op.tree.index()].get_mut(op.key.as_slice()) {
                if p.seq <= seq && p.value.is_some() {
                    p.stored = Some(v);
                }
            }
        }
    }

    /// True if a key changed since the last `take_dirty` / `snapshot`.
    pub(super) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Every entry (what a checkpoint writes), as of `seq`, each with its value in stored form
    /// when the writer kept it (`true`) or as written; the dirty list is cleared (a checkpoint
    /// covers it).
    pub(super) fn snapshot(&mut self, seq: u64) -> Vec<(Op, bool)> {
        self.snap_seq = seq;
        self.dirty = Vec::new();
        let mut ops = Vec::with_capacity(self.entries);
        for tree in Tree::ALL {
            for (k, p) in &self.trees[tree.index()] {
                let (value, stored) = match &p.stored {
                    Some(s) => (Some(s.clone()), true),
                    None => (p.value.clone(), false),
                };
                ops.push((
                    Op {
                        tree,
                        key: k.clone(),
                        value,
                        fresh: false,
                    },
                    stored,
                ));
            }
        }
        ops
    }

    /// A copy of the entries (for a snapshot; nothing is dirty in it).
    pub(super) fn copy(&self) -> Overlay {
        Overlay {
            trees: self.trees.clone(),
            dirty: Vec::new(),
            snap_seq: self.snap_seq,
            bytes: self.bytes,
            entries: self.entries,
        }
    }

    /// Number of keys held.
    pub(super) fn len(&self) -> usize {
        self.entries
    }

    /// Bytes of keys and values held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// `Some(value_or_delete)` if `key` has a pending write.
    pub(super) fn get(&self, tree: Tree, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.trees[tree.index()].get(key).map(|p| &p.value)
    }

    /// After ops up to `last` are committed the backend serves them: drop their entries unless a
    /// later (still pending) seq overwrote them.
    pub(super) fn remove_committed(&mut self, ops: &[Op], last: u64) {
        for op in ops {
            let map = &mut self.trees[op.tree.index()];
            if map.get(op.key.as_slice()).is_some_and(|p| p.seq <= last) {
                if let Some(p) = map.remove(op.key.as_slice()) {
                    self.bytes -= op.key.len() + p.value.as_ref().map_or(0, Vec::len);
                    self.entries -= 1;
                }
            }
        }
    }

    /// Entries with `prefix` after `after`, ascending, up to and including the `limit`-th put
    /// (anything past it cannot be among the first `limit` results).
    pub(super) fn range(
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
