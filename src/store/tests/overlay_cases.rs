//! The overlay's unit cases: stored forms kept for logged values only, fresh puts forgotten by
//! a delete before anything took them (also over a frozen write of their key), range reads
//! of a generation the writer shares.

use crate::store::backend::{Op, Tree};
use crate::store::overlay::{sort_ops, Overlay};

mod stored {
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
        let taken = o.take_dirty_shared(1, 0);
        let logged = taken.plain_ops();
        o.record(2, vec![Op::put(Tree::Things, "b", "B2")]);
        let encoded = logged
            .into_iter()
            .map(|op| Op {
                value: op.value.map(|v| [b"stored:", &v[..]].concat()),
                ..op
            })
            .collect();
        taken.keep_stored(encoded);
        drop(taken);
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

mod fresh {
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

    /// A fresh put recorded while an older write of its key is frozen (taken for the log) is
    /// over a pending write: its delete is kept (the log holds the put), as with one map.
    #[test]
    fn a_fresh_put_over_a_frozen_write_is_not_forgotten() {
        let mut o = Overlay::default();
        o.record(1, vec![Op::create(Tree::Index, "a", "1")]);
        assert_eq!(o.take_dirty(1, 0).len(), 1);
        o.record(2, vec![Op::create(Tree::Index, "a", "2")]);
        o.record(3, vec![Op::delete(Tree::Index, "a")]);
        assert_eq!(o.get(Tree::Index, b"a"), Some(None));
        let logged = o.take_dirty(3, 1);
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0].value, None);
    }
}

mod shared {
    use super::*;
    use std::collections::BTreeMap;

    /// The newest write per key.
    type Model = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

    /// Records a put (or a delete) of key `k<i>` in both.
    fn put(o: &mut Overlay, model: &mut Model, seq: u64, i: usize, v: Option<&str>) {
        let k = format!("k{i:03}");
        let op = match v {
            Some(v) => Op::put(Tree::Index, k.as_str(), v),
            None => Op::delete(Tree::Index, k.as_str()),
        };
        o.record(seq, vec![op]);
        model.insert(k.into_bytes(), v.map(|v| v.as_bytes().to_vec()));
    }

    /// `Overlay::range` against the model.
    fn check(o: &mut Overlay, model: &Model, after: Option<&[u8]>) {
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(o.range(Tree::Index, b"k", after, usize::MAX), want);
    }

    /// Range reads while the writer holds a frozen generation order its keys once (not a
    /// filter and sort of every key per read under the state lock); once the writer let go, a
    /// generation merged into it keeps that order up to date (a stale one would miss keys).
    #[test]
    fn a_shared_generation_is_ordered_once_and_stays_right_after_a_merge() {
        let (mut o, mut m) = (Overlay::default(), Model::new());
        for i in 0..200 {
            put(&mut o, &mut m, 1, i, Some("a"));
        }
        let taken = o.take_dirty_shared(1, 0);
        for i in (0..300).step_by(7) {
            put(
                &mut o,
                &mut m,
                2,
                i,
                if i % 2 == 0 { Some("b") } else { None },
            );
        }
        for round in 0..12 {
            let after = format!("k{:03}", round * 13);
            check(&mut o, &m, Some(after.as_bytes()));
        }
        assert_eq!(o.shared_orders(), 1, "ordered once while shared");
        drop(taken);
        for i in (1..400).step_by(11) {
            put(&mut o, &mut m, 3, i, Some("c"));
        }
        // the next take freezes the live generation, the one after merges it into the one
        // below (small, nobody holds either)
        let _ = o.take_dirty(3, 1);
        assert_eq!(o.generations(), 2);
        let _ = o.take_dirty(3, 3);
        assert_eq!(o.generations(), 1, "merged");
        check(&mut o, &m, None);
        check(&mut o, &m, Some(b"k150"));
    }
}
