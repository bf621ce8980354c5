//! The overlay in generations against the one ordered map per tree it replaced
//! (`overlay_old.rs`): random sequences of writes (puts, fresh puts, deletes over keys sharing prefixes), log takes, kept
//! stored forms, checkpoints (snapshot + remove), failed checkpoints, snapshots' copies, point
//! reads and range reads; every answer must be the same (take and snapshot compared in key
//! order: the new overlay hands them out unordered, the writer sorts a checkpoint).

use super::overlay_old;
use crate::store::backend::{Op, Tree};
use crate::store::overlay::{self, Overlay};

const TREES: [Tree; 3] = [Tree::Things, Tree::Index, Tree::History];

fn key(rng: &mut fastrand::Rng) -> Vec<u8> {
    // few keys (rewrites, forgets, shadowing) with shared prefixes (range bounds)
    let a = rng.u8(b'a'..b'd');
    match rng.u8(0..3) {
        0 => vec![a],
        1 => vec![a, b'|', rng.u8(b'0'..b'4')],
        _ => vec![a, b'|', rng.u8(b'0'..b'4'), rng.u8(b'x'..b'z')],
    }
}

fn random_ops(rng: &mut fastrand::Rng) -> Vec<Op> {
    (0..rng.usize(1..6))
        .map(|_| {
            let tree = TREES[rng.usize(0..TREES.len())];
            let k = key(rng);
            let v = vec![b'v'; rng.usize(0..8)];
            match rng.u8(0..4) {
                0 => Op::delete(tree, k),
                1 => Op::create(tree, k, v),
                _ => Op::put(tree, k, v),
            }
        })
        .collect()
}

type Flat = Vec<(usize, Vec<u8>, Option<Vec<u8>>)>;

fn flat(ops: &[Op]) -> Flat {
    let mut f: Flat = ops
        .iter()
        .map(|op| (op.tree.index(), op.key.clone(), op.value.clone()))
        .collect();
    f.sort();
    f
}

type SnapFlat = Vec<(usize, Vec<u8>, Option<Vec<u8>>, bool)>;

fn snap_flat(ops: &[(Op, bool)]) -> SnapFlat {
    ops.iter()
        .map(|(op, s)| (op.tree.index(), op.key.clone(), op.value.clone(), *s))
        .collect()
}

fn stored_form(ops: &[Op]) -> Vec<Op> {
    ops.iter()
        .map(|op| Op {
            value: op.value.as_ref().map(|v| [b"s:", &v[..]].concat()),
            ..op.clone()
        })
        .collect()
}

fn same_reads(rng: &mut fastrand::Rng, new: &mut Overlay, old: &overlay_old::Overlay, step: usize) {
    assert_eq!(
        (new.len(), new.bytes(), new.has_dirty()),
        (old.len(), old.bytes(), old.has_dirty()),
        "step {step}"
    );
    assert_eq!(new.distinct(), (new.len(), new.bytes()), "step {step}");
    for _ in 0..4 {
        let tree = TREES[rng.usize(0..TREES.len())];
        let k = key(rng);
        assert_eq!(
            new.get(tree, &k),
            old.get(tree, &k).cloned(),
            "step {step} get {k:?}"
        );
        let prefix = &k[..rng.usize(0..=k.len())];
        let after = rng.bool().then(|| key(rng));
        let limit = rng.usize(1..6);
        assert_eq!(
            new.range(tree, prefix, after.as_deref(), limit),
            old.range(tree, prefix, after.as_deref(), limit),
            "step {step} range {prefix:?} after {after:?} limit {limit}"
        );
    }
}

#[test]
fn the_hash_overlay_answers_like_the_ordered_one() {
    // most frozen generations read at once (they must have been several)
    let mut deepest = 0;
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        // never merging generations (many of them), or merging the small ones
        let mut new = Overlay::with_merge_max([0, 4, 4096][seed as usize % 3]);
        let mut old = overlay_old::Overlay::default();
        let (mut seq, mut logged) = (0u64, 0u64);
        // what a log take gave and has not been kept yet (the writer's in-flight append)
        let mut taken: Option<(u64, overlay::Taken, Vec<Op>)> = None;

        for step in 0..200 {
            match rng.u8(0..10) {
                0..=4 => {
                    seq += 1;
                    let ops = random_ops(&mut rng);
                    new.record(seq, ops.clone());
                    old.record(seq, ops);
                }
                5 => {
                    let t = new.take_dirty_shared(seq, logged);
                    let (a, b) = (t.plain_ops(), old.take_dirty(seq, logged));
                    assert_eq!(flat(&a), flat(&b), "seed {seed} step {step} take");
                    taken = Some((seq, t, a));
                }
                6 => {
                    if let Some((s, t, ops)) = taken.take() {
                        t.keep_stored(stored_form(&ops));
                        old.keep_stored(s, stored_form(&ops));
                        logged = s;
                    }
                }
                7 => {
                    // a checkpoint: everything up to `seq`, then writes while it commits
                    let t = new.snapshot_shared(seq);
                    let mut a = t.ops();
                    let b = old.snapshot(seq);
                    overlay::sort_ops(&mut a);
                    assert_eq!(
                        snap_flat(&a),
                        snap_flat(&b),
                        "seed {seed} step {step} snapshot"
                    );
                    let last = seq;
                    for _ in 0..rng.usize(0..3) {
                        seq += 1;
                        let ops = random_ops(&mut rng);
                        new.record(seq, ops.clone());
                        old.record(seq, ops);
                    }
                    let ops: Vec<Op> = a.into_iter().map(|(op, _)| op).collect();
                    if rng.u8(0..4) == 0 {
                        // it did not happen (disk full)
                        new.mark_dirty_above(logged);
                        old.mark_dirty_above(logged);
                    } else {
                        for chunk in ops.chunks(3) {
                            old.remove_committed(chunk, last);
                        }
                        drop(new.release(t.through()));
                        logged = last;
                    }
                    taken = None;
                }
                8 => {
                    let mut a = new.copy();
                    let b = old.copy();
                    a.order_all();
                    for tree in TREES {
                        let k = key(&mut rng);
                        assert_eq!(
                            a.range_ordered(tree, &k[..1], None, 100),
                            b.range(tree, &k[..1], None, 100),
                            "seed {seed} step {step} copy"
                        );
                    }
                }
                _ => {}
            }
            same_reads(&mut rng, &mut new, &old, step);
            deepest = deepest.max(new.generations());
        }
    }
    assert!(deepest >= 4, "reads over several generations: {deepest}");
}
