//! The in-memory overlay of writes not yet checkpointed into the backend, in generations: the
//! live one (writes since the last log take) and frozen ones (taken for the log, shared with
//! the writer). A log take or a checkpoint freezes the live generation in O(1) under the state
//! lock; reads consult live, then frozen newest first; a checkpoint releases what it wrote.

use std::collections::hash_map::Entry;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use super::backend::{Op, Tree};
use super::codec;
#[cfg(test)]
pub(crate) use super::overlay_range::sort_ops;
pub(crate) use super::overlay_range::Pendings;
use super::overlay_range::{hits, merged_range, prepare, prepare_shared, range_ordered};
pub(crate) use super::overlay_range::{merge, PendingEntries};
use crate::fasthash::{map_with_capacity, Map};

/// Latest pending write of one key in one generation.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) seq: u64,
    /// `None` = pending delete.
    pub(crate) value: Option<Vec<u8>>,
    /// the value's stored form (`codec`), set by the writer (off the state lock) once it logged
    /// this frozen generation (not counted in `bytes`: at most the value's size)
    pub(crate) stored: OnceLock<Vec<u8>>,
    /// a put of a key the store did not hold (`Op::fresh`), over no pending write
    pub(crate) fresh: bool,
}

/// A frozen generation this small is merged into the one below it at the next take, if the two
/// together stay below `MERGE_MAX` entries (under the lock: bounded work) and the writer holds
/// neither: frequent small takes (a waiter per command) do not pile up generations for reads.
const MERGE_MAX: usize = 4096;

/// One generation: a map per `Tree`, with its keys' and values' bytes and entries.
#[derive(Clone, Default)]
pub(crate) struct Gen {
    trees: [Pendings; 5],
    bytes: usize,
    entries: usize,
}

impl Gen {
    fn get(&self, tree: Tree, key: &[u8]) -> Option<&Pending> {
        self.trees[tree.index()].map.get(key)
    }

    /// An empty generation whose tables have room for what `like` held (the live generation
    /// refills at the same pace: growing from nothing would rehash on the request path).
    fn sized_like(like: &Gen) -> Gen {
        let mut g = Gen::default();
        for (t, l) in g.trees.iter_mut().zip(&like.trees) {
            t.map = map_with_capacity(l.map.len());
        }
        g
    }

    /// Moves the entries of `newer` into `self` (newer wins).
    fn absorb(&mut self, newer: Gen) {
        let (mut bytes, mut entries) = (0, 0);
        for (t, n) in self.trees.iter_mut().zip(newer.trees) {
            t.settle();
            for (k, p) in n.map {
                let klen = k.len();
                if let Some(o) = &mut t.ordered {
                    if !t.map.contains_key(&k) {
                        o.insert(k.clone());
                    }
                }
                // the older entry (and the newer's copy of the key) is dropped
                if let Some(old) = t.map.insert(k, p) {
                    bytes += klen + old.value.as_ref().map_or(0, Vec::len);
                    entries += 1;
                }
            }
        }
        self.bytes = self.bytes - bytes + newer.bytes;
        self.entries = self.entries - entries + newer.entries;
    }
}

/// The live generation and the frozen ones (newest first, each with its id).
pub(crate) struct Overlay {
    live: Gen,
    frozen: Vec<(u64, Arc<Gen>)>,
    next_id: u64,
    /// a write since the last take (what the next log record must hold)
    dirty: bool,
    /// a checkpoint failed: the next log take gives every generation (entries above this
    /// seq, which count as not taken meanwhile)
    retake: Option<u64>,
    /// keys pending and the bytes of their key and latest value (the memory bound: a key
    /// pending in two generations counts once, as it did in one map)
    bytes: usize,
    entries: usize,
    /// `MERGE_MAX` (tests vary it)
    merge_max: usize,
}

impl Default for Overlay {
    fn default() -> Overlay {
        Overlay::with_merge_max(MERGE_MAX)
    }
}

