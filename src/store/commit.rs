//! Commit batching policy of the store writer: how long it gathers work while nobody awaits
//! durability (`COALESCE`), the guard that marks a `durable()` caller as waiting (and wakes a
//! gathering writer), and the reduction of a batch to the last write per key.

use super::{Op, Shared};
use std::sync::atomic::Ordering;

/// While nobody awaits durability (answers without `twin-persisted`, no durable replies or
/// events queued), the writer gathers work this long before committing: fewer, larger commits
/// (a hot key written many times costs one write). A `durable()` caller ends the wait at once.
pub(super) const COALESCE: std::time::Duration = std::time::Duration::from_millis(2);
/// ... unless this many ops are already pending.
pub(super) const COALESCE_MAX_OPS: usize = 4096;

/// Marks a `durable()` caller as waiting for the writer; wakes a writer that is gathering work.
pub(super) struct Waiting<'a>(&'a Shared);

impl<'a> Waiting<'a> {
    pub(super) fn new(sh: &'a Shared) -> Waiting<'a> {
        // Under the lock: the writer either sees the waiter before it starts gathering, or is
        // already inside `wait_timeout` and gets the notification.
        let st = sh.lock();
        sh.waiters.fetch_add(1, Ordering::AcqRel);
        drop(st);
        sh.work.notify_one();
        Waiting(sh)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The ops of one atomic commit with every write that a later op of the same key overrides
/// removed (order otherwise kept). The commit is all-or-nothing, so the outcome on disk is the
/// same; a hot key written 1000 times while the previous fsync ran costs one write, not 1000.
pub(super) fn last_write_per_key(ops: Vec<Op>) -> Vec<Op> {
    if ops.len() < 2 {
        return ops;
    }
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(ops.len());
        let mut keep: Vec<bool> = ops
            .iter()
            .rev()
            .map(|op| seen.insert((op.tree, op.key.as_slice())))
            .collect();
        keep.reverse();
        keep
    };
    if keep.iter().all(|k| *k) {
        return ops;
    }
    ops.into_iter()
        .zip(keep)
        .filter_map(|(op, k)| k.then_some(op))
        .collect()
}
