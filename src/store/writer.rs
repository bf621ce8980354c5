//! The store's writer thread: decides when to sync (a waiter, the flush interval, close), appends
//! the writes not yet logged as one log record (group commit), checkpoints the overlay into the
//! backend when the log or the overlay is full (never on a full disk unless it must), and replays
//! the log into the backend at open. Disk full stalls checkpoints; other I/O errors are fatal.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::borrow::Cow;

use super::backend::{Op, OpRef, StoreError, Tree};
use super::codec;
use super::commit::last_write_per_key;
use super::options::{OVERLAY_BYTES_PER_KEY, OVERLAY_MIN_BYTES};
use super::overlay::{Overlay, Taken};
use super::wal::{encode_ops, Wal};
use super::{Options, Shared};

/// Key in `Tree::Meta` of the log epoch the backend's last checkpoint started (u64 LE).
pub const EPOCH_KEY: &[u8] = b"store.wal-epoch";
/// Pause before a checkpoint that met a full disk is tried again.
const STALL_RETRY: Duration = Duration::from_secs(1);

/// The overlay's byte bound: 4 MiB, or 64 B per key of the key bound if that is more (a
/// larger key bound means larger, fewer checkpoints: fewer backend pages written per op).
pub(super) fn overlay_max_bytes(opts: &Options) -> usize {
    OVERLAY_MIN_BYTES.max(opts.max_pending_ops.saturating_mul(OVERLAY_BYTES_PER_KEY))
}

/// True once the overlay should be checkpointed (half the key bound, or its byte bound).
pub(super) fn overlay_over_bound(opts: &Options, o: &Overlay) -> bool {
    o.len() >= opts.max_pending_ops / 2 || o.bytes() >= overlay_max_bytes(opts)
}

/// How a checkpoint ended.
#[derive(PartialEq)]
enum Outcome {
    Done,
    /// the disk was full: tried again later
    Stalled,
    /// the store failed (the writer ends)
    Failed,
}

/// How a log append ended.
enum Logged {
    Yes,
    /// it does not fit behind this epoch's records (nothing written)
    Full,
    /// the store failed (the writer ends)
    Failed,
}

/// A job's entries are taken under the state lock with their values shared
/// (`overlay::Taken`); they are copied out of the overlay after the lock is released.
enum Job {
    /// append these writes (everything not yet logged up to `seq`) to the log
    Log {
        seq: u64,
        ops: Taken,
    },
    /// write the whole overlay (the state up to `seq`) into the backend
    Checkpoint {
        seq: u64,
        /// (op, its value is in stored form already)
        ops: Taken,
        forced: bool,
        /// all of it is in the log (see `checkpoint`)
        covered: bool,
        /// the writes not yet logged, taken with `ops` (under the same lock): appended first,
        /// so that the checkpoint is covered if they fit in the log
        log: Option<Taken>,
    },
    Exit,
}

