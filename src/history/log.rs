//! The `History` handle: what a change adds to its store unit (its event, a snapshot every
//! `SNAPSHOT_EVERY` revisions and at the start of a run, the time index entry, the drop of
//! revisions beyond `max_revisions`; a creation's event is deferred, `deferred.rs`), plus the
//! counters `/status/health` shows. Called under the entity's lock, like the write it belongs
//! to, so its reads see the entity's last write.

use super::config::HistoryConfig;
use super::keys::{self, Kind};
use super::record::Record;
use crate::store::{codec, Op, Store, StoreError, Tree};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

/// A thing's whole state is kept every this many revisions (replay starts at the nearest one
/// below; chosen by measurement, BENCHMARKS.md "History"). Policies keep every revision.
pub const SNAPSHOT_EVERY: u64 = 64;
/// Most (bucket, entity) pairs remembered as indexed in the current time bucket (more: the
/// index entry is written again, which is harmless).
const INDEXED_MAX: usize = 16_384;
/// Keys read per page while dropping history.
pub(super) const PAGE: usize = 256;

/// One change to record.
pub struct Change<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub revision: u64,
    pub record: Record,
    /// the entity's state after the change, as the store keeps it (the snapshot)
    pub state: &'a [u8],
}

/// History of one store (cheap to share behind an `Arc`).
pub struct History {
    pub(super) cfg: HistoryConfig,
    pub(super) store: Store,
    pub(super) snapshot_every: u64,
    /// bytes of kept events and snapshots (keys and values)
    pub(super) bytes: AtomicI64,
    /// kept events
    pub(super) events: AtomicI64,
    /// the count of what was kept at start has finished (bytes retention waits for it)
    pub(super) counted: AtomicBool,
    /// (bucket, entities indexed in it)
    indexed: Mutex<(i64, HashSet<(Kind, String)>)>,
    /// deferred creations not yet written, per time bucket (`deferred.rs`)
    pub(super) deferred: Mutex<super::deferred::Tally>,
}

fn err(e: StoreError) -> StoreError {
    StoreError(format!("history: {}", e.0))
}

impl History {
    pub fn new(cfg: HistoryConfig, store: Store) -> History {
        Self::with_snapshots(cfg, store, SNAPSHOT_EVERY)
    }

    /// With snapshots every `every` thing revisions (benchmarks compare spacings).
    pub fn with_snapshots(cfg: HistoryConfig, store: Store, every: u64) -> History {
        History {
            cfg,
            store,
            snapshot_every: every.max(1),
            bytes: AtomicI64::new(0),
            events: AtomicI64::new(0),
            counted: AtomicBool::new(false),
            indexed: Mutex::new((0, HashSet::new())),
            deferred: Mutex::new(Default::default()),
        }
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Length of one time index bucket: a 24th of the age bound, between 1 s and 1 h.
    pub fn bucket_ms(&self) -> i64 {
        (self.cfg.max_age_ms() / 24).clamp(1000, 3_600_000)
    }

    pub(super) fn every(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Thing => self.snapshot_every,
            Kind::Policy => 1,
        }
    }

