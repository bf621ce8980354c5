//! The `Store` handle: crash-safe persistence in two durability classes, flash-friendly.
//! `submit` makes ops visible at once (in-memory overlay) as ONE atomic unit and writes nothing.
//! `durable(seq)` asks for it: the writer thread appends every write not yet logged as one
//! record to the write-ahead log and syncs it (group commit: concurrent waiters share a sync).
//! Writes nobody waits for are logged together at most `flush_interval` after their submit
//! (rewrites of a key in between cost one write). The log is checkpointed into the backend
//! (redb or sled) only when it is full, the overlay reaches its bound, or at close. Producers
//! wait in `ready` (`gate`): at the overlay's hard bound, and past its soft bound in step with
//! a checkpoint's applied parts.
//!
//! # Crash semantics
//! A crash (kill -9, power cut) keeps every seq that `durable` confirmed; of the rest it keeps
//! a prefix: the log is replayed at open, so what is on disk is always the state after some
//! seq (twins, search index, revisions consistent), at most `flush_interval` behind. A backend
//! that applies a checkpoint in parts (sled) gets only checkpoints the log already holds: a
//! crash part-way leaves a mix in the backend that the log's replay turns into that state.
//!
//! # Failure semantics
//! Disk full is not a failure: below `min_free_bytes` `writable()` refuses new writes while
//! accepted ones are still logged (the log never grows) and checkpointed from the reserve; a
//! checkpoint that meets ENOSPC anyway is retried (backend reopened) once space is back. Any
//! other failed log write or checkpoint *poisons* the store (fail-stop): `durable(seq)` fails
//! for every seq not yet durable, `get`/`scan` fail, `submit` discards. Why not carry on:
//! after a failed sync neither the kernel nor the engines say what their state holds. A
//! restart recovers exactly what was durable. `close()` keeps returning the error.

mod backend;
pub mod backup;
pub(crate) mod codec;
mod commit;
pub mod compact;
pub mod config;
mod gate;
mod lz4;
mod options;
mod overlay;
mod overlay_range;
mod reader;
mod redb_backend;
mod sled_backend;
mod snapshot;
mod space;
#[cfg(test)]
mod tests;
mod wal;
mod writer;

pub use backend::{Backend, BackendKind, Entries, Op, StoreError, Tree, View};
pub use backup::RESTORE_MARKER;
pub use config::StoreConfig;
pub use options::{
    Health, Options, StoreStats, DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_PENDING_OPS,
    DEFAULT_MIN_FREE_BYTES,
};
pub use reader::Reader;
pub use redb_backend::{RedbBackend, REDB_FILE};
pub use sled_backend::SledBackend;
pub use snapshot::Snapshot;
pub use space::free_bytes;
pub use wal::{DEFAULT_WAL_BYTES, WAL_FILE};

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use event_listener::Event;

use overlay::Overlay;
use space::Space;

/// First byte of the `Tree::Index` keys whose writes `Store::watched_changes` counts: the
/// search index's access entries (`search::access::ACCESS`, checked by a test there).
pub const WATCHED_INDEX_BYTE: u8 = b'a';

/// Cheap-to-clone handle; the writer thread stops on `close` or when the last clone is dropped
/// (which, like `close`, blocks until the accepted writes are checkpointed).
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
    /// the backend has point-in-time views; else snapshots hold checkpoints (`gate`)
    has_views: bool,
    opts: Options,
    space: Space,
    state: Mutex<State>,
    /// The writer sleeps on this.
    work: Condvar,
    /// Notified when the last gated snapshot ends or a checkpoint's commit ends.
    gate: Condvar,
    /// Every seq <= this is durable (in the log or the backend).
    durable_seq: AtomicU64,
    /// Set once no seq above `durable_seq` will ever become durable (failed or closed).
    stopped: AtomicBool,
    /// Keys in the overlay.
    pending: AtomicUsize,
    /// Times a checkpoint moved entries out of the overlay (raised under the state lock before
    /// `pending` is stored): a `Reader`'s backend view older than that misses them.
    evictions: AtomicU64,
    /// Submitted units that wrote an index key starting with [`WATCHED_INDEX_BYTE`] (raised
    /// under the state lock after `pending`: seeing a value means seeing those writes).
    watched: AtomicU64,
    /// Notified after every log append and checkpoint (and on stop).
    durable_event: Event,
    /// Notified when the overlay shrinks, and per part a paced checkpoint applied (`gate`).
    ready_event: Event,
    /// Ops of the running checkpoint whose backend reports its parts (0: none runs), and of
    /// them applied so far: the room `gate` gives producers past the soft bound.
    ckpt_total: AtomicUsize,
    ckpt_done: AtomicUsize,
    /// Keys pending when that checkpoint began applying.
    ckpt_base: AtomicUsize,
    submitted_units: AtomicU64,
    wal_appends: AtomicU64,
    wal_bytes: AtomicU64,
    wal_ops: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_ops: AtomicU64,
    /// checkpoints of everything pending because the log had no room for it (one batch)
    full_log_checkpoints: AtomicU64,
    /// checkpoint attempts that met a full disk
    checkpoint_stalls: AtomicU64,
}

