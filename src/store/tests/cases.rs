//! Functional cases (get/put/delete, scans + overlay merge model, read-your-writes, durability
//! ordering, group commit under concurrent load, close/reopen, large values, fail-stop, backpressure).

use super::*;
use futures_lite::future::poll_once;
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) fn t_get_put_delete(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    assert_eq!(s.backend_name(), kind.as_str());
    assert_eq!(get_s(&s, Tree::Things, "x"), None);
    let a = s.submit(vec![
        put(Tree::Things, "x", "1"),
        put(Tree::Policies, "x", "p"),
    ]);
    let b = s.submit(vec![put(Tree::Things, "x", "2")]);
    assert!(b > a);
    block_on(s.durable(b)).unwrap();
    assert!(s.is_durable(a) && s.is_durable(b));
    assert_eq!(get_s(&s, Tree::Things, "x").as_deref(), Some("2"));
    assert_eq!(get_s(&s, Tree::Policies, "x").as_deref(), Some("p"));
    assert_eq!(get_s(&s, Tree::Meta, "x"), None, "trees are separate");
    let c = s.submit(vec![del(Tree::Things, "x")]);
    block_on(s.durable(c)).unwrap();
    assert_eq!(get_s(&s, Tree::Things, "x"), None);
    assert_eq!(get_s(&s, Tree::Policies, "x").as_deref(), Some("p"));
    let st = s.stats();
    assert_eq!((st.submitted_units, st.pending_ops), (3, 2));
    block_on(s.checkpoint()).unwrap();
    assert_eq!(s.stats().pending_ops, 0, "checkpointed");
    assert_eq!(get_s(&s, Tree::Policies, "x").as_deref(), Some("p"));
    s.close().unwrap();
}

pub(super) fn t_read_your_writes_before_commit(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let (s, gate) = gated_store(kind, &dir, DEFAULT_MAX_PENDING_OPS);
    let base = s.submit(vec![
        put(Tree::Things, "k1", "old"),
        put(Tree::Things, "k2", "gone"),
    ]);
    block_on(s.checkpoint()).unwrap();
    assert!(s.is_durable(base));
    let seq = s.submit(vec![
        put(Tree::Things, "k1", "new"),
        del(Tree::Things, "k2"),
    ]);
    let seq2 = s.submit(vec![put(Tree::Things, "k3", "fresh")]);
    // Nothing of it is on disk yet (nobody waits, the interval is long), but all is visible.
    assert!(!s.is_durable(seq) && !s.is_durable(seq2));
    assert_eq!(
        gate.inner.get(Tree::Things, b"k1").unwrap(),
        Some(b"old".to_vec())
    );
    let check = |s: &Store| {
        assert_eq!(get_s(s, Tree::Things, "k1").as_deref(), Some("new"));
        assert_eq!(get_s(s, Tree::Things, "k2"), None);
        assert_eq!(get_s(s, Tree::Things, "k3").as_deref(), Some("fresh"));
        let all = s.scan(Tree::Things, b"k", None, 10).unwrap();
        assert_eq!(keys(&all), ["k1", "k3"]);
        assert_eq!(all[0].1, b"new");
    };
    check(&s);
    assert_eq!(s.stats().pending_ops, 3);
    // durable = in the log: the backend still has the old state, reads the new one
    block_on(s.durable(seq2)).unwrap();
    assert!(s.is_durable(seq));
    assert_eq!(s.stats().wal_appends, 1);
    assert_eq!(
        gate.inner.get(Tree::Things, b"k1").unwrap(),
        Some(b"old".to_vec())
    );
    check(&s);
    // a checkpoint moves it into the backend; the overlay empties
    gate.set_open(false);
    let s2 = s.clone();
    let cp = std::thread::spawn(move || block_on(s2.checkpoint()));
    std::thread::sleep(Duration::from_millis(50));
    check(&s); // while the checkpoint is in flight
    gate.set_open(true);
    cp.join().unwrap().unwrap();
    check(&s);
    assert_eq!(s.stats().pending_ops, 0);
    assert_eq!(
        gate.inner.get(Tree::Things, b"k1").unwrap(),
        Some(b"new".to_vec())
    );
}

