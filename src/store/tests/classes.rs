//! The two durability classes and the log: writes nobody waits for are logged by themselves
//! once the flush interval has passed (coalesced), waiters share one record (group commit), a
//! full log, a record bigger than the log and a full overlay end in a checkpoint.

use super::*;
use std::time::Instant;

/// Polls `f` for up to 10 s.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(super) fn t_interval(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let interval = Duration::from_millis(300);
    let s = Store::open_with(kind, dir.path(), &opts(interval)).unwrap();
    let start = Instant::now();
    let mut last = 0;
    for i in 0..100 {
        last = s.submit(vec![put(Tree::Things, "hot", &i.to_string())]);
    }
    let cold = s.submit(vec![put(Tree::Things, "cold", "x")]);
    assert!(
        !s.is_durable(cold),
        "nobody waits: nothing is written at once"
    );
    assert_eq!(s.stats().wal_appends, 0);
    // nobody calls durable(): the writer logs it by itself after the interval
    eventually("logged after the interval", || s.is_durable(cold));
    assert!(
        start.elapsed() >= interval,
        "logged before the interval ran out"
    );
    assert!(s.is_durable(last));
    let st = s.stats();
    assert_eq!(
        (st.wal_appends, st.wal_ops),
        (1, 2),
        "101 writes of 2 keys in one interval: one record of 2 ops"
    );
    assert_eq!(st.checkpoints, 0, "the backend is not written");
    // the next interval starts with the next write
    let again = s.submit(vec![put(Tree::Things, "hot", "later")]);
    eventually("second interval", || s.is_durable(again));
    assert_eq!(s.stats().wal_appends, 2);
    drop(s);
    let s = open(kind, &dir);
    assert_eq!(get_s(&s, Tree::Things, "hot").as_deref(), Some("later"));
}

pub(super) fn t_group_commit(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    // a waiter makes everything submitted before it durable, not just its own write
    let a = s.submit(vec![put(Tree::Things, "a", "1")]);
    let b = s.submit(vec![put(Tree::Things, "b", "1")]);
    block_on(s.durable(b)).unwrap();
    assert!(s.is_durable(a));
    assert_eq!((s.stats().wal_appends, s.stats().wal_ops), (1, 2));
    // many concurrent waiters: fewer records than writes
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            ex.spawn(async move {
                let q = s.submit(vec![put(Tree::Things, &format!("g{i:03}"), "v")]);
                s.durable(q).await
            })
        })
        .collect();
    block_on(ex.run(async {
        for t in tasks {
            t.await.unwrap();
        }
    }));
    let st = s.stats();
    assert_eq!(st.wal_ops, 202);
    assert!(st.wal_appends < 100, "group commit: {st:?}");
}

/// A log of 8 pages: single-page records fill it, the next write checkpoints everything first.
pub(super) fn t_full_log(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let o = Options {
        wal_bytes: 8 * 4096,
        ..opts(NEVER)
    };
    let s = Store::open_with(kind, dir.path(), &o).unwrap();
    for i in 0..20 {
        let q = s.submit(vec![put(Tree::Things, &format!("k{i:02}"), "v")]);
        block_on(s.durable(q)).unwrap();
    }
    let st = s.stats();
    assert!(st.checkpoints >= 2, "{st:?}");
    assert_eq!(st.wal_appends + st.checkpoints, 20, "{st:?}");
    assert!(st.pending_ops < 8, "{st:?}");
    assert_eq!(s.scan(Tree::Things, b"k", None, 100).unwrap().len(), 20);
    drop(s);
    let s = open(kind, &dir);
    assert_eq!(s.scan(Tree::Things, b"k", None, 100).unwrap().len(), 20);
}

pub(super) fn t_huge_record(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let o = Options {
        wal_bytes: 4 * 4096,
        ..opts(NEVER)
    };
    let s = Store::open_with(kind, dir.path(), &o).unwrap();
    let big = "x".repeat(64 * 1024);
    let q = s.submit(vec![put(Tree::History, "big", &big)]);
    block_on(s.durable(q)).unwrap();
    eventually("checkpoint counted", || s.stats().checkpoints == 1);
    assert_eq!(s.stats().wal_appends, 0);
    drop(s);
    let s = open(kind, &dir);
    assert_eq!(get_s(&s, Tree::History, "big"), Some(big));
}

/// The overlay reaching half its key bound is checkpointed without anybody asking.
pub(super) fn t_overlay_bound(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let o = Options {
        max_pending_ops: 64,
        ..opts(NEVER)
    };
    let s = Store::open_with(kind, dir.path(), &o).unwrap();
    for i in 0..40 {
        s.submit(vec![put(Tree::Things, &format!("o{i:02}"), "v")]);
    }
    eventually("checkpoint at half the bound", || {
        s.stats().checkpoints >= 1
    });
    eventually("overlay below the bound", || s.stats().pending_ops < 32);
    assert_eq!(s.scan(Tree::Things, b"o", None, 100).unwrap().len(), 40);
}
