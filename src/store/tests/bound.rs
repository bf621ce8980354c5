//! When the writer starts a checkpoint: at half the key bound (`[store] max_pending_keys`) or
//! at the byte bound, which grows with the key bound (larger, fewer checkpoints) and is never
//! below 4 MiB (what every store had before the key bound was configurable).

use crate::store::overlay::Overlay;
use crate::store::writer::{overlay_max_bytes, overlay_over_bound};
use crate::store::{Op, Options, Tree, DEFAULT_MAX_PENDING_OPS};

fn opts(keys: usize) -> Options {
    Options {
        max_pending_ops: keys,
        ..Options::default()
    }
}

/// An overlay of `n` keys of `each` bytes.
fn overlay(n: usize, each: usize) -> Overlay {
    let mut o = Overlay::default();
    for i in 0..n {
        o.record(
            i as u64 + 1,
            vec![Op::put(Tree::Things, format!("t{i}"), vec![b'x'; each])],
        );
    }
    o
}

#[test]
fn the_byte_bound_grows_with_the_key_bound_and_never_falls_below_4_mib() {
    assert_eq!(overlay_max_bytes(&opts(DEFAULT_MAX_PENDING_OPS)), 4 << 20);
    assert_eq!(
        overlay_max_bytes(&opts(64)),
        4 << 20,
        "small bounds: as before"
    );
    assert_eq!(overlay_max_bytes(&opts(131_072)), 8 << 20);
    // 5 MiB in 40 keys: a checkpoint at the default, not yet at twice the key bound
    let big = overlay(40, 128 << 10);
    assert!(overlay_over_bound(&opts(DEFAULT_MAX_PENDING_OPS), &big));
    assert!(!overlay_over_bound(&opts(131_072), &big));
    // half the key bound in small values: a checkpoint at the default only
    let many = overlay(DEFAULT_MAX_PENDING_OPS / 2, 8);
    assert!(overlay_over_bound(&opts(DEFAULT_MAX_PENDING_OPS), &many));
    assert!(!overlay_over_bound(&opts(131_072), &many));
}
