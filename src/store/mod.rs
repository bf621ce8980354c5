//! The `Store` handle: crash-safe persistence with group commit. `submit` makes ops visible at once
//! (in-memory overlay) and queues them as one atomic unit; ONE writer thread commits everything
//! queued in one fsync'd backend commit and wakes `durable()` waiters once per batch.
//! Failure semantics: fail-stop (see "Failure semantics" below). Backends: sled or redb.
//!
//! # Failure semantics
//! The first failed backend commit *poisons* the store: `durable(seq)` returns that error for every
//! seq of the failed batch and every later seq, `get`/`scan` return it, `submit` still returns a seq
//! (it must never block or fail) but discards the ops, the overlay and queue are dropped. Why not
//! drop just the failed batch and carry on: after a failed fsync neither engine says what its
//! in-memory state holds (sled has already applied the batch to its page cache, redb asks for a
//! repair), and later units were computed from the failed ones (revisions, indexes). Recovery is a
//! restart: reopening replays exactly what was durable. `close()` keeps returning the error.

mod backend;
mod commit;
mod overlay;
mod redb_backend;
mod sled_backend;
#[cfg(test)]
mod tests;

pub use backend::{Backend, BackendKind, Entries, Op, StoreError, Tree};
pub use redb_backend::{RedbBackend, REDB_FILE};
pub use sled_backend::SledBackend;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use event_listener::Event;

use commit::last_write_per_key;
use overlay::Overlay;

/// Default backpressure bound: submitted-but-uncommitted ops before `ready()` waits. It also
/// bounds the hub's queue of events waiting for durability (one per write), so it is sized for
/// a Pi: group commits at 100k writes/s and a 5 ms sync hold ~500 ops.
pub const DEFAULT_MAX_PENDING_OPS: usize = 8_192;

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// backend commits (fsyncs) that succeeded
    pub committed_batches: u64,
    /// submitted units contained in those commits
    pub committed_units: u64,
    /// ops contained in those commits
    pub committed_ops: u64,
    /// ops submitted but not yet committed
    pub pending_ops: usize,
}

/// Cheap-to-clone handle; the writer thread stops on `close` or when the last clone is dropped
/// (which, like `close`, blocks until the queued units are committed).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Handle>,
}

/// Owned by the `Store` clones only (not by the writer thread), so dropping the last clone closes.
struct Handle {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    backend: Box<dyn Backend>,
    max_pending_ops: usize,
    state: Mutex<State>,
    /// The writer sleeps on this while the queue is empty.
    work: Condvar,
    /// Every seq <= this is durable.
    committed_seq: AtomicU64,
    /// Set once no seq above `committed_seq` will ever become durable (failed or closed).
    stopped: AtomicBool,
    pending_ops: AtomicUsize,
    /// Notified once per finished commit (and on stop).
    durable_event: Event,
    /// Notified when pending ops drop.
    ready_event: Event,
    committed_batches: AtomicU64,
    committed_units: AtomicU64,
    committed_ops: AtomicU64,
}

struct State {
    /// Last seq handed out.
    last_seq: u64,
    /// Latest submitted-but-uncommitted write per key.
    overlay: Overlay,
    /// Units waiting for the writer, in seq order.
    queue: Vec<Unit>,
    writer_idle: bool,
    /// `close()` was called: no more units are accepted, the writer drains and exits.
    closing: bool,
    /// Why seqs above `committed_seq` fail once `Shared::stopped` is set.
    stop_reason: Option<StoreError>,
    /// The stop was a failed commit (reads fail too), not a close.
    failed: bool,
}