/// Generations taken for the log or a checkpoint (shared with the overlay, read off the lock).
pub(crate) struct Taken {
    /// newest first
    gens: Vec<Arc<Gen>>,
    /// only entries above this seq (a log take), or all of them (`None`: a checkpoint)
    above: Option<u64>,
    /// the id of the newest generation taken (a checkpoint releases it and all older ones)
    through: u64,
}

/// A key taken, borrowed: (tree, key, value, whether the value is in stored form).
pub(crate) type TakenEntry<'a> = (Tree, &'a [u8], Option<&'a [u8]>, bool);

impl Taken {
    /// The newest entry of every key taken, each with whether its value is in stored form (a
    /// checkpoint's; a log take's values are as written). Copies the bytes: run it off the lock.
    pub(crate) fn ops(&self) -> Vec<(Op, bool)> {
        self.entries()
            .into_iter()
            .map(|(tree, key, value, stored)| {
                let op = Op {
                    tree,
                    key: key.to_vec(),
                    value: value.map(<[u8]>::to_vec),
                    fresh: false,
                };
                (op, stored)
            })
            .collect()
    }

    /// What `ops` gives, borrowed.
    pub(crate) fn entries(&self) -> Vec<TakenEntry<'_>> {
        let n = self.gens.iter().map(|g| g.entries).sum();
        let mut out = Vec::with_capacity(n);
        for (j, g) in self.gens.iter().enumerate() {
            // a key also written in a newer generation is taken from there
            let newer = &self.gens[..j];
            for tree in Tree::ALL {
                for (k, p) in &g.trees[tree.index()].map {
                    if self.above.is_some_and(|a| p.seq <= a)
                        || newer.iter().any(|n| n.get(tree, k).is_some())
                    {
                        continue;
                    }
                    let (value, stored) = match (self.above, p.stored.get()) {
                        (None, Some(s)) => (Some(s.as_slice()), true),
                        _ => (p.value.as_deref(), false),
                    };
                    out.push((tree, k.as_slice(), value, stored));
                }
            }
        }
        out
    }

    pub(crate) fn plain_ops(&self) -> Vec<Op> {
        self.ops().into_iter().map(|(op, _)| op).collect()
    }

    /// Keeps the stored forms of the values the writer logged (`ops`: `plain_ops`, encoded), so
    /// that a checkpoint does not encode them again. Off the lock: each is set once, on an
    /// entry of a frozen generation (which reads never take the stored form from).
    pub(crate) fn keep_stored(&self, ops: Vec<Op>) {
        for op in ops {
            let Some(v) = op.value.filter(|_| codec::applies(op.tree, &op.key)) else {
                continue;
            };
            if let Some(p) = self.gens.iter().find_map(|g| g.get(op.tree, &op.key)) {
                if p.value.is_some() {
                    let _ = p.stored.set(v);
                }
            }
        }
    }

    /// The id to hand to `Overlay::release` once the checkpoint committed.
    pub(crate) fn through(&self) -> u64 {
        self.through
    }
}

/// A delete of a fresh put that a failed checkpoint froze and no log take gave since (its seq
/// is above `retake`'s) forgets it, as a delete of one in the live generation does: neither the
/// log nor the backend saw it. Returns the bytes of key and value forgotten.
fn forget_frozen(
    frozen: &mut [(u64, Arc<Gen>)],
    retake: Option<u64>,
    tree: Tree,
    key: &[u8],
) -> Option<usize> {
    let logged = retake?;
    let (_, g) = frozen
        .iter_mut()
        .find(|(_, g)| g.get(tree, key).is_some())?;
    let p = g.get(tree, key)?;
    if !p.fresh || p.seq <= logged {
        return None;
    }
    // nobody else holds it between a failed checkpoint and the next take
    let g = Arc::get_mut(g)?;
    let t = &mut g.trees[tree.index()];
    t.settle();
    let (k, p) = t.map.remove_entry(key)?;
    if let Some(o) = &mut t.ordered {
        o.remove(&k);
    }
    let len = k.len() + p.value.as_ref().map_or(0, Vec::len);
    g.bytes -= len;
    g.entries -= 1;
    Some(len)
}