impl Shared {
    /// Opens the log, replays the records the backend does not hold yet and checkpoints them;
    /// on a full disk they stay in the overlay (durable in the log) until a checkpoint works.
    pub(super) fn recover(&self, dir: &Path) -> Result<Wal, StoreError> {
        let epoch = match self.backend.get(Tree::Meta, EPOCH_KEY)? {
            Some(v) if v.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v);
                u64::from_le_bytes(b)
            }
            _ => 0,
        };
        let (mut wal, records) = Wal::open(dir, self.opts.wal_bytes, epoch)?;
        if records.is_empty() {
            return Ok(wal);
        }
        let n = records.len();
        let ops = last_write_per_key(records.into_iter().flat_map(|r| r.ops).collect());
        let mut with_epoch = ops.clone();
        with_epoch.push(Op::put(Tree::Meta, EPOCH_KEY, (epoch + 1).to_le_bytes()));
        match self.backend.commit_covered(&with_epoch) {
            Ok(()) => {
                wal.reset(epoch + 1);
                tracing::info!(
                    records = n,
                    ops = ops.len(),
                    "store: write-ahead log replayed"
                );
            }
            Err(e) if e.is_no_space() || self.backend.read_only() => {
                tracing::warn!(records = n, error = %e, "store: log replayed into memory only (disk full); checkpointed once space is back");
                let ops = codec::decode_ops(ops)?;
                let mut st = self.lock();
                st.overlay.record(0, ops);
                // seq 0 is durable: nothing of it is logged again
                let _ = st.overlay.take_dirty_shared(0, 0);
                st.stalled = Some((
                    format!("checkpoint waits for disk space: {e}"),
                    Instant::now(),
                ));
                self.pending.store(st.overlay.len(), Ordering::Release);
            }
            Err(e) => return Err(e),
        }
        Ok(wal)
    }

    /// Refuses a data directory of a newer store format; records this one's if it is not yet
    /// (one commit, once per data directory; skipped while the disk is full).
    pub(super) fn record_format(&self) -> Result<(), StoreError> {
        let recorded = self.backend.get(Tree::Meta, codec::FORMAT_KEY)?;
        if !codec::check_format(recorded.as_deref())? || self.backend.read_only() {
            return Ok(());
        }
        let op = Op::put(Tree::Meta, codec::FORMAT_KEY, [codec::FORMAT]);
        match self.backend.commit(&[op]) {
            Err(e) if e.is_no_space() => {
                tracing::warn!(error = %e, "store: format not recorded (disk full)");
                Ok(())
            }
            other => other,
        }
    }

    pub(super) fn writer_loop(&self, mut wal: Wal) {
        loop {
            match self.next_job(&wal) {
                Job::Exit => return,
                Job::Log { seq, ops } => match self.log(&mut wal, seq, ops) {
                    Logged::Yes => {}
                    Logged::Failed => return,
                    Logged::Full => {
                        // the log is full: everything goes to the backend instead
                        let (seq, ops) = {
                            let mut st = self.lock();
                            let seq = st.last_seq;
                            (seq, st.overlay.snapshot_shared(seq))
                        };
                        match self.checkpoint(&mut wal, seq, ops, false) {
                            Outcome::Failed => return,
                            Outcome::Done => self.full_log_done(),
                            Outcome::Stalled => {}
                        }
                    }
                },
                Job::Checkpoint {
                    seq,
                    ops,
                    forced,
                    mut covered,
                    log,
                } => {
                    let mut full_log = false;
                    if let Some(log) = log {
                        match self.log(&mut wal, seq, log) {
                            Logged::Yes => covered = true,
                            Logged::Failed => return,
                            // `ops` holds all of it: applied at once (the log cannot repair it)
                            Logged::Full => (covered, full_log) = (false, true),
                        }
                    }
                    match self.checkpoint(&mut wal, seq, ops, covered) {
                        Outcome::Done if full_log => self.full_log_done(),
                        Outcome::Failed => return,
                        // at close a full disk ends the writer: the log holds everything
                        Outcome::Stalled if self.lock().closing => return,
                        // asked for: tried again once space is back
                        Outcome::Stalled if forced => self.lock().checkpoint_wanted = true,
                        _ => {}
                    }
                }
            }
        }
    }

    /// What to do next; sleeps until there is something.
    fn next_job(&self, wal: &Wal) -> Job {
        let mut st = self.lock();
        loop {
            if st.failed {
                return Job::Exit;
            }
            let now = Instant::now();
            let durable = self.durable_seq.load(Ordering::Acquire);
            let dirty = st.overlay.has_dirty();
            let waited = st.wanted > durable && st.last_seq > durable;
            let due = st.unlogged_since.map(|t| t + self.opts.flush_interval);
            let stall_over = st.stalled.as_ref().is_none_or(|(_, at)| now >= *at);
            let anything = st.overlay.len() > 0 || wal.used() > 0;
            let must = st.closing || st.checkpoint_wanted;
            // a snapshot on a backend without views holds optional checkpoints
            let want = overlay_over_bound(&self.opts, &st.overlay)
                && self.space.ok()
                && (self.has_views || st.snapshots == 0);
            let checkpoint = anything && (must || want) && (stall_over || st.closing);
            // a checkpoint that logs first (sled) logs for the waiters too: a record of its own
            // before it would leave the log less room for the writes made meanwhile
            let logs_first = checkpoint && self.backend.prefers_covered();
            if dirty && !logs_first && (waited || st.closing || due.is_some_and(|d| now >= d)) {
                let seq = st.last_seq;
                let logged = st.logged_seq;
                st.unlogged_since = None;
                return Job::Log {
                    seq,
                    ops: st.overlay.take_dirty_shared(seq, logged),
                };
            }
            if checkpoint {
                let seq = st.last_seq;
                st.unlogged_since = None;
                // log it first: a checkpoint the log covers may be applied in parts (sled). The
                // snapshot is taken now, with the writes to log: logging first and checkpointing
                // at the next pass chased the writes made meanwhile (a record each) until the
                // producers stopped at `max_pending_keys`, and at peak the log filled first
                let log = (dirty && logs_first).then(|| {
                    let logged = st.logged_seq;
                    st.overlay.take_dirty_shared(seq, logged)
                });
                // a `Store::checkpoint` asked from now on needs another one: clear the request
                // here, under the lock (cleared after the commit, it could swallow a request
                // made between the commit and the clearing, whose caller would then wait forever)
                st.checkpoint_wanted = false;
                return Job::Checkpoint {
                    seq,
                    covered: !dirty,
                    ops: st.overlay.snapshot_shared(seq),
                    forced: must,
                    log,
                };
            }
            if st.closing {
                return Job::Exit;
            }
            if st.checkpoint_wanted && !anything {
                // nothing to write: counts as done
                st.checkpoint_wanted = false;
                self.checkpoints.fetch_add(1, Ordering::Release);
                self.durable_event.notify(usize::MAX);
                continue;
            }
            let wake_at = [
                due,
                st.stalled
                    .as_ref()
                    .map(|(_, at)| *at)
                    .filter(|_| !stall_over),
            ]
            .into_iter()
            .flatten()
            .min();
            st.writer_idle = true;
            st = match wake_at {
                Some(at) => {
                    let wait = at
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1));
                    self.work
                        .wait_timeout(st, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
                None => self.work.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
            st.writer_idle = false;
        }
    }

    /// Appends the writes `taken` (everything not yet logged up to `seq`) as one record.
    fn log(&self, wal: &mut Wal, seq: u64, taken: Taken) -> Logged {
        // the stored form is made here, off the submitting thread
        let ops = codec::encode_ops(taken.plain_ops());
        let mut payload = Vec::new();
        encode_ops(&ops, &mut payload);
        if ops.is_empty() {
            self.logged(seq, 0, 0);
            return Logged::Yes;
        }
        if !wal.fits(payload.len()) {
            return Logged::Full;
        }
        match wal.append(seq, &payload) {
            Ok(bytes) => {
                let n = ops.len();
                // the checkpoint writes these stored forms: encoded once (kept in the frozen
                // generation, off the state lock)
                taken.keep_stored(ops);
                self.logged(seq, bytes, n);
                Logged::Yes
            }
            Err(e) => {
                self.fail(e, "write-ahead log append failed");
                Logged::Failed
            }
        }
    }

    fn full_log_done(&self) {
        self.full_log_checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything up to `seq` is in the log now.
    fn logged(&self, seq: u64, bytes: u64, ops: usize) {
        if bytes > 0 {
            self.wal_appends.fetch_add(1, Ordering::Relaxed);
            self.wal_bytes.fetch_add(bytes, Ordering::Relaxed);
            self.wal_ops.fetch_add(ops as u64, Ordering::Relaxed);
        }
        let mut st = self.lock();
        st.logged_seq = st.logged_seq.max(seq);
        self.durable_seq.fetch_max(seq, Ordering::AcqRel);
        drop(st);
        self.durable_event.notify(usize::MAX);
    }

    /// Writes `ops` (the overlay up to `seq`) and the next log epoch into the backend.
    /// `covered`: every op is in the log of the current epoch (a crash part-way is repaired by
    /// replaying it), so the backend may apply them in parts (`Backend::commit_covered`).
    fn checkpoint(&self, wal: &mut Wal, seq: u64, taken: Taken, covered: bool) -> Outcome {
        // the last write per key only (the overlay coalesced them): a hot twin written many
        // times between checkpoints is compressed once; a value logged since its last write
        // comes in the stored form the log append made. Keys and values are written from the
        // overlay's generations as they are (borrowed: no copy of each per checkpoint).
        let mut entries = taken.entries();
        entries.sort_unstable_by(|a, b| (a.0.index(), a.1).cmp(&(b.0.index(), b.1)));
        let values: Vec<Option<Cow<[u8]>>> = entries
            .iter()
            .map(|&(tree, key, value, stored)| {
                value.map(|v| match stored || !codec::applies(tree, key) {
                    true => Cow::Borrowed(v),
                    false => codec::encode_slice(v),
                })
            })
            .collect();
        let epoch = wal.epoch() + 1;
        let epoch_bytes = epoch.to_le_bytes();
        let mut ops: Vec<OpRef> = entries
            .iter()
            .zip(&values)
            .map(|(&(tree, key, _, _), value)| OpRef {
                tree,
                key,
                value: value.as_deref(),
            })
            .collect();
        let n = ops.len();
        let started = Instant::now();
        let wal_used = wal.used();
        ops.push(OpRef {
            tree: Tree::Meta,
            key: EPOCH_KEY,
            value: Some(&epoch_bytes),
        });
        // A panicking backend (sled panics on some corruption) must fail the waiters, not
        // strand them: it becomes a commit error (release builds abort on panic anyway).
        if !self.has_views {
            // the backend must not change under an open snapshot: wait for it to end
            let mut st = self.lock();
            while st.snapshots > 0 {
                st = self.gate.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.committing = true;
        }
        let commit = || {
            if covered {
                // applied in parts (sled): each gives paced producers their share of room (`gate`)
                self.ckpt_done.store(0, Ordering::Release);
                let base = self.pending.load(Ordering::Acquire);
                self.ckpt_base.store(base, Ordering::Release);
                self.ckpt_total.store(ops.len(), Ordering::Release);
                let per_op = super::gate::room_per_op(self.opts.max_pending_ops, base, ops.len());
                let mut part = |n: usize| {
                    self.ckpt_done.fetch_add(n, Ordering::AcqRel);
                    // as many producers as it made room for (each writes a key or more)
                    self.ready_event.notify((n as f64 * per_op).ceil() as usize);
                };
                let parts = self.backend.commit_parts(&ops, &mut part);
                self.ckpt_total.store(0, Ordering::Release);
                self.ready_event.notify(usize::MAX);
                if let Some(r) = parts {
                    return r;
                }
            }
            self.backend.commit_refs(&ops, covered)
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(commit))
            .unwrap_or_else(|_| Err(StoreError::new("backend panicked during commit")));
        if !self.has_views {
            self.lock().committing = false;
            self.gate.notify_all();
        }
        drop(ops);
        drop((values, entries));
        match result {
            Ok(()) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::debug!(ops = n, wal_used, covered, ms, "store: checkpoint");
                wal.reset(epoch);
                {
                    let mut st = self.lock();
                    st.logged_seq = st.logged_seq.max(seq);
                    st.stalled = None;
                    self.durable_seq.fetch_max(seq, Ordering::AcqRel);
                }
                self.durable_event.notify(usize::MAX);
                // the generations written are dropped at once (O(1) under the lock; they are
                // freed after it is released)
                let released = {
                    let mut st = self.lock();
                    let released = st.overlay.release(taken.through());
                    // before `pending`: a reader that sees the new `pending` sees this too
                    self.evictions.fetch_add(1, Ordering::Release);
                    self.pending.store(st.overlay.len(), Ordering::Release);
                    released
                };
                drop((released, taken));
                self.checkpoint_ops.fetch_add(n as u64, Ordering::Relaxed);
                self.checkpoints.fetch_add(1, Ordering::Release);
                self.durable_event.notify(usize::MAX);
                self.ready_event.notify(usize::MAX);
                Outcome::Done
            }
            Err(e) if e.is_no_space() || self.backend.read_only() => {
                self.checkpoint_stalls.fetch_add(1, Ordering::Release);
                // redb refuses all I/O after a failed write: reopen it (a no-op for sled)
                let reopened = self.backend.reopen();
                tracing::warn!(error = %e, ?reopened, "store: checkpoint stalled (disk full); retried once space is back");
                let mut st = self.lock();
                st.stalled = Some((
                    format!("checkpoint waits for disk space: {e}"),
                    Instant::now() + STALL_RETRY,
                ));
                // the snapshot took the dirty list: what is not logged yet must be again
                let logged = st.logged_seq;
                st.overlay.mark_dirty_above(logged);
                if st.overlay.has_dirty() && st.unlogged_since.is_none() {
                    st.unlogged_since = Some(Instant::now());
                }
                drop(st);
                self.durable_event.notify(usize::MAX);
                Outcome::Stalled
            }
            Err(e) => {
                self.fail(e, "store checkpoint failed");
                Outcome::Failed
            }
        }
    }

    /// Fail-stop: every seq not yet durable fails, reads fail, the overlay is dropped.
    fn fail(&self, e: StoreError, what: &str) {
        tracing::error!(backend = self.backend.name(), error = %e,
            "{what}; store is now failed (fail-stop), restart to recover");
        let mut st = self.lock();
        self.stop(&mut st, e, true);
        st.overlay = Overlay::default();
        self.pending.store(0, Ordering::Release);
        drop(st);
        self.durable_event.notify(usize::MAX);
        self.ready_event.notify(usize::MAX);
    }
}
