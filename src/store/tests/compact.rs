//! redb compacts its file at the store's clean shutdown once it grew by more than
//! `compact_growth_percent` since the last compaction (`store::compact`): a store over a file
//! full of freed pages shrinks it when closed, answers the same after, and the next close (no
//! growth since) leaves it alone.

use super::*;
use crate::store::compact::{self, allocated};

/// A redb file of ~`n` x 300 B written, then 3/4 of it deleted: its allocated part keeps the
/// high-water mark (freed pages), as after checkpoints' copy-on-write churn.
fn churned_file(dir: &Path, n: usize) {
    let b = RedbBackend::open(dir, CACHE).expect("redb");
    let val = "v".repeat(300);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<Op> = chunk
            .iter()
            .map(|i| put(Tree::Index, &format!("k{i:08}"), &val))
            .collect();
        b.commit(&ops).expect("commit");
    }
    for chunk in (0..n)
        .filter(|i| i % 4 != 0)
        .collect::<Vec<_>>()
        .chunks(500)
    {
        let ops: Vec<Op> = chunk
            .iter()
            .map(|i| del(Tree::Index, &format!("k{i:08}")))
            .collect();
        b.commit(&ops).expect("commit");
    }
    b.shut_down().expect("shut down");
}

fn survivors(s: &Store) -> usize {
    let all = s.scan(Tree::Index, b"k", None, usize::MAX).expect("scan");
    assert!(all.iter().all(|(_, v)| v.len() == 300));
    all.len()
}

#[test]
fn the_store_compacts_a_grown_redb_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40_000;
    churned_file(dir.path(), n);
    let file = dir.path().join(REDB_FILE);
    let before = allocated(&file);
    assert!(before > 12 << 20, "the churned file holds {before} B");

    let s = Store::open_with(BackendKind::Redb, dir.path(), &opts(NEVER)).expect("open");
    assert_eq!(survivors(&s), n / 4);
    s.close().expect("close");
    drop(s);
    let after = allocated(&file);
    assert!(
        after < before / 2,
        "closing the store compacted {before} B of file to {after} B"
    );

    // no growth since: the next shutdown writes nothing for compaction
    let b = RedbBackend::open_compacting(dir.path(), CACHE, 25).expect("redb");
    b.shut_down().expect("shut down");
    assert_eq!(b.compacted(), None);
    drop(b);
    let s = Store::open_with(BackendKind::Redb, dir.path(), &opts(NEVER)).expect("reopen");
    assert_eq!(survivors(&s), n / 4);
    drop(s);
    assert!(allocated(&file) <= after + (1 << 20));
}

#[test]
fn compaction_is_bounded_by_growth_and_can_be_off() {
    let dir = tempfile::tempdir().unwrap();
    churned_file(dir.path(), 40_000);
    let file = dir.path().join(REDB_FILE);
    let before = allocated(&file);
    // 0 = never
    let b = RedbBackend::open_compacting(dir.path(), CACHE, 0).expect("redb");
    b.shut_down().expect("shut down");
    assert_eq!(b.compacted(), None);
    drop(b);
    assert_eq!(allocated(&file), before);
    let b = RedbBackend::open_compacting(dir.path(), CACHE, 25).expect("redb");
    b.shut_down().expect("shut down");
    let c = b
        .compacted()
        .expect("compacted: never before, grown beyond the minimum");
    assert_eq!(c.before, before);
    assert!(c.after < before / 2, "{c:?}");
    // (`c.written` counts the whole process's writes: other tests run in it; the bytes a
    // compaction writes are measured by `loadgen footprint`, BENCHMARKS.md)
    drop(b);
    // the rule itself
    assert!(!compact::due(compact::MIN_GROWTH, 0, 25));
    assert!(compact::due(compact::MIN_GROWTH + 1, 0, 25));
    assert!(!compact::due(100 << 20, 80 << 20, 25));
    assert!(compact::due((100 << 20) + 1, 80 << 20, 25));
    assert!(!compact::due(u64::MAX, 0, 0));
}

#[test]
fn a_compaction_packs_leaves_filled_in_random_order() {
    let dir = tempfile::tempdir().unwrap();
    let n: u64 = 60_000;
    {
        let b = RedbBackend::open(dir.path(), CACHE).expect("redb");
        let val = "w".repeat(60);
        // keys in a scrambled order (as thing IDs and index keys arrive): leaves split in halves
        let order: Vec<u64> = (0..n).map(|i| (i * 7919) % n).collect();
        for chunk in order.chunks(1000) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|i| put(Tree::Index, &format!("k{i:08}"), &val))
                .collect();
            b.commit(&ops).expect("commit");
        }
        b.shut_down().expect("shut down");
    }
    let file = dir.path().join(REDB_FILE);
    let before = allocated(&file);
    let b = RedbBackend::open_compacting(dir.path(), CACHE, 25).expect("redb");
    b.shut_down().expect("shut down");
    let c = b.compacted().expect("compacted");
    // ~77 B per entry in a leaf: packed 4.7 MB; compacted without the repack 7.8 MB (its
    // leaves as the scrambled inserts split them), before 12.0 MB (with the freed pages)
    assert!(c.after < n * 100, "{c:?} (before {before})");
    let all = b.scan(Tree::Index, b"", None, usize::MAX).expect("scan");
    assert_eq!(all.len() as u64, n);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(all.iter().all(|(_, v)| v == "w".repeat(60).as_bytes()));
    drop(b);
    // the next shutdown (no growth) leaves it alone, and it reads the same
    let b = RedbBackend::open_compacting(dir.path(), CACHE, 25).expect("redb");
    assert_eq!(
        b.scan(Tree::Index, b"", None, usize::MAX).expect("scan"),
        all
    );
    b.shut_down().expect("shut down");
    assert_eq!(b.compacted(), None);
}