impl Overlay {
    /// An empty overlay that merges small frozen generations up to `merge_max` entries.
    pub(crate) fn with_merge_max(merge_max: usize) -> Overlay {
        Overlay {
            live: Gen::default(),
            frozen: Vec::new(),
            next_id: 0,
            dirty: false,
            retake: None,
            bytes: 0,
            entries: 0,
            merge_max,
        }
    }

    /// Records `ops` as written by `seq` (later ops of the same key win). A delete of a fresh
    /// put (`Op::create`) not yet taken for the log or a checkpoint forgets the key: neither
    /// the log nor the backend ever saw it, and the backend does not hold it.
    pub(crate) fn record(&mut self, seq: u64, ops: Vec<Op>) {
        self.dirty |= !ops.is_empty();
        let Overlay {
            live,
            frozen,
            retake,
            ..
        } = self;
        for op in ops {
            let tree = op.tree;
            let t = &mut live.trees[tree.index()];
            let vlen = op.value.as_ref().map_or(0, Vec::len);
            // one hash per op (the entry), where a lookup and an insert or remove took two
            match t.map.entry(op.key) {
                Entry::Occupied(mut e) => {
                    let p = e.get_mut();
                    if op.value.is_none() && p.fresh {
                        let (key, p) = e.remove_entry();
                        if let Some(o) = &mut t.ordered {
                            o.remove(&key);
                        }
                        let len = key.len() + p.value.as_ref().map_or(0, Vec::len);
                        live.bytes -= len;
                        live.entries -= 1;
                        self.bytes -= len;
                        self.entries -= 1;
                        continue;
                    }
                    let old = p.value.as_ref().map_or(0, Vec::len);
                    live.bytes = live.bytes - old + vlen;
                    self.bytes = self.bytes - old + vlen;
                    p.seq = seq;
                    p.value = op.value;
                    // over a pending write (a delete: the backend may hold the key) never fresh
                    p.fresh = false;
                }
                Entry::Vacant(v) => {
                    let klen = v.key().len();
                    if op.value.is_none() {
                        if let Some(len) = forget_frozen(frozen, *retake, tree, v.key()) {
                            self.bytes -= len;
                            self.entries -= 1;
                            continue;
                        }
                    }
                    live.bytes += klen + vlen;
                    live.entries += 1;
                    // a key frozen already is rewritten (counted once; never fresh: see above)
                    let under = frozen.iter().find_map(|(_, g)| g.get(tree, v.key()));
                    match under {
                        Some(u) => {
                            self.bytes = self.bytes - u.value.as_ref().map_or(0, Vec::len) + vlen
                        }
                        None => {
                            self.bytes += klen + vlen;
                            self.entries += 1;
                        }
                    }
                    if let Some(o) = &mut t.ordered {
                        o.insert(v.key().clone());
                    }
                    v.insert(Pending {
                        seq,
                        fresh: op.fresh && op.value.is_some() && under.is_none(),
                        value: op.value,
                        stored: OnceLock::new(),
                    });
                }
            }
        }
    }

    /// Freezes the live generation (if it holds anything): O(1) but for merging a small
    /// frozen generation into the one below it. Returns true if it froze one.
    fn freeze(&mut self) -> bool {
        if self.frozen.len() >= 2
            && self.frozen[0].1.entries + self.frozen[1].1.entries <= self.merge_max
        {
            let (id, top) = self.frozen.remove(0);
            match Arc::try_unwrap(top) {
                Ok(top) => match Arc::get_mut(&mut self.frozen[0].1) {
                    Some(below) => below.absorb(top),
                    None => self.frozen.insert(0, (id, Arc::new(top))),
                },
                Err(top) => self.frozen.insert(0, (id, top)),
            }
        }
        if self.live.entries == 0 {
            return false;
        }
        let fresh = Gen::sized_like(&self.live);
        let g = std::mem::replace(&mut self.live, fresh);
        self.next_id += 1;
        self.frozen.insert(0, (self.next_id, Arc::new(g)));
        true
    }