pub(super) fn t_scan_prefix_after_limit(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    let mut ops: Vec<Op> = (1..=9)
        .map(|i| put(Tree::Index, &format!("a/{i}"), "v"))
        .collect();
    ops.push(put(Tree::Index, "a", "exact-prefix-key"));
    ops.push(put(Tree::Index, "b/1", "v"));
    ops.push(put(Tree::Things, "a/0", "other tree"));
    block_on(s.durable(s.submit(ops))).unwrap();
    let scan = |p: &str, after: Option<&str>, limit| {
        keys(
            &s.scan(Tree::Index, p.as_bytes(), after.map(str::as_bytes), limit)
                .unwrap(),
        )
    };
    assert_eq!(scan("a/", None, 3), ["a/1", "a/2", "a/3"]);
    assert_eq!(scan("a/", Some("a/3"), 3), ["a/4", "a/5", "a/6"]);
    assert_eq!(scan("a/", Some("a/8"), 100), ["a/9"]);
    assert_eq!(scan("a/", Some("a/9"), 100), Vec::<String>::new());
    assert_eq!(
        scan("a/", Some("0"), 2),
        ["a/1", "a/2"],
        "after below prefix"
    );
    assert_eq!(
        scan("a/", Some("zz"), 2),
        Vec::<String>::new(),
        "after above prefix"
    );
    assert_eq!(scan("a/", None, 0), Vec::<String>::new());
    assert_eq!(scan("", None, 100).len(), 11);
    assert_eq!(scan("a", None, 2), ["a", "a/1"]);
    assert_eq!(scan("c", None, 10), Vec::<String>::new());
    // Tree prefix bytes must not leak between trees (sled keeps all trees in one keyspace).
    assert_eq!(
        keys(&s.scan(Tree::Things, b"", None, 100).unwrap()),
        ["a/0"]
    );
    assert_eq!(s.scan(Tree::Policies, b"", None, 100).unwrap(), vec![]);
}

/// Tiny deterministic PRNG (xorshift64*), enough for a model test.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Checkpointed + pending random puts/deletes; every scan must equal a BTreeMap model.
pub(super) fn t_scan_overlay_merge_model(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let key = |rng: &mut Rng| {
        format!(
            "{}/{:02}",
            ["p", "q", "pq"][rng.below(3) as usize],
            rng.below(40)
        )
    };
    for round in 0..6 {
        // even rounds end in the backend, odd rounds stay in the overlay while we scan
        let mut last = 0;
        for _ in 0..30 {
            let unit: Vec<Op> = (0..1 + rng.below(3))
                .map(|_| {
                    let k = key(&mut rng);
                    if rng.below(3) == 0 {
                        model.remove(k.as_bytes());
                        del(Tree::History, &k)
                    } else {
                        let v = format!("v{round}-{}", rng.below(1000));
                        model.insert(k.clone().into_bytes(), v.clone().into_bytes());
                        put(Tree::History, &k, &v)
                    }
                })
                .collect();
            last = s.submit(unit);
        }
        if round % 2 == 0 {
            block_on(s.checkpoint()).unwrap();
            assert_eq!(s.stats().pending_ops, 0);
        } else {
            assert!(!s.is_durable(last));
        }
        for prefix in ["", "p", "p/", "pq/", "q/", "x"] {
            for after in [
                None,
                Some("p/10"),
                Some("p/39"),
                Some("pq/05"),
                Some("a"),
                Some("zz"),
            ] {
                for limit in [1, 3, 7, 1000] {
                    let got = s
                        .scan(
                            Tree::History,
                            prefix.as_bytes(),
                            after.map(str::as_bytes),
                            limit,
                        )
                        .unwrap();
                    let want: Vec<(Vec<u8>, Vec<u8>)> = model
                        .iter()
                        .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
                        .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a.as_bytes()))
                        .take(limit)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    assert_eq!(
                        got, want,
                        "round {round} prefix {prefix:?} after {after:?} limit {limit}"
                    );
                }
            }
        }
        for k in model.keys().take(5) {
            assert_eq!(s.get(Tree::History, k).unwrap().as_ref(), model.get(k));
        }
    }
    s.close().unwrap();
}

