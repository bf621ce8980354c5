//! What a store is opened with (`Options`, defaults) and what it reports (`StoreStats` for
//! benchmarks, `Health` for `/status/health`, `writable` for the write paths).

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use super::backend::StoreError;
use super::wal::DEFAULT_WAL_BYTES;
use super::{failed_error, Store};

/// Default bound of the overlay (keys not yet checkpointed) before `ready()` waits; a
/// checkpoint starts at half of it. Also bounds the hub's queue of events waiting for
/// durability (one per write). High enough that the overlay's byte bound, not its key count,
/// starts checkpoints: history writes a new key per change, and at 8,192 keys checkpoints came
/// 4x as often, at 838 instead of 408 bytes written per update (BENCHMARKS.md "History").
pub const DEFAULT_MAX_PENDING_OPS: usize = 65_536;
/// Default longest time a write nobody waits for stays only in memory.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(1000);
/// Default free-space reserve of the data directory's file system.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;
/// Bytes of keys and values the overlay holds before a checkpoint starts: at least this, or
/// `OVERLAY_BYTES_PER_KEY` per key of `max_pending_ops` (4 MiB at the default).
pub(super) const OVERLAY_MIN_BYTES: usize = 4 << 20;
pub(super) const OVERLAY_BYTES_PER_KEY: usize = 64;

/// How a store runs (all have defaults; `config.rs` maps `[store]` onto it).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// backend cache
    pub cache_bytes: u64,
    /// overlay bound (keys) for `ready()` (`[store] max_pending_keys`); a checkpoint starts at
    /// half of it, or at `max(4 MiB, 64 B per key)` of keys and values
    pub max_pending_ops: usize,
    /// longest time a write nobody waits for is only in memory
    pub flush_interval: Duration,
    /// writes are refused while less is free on the data directory's file system (0 = off)
    pub min_free_bytes: u64,
    /// size of a new write-ahead log file
    pub wal_bytes: u64,
    /// redb: compact the file at a clean shutdown once it grew by more than this (percent) since its last
    /// compaction (0 = never; `store::compact`)
    pub compact_growth_percent: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: 8 << 20,
            max_pending_ops: DEFAULT_MAX_PENDING_OPS,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            wal_bytes: DEFAULT_WAL_BYTES,
            compact_growth_percent: super::compact::DEFAULT_GROWTH_PERCENT,
        }
    }
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// units submitted
    pub submitted_units: u64,
    /// log records written and synced
    pub wal_appends: u64,
    /// bytes of those records (whole pages)
    pub wal_bytes: u64,
    /// ops in those records (a key rewritten within one record counts once)
    pub wal_ops: u64,
    /// checkpoints into the backend that succeeded
    pub checkpoints: u64,
    /// ops written by those checkpoints
    pub checkpoint_ops: u64,
    /// of those checkpoints, the ones applied at once because the log had no room for the
    /// writes not yet logged (sled; `docs/limits.md`)
    pub full_log_checkpoints: u64,
    /// keys not yet checkpointed (the overlay)
    pub pending_ops: usize,
}

/// What `/status/health` shows of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// writes are accepted
    pub writable: bool,
    /// why not (disk full, read-only backend, failed)
    pub reason: Option<String>,
    /// free bytes on the data directory's file system (last measurement)
    pub free_bytes: Option<u64>,
}

impl Store {
    /// `Ok` if new writes are accepted; else why not: the disk is full (below the reserve), the
    /// backend is read-only (opened on a full disk), or the store failed or was closed.
    pub fn writable(&self) -> Result<(), StoreError> {
        let sh = &self.inner.shared;
        if sh.stopped.load(Ordering::Acquire) {
            return Err(self
                .health()
                .reason
                .map_or_else(|| StoreError::new("store stopped"), StoreError));
        }
        if !sh.space.ok() || sh.backend.read_only() {
            return Err(StoreError(self.health().reason.unwrap_or_default()));
        }
        Ok(())
    }

    /// What `/status/health` shows.
    pub fn health(&self) -> Health {
        let sh = &self.inner.shared;
        let free = sh.space.free();
        let mib = |b: u64| b / (1 << 20);
        let reason = {
            let st = sh.lock();
            if st.failed {
                Some(format!(
                    "{} (fail-stop; a restart recovers what was durable)",
                    failed_error(&st)
                ))
            } else if st.closing {
                Some("store closed".into())
            } else if sh.space.is_full() {
                Some(format!(
                    "disk full: {} MiB free on the data directory's file system, below store.min_free_mb = {}",
                    free.map_or(0, mib),
                    mib(sh.space.min_free())
                ))
            } else if sh.backend.read_only() {
                Some("the backend was opened read-only (the disk was full at start)".into())
            } else {
                st.stalled.as_ref().map(|(why, _)| why.clone())
            }
        };
        Health {
            writable: reason.is_none(),
            reason,
            free_bytes: free,
        }
    }

    /// Figures for benchmarks/diagnostics.
    pub fn stats(&self) -> StoreStats {
        let sh = &self.inner.shared;
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            submitted_units: c(&sh.submitted_units),
            wal_appends: c(&sh.wal_appends),
            wal_bytes: c(&sh.wal_bytes),
            wal_ops: c(&sh.wal_ops),
            checkpoints: c(&sh.checkpoints),
            checkpoint_ops: c(&sh.checkpoint_ops),
            full_log_checkpoints: c(&sh.full_log_checkpoints),
            pending_ops: sh.pending.load(Ordering::Relaxed),
        }
    }
}
