//! The in-memory overlay of writes not yet checkpointed into the backend: latest value (as
//! written, before the codec; once logged also its stored form, so that the checkpoint does not
//! encode it again) or delete per key per `Tree` with the seq that wrote it, the keys
//! changed since the last log snapshot, point lookups, ordered range snapshots, post-checkpoint
//! cleanup, and the merge of an overlay snapshot over a backend scan.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::backend::{scan_start, Entries, Op, Tree};
use super::codec;

/// A value the writer took, shared with the overlay.
pub(crate) type Shared = Arc<Vec<u8>>;

/// A pending value: as written, or shared with what the writer took of it. A take under the
/// store's state lock (`take_dirty_shared`, `snapshot_shared`) moves a value behind an `Arc`
/// (one small allocation, on the writer thread) instead of copying its bytes; `Taken` copies
/// them after the lock is released (the takes held `submit`, and every command with it, for
/// 2-36 ms on a loaded machine; the copies were a quarter to a half of that).
#[derive(Clone)]
pub(crate) enum Val {
    Own(Vec<u8>),
    Shared(Shared),
}

impl Val {
    fn bytes(&self) -> &[u8] {
        match self {
            Val::Own(v) => v,
            Val::Shared(v) => v,
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }

    /// The value as shared (moved behind an `Arc` on the first take).
    fn share(&mut self) -> Shared {
        let a = match std::mem::replace(self, Val::Own(Vec::new())) {
            Val::Own(v) => Arc::new(v),
            Val::Shared(a) => a,
        };
        *self = Val::Shared(a.clone());
        a
    }
}

/// Latest pending write of one key.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) seq: u64,
    /// `None` = pending delete.
    pub(crate) value: Option<Val>,
    /// the value's stored form (`codec`), once the writer made it for the log (not counted in
    /// `bytes`: it is at most the value's size, and the bound keeps its meaning)
    pub(crate) stored: Option<Val>,
    /// a put of a key the store did not hold (`Op::fresh`), over no pending write
    pub(crate) fresh: bool,
    /// the seq of the last `take_dirty` that gave it
    pub(crate) taken: u64,
}

/// The pending writes of one `Tree`: a hash map (a write costs one hash and one key compare,
/// where an ordered map compared the key with ~log2(n) others sharing long prefixes), and the
/// keys in order only once range reads ask for them often (kept up to date from then on,
/// dropped when a checkpoint ends: a tree nobody scans never orders its keys, and the history
/// retention's sweep, a few scans a second, filters the keys instead).
#[derive(Clone, Default)]
struct Pendings {
    map: HashMap<Vec<u8>, Pending>,
    ordered: Option<BTreeSet<Vec<u8>>>,
    /// range reads since the last checkpoint, answered without `ordered`
    scans: usize,
}

/// Range reads of a tree between two checkpoints answered by filtering every key (each costs
/// one pass over the tree's keys, no allocation per key); later ones order the keys once.
const UNORDERED_SCANS: usize = 8;

impl Pendings {
    /// The keys in order (built on first use).
    fn order(&mut self) -> &BTreeSet<Vec<u8>> {
        let map = &self.map;
        self.ordered
            .get_or_insert_with(|| map.keys().cloned().collect())
    }
}

/// One map per `Tree`; see `Pendings`.
#[derive(Default)]
pub(crate) struct Overlay {
    trees: [Pendings; 5],
    /// keys changed since the last `take_dirty` (each once)
    dirty: Vec<(Tree, Vec<u8>)>,
    /// seq of the last `take_dirty`: a key written at or below it is clean again when rewritten
    snap_seq: u64,
    /// keys and values held (the memory bound)
    bytes: usize,
    entries: usize,
}

/// Overlay entries of a scan range; `None` values hide backend entries.
pub(crate) type PendingEntries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Entries taken for the log or a checkpoint, their values still shared with the overlay:
/// (tree, key, value, the value is in stored form).
pub(crate) struct Taken(Vec<(Tree, Vec<u8>, Option<Shared>, bool)>);

/// The bytes of a shared value: moved out if nobody else holds it, else copied.
fn owned(v: Shared) -> Vec<u8> {
    Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone())
}

impl Taken {
    /// The entries as ops, each with whether its value is in stored form (run it off the lock).
    pub(crate) fn ops(self) -> Vec<(Op, bool)> {
        self.0
            .into_iter()
            .map(|(tree, key, value, stored)| {
                let op = Op {
                    tree,
                    key,
                    value: value.map(owned),
                    fresh: false,
                };
                (op, stored)
            })
            .collect()
    }