pub(super) fn t_durability_ordering(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let (s, gate) = gated_store(kind, &dir, DEFAULT_MAX_PENDING_OPS);
    let seqs: Vec<u64> = (0..50)
        .map(|i| s.submit(vec![put(Tree::Things, &format!("o{i:03}"), "v")]))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(seqs.iter().all(|&q| !s.is_durable(q)));
    // Waiting for the LAST seq only: everything below must be durable at that moment.
    block_on(s.durable(seqs[49])).unwrap();
    assert!(seqs.iter().all(|&q| s.is_durable(q)));
    // Under concurrent load: whenever durable(seq) returns, every lower seq is durable too.
    std::thread::scope(|sc| {
        for t in 0..4 {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0..100 {
                    let q = s.submit(vec![put(Tree::Things, &format!("c{t}/{i:03}"), "v")]);
                    block_on(s.durable(q)).unwrap();
                    assert!((1..=q).all(|lower| s.is_durable(lower)));
                }
            });
        }
    });
    drop((s, gate));
    // Drop closed the store: everything acknowledged is in the backend itself.
    let b = raw_backend(kind, dir.path());
    assert_eq!(
        b.scan(Tree::Things, b"c", None, usize::MAX).unwrap().len(),
        400
    );
    assert_eq!(
        b.scan(Tree::Things, b"o", None, usize::MAX).unwrap().len(),
        50
    );
}

pub(super) fn t_concurrent_submitters_batch(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    const THREADS: usize = 8;
    const PER_THREAD: usize = 150;
    const TASKS: usize = 400;
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0..PER_THREAD {
                    block_on(s.ready());
                    let k = format!("t{t}/{i:04}");
                    let q = s.submit(vec![put(Tree::Things, &k, &k), put(Tree::Index, &k, "i")]);
                    block_on(s.durable(q)).unwrap();
                    assert_eq!(get_s(&s, Tree::Things, &k).as_deref(), Some(k.as_str()));
                }
            });
        }
        // Plus many async waiters on one executor thread: thousands of cheap listeners.
        let s = s.clone();
        sc.spawn(move || {
            let ex = smol::LocalExecutor::new();
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let s = s.clone();
                    ex.spawn(async move {
                        s.ready().await;
                        let q = s.submit(vec![put(Tree::Meta, &format!("task/{i:04}"), "x")]);
                        s.durable(q).await
                    })
                })
                .collect();
            block_on(ex.run(async {
                for t in tasks {
                    t.await.unwrap();
                }
            }));
        });
    });
    let units = (THREADS * PER_THREAD + TASKS) as u64;
    let st = s.stats();
    eprintln!("{kind}: {units} units in {} log records", st.wal_appends);
    assert_eq!(st.submitted_units, units);
    assert_eq!(st.wal_ops, (THREADS * PER_THREAD * 2 + TASKS) as u64);
    assert!(st.wal_appends < units, "no group commit: {st:?}");
    assert_eq!(
        s.scan(Tree::Things, b"t", None, usize::MAX).unwrap().len(),
        THREADS * PER_THREAD
    );
    assert_eq!(
        s.scan(Tree::Meta, b"task/", None, usize::MAX)
            .unwrap()
            .len(),
        TASKS
    );
}

pub(super) fn t_reopen_after_close(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    let mut last = 0;
    for i in 0..200 {
        last = s.submit(vec![put(
            Tree::Things,
            &format!("r{i:03}"),
            &format!("v{i}"),
        )]);
    }
    s.submit(vec![
        put(Tree::Policies, "pol", "P"),
        del(Tree::Things, "r000"),
    ]);
    // close() without awaiting: it must commit everything queued.
    s.close().unwrap();
    s.close().unwrap(); // idempotent
    assert!(s.is_durable(last));
    let late = s.submit(vec![put(Tree::Things, "late", "x")]);
    assert!(
        block_on(s.durable(late)).is_err(),
        "submit after close is refused"
    );
    assert_eq!(
        get_s(&s, Tree::Things, "r001").as_deref(),
        Some("v1"),
        "reads work after close"
    );
    drop(s);
    let s = open(kind, &dir);
    assert_eq!(get_s(&s, Tree::Things, "r000"), None);
    assert_eq!(get_s(&s, Tree::Things, "r199").as_deref(), Some("v199"));
    assert_eq!(get_s(&s, Tree::Things, "late"), None);
    assert_eq!(get_s(&s, Tree::Policies, "pol").as_deref(), Some("P"));
    assert_eq!(
        s.scan(Tree::Things, b"r", None, usize::MAX).unwrap().len(),
        199
    );
}