struct Unit {
    seq: u64,
    ops: Vec<Op>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(result)` once the fate of `seq` is known.
    fn outcome(&self, seq: u64) -> Option<Result<(), StoreError>> {
        if self.committed_seq.load(Ordering::Acquire) >= seq {
            return Some(Ok(()));
        }
        if !self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let st = self.lock();
        // Re-check: a commit may have finished between the two loads.
        if self.committed_seq.load(Ordering::Acquire) >= seq {
            return Some(Ok(()));
        }
        Some(Err(st
            .stop_reason
            .clone()
            .unwrap_or_else(|| StoreError::new("store stopped"))))
    }

    /// Fast path for reads: every submitted op is already in the backend (entries the writer has
    /// not yet dropped from the overlay hold the same values), so the overlay can be skipped.
    /// `submit` raises `pending_ops` under the lock after recording, so a reader seeing 0 is
    /// ordered before that submit returns.
    fn nothing_pending(&self) -> bool {
        self.pending_ops.load(Ordering::Acquire) == 0 && !self.stopped.load(Ordering::Acquire)
    }

    fn stop(&self, st: &mut State, reason: StoreError, failed: bool) {
        if st.stop_reason.is_none() {
            st.stop_reason = Some(reason);
        }
        st.failed |= failed;
        self.stopped.store(true, Ordering::Release);
    }

    fn writer_loop(&self) {
        loop {
            let units = {
                let mut st = self.lock();
                loop {
                    if !st.queue.is_empty() {
                        break std::mem::take(&mut st.queue);
                    }
                    if st.closing || st.failed {
                        return;
                    }
                    st.writer_idle = true;
                    st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.writer_idle = false;
                }
            };
            let (first, last) = match (units.first(), units.last()) {
                (Some(f), Some(l)) => (f.seq, l.seq),
                _ => continue,
            };
            let n_units = units.len() as u64;
            let ops: Vec<Op> = units.into_iter().flat_map(|u| u.ops).collect();
            let n_ops = ops.len();
            let ops = last_write_per_key(ops);
            // A panicking backend (sled panics on some corruption) must fail the waiters, not
            // strand them: it becomes a commit error (release builds abort on panic anyway).
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.backend.commit(&ops)))
                .unwrap_or_else(|_| Err(StoreError::new("backend panicked during commit")));
            match result {
                Ok(()) => {
                    // Counters first, so a woken waiter sees consistent stats.
                    self.committed_batches.fetch_add(1, Ordering::Relaxed);
                    self.committed_units.fetch_add(n_units, Ordering::Relaxed);
                    self.committed_ops
                        .fetch_add(n_ops as u64, Ordering::Relaxed);
                    self.pending_ops.fetch_sub(n_ops, Ordering::AcqRel);
                    self.committed_seq.store(last, Ordering::Release);
                    self.durable_event.notify(usize::MAX);
                    self.ready_event.notify(usize::MAX);
                    // In chunks, so a huge batch never holds up `submit` for long.
                    for chunk in ops.chunks(256) {
                        self.lock().overlay.remove_committed(chunk, last);
                    }
                }
                Err(e) => {
                    tracing::error!(
                        backend = self.backend.name(),
                        first_seq = first,
                        last_seq = last,
                        ops = ops.len(),
                        error = %e,
                        "store commit failed; store is now failed (fail-stop), restart to recover"
                    );
                    let mut st = self.lock();
                    self.stop(&mut st, e, true);
                    st.queue = Vec::new();
                    st.overlay = Default::default();
                    self.pending_ops.store(0, Ordering::Release);
                    drop(st);
                    self.durable_event.notify(usize::MAX);
                    self.ready_event.notify(usize::MAX);
                    return;
                }
            }
        }
    }
}

impl Store {
    /// Opens the `kind` store in `dir` (created if missing) with the default backpressure bound.
    /// Refuses a directory that holds the other backend's data.
    pub fn open(kind: BackendKind, dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        Self::open_with_max_pending(kind, dir, cache_bytes, DEFAULT_MAX_PENDING_OPS)
    }

    /// `open` with an explicit bound for `ready()` (submitted-but-uncommitted ops).
    pub fn open_with_max_pending(
        kind: BackendKind,
        dir: &Path,
        cache_bytes: u64,
        max_pending_ops: usize,
    ) -> Result<Store, StoreError> {
        let sled_dir = dir.join("sled");
        let redb_file = dir.join(REDB_FILE);
        let other = match kind {
            BackendKind::Sled if redb_file.exists() => Some((BackendKind::Redb, redb_file)),
            BackendKind::Redb if sled_dir.exists() => Some((BackendKind::Sled, sled_dir)),
            _ => None,
        };
        if let Some((other, path)) = other {
            return Err(StoreError(format!(
                "data dir {} holds a {other} store ({}), not {kind}: configure backend \"{other}\" \
                 or use another data dir",
                dir.display(),
                path.display()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create data dir {}: {e}", dir.display())))?;
        let backend: Box<dyn Backend> = match kind {
            BackendKind::Sled => Box::new(SledBackend::open(dir, cache_bytes)?),
            BackendKind::Redb => Box::new(RedbBackend::open(dir, cache_bytes)?),
        };
        Self::with_backend(backend, max_pending_ops)
    }

    /// Runs the store over any backend (tests use a failing one). Starts the writer thread.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        max_pending_ops: usize,
    ) -> Result<Store, StoreError> {
        let shared = Arc::new(Shared {
            backend,
            max_pending_ops: max_pending_ops.max(1),
            state: Mutex::new(State {
                last_seq: 0,
                overlay: Overlay::default(),
                queue: Vec::new(),
                writer_idle: false,
                closing: false,
                stop_reason: None,
                failed: false,
            }),
            work: Condvar::new(),
            committed_seq: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            pending_ops: AtomicUsize::new(0),
            durable_event: Event::new(),
            ready_event: Event::new(),
            committed_batches: AtomicU64::new(0),
            committed_units: AtomicU64::new(0),
            committed_ops: AtomicU64::new(0),
        });
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name(format!("store-writer-{}", shared.backend.name()))
            .stack_size(crate::bounds::THREAD_STACK_BYTES)
            .spawn(move || for_writer.writer_loop())
            .map_err(|e| StoreError(format!("cannot start store writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Handle {
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Read-your-writes: the overlay of submitted-but-not-yet-committed ops first, then the backend.
    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sh = &self.inner.shared;
        if sh.nothing_pending() {
            return sh.backend.get(tree, key);
        }
        {
            let st = sh.lock();
            if st.failed {
                return Err(failed_error(&st));
            }
            if let Some(v) = st.overlay.get(tree, key) {
                return Ok(v.clone());
            }
        }
        sh.backend.get(tree, key)
    }

    /// Like `Backend::scan` but merged with the overlay (pending puts visible, pending deletes hidden).
    /// Per key read-your-writes; not a point-in-time snapshot across keys under concurrent writes.
    pub fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sh = &self.inner.shared;
        if sh.nothing_pending() {
            return sh.backend.scan(tree, prefix, after, limit);
        }
        // Overlay first, backend second: an entry committed in between is then seen in at least
        // one of them (the overlay copy wins; it is the same or newer).
        let pending = {
            let st = sh.lock();
            if st.failed {
                return Err(failed_error(&st));
            }
            st.overlay.range(tree, prefix, after, limit)
        };
        if pending.is_empty() {
            return sh.backend.scan(tree, prefix, after, limit);
        }
        // At most `pending.len()` backend entries are shadowed, so this many always suffice.
        let base = sh
            .backend
            .scan(tree, prefix, after, limit.saturating_add(pending.len()))?;
        Ok(overlay::merge(pending, base, limit))
    }

    /// Non-blocking, never awaits: makes `ops` visible to get/scan immediately, queues them for the
    /// writer thread as ONE atomic unit, and returns its sequence number (strictly increasing).
    /// After `close()` or a failure the ops are discarded and `durable(seq)` reports why.
    pub fn submit(&self, ops: Vec<Op>) -> u64 {
        let sh = &self.inner.shared;
        let n = ops.len();
        let mut st = sh.lock();
        st.last_seq += 1;
        let seq = st.last_seq;
        if st.closing || st.failed {
            return seq;
        }
        st.overlay.record(seq, &ops);
        st.queue.push(Unit { seq, ops });
        sh.pending_ops.fetch_add(n, Ordering::AcqRel);
        let wake = st.writer_idle;
        drop(st);
        if wake {
            sh.work.notify_one();
        }
        seq
    }

    /// Resolves once everything up to and including `seq` is durable, or with the error if the
    /// commit that contained `seq` failed (or the store was closed before `seq` was queued).
    pub async fn durable(&self, seq: u64) -> Result<(), StoreError> {
        let sh = &self.inner.shared;
        loop {
            if let Some(r) = sh.outcome(seq) {
                return r;
            }
            let listener = sh.durable_event.listen();
            if let Some(r) = sh.outcome(seq) {
                return r;
            }
            listener.await;
        }
    }

    /// The sequence number of the last `submit` (0 before any): waiting for it to be durable
    /// waits for every write submitted so far (the MQTT bridge acks messages after it).
    pub fn last_seq(&self) -> u64 {
        self.inner.shared.lock().last_seq
    }

    pub fn is_durable(&self, seq: u64) -> bool {
        self.inner.shared.committed_seq.load(Ordering::Acquire) >= seq
    }

    /// Backpressure: resolves when fewer than the configured maximum of submitted-but-uncommitted
    /// ops are pending; await it BEFORE taking a per-thing lock and calling `submit`.
    pub async fn ready(&self) {
        let sh = &self.inner.shared;
        let ok = || sh.pending_ops.load(Ordering::Acquire) < sh.max_pending_ops;
        loop {
            if ok() {
                return;
            }
            let listener = sh.ready_event.listen();
            if ok() {
                return;
            }
            listener.await;
        }
    }

    /// Commit everything pending, stop the writer thread, flush. Idempotent. Returns the commit
    /// error if the store had failed. Drop every clone to release the database files.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }

    /// True once the store failed or was closed (lock-free; `is_failed` tells which). Caches
    /// above the store stop answering then, so reads fail like `get` does.
    pub fn is_stopped(&self) -> bool {
        self.inner.shared.stopped.load(Ordering::Acquire)
    }

    /// True once a commit failed (fail-stop): only a restart recovers (the watchdog uses this).
    pub fn is_failed(&self) -> bool {
        self.inner.shared.lock().failed
    }

    pub fn backend_name(&self) -> &'static str {
        self.inner.shared.backend.name()
    }

    /// Figures for benchmarks/diagnostics.
    pub fn stats(&self) -> StoreStats {
        let sh = &self.inner.shared;
        StoreStats {
            committed_batches: sh.committed_batches.load(Ordering::Relaxed),
            committed_units: sh.committed_units.load(Ordering::Relaxed),
            committed_ops: sh.committed_ops.load(Ordering::Relaxed),
            pending_ops: sh.pending_ops.load(Ordering::Relaxed),
        }
    }
}

impl Handle {
    fn close(&self) -> Result<(), StoreError> {
        let sh = &self.shared;
        // The guard is held through the join, so a concurrent close() returns only once done.
        let mut writer_slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(writer) = writer_slot.take() {
            sh.lock().closing = true;
            sh.work.notify_one();
            if writer.join().is_err() {
                let mut st = sh.lock();
                sh.stop(
                    &mut st,
                    StoreError::new("store writer thread panicked"),
                    true,
                );
            }
            let mut st = sh.lock();
            sh.stop(&mut st, StoreError::new("store closed"), false);
            let failed = st.failed;
            drop(st);
            if !failed {
                if let Err(e) = sh.backend.shut_down() {
                    tracing::warn!(error = %e, "store: clean-shutdown record failed (the next open repairs)");
                }
            }
            sh.durable_event.notify(usize::MAX);
            sh.ready_event.notify(usize::MAX);
        }
        drop(writer_slot);
        let st = sh.lock();
        if st.failed {
            return Err(failed_error(&st));
        }
        Ok(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "store dropped in failed state");
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .field("stats", &self.stats())
            .finish()
    }
}

fn failed_error(st: &State) -> StoreError {
    st.stop_reason
        .clone()
        .unwrap_or_else(|| StoreError::new("store failed"))
}