    /// The entries as ops (values as written: what `take_dirty_shared` gives).
    pub(crate) fn plain_ops(self) -> Vec<Op> {
        self.ops().into_iter().map(|(op, _)| op).collect()
    }
}

impl Overlay {
    /// Records `ops` as written by `seq` (later ops of the same key win). A delete of a fresh
    /// put (`Op::create`) not yet taken for the log or a checkpoint forgets the key: neither
    /// the log nor the backend ever saw it, and the backend does not hold it.
    pub(crate) fn record(&mut self, seq: u64, ops: Vec<Op>) {
        for op in ops {
            let t = &mut self.trees[op.tree.index()];
            let vlen = op.value.as_ref().map_or(0, Vec::len);
            // one hash per op (the entry), where a lookup and an insert or remove took two
            match t.map.entry(op.key) {
                Entry::Occupied(mut e) => {
                    let p = e.get_mut();
                    if op.value.is_none() && p.fresh && p.seq > self.snap_seq {
                        // still in `dirty`: `take_dirty` skips a key it does not find
                        let len = p.value.as_ref().map_or(0, Val::len);
                        let (key, _) = e.remove_entry();
                        if let Some(o) = &mut t.ordered {
                            o.remove(&key);
                        }
                        self.bytes -= key.len() + len;
                        self.entries -= 1;
                        continue;
                    }
                    if p.seq <= self.snap_seq {
                        self.dirty.push((op.tree, e.key().clone()));
                    }
                    let p = e.get_mut();
                    self.bytes = self.bytes - p.value.as_ref().map_or(0, Val::len) + vlen;
                    p.seq = seq;
                    p.value = op.value.map(Val::Own);
                    p.stored = None;
                    // over a pending write (a delete: the backend may hold the key) never fresh
                    p.fresh = false;
                }
                Entry::Vacant(v) => {
                    let key = v.key().clone();
                    self.bytes += key.len() + vlen;
                    self.entries += 1;
                    if let Some(o) = &mut t.ordered {
                        o.insert(key.clone());
                    }
                    v.insert(Pending {
                        seq,
                        fresh: op.fresh && op.value.is_some(),
                        value: op.value.map(Val::Own),
                        stored: None,
                        taken: 0,
                    });
                    self.dirty.push((op.tree, key));
                }
            }
        }
    }

    /// The latest writes of every key changed since the previous call whose seq is above
    /// `logged` (what the next log record must hold), as of `seq` (the last seq handed out).
    #[cfg(test)]
    pub(crate) fn take_dirty(&mut self, seq: u64, logged: u64) -> Vec<Op> {
        self.take_dirty_shared(seq, logged).plain_ops()
    }

    /// `take_dirty` with the values still shared (`Taken::plain_ops` copies them off the lock).
    pub(crate) fn take_dirty_shared(&mut self, seq: u64, logged: u64) -> Taken {
        self.snap_seq = seq;
        let keys = std::mem::take(&mut self.dirty);
        let mut ops = Vec::with_capacity(keys.len());
        for (tree, key) in keys {
            if let Some(p) = self.trees[tree.index()].map.get_mut(key.as_slice()) {
                // a key forgotten (fresh, deleted) and written again is listed twice
                if p.seq > logged && p.taken != seq {
                    p.taken = seq;
                    ops.push((tree, key, p.value.as_mut().map(Val::share), false));
                }
            }
        }
        Taken(ops)
    }

