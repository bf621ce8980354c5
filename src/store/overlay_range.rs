//! Range reads of the overlay's generations: one tree's pending writes and when its keys get
//! ordered, its hits in key order (ordered keys, or filtered and sorted), their merge across
//! generations (the newest write of a key wins), the order of a checkpoint's ops, and the merge
//! of an overlay range over a backend scan.

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::backend::{scan_start, Entries};
use super::overlay::Pending;
use crate::fasthash::Map;

/// The pending writes of one `Tree` in one generation: a hash map (one hash and one key
/// compare per write), and the keys in order only once range reads ask for them often (kept
/// up to date in the live generation from then on; a tree nobody scans never orders its keys).
#[derive(Clone, Default)]
pub(crate) struct Pendings {
    pub(crate) map: Map<Vec<u8>, Pending>,
    pub(crate) ordered: Option<BTreeSet<Vec<u8>>>,
    /// range reads answered without `ordered`
    pub(crate) scans: usize,
    /// the keys in order, built through `&self` while the writer shares this frozen generation
    /// (`prepare_shared`); moved into `ordered` before the generation changes again (`settle`)
    pub(crate) shared_order: OnceLock<BTreeSet<Vec<u8>>>,
    /// range reads of this frozen generation while it was shared, without an order
    shared_scans: SharedScans,
}

/// A count of range reads made through `&` (a shared frozen generation).
#[derive(Default)]
struct SharedScans(AtomicUsize);

impl Clone for SharedScans {
    fn clone(&self) -> Self {
        SharedScans(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

/// Range reads of a tree answered by filtering every key (each costs one pass over the tree's
/// keys, no allocation per key); later ones order the keys once.
const UNORDERED_SCANS: usize = 8;

/// Counts a range read of a tree without ordered keys; orders them after `UNORDERED_SCANS`.
pub(crate) fn prepare(t: &mut Pendings) {
    t.settle();
    if t.map.is_empty() || t.ordered.is_some() {
        return;
    }
    if t.scans < UNORDERED_SCANS {
        t.scans += 1;
    } else {
        t.order();
    }
}

/// `prepare` for a frozen generation the writer shares (read through `&`): the keys are ordered
/// once after `UNORDERED_SCANS` reads, so range reads during a long checkpoint do not each
/// filter and sort every key of it under the state lock.
pub(crate) fn prepare_shared(t: &Pendings) {
    if t.map.is_empty() || t.ordered.is_some() || t.shared_order.get().is_some() {
        return;
    }
    if t.shared_scans.0.fetch_add(1, Ordering::Relaxed) >= UNORDERED_SCANS {
        t.shared_order
            .get_or_init(|| t.map.keys().cloned().collect());
    }
}

impl Pendings {
    /// The keys in order (built on first use).
    pub(crate) fn order(&mut self) -> &BTreeSet<Vec<u8>> {
        self.settle();
        let map = &self.map;
        self.ordered
            .get_or_insert_with(|| map.keys().cloned().collect())
    }

    /// Before a change through `&mut`: an order built while shared becomes `ordered` (kept up
    /// to date from then on).
    pub(crate) fn settle(&mut self) {
        if let Some(o) = self.shared_order.take() {
            self.ordered.get_or_insert(o);
        }
    }

    /// The keys in order, if either way built.
    pub(crate) fn keys_in_order(&self) -> Option<&BTreeSet<Vec<u8>>> {
        self.ordered.as_ref().or(self.shared_order.get())
    }
}

/// Overlay entries of a scan range; `None` values hide backend entries.
pub(crate) type PendingEntries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Entries of one tree of one generation from a start bound on, in key order.
pub(crate) type Hits<'a> = Box<dyn Iterator<Item = (&'a Vec<u8>, &'a Pending)> + 'a>;

/// The entries of `t` with `prefix` after `after`, ascending: over its ordered keys if it has
/// them, else by filtering every key and sorting the hits.
pub(crate) fn hits<'a>(t: &'a Pendings, prefix: &'a [u8], after: Option<&[u8]>) -> Hits<'a> {
    let (start, exclusive) = scan_start(prefix, after);
    match t.keys_in_order() {
        Some(ordered) => {
            let lower = if exclusive {
                Bound::Excluded(start)
            } else {
                Bound::Included(start)
            };
            let map = &t.map;
            Box::new(
                ordered
                    .range::<[u8], _>((lower, Bound::Unbounded))
                    .take_while(move |k| k.starts_with(prefix))
                    // `ordered` holds exactly the map's keys
                    .filter_map(move |k| map.get(k.as_slice()).map(|p| (k, p))),
            )
        }
        None => Box::new(range_unordered(&t.map, prefix, start, exclusive).into_iter()),
    }
}

/// The hits of `map` (filtered, then sorted): the entries an ordered iteration from the start
/// bound yields while keys have `prefix`.
fn range_unordered<'a>(
    map: &'a Map<Vec<u8>, Pending>,
    prefix: &[u8],
    start: &[u8],
    exclusive: bool,
) -> Vec<(&'a Vec<u8>, &'a Pending)> {
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
    hits
}

/// `sources` (newest generation first, each in key order) merged, the newest write of a key
/// winning, up to and including the `limit`-th put.
pub(crate) fn merged_range(sources: Vec<Hits<'_>>, limit: usize) -> PendingEntries {
    let mut sources: Vec<Peekable<Hits<'_>>> =
        sources.into_iter().map(Iterator::peekable).collect();
    if sources.len() == 1 {
        return up_to_puts(sources.pop().into_iter().flatten(), limit);
    }
    let merged = std::iter::from_fn(move || {
        // the smallest key among the heads; of equal keys the newest generation's (first)
        let mut best: Option<(usize, &Vec<u8>)> = None;
        for (i, s) in sources.iter_mut().enumerate() {
            if let Some(&(k, _)) = s.peek() {
                if best.is_none_or(|(_, b)| k < b) {
                    best = Some((i, k));
                }
            }
        }
        let (i, k) = best?;
        let hit = sources[i].next();
        for s in sources.iter_mut().skip(i + 1) {
            s.next_if(|&(o, _)| o == k);
        }
        hit
    });
    up_to_puts(merged, limit)
}

/// The entries of `hits` (in key order) up to and including the `limit`-th put.
fn up_to_puts<'a>(
    hits: impl Iterator<Item = (&'a Vec<u8>, &'a Pending)>,
    limit: usize,
) -> PendingEntries {
    let mut out = Vec::new();
    let mut puts = 0;
    for (k, p) in hits {
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

/// `range` over a tree whose keys are in order (a snapshot's merged copy); none without.
pub(crate) fn range_ordered(
    t: &Pendings,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> PendingEntries {
    if t.keys_in_order().is_none() {
        return Vec::new();
    }
    up_to_puts(hits(t, prefix, after), limit)
}

/// Orders checkpoint ops by tree, then key (the order an ordered overlay gave them: a backend
/// B-tree takes sorted inserts best); keys are unique per tree.
#[cfg(test)]
pub(crate) fn sort_ops(ops: &mut [(super::backend::Op, bool)]) {
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