struct State {
    /// Last seq handed out.
    last_seq: u64,
    /// Every seq <= this is in the log or the backend (the writer's view of `durable_seq`).
    logged_seq: u64,
    /// Latest write per key not yet checkpointed.
    overlay: Overlay,
    /// When the oldest write not yet logged was submitted.
    unlogged_since: Option<Instant>,
    /// Highest seq a `durable` caller waits for.
    wanted: u64,
    writer_idle: bool,
    /// `close()` was called: no more units are accepted, the writer drains and exits.
    closing: bool,
    /// `checkpoint()` was called.
    checkpoint_wanted: bool,
    /// Why checkpoints are on hold (disk full), and when to try again.
    stalled: Option<(String, Instant)>,
    /// Why seqs above `durable_seq` fail once `Shared::stopped` is set.
    stop_reason: Option<StoreError>,
    /// The stop was a failure (reads fail too), not a close.
    failed: bool,
    /// Snapshots open on a backend without views: checkpoints wait for them.
    snapshots: usize,
    /// A checkpoint is committing into the backend.
    committing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(result)` once the fate of `seq` is known.
    fn outcome(&self, seq: u64) -> Option<Result<(), StoreError>> {
        if self.durable_seq.load(Ordering::Acquire) >= seq {
            return Some(Ok(()));
        }
        if !self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let st = self.lock();
        // Re-check: a sync may have finished between the two loads.
        if self.durable_seq.load(Ordering::Acquire) >= seq {
            return Some(Ok(()));
        }
        Some(Err(st
            .stop_reason
            .clone()
            .unwrap_or_else(|| StoreError::new("store stopped"))))
    }

    /// Fast path for reads: nothing is in the overlay, the backend holds everything.
    /// `submit` raises `pending` under the lock after recording.
    fn nothing_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0 && !self.stopped.load(Ordering::Acquire)
    }

    fn stop(&self, st: &mut State, reason: StoreError, failed: bool) {
        if st.stop_reason.is_none() {
            st.stop_reason = Some(reason);
        }
        st.failed |= failed;
        self.stopped.store(true, Ordering::Release);
    }

    fn wake_writer(&self, st: &State) {
        if st.writer_idle {
            self.work.notify_one();
        }
    }
}

impl Store {
    /// Opens the `kind` store in `dir` (created if missing) with default options.
    /// Refuses a directory that holds the other backend's data.
    pub fn open(kind: BackendKind, dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let opts = Options {
            cache_bytes,
            ..Options::default()
        };
        Self::open_with(kind, dir, &opts)
    }

    /// `open` with explicit options.
    pub fn open_with(kind: BackendKind, dir: &Path, opts: &Options) -> Result<Store, StoreError> {
        if dir.join(RESTORE_MARKER).exists() {
            return Err(StoreError(format!(
                "a restore into {} did not finish ({RESTORE_MARKER} is there): empty the \
                 directory and run `edgetwin restore` again",
                dir.display()
            )));
        }
        Self::open_unchecked(kind, dir, opts)
    }

    /// `open_with` without the check for an unfinished restore (the restore itself opens so).
    fn open_unchecked(kind: BackendKind, dir: &Path, opts: &Options) -> Result<Store, StoreError> {
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
            BackendKind::Sled => Box::new(SledBackend::open(dir, opts.cache_bytes)?),
            BackendKind::Redb => Box::new(RedbBackend::open_compacting(
                dir,
                opts.cache_bytes,
                opts.compact_growth_percent,
            )?),
        };
        Self::with_backend(backend, dir, opts)
    }

    /// Runs the store over any backend (tests use failing ones) with its log in `dir`: replays
    /// the log into the backend, then starts the writer thread.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        dir: &Path,
        opts: &Options,
    ) -> Result<Store, StoreError> {
        let mut opts = opts.clone();
        opts.max_pending_ops = opts.max_pending_ops.max(1);
        let has_views = backend.view()?.is_some();
        let shared = Arc::new(Shared {
            backend,
            has_views,
            space: Space::new(dir.to_path_buf(), opts.min_free_bytes),
            opts,
            state: Mutex::new(State {
                last_seq: 0,
                logged_seq: 0,
                overlay: Overlay::default(),
                unlogged_since: None,
                wanted: 0,
                writer_idle: false,
                closing: false,
                checkpoint_wanted: false,
                stalled: None,
                stop_reason: None,
                failed: false,
                snapshots: 0,
                committing: false,
            }),
            work: Condvar::new(),
            gate: Condvar::new(),
            durable_seq: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            evictions: AtomicU64::new(0),
            watched: AtomicU64::new(0),
            durable_event: Event::new(),
            ready_event: Event::new(),
            ckpt_total: AtomicUsize::new(0),
            ckpt_done: AtomicUsize::new(0),
            ckpt_base: AtomicUsize::new(0),
            submitted_units: AtomicU64::new(0),
            wal_appends: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(0),
            wal_ops: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_ops: AtomicU64::new(0),
            full_log_checkpoints: AtomicU64::new(0),
            checkpoint_stalls: AtomicU64::new(0),
        });
        let wal = shared.recover(dir)?;
        shared.record_format()?;
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name(format!("store-writer-{}", shared.backend.name()))
            .stack_size(crate::bounds::THREAD_STACK_BYTES)
            .spawn(move || for_writer.writer_loop(wal))
            .map_err(|e| StoreError(format!("cannot start store writer thread: {e}")))?;
        let store = Store {
            inner: Arc::new(Handle {
                shared,
                writer: Mutex::new(Some(writer)),
            }),
        };
        Ok(store)
    }

    /// Read-your-writes: the overlay of writes not yet checkpointed first, then the backend.
    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let sh = &self.inner.shared;
        if sh.nothing_pending() {
            return codec::decode_value(tree, key, sh.backend.get(tree, key)?);
        }
        {
            let st = sh.lock();
            if st.failed {
                return Err(failed_error(&st));
            }
            // pending values are kept as written: the codec runs where they leave memory
            if let Some(v) = st.overlay.get(tree, key) {
                return Ok(v);
            }
        }
        codec::decode_value(tree, key, sh.backend.get(tree, key)?)
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
            return codec::decode_entries(tree, sh.backend.scan(tree, prefix, after, limit)?);
        }
        // Overlay first, backend second: an entry checkpointed in between is then seen in at
        // least one of them (the overlay copy wins; it is the same or newer).
        let pending = {
            let mut st = sh.lock();
            if st.failed {
                return Err(failed_error(&st));
            }
            st.overlay.range(tree, prefix, after, limit)
        };
        if pending.is_empty() {
            return codec::decode_entries(tree, sh.backend.scan(tree, prefix, after, limit)?);
        }
        // At most `pending.len()` backend entries are shadowed, so this many always suffice.
        let base = sh
            .backend
            .scan(tree, prefix, after, limit.saturating_add(pending.len()))?;
        let base = codec::decode_entries(tree, base)?;
        Ok(overlay::merge(pending, base, limit))
    }

    /// Non-blocking, never awaits, writes nothing: makes `ops` visible to get/scan immediately
    /// as ONE atomic unit and returns its sequence number (strictly increasing). It becomes
    /// durable at most `flush_interval` later, or as soon as someone awaits `durable(seq)`.
    /// After `close()` or a failure the ops are discarded and `durable(seq)` reports why.
    pub fn submit(&self, ops: Vec<Op>) -> u64 {
        let sh = &self.inner.shared;
        let mut st = sh.lock();
        st.last_seq += 1;
        let seq = st.last_seq;
        if st.closing || st.failed {
            return seq;
        }
        let watched = ops
            .iter()
            .any(|o| o.tree == Tree::Index && o.key.first() == Some(&WATCHED_INDEX_BYTE));
        st.overlay.record(seq, ops);
        sh.pending.store(st.overlay.len(), Ordering::Release);
        if watched {
            sh.watched.fetch_add(1, Ordering::AcqRel);
        }
        sh.submitted_units.fetch_add(1, Ordering::Relaxed);
        let first = st.unlogged_since.is_none();
        if first {
            st.unlogged_since = Some(Instant::now());
        }
        if first || writer::overlay_over_bound(&sh.opts, &st.overlay) {
            sh.wake_writer(&st);
        }
        seq
    }

    /// Resolves once everything up to and including `seq` is durable (asking the writer to
    /// sync it now: group commit with every other waiter), or with the error if that failed
    /// (or the store was closed before `seq` was accepted).
    pub async fn durable(&self, seq: u64) -> Result<(), StoreError> {
        let sh = &self.inner.shared;
        if let Some(r) = sh.outcome(seq) {
            return r;
        }
        {
            let mut st = sh.lock();
            if st.wanted < seq {
                st.wanted = seq;
                sh.wake_writer(&st);
            }
        }
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

    /// How many submitted units so far wrote an index key starting with
    /// [`WATCHED_INDEX_BYTE`] (the search index's access entries, `search::access`): a copy of
    /// those entries taken after reading `n` here is current while this still says `n`.
    pub fn watched_changes(&self) -> u64 {
        self.inner.shared.watched.load(Ordering::Acquire)
    }

    /// The sequence number of the last `submit` (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.inner.shared.lock().last_seq
    }

    /// True if `seq` is durable (without asking for it).
    pub fn is_durable(&self, seq: u64) -> bool {
        self.inner.shared.durable_seq.load(Ordering::Acquire) >= seq
    }

    /// Logs everything accepted and checkpoints it into the backend (the log is empty after).
    /// For tests and consistent copies; the writer does it by itself when needed.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let sh = &self.inner.shared;
        let (seq, done, stalls) = {
            let mut st = sh.lock();
            st.checkpoint_wanted = true;
            sh.wake_writer(&st);
            (
                st.last_seq,
                sh.checkpoints.load(Ordering::Acquire),
                sh.checkpoint_stalls.load(Ordering::Acquire),
            )
        };
        loop {
            let listener = sh.durable_event.listen();
            if sh.checkpoints.load(Ordering::Acquire) > done {
                return self.durable(seq).await;
            }
            if sh.checkpoint_stalls.load(Ordering::Acquire) > stalls {
                return Err(StoreError(self.health().reason.unwrap_or_default()));
            }
            if sh.stopped.load(Ordering::Acquire) {
                return self.durable(u64::MAX).await;
            }
            listener.await;
        }
    }

    /// Log and checkpoint everything accepted, stop the writer thread. Idempotent. Returns the
    /// error if the store had failed. Drop every clone to release the database files.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }

    /// True once the store failed or was closed (lock-free; `is_failed` tells which). Caches
    /// above the store stop answering then, so reads fail like `get` does.
    pub fn is_stopped(&self) -> bool {
        self.inner.shared.stopped.load(Ordering::Acquire)
    }

    /// True once a log write or checkpoint failed (fail-stop): only a restart recovers.
    pub fn is_failed(&self) -> bool {
        self.inner.shared.lock().failed
    }

    pub fn backend_name(&self) -> &'static str {
        self.inner.shared.backend.name()
    }
}

impl Handle {
    fn close(&self) -> Result<(), StoreError> {
        let sh = &self.shared;
        // The guard is held through the join, so a concurrent close() returns only once done.
        let mut writer_slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(writer) = writer_slot.take() {
            {
                let mut st = sh.lock();
                st.closing = true;
                sh.work.notify_one();
            }
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