    /// The latest writes of every key changed since the previous take whose seq is above
    /// `logged` (what the next log record must hold); the live generation is frozen (O(1)).
    #[cfg(test)]
    pub(crate) fn take_dirty(&mut self, seq: u64, logged: u64) -> Vec<Op> {
        self.take_dirty_shared(seq, logged).plain_ops()
    }

    /// `take_dirty` with the values still shared (`Taken::plain_ops` copies them off the lock).
    pub(crate) fn take_dirty_shared(&mut self, _seq: u64, logged: u64) -> Taken {
        self.dirty = false;
        let froze = self.freeze();
        let gens = if self.retake.take().is_some() {
            self.frozen.iter().map(|(_, g)| Arc::clone(g)).collect()
        } else if froze {
            vec![Arc::clone(&self.frozen[0].1)]
        } else {
            Vec::new()
        };
        Taken {
            gens,
            above: Some(logged),
            through: self.next_id,
        }
    }

    /// After a checkpoint that did not happen: every key written after `logged` is dirty again.
    pub(crate) fn mark_dirty_above(&mut self, logged: u64) {
        self.retake = Some(logged);
        let above = |g: &Gen| {
            g.trees
                .iter()
                .any(|t| t.map.values().any(|p| p.seq > logged))
        };
        self.dirty = above(&self.live) || self.frozen.iter().any(|(_, g)| above(g));
    }

    /// True if a key changed since the last take / snapshot.
    pub(crate) fn has_dirty(&self) -> bool {
        self.dirty
    }

    /// Every entry (what a checkpoint writes), as of `seq`, each with its value in stored form
    /// when the writer kept it (`true`) or as written; nothing is dirty after (a checkpoint
    /// covers it). In no particular order: `sort_ops` orders them (off the state lock).
    #[cfg(test)]
    pub(crate) fn snapshot(&mut self, seq: u64) -> Vec<(Op, bool)> {
        self.snapshot_shared(seq).ops()
    }

    /// `snapshot` as the generations it covers (O(1): `Taken::ops` copies them off the lock).
    pub(crate) fn snapshot_shared(&mut self, _seq: u64) -> Taken {
        self.dirty = false;
        self.retake = None;
        self.freeze();
        Taken {
            gens: self.frozen.iter().map(|(_, g)| Arc::clone(g)).collect(),
            above: None,
            through: self.next_id,
        }
    }

    /// After a checkpoint of the generations up to `through` committed, the backend serves
    /// them: they are dropped (later writes are in newer generations). Returns them, to be
    /// freed after the lock is released. The keys' order of the live generation is built again
    /// by the next range read (kept up to date, it costs every new key an ordered insert), and
    /// its empty tables are given back (an idle gateway holds no room for a past burst).
    pub(crate) fn release(&mut self, through: u64) -> Vec<Arc<Gen>> {
        let keep = self
            .frozen
            .iter()
            .take_while(|(id, _)| *id > through)
            .count();
        let gone: Vec<Arc<Gen>> = self.frozen.drain(keep..).map(|(_, g)| g).collect();
        // what is left: the writes made while the checkpoint committed (the live generation)
        (self.entries, self.bytes) = match self.frozen.is_empty() {
            true => (self.live.entries, self.live.bytes),
            false => self.distinct(),
        };
        for t in &mut self.live.trees {
            t.ordered = None;
            t.scans = 0;
            // an empty table is given back (one with entries keeps its room: growing it again
            // under load would rehash every key while `submit` waits)
            if t.map.is_empty() {
                t.map = Map::default();
            }
        }
        gone
    }