    /// A value as written (values are stored in the store's codec: LZ4 against Ditto's JSON
    /// skeleton, `store::codec`); a deferred creation event as if it were stored.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.store.get(Tree::History, key).map_err(err)?;
        let stored = stored.map(codec::decode).transpose().map_err(err)?;
        self.with_deferred(key, stored).map_err(err)
    }

    /// Keys and values (as written) with `prefix` after `after`, at most `limit`; a deferred
    /// creation event as if it were stored.
    pub(super) fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<crate::store::Entries, StoreError> {
        let raw = self.scan_raw(prefix, after, limit)?;
        let stored = raw
            .into_iter()
            .map(|(k, v)| codec::decode(v).map(|v| (k, v)))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        match limit {
            0 => Ok(stored),
            _ => self.scan_with_deferred(prefix, after, stored).map_err(err),
        }
    }

    /// As `scan`, values as stored (what the byte counts count), nothing deferred.
    pub(super) fn scan_raw(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<crate::store::Entries, StoreError> {
        self.store
            .scan(Tree::History, prefix, after, limit)
            .map_err(err)
    }

    /// The kept totals as an op for the unit that changed them, once they are known: a restart
    /// reads them (`load_counts`) instead of scanning all history, which would also fill the
    /// store's read cache (+9 MiB idle RSS at 100k twins). Concurrent units may commit in
    /// another order than they counted: the stored totals can be off by the last few changes,
    /// a bounded error of a figure used for `/status/health` and the bytes bound.
    pub(super) fn counts_op(&self) -> Option<Op> {
        if !self.counted.load(Ordering::Acquire) {
            return None;
        }
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.bytes.load(Ordering::Relaxed).to_le_bytes());
        v.extend_from_slice(&self.events.load(Ordering::Relaxed).to_le_bytes());
        // then the tally of deferred creations (a version without it reads the first 16)
        self.tally_bytes(&mut v);
        Some(Op::put(Tree::History, keys::COUNTS.to_vec(), v))
    }

    /// Takes the totals the last change stored (before any write of this run). False when
    /// there are none (history kept by a version without them, or none yet): `count` scans.
    pub fn load_counts(&self) -> Result<bool, StoreError> {
        let stored = self.store.get(Tree::History, keys::COUNTS).map_err(err)?;
        let Some((b, e)) = stored.as_deref().and_then(|v| {
            let b = i64::from_le_bytes(v.get(..8)?.try_into().ok()?);
            let e = i64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
            Some((b, e))
        }) else {
            return Ok(false);
        };
        self.bytes.store(b, Ordering::Relaxed);
        self.events.store(e, Ordering::Relaxed);
        let tally = stored.as_deref().and_then(|v| v.get(16..)).unwrap_or(&[]);
        self.set_tally(super::deferred::decode_tally(tally));
        self.counted.store(true, Ordering::Release);
        Ok(true)
    }

    pub(super) fn account(&self, bytes: i64, events: i64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    /// The ops that record `change`, to submit in the same unit as the change itself. Nothing
    /// when history is off.
    pub fn ops(&self, change: Change) -> Result<Vec<Op>, StoreError> {
        if !self.cfg.enabled {
            return Ok(Vec::new());
        }
        let (kind, id, rev) = (change.kind, change.id, change.revision);
        let ts = change.record.timestamp;
        let mut ops = Vec::with_capacity(3);
        let every = self.every(kind);
        // a run of kept revisions starts here: the previous event is not kept (a new entity,
        // or history was off); what is kept of an older run is dropped, it no longer connects.
        // Revision 1 may be deferred (`deferred.rs`): written now, with the change after it.
        let prev_kept = match rev {
            0 | 1 => false,
            2 => self.materialize(kind, id, ts, &mut ops).map_err(err)?,
            r => {
                let prev = self.store.get(Tree::History, &keys::event(kind, id, r - 1));
                prev.map_err(err)?.is_some()
            }
        };
        let starts_run = !prev_kept;
        if starts_run {
            self.drop_below(kind, id, u64::MAX, &mut ops)?;
        }
        if self.defer(&change, &mut ops) {
            ops.extend(self.counts_op());
            return Ok(ops);
        }
        let Change { record, state, .. } = change;
        let event = Op::put(
            Tree::History,
            keys::event(kind, id, rev),
            codec::encode(record.encode()),
        );
        let mut added = op_bytes(&event);
        ops.push(event);
        // a creation at `/` is its own snapshot (read.rs `base_at`)
        if (starts_run || rev % every == 0) && !record.self_contained() {
            let snap = Op::put(
                Tree::History,
                keys::snapshot(kind, id, rev),
                codec::encode(state.to_vec()),
            );
            added += op_bytes(&snap);
            ops.push(snap);
        }
        self.account(added, 1);
        // revisions beyond the bound: dropped a chunk at a time, down to a kept snapshot
        let max = self.cfg.max_revisions;
        if max > 0 && !starts_run && rev % self.snapshot_every == 0 && rev + 1 > max {
            let keep_from = (rev + 1 - max) / every * every;
            if keep_from > 0 {
                self.drop_below(kind, id, keep_from, &mut ops)?;
            }
        }
        let bucket = ts - ts.rem_euclid(self.bucket_ms());
        if self.first_in_bucket(bucket, kind, id) {
            ops.push(Op::put(Tree::History, keys::time(bucket, kind, id), []));
        }
        ops.extend(self.counts_op());
        Ok(ops)
    }

    /// True unless `kind id` was indexed in `bucket` already (remembered in memory).
    fn first_in_bucket(&self, bucket: i64, kind: Kind, id: &str) -> bool {
        let mut g = self.indexed.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 != bucket {
            *g = (bucket, HashSet::new());
        }
        if g.1.contains(&(kind, id.to_owned())) {
            return false;
        }
        if g.1.len() < INDEXED_MAX {
            g.1.insert((kind, id.to_owned()));
        }
        true
    }

    /// Forgets what was indexed (after retention removed time index entries of the current
    /// bucket, so they are written again).
    pub(super) fn forget_indexed(&self) {
        let mut g = self.indexed.lock().unwrap_or_else(|e| e.into_inner());
        g.1.clear();
    }

    /// Adds to `ops` the deletes of every event and snapshot of `kind id` below revision
    /// `below`, and accounts for them.
    pub(super) fn drop_below(
        &self,
        kind: Kind,
        id: &str,
        below: u64,
        ops: &mut Vec<Op>,
    ) -> Result<(), StoreError> {
        for (prefix, is_event) in [
            (keys::events_of(kind, id), true),
            (keys::snapshots_of(kind, id), false),
        ] {
            let mut after: Option<Vec<u8>> = None;
            'pages: loop {
                let page = self.scan_raw(&prefix, after.as_deref(), PAGE)?;
                let full = page.len() == PAGE;
                for (k, v) in page {
                    if keys::revision(&k).is_none_or(|r| r >= below) {
                        break 'pages;
                    }
                    self.account(-((k.len() + v.len()) as i64), -(is_event as i64));
                    ops.push(Op::delete(Tree::History, k.clone()));
                    after = Some(k);
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Bytes an op adds (key and value).
pub(super) fn op_bytes(op: &Op) -> i64 {
    (op.key.len() + op.value.as_ref().map_or(0, Vec::len)) as i64
}