    /// After a checkpoint that did not happen: every key written after `logged` is dirty again.
    pub(crate) fn mark_dirty_above(&mut self, logged: u64) {
        self.dirty.clear();
        for tree in Tree::ALL {
            for (k, p) in self.trees[tree.index()].map.iter_mut() {
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
    pub(crate) fn keep_stored(&mut self, seq: u64, ops: Vec<Op>) {
        for op in ops {
            let Some(v) = op.value.filter(|_| codec::applies(op.tree, &op.key)) else {
                continue;
            };
            if let Some(p) = self.trees[op.tree.index()].map.get_mut(op.key.as_slice()) {
                if p.seq <= seq && p.value.is_some() {
                    p.stored = Some(Val::Own(v));
                }
            }
        }
    }

    /// True if a key changed since the last `take_dirty` / `snapshot`.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Every entry (what a checkpoint writes), as of `seq`, each with its value in stored form
    /// when the writer kept it (`true`) or as written; the dirty list is cleared (a checkpoint
    /// covers it). In no particular order: `sort_ops` orders them (off the state lock).
    #[cfg(test)]
    pub(crate) fn snapshot(&mut self, seq: u64) -> Vec<(Op, bool)> {
        self.snapshot_shared(seq).ops()
    }

    /// `snapshot` with the values still shared (`Taken::ops` copies them off the lock).
    pub(crate) fn snapshot_shared(&mut self, seq: u64) -> Taken {
        self.snap_seq = seq;
        self.dirty = Vec::new();
        let mut ops = Vec::with_capacity(self.entries);
        for tree in Tree::ALL {
            for (k, p) in self.trees[tree.index()].map.iter_mut() {
                let (value, stored) = match &mut p.stored {
                    Some(s) => (Some(s.share()), true),
                    None => (p.value.as_mut().map(Val::share), false),
                };
                ops.push((tree, k.clone(), value, stored));
            }
        }
        Taken(ops)
    }

    /// A copy of the entries (for a snapshot; nothing is dirty in it), its keys in order.
    pub(crate) fn copy(&self) -> Overlay {
        Overlay {
            trees: self.trees.clone(),
            dirty: Vec::new(),
            snap_seq: self.snap_seq,
            bytes: self.bytes,
            entries: self.entries,
        }
    }

    /// Orders the keys of every tree (a snapshot's copy: its `range` reads take `&self`).
    pub(crate) fn order_all(&mut self) {
        for t in &mut self.trees {
            t.order();
        }
    }

    /// Number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Bytes of keys and values held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// `Some(value_or_delete)` if `key` has a pending write.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Option<Option<Vec<u8>>> {
        let p = self.trees[tree.index()].map.get(key)?;
        Some(p.value.as_ref().map(|v| v.bytes().to_vec()))
    }

    /// After ops up to `last` are committed the backend serves them: drop their entries unless a
    /// later (still pending) seq overwrote them.
    pub(crate) fn remove_committed(&mut self, ops: &[Op], last: u64) {
        for op in ops {
            let t = &mut self.trees[op.tree.index()];
            // one hash per op: removed, and put back in the rare case it was written again
            let Some((key, p)) = t.map.remove_entry(op.key.as_slice()) else {
                continue;
            };
            if p.seq > last {
                t.map.insert(key, p);
                continue;
            }
            if let Some(o) = &mut t.ordered {
                o.remove(&key);
            }
            self.bytes -= key.len() + p.value.as_ref().map_or(0, Val::len);
            self.entries -= 1;
        }
    }

    /// A checkpoint ended (its entries removed): the keys' order is built again by the next
    /// range read, if any (kept up to date meanwhile, it costs every new key an ordered insert);
    /// an emptied table is given back (a table with entries keeps its capacity: growing it
    /// again under load would rehash every key while `submit` waits).
    pub(crate) fn checkpointed(&mut self) {
        for t in &mut self.trees {
            t.ordered = None;
            t.scans = 0;
            if t.map.is_empty() {
                t.map = HashMap::new();
            }
        }
    }

    /// Entries with `prefix` after `after`, ascending, up to and including the `limit`-th put
    /// (anything past it cannot be among the first `limit` results).
    pub(crate) fn range(
        &mut self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> PendingEntries {
        let t = &mut self.trees[tree.index()];
        if t.map.is_empty() {
            return Vec::new();
        }
        if t.ordered.is_none() && t.scans < UNORDERED_SCANS {
            t.scans += 1;
            return range_unordered(&t.map, prefix, after, limit);
        }
        t.order();
        self.range_ordered(tree, prefix, after, limit)
    }

    /// `range` over keys already in order (`order_all`, or a tree without entries).
    pub(crate) fn range_ordered(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> PendingEntries {
        let t = &self.trees[tree.index()];
        let Some(ordered) = &t.ordered else {
            return Vec::new();
        };
        let (start, exclusive) = scan_start(prefix, after);
        let lower = if exclusive {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        let hits = ordered
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            // `ordered` holds exactly the map's keys
            .filter_map(|k| t.map.get(k.as_slice()).map(|p| (k, p)));
        up_to_puts(hits, limit)
    }
}

/// The entries of `hits` (in key order) up to and including the `limit`-th put.
fn up_to_puts<'a>(
    hits: impl Iterator<Item = (&'a Vec<u8>, &'a Pending)>,
    limit: usize,
) -> PendingEntries {
    let mut out = Vec::new();
    let mut puts = 0;
    for (k, p) in hits {
        out.push((k.clone(), p.value.as_ref().map(|v| v.bytes().to_vec())));
        if p.value.is_some() {
            puts += 1;
            if puts >= limit {
                break;
            }
        }
    }
    out
}

/// `Overlay::range` by filtering every key of `map`, then sorting the hits (the same entries
/// an ordered iteration from the start bound yields while keys have `prefix`).
fn range_unordered(
    map: &HashMap<Vec<u8>, Pending>,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> PendingEntries {
    let (start, exclusive) = scan_start(prefix, after);
    let mut hits: Vec<(&Vec<u8>, &Pending)> = map
        .iter()
        .filter(|(k, _)| {
            k.starts_with(prefix)
                && match exclusive {
                    true => k.as_slice() > start,
                    false => k.as_slice() >= start,
                }
        })
        .collect();
    hits.sort_unstable_by(|a, b| a.0.cmp(b.0));
    up_to_puts(hits.into_iter(), limit)
}

/// Orders checkpoint ops by tree, then key (the order an ordered overlay gave them: a backend
/// B-tree takes sorted inserts best); keys are unique per tree.
pub(crate) fn sort_ops(ops: &mut [(Op, bool)]) {
    ops.sort_unstable_by(|(a, _), (b, _)| {
        (a.tree.index(), a.key.as_slice()).cmp(&(b.tree.index(), b.key.as_slice()))
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the log append encoded is what the checkpoint writes, unless the key was written
    /// again after it was taken for the log (then its new value, to encode).
    #[test]
    fn stored_forms_are_kept_for_logged_values_only() {
        let mut o = Overlay::default();
        o.record(
            1,
            vec![
                Op::put(Tree::Things, "a", "A1"),
                Op::put(Tree::Things, "b", "B1"),
            ],
        );
        o.record(1, vec![Op::put(Tree::Index, "i", "I1")]);
        let taken = o.take_dirty(1, 0);
        o.record(2, vec![Op::put(Tree::Things, "b", "B2")]);
        let encoded = taken
            .into_iter()
            .map(|op| Op {
                value: op.value.map(|v| [b"stored:", &v[..]].concat()),
                ..op
            })
            .collect();
        o.keep_stored(1, encoded);
        let mut snap = o.snapshot(2);
        sort_ops(&mut snap);
        let snap: Vec<_> = snap
            .into_iter()
            .map(|(op, stored)| (op.tree, op.key, op.value.unwrap(), stored))
            .collect();
        let v = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            snap,
            vec![
                (Tree::Things, v("a"), v("stored:A1"), true),
                (Tree::Things, v("b"), v("B2"), false),
                (Tree::Index, v("i"), v("I1"), false),
            ]
        );
        assert_eq!(
            o.get(Tree::Things, b"a"),
            Some(Some(v("A1"))),
            "reads: as written"
        );
    }
}

#[cfg(test)]
mod fresh_tests {
    use super::*;

    /// A fresh put deleted before anything took it is forgotten (no delete to log or
    /// checkpoint); once taken for the log, or over a pending delete, a delete stays.
    #[test]
    fn a_fresh_put_deleted_before_it_was_logged_is_forgotten() {
        let mut o = Overlay::default();
        o.record(1, vec![Op::create(Tree::Index, "a", "1")]);
        o.record(2, vec![Op::delete(Tree::Index, "a")]);
        assert_eq!((o.len(), o.bytes(), o.get(Tree::Index, b"a")), (0, 0, None));
        // taken for the log: its delete must be logged too
        o.record(3, vec![Op::create(Tree::Index, "b", "1")]);
        assert_eq!(o.take_dirty(3, 0).len(), 1);
        o.record(4, vec![Op::delete(Tree::Index, "b")]);
        assert_eq!(o.get(Tree::Index, b"b"), Some(None));
        // over a pending delete (the backend may hold it): not fresh
        o.record(5, vec![Op::create(Tree::Index, "b", "2")]);
        o.record(6, vec![Op::delete(Tree::Index, "b")]);
        assert_eq!(o.get(Tree::Index, b"b"), Some(None));
        // a plain put is never forgotten
        o.record(7, vec![Op::put(Tree::Index, "c", "1")]);
        o.record(8, vec![Op::delete(Tree::Index, "c")]);
        assert_eq!(o.get(Tree::Index, b"c"), Some(None));
        // forgotten, then written again: logged once
        o.record(9, vec![Op::create(Tree::Index, "d", "1")]);
        o.record(10, vec![Op::delete(Tree::Index, "d")]);
        o.record(11, vec![Op::create(Tree::Index, "d", "2")]);
        let logged = o.take_dirty(11, 4);
        let d: Vec<_> = logged.iter().filter(|op| op.key == b"d").collect();
        assert_eq!(d.len(), 1, "{logged:?}");
        assert_eq!(d[0].value.as_deref(), Some(&b"2"[..]));
        // a checkpoint that did not happen: taken again by a take of the same seq
        o.mark_dirty_above(4);
        assert!(o.take_dirty(11, 4).iter().any(|op| op.key == b"d"));
    }
}
