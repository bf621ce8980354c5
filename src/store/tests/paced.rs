//! The store's gate (`store::gate`) end to end: past the soft bound (3/4 of `max_pending_keys`)
//! `ready()` admits producers in step with the parts a covered checkpoint has applied, through a
//! backend that applies one op per part and waits for the test before each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::store::backend::OpRef;

/// sled, except that a covered checkpoint applies one op per part, each once the test gave a
/// permit (`allow`), and reports it (`Backend::commit_parts`).
struct Stepped {
    inner: Box<dyn Backend>,
    permits: Mutex<usize>,
    cv: Condvar,
    started: AtomicBool,
}

impl Stepped {
    fn allow(&self, n: usize) {
        let mut p = self.permits.lock().unwrap();
        *p = p.saturating_add(n);
        self.cv.notify_all();
    }
}

struct SteppedRef(Arc<Stepped>);

/// Lets the checkpoint finish when the test ends, also on a failed assertion (else the store's
/// close would wait for it forever): declared after the store, dropped before it.
struct Release(Arc<Stepped>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.allow(usize::MAX);
    }
}

impl Backend for SteppedRef {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.inner.get(tree, key)
    }
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.0.inner.scan(tree, prefix, after, limit)
    }
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.0.inner.commit(ops)
    }
    fn commit_parts(
        &self,
        ops: &[OpRef<'_>],
        part: &mut dyn FnMut(usize),
    ) -> Option<Result<(), StoreError>> {
        self.0.started.store(true, Ordering::SeqCst);
        for op in ops {
            let mut p = self.0.permits.lock().unwrap();
            while *p == 0 {
                p = self.0.cv.wait(p).unwrap();
            }
            *p -= 1;
            drop(p);
            if let Err(e) = self.0.inner.commit_refs(std::slice::from_ref(op), true) {
                return Some(Err(e));
            }
            part(1);
        }
        Some(Ok(()))
    }
    fn prefers_covered(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        self.0.inner.name()
    }
}

fn puts(tag: &str, n: usize) -> Vec<Op> {
    (0..n)
        .map(|i| put(Tree::Things, &format!("{tag}{i}"), "v"))
        .collect()
}

/// A thread waiting in `ready()`; finished once it was admitted.
fn waiter(s: &Store) -> std::thread::JoinHandle<()> {
    let s = s.clone();
    std::thread::spawn(move || block_on(s.ready()))
}

fn still_waits(w: &std::thread::JoinHandle<()>, what: &str) {
    std::thread::sleep(Duration::from_millis(100));
    assert!(!w.is_finished(), "{what}");
}

#[test]
fn past_the_soft_bound_ready_admits_in_step_with_the_checkpoints_parts() {
    let dir = TempDir::new().unwrap();
    let b = Arc::new(Stepped {
        inner: raw_backend(BackendKind::Sled, dir.path()),
        permits: Mutex::new(0),
        cv: Condvar::new(),
        started: AtomicBool::new(false),
    });
    // hard bound 16: soft bound 12, a checkpoint from 8 keys on
    let o = Options {
        max_pending_ops: 16,
        ..opts(NEVER)
    };
    let s = Store::with_backend(Box::new(SteppedRef(b.clone())), dir.path(), &o).expect("store");
    let _release = Release(b.clone());
    let first = s.submit(puts("a", 8));
    // the writer logs them, then checkpoints them covered: 9 ops (8 + the log epoch), held
    // before its first part
    let t0 = Instant::now();
    while !b.started.load(Ordering::SeqCst) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no checkpoint began"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // 4 more: 12 keys pending, at the soft bound (below the hard one, where main admitted)
    let _more = s.submit(puts("b", 4));
    let w = waiter(&s);
    still_waits(
        &w,
        "at the soft bound nothing is admitted before a part is applied",
    );
    // 2 of 9 parts: room for 4 * 2 / 9 = 0 keys
    b.allow(2);
    still_waits(&w, "2 of 9 parts make no room for a key");
    // the third: room for 1 key (12 < 12 + 1), and the part wakes a waiter
    b.allow(1);
    let t0 = Instant::now();
    while !w.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the third part must admit the waiter before the checkpoint ends"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    w.join().unwrap();
    assert_eq!(
        s.stats().checkpoints,
        0,
        "admitted while the checkpoint ran"
    );
    b.allow(usize::MAX);
    block_on(s.durable(first)).unwrap();
    block_on(s.ready());
    assert_eq!(get_s(&s, Tree::Things, "a7").as_deref(), Some("v"));
}