    /// A copy of the entries (for a snapshot; nothing is dirty in it): the live generation
    /// copied, the frozen ones shared (`order_all` merges them, off the lock).
    pub(crate) fn copy(&self) -> Overlay {
        Overlay {
            live: self.live.clone(),
            frozen: self.frozen.clone(),
            next_id: self.next_id,
            dirty: false,
            retake: None,
            bytes: self.bytes,
            entries: self.entries,
            merge_max: self.merge_max,
        }
    }

    /// Merges every generation into one and orders its keys (a snapshot's copy: its
    /// `range_ordered` reads take `&self`).
    pub(crate) fn order_all(&mut self) {
        for (_, g) in std::mem::take(&mut self.frozen) {
            for (t, f) in self.live.trees.iter_mut().zip(&g.trees) {
                for (k, p) in &f.map {
                    t.map.entry(k.clone()).or_insert_with(|| p.clone());
                }
            }
        }
        for t in &mut self.live.trees {
            t.ordered = None;
            t.shared_order = OnceLock::new();
            t.order();
        }
    }

    /// Number of keys pending.
    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    /// Bytes of keys and values held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keys pending and their bytes, counted over every generation (O(n): `len` and `bytes`
    /// keep them up to date).
    pub(crate) fn distinct(&self) -> (usize, usize) {
        let mut seen = HashSet::new();
        let mut bytes = 0;
        let gens = std::iter::once(&self.live).chain(self.frozen.iter().map(|(_, g)| &**g));
        for g in gens {
            for (i, t) in g.trees.iter().enumerate() {
                for (k, p) in &t.map {
                    if seen.insert((i, k.clone())) {
                        bytes += k.len() + p.value.as_ref().map_or(0, Vec::len);
                    }
                }
            }
        }
        (seen.len(), bytes)
    }

    /// Number of frozen generations.
    #[cfg(test)]
    pub(crate) fn generations(&self) -> usize {
        self.frozen.len()
    }

    /// Trees of frozen generations whose keys were ordered while the writer shared them.
    #[cfg(test)]
    pub(crate) fn shared_orders(&self) -> usize {
        let trees = self.frozen.iter().flat_map(|(_, g)| &g.trees);
        trees.filter(|t| t.shared_order.get().is_some()).count()
    }

    /// The newest pending write of `key`, if any.
    fn pending(&self, tree: Tree, key: &[u8]) -> Option<&Pending> {
        self.live
            .get(tree, key)
            .or_else(|| self.frozen.iter().find_map(|(_, g)| g.get(tree, key)))
    }

    /// `Some(value_or_delete)` if `key` has a pending write.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Option<Option<Vec<u8>>> {
        Some(self.pending(tree, key)?.value.clone())
    }

    /// Entries with `prefix` after `after`, ascending, up to and including the `limit`-th put
    /// (anything past it cannot be among the first `limit` results); of a key pending in
    /// several generations, the newest write.
    pub(crate) fn range(
        &mut self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> PendingEntries {
        let i = tree.index();
        prepare(&mut self.live.trees[i]);
        for (_, g) in &mut self.frozen {
            // one the writer shares is ordered through `&` (`prepare_shared`)
            match Arc::get_mut(g) {
                Some(g) => prepare(&mut g.trees[i]),
                None => prepare_shared(&g.trees[i]),
            }
        }
        let sources = std::iter::once(&self.live)
            .chain(self.frozen.iter().map(|(_, g)| &**g))
            .map(|g| &g.trees[i])
            .filter(|t| !t.map.is_empty())
            .map(|t| hits(t, prefix, after))
            .collect();
        merged_range(sources, limit)
    }

    /// `range` over keys already in order (`order_all`: one generation).
    pub(crate) fn range_ordered(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> PendingEntries {
        range_ordered(&self.live.trees[tree.index()], prefix, after, limit)
    }
}
