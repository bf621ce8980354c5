//! Commit batching of the store writer: a batch of queued units is reduced to the last write
//! per key before it goes to the backend as one atomic commit.

use super::Op;

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