/// Values big enough for sled's blob files (> ~128 KiB log items) survive close + reopen.
pub(super) fn t_large_values(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    let big = |i: usize| vec![b'a' + (i % 26) as u8; 150_000 + i * 1000];
    let units: Vec<u64> = (0..4)
        .map(|u| {
            s.submit(
                (0..5)
                    .map(|j| Op::put(Tree::History, format!("big/{u}/{j}"), big(u * 5 + j)))
                    .collect(),
            )
        })
        .collect();
    block_on(s.durable(units[3])).unwrap();
    drop(s);
    let s = open(kind, &dir);
    let all = s.scan(Tree::History, b"big/", None, usize::MAX).unwrap();
    assert_eq!(all.len(), 20);
    for (k, v) in all {
        let k = String::from_utf8(k).unwrap();
        let (u, j) = k[4..].split_once('/').unwrap();
        assert_eq!(
            v,
            big(u.parse::<usize>().unwrap() * 5 + j.parse::<usize>().unwrap()),
            "{k}"
        );
    }
}

pub(super) fn t_refuses_other_backend_dir(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    drop(open(kind, &dir));
    let other = match kind {
        BackendKind::Sled => BackendKind::Redb,
        BackendKind::Redb => BackendKind::Sled,
    };
    let err = Store::open(other, dir.path(), CACHE).expect_err("mixed backends");
    assert!(err.0.contains(&format!("holds a {kind} store")), "{err}");
    drop(open(kind, &dir)); // the right kind still opens
}

/// A checkpoint failing with an I/O error (not a full disk) poisons the store; what was durable
/// (in the log) survives a restart, what was not is gone.
pub(super) fn t_commit_failure_is_fail_stop(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let (s, gate) = gated_store(kind, &dir, DEFAULT_MAX_PENDING_OPS);
    let ok = s.submit(vec![put(Tree::Things, "ok", "1")]);
    block_on(s.durable(ok)).unwrap();
    gate.fail.store(true, Ordering::SeqCst);
    let bad1 = s.submit(vec![put(Tree::Things, "bad", "1")]);
    let bad2 = s.submit(vec![put(Tree::Things, "ok", "2")]);
    assert_eq!(get_s(&s, Tree::Things, "ok").as_deref(), Some("2"));
    let e = block_on(s.checkpoint()).expect_err("failed checkpoint");
    assert!(e.0.contains("injected"), "{e}");
    assert!(s.is_failed() && !s.health().writable);
    assert!(block_on(s.durable(bad2)).is_err());
    assert!(block_on(s.durable(bad1)).is_err());
    assert!(block_on(s.durable(ok)).is_ok(), "earlier seqs stay durable");
    assert!(!s.is_durable(bad1));
    assert!(
        s.get(Tree::Things, b"ok").is_err(),
        "failed store refuses reads"
    );
    assert!(s.scan(Tree::Things, b"", None, 10).is_err());
    assert!(s.writable().is_err());
    let later = s.submit(vec![put(Tree::Things, "later", "1")]);
    assert!(block_on(s.durable(later)).is_err());
    block_on(s.ready()); // never wedges callers
    assert!(s.close().is_err());
    drop((s, gate));
    // the restart replays the log: the durable write is there, the others are not
    let s = open(kind, &dir);
    assert_eq!(get_s(&s, Tree::Things, "ok").as_deref(), Some("1"));
    assert_eq!(get_s(&s, Tree::Things, "bad"), None);
    assert_eq!(get_s(&s, Tree::Things, "later"), None);
}

/// `ready()` waits while the overlay holds its bound of keys, until a checkpoint empties it.
pub(super) fn t_ready_backpressure(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let (s, gate) = gated_store(kind, &dir, 4);
    block_on(s.ready());
    gate.set_open(false);
    let q = s.submit(
        (0..4)
            .map(|i| put(Tree::Things, &format!("bp{i}"), "v"))
            .collect(),
    );
    let released = Arc::new(AtomicBool::new(false));
    let (s2, released2) = (s.clone(), released.clone());
    let waiter = std::thread::spawn(move || {
        block_on(s2.ready());
        released2.load(Ordering::SeqCst)
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !waiter.is_finished(),
        "ready() must wait while 4/4 keys are not checkpointed"
    );
    assert!(block_on(poll_once(s.ready())).is_none());
    released.store(true, Ordering::SeqCst);
    gate.set_open(true);
    assert!(
        waiter.join().unwrap(),
        "ready() resolved only after the checkpoint"
    );
    assert!(s.stats().checkpoints >= 1);
    block_on(s.durable(q)).unwrap();
    block_on(s.ready());
}
