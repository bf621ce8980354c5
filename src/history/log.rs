//! The `History` handle: what a change adds to its store unit (its event, a snapshot every
//! `SNAPSHOT_EVERY` revisions and at the start of a run, the time index entry, the drop of
//! revisions beyond `max_revisions`; a creation's event is deferred, `deferred.rs`), plus the
//! counters `/status/health` shows. Called under the entity's lock, like the write it belongs
//! to, so its reads see the entity's last write.

use super::config::HistoryConfig;
use super::keys::{self, Kind};
use super::record::Record;
use crate::fasthash::Map;
use crate::store::{Op, Store, StoreError, Tree};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

/// A thing's whole state is kept every this many revisions (replay starts at the nearest one
/// below; chosen by measurement, BENCHMARKS.md "History"). Policies keep every revision.
pub const SNAPSHOT_EVERY: u64 = 64;
/// Most entities remembered (`Recent`); past it all are forgotten: a time index entry is then
/// written again (harmless) and the previous event is looked up in the store once. Sized for
/// 100k written twins (~85 bytes each, ~11 MiB when full; filled by writes, empty at start): at
/// 16,384 the store read of every change of 100k twins cost 9 % (steady state 0.84 with this).
const RECENT_MAX: usize = 131_072;
/// Last byte of the stored totals: their bytes are counted as written.
const COUNTS_AS_WRITTEN: u8 = 2;
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
    /// bytes of kept events and snapshots (keys and values as written, before the store's
    /// compression: the store compresses on its writer thread, after they are counted)
    pub(super) bytes: AtomicI64,
    /// kept events
    pub(super) events: AtomicI64,
    /// the count of what was kept at start has finished (bytes retention waits for it)
    pub(super) counted: AtomicBool,
    /// what this process recorded last per entity (things, policies)
    recent: Mutex<[Map<String, Recent>; 2]>,
    /// deferred creations not yet written, per time bucket (`deferred.rs`)
    pub(super) deferred: Mutex<super::deferred::Tally>,
}

/// What this process recorded last for one entity, so that the next change needs no store read
/// to learn whether its previous event is kept, nor writes the time index entry twice. Only
/// facts of this run: after a restart (kill -9 included) nothing is remembered and the store
/// answers, and every drop of an entity's events forgets it (`drop_below`).
#[derive(Clone, Copy)]
struct Recent {
    /// the time index bucket it was indexed in last
    bucket: i64,
    /// the revision of its last event recorded (0: none)
    revision: u64,
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Thing => 0,
        Kind::Policy => 1,
    }
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
            recent: Mutex::new(Default::default()),
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

    /// A value as written (the store keeps events and snapshots in its codec: LZ4 against
    /// Ditto's JSON skeleton, `store::codec`, made on its writer thread); a deferred creation
    /// event as if it were stored.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let stored = self.store.get(Tree::History, key).map_err(err)?;
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
        let stored = self.scan_raw(prefix, after, limit)?;
        match limit {
            0 => Ok(stored),
            _ => self.scan_with_deferred(prefix, after, stored).map_err(err),
        }
    }

    /// As `scan`, nothing deferred.
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
        let tally = self.tally();
        // sized at once: every change writes it
        let mut v = Vec::with_capacity(16 + 24 * tally.len() + 1);
        v.extend_from_slice(&self.bytes.load(Ordering::Relaxed).to_le_bytes());
        v.extend_from_slice(&self.events.load(Ordering::Relaxed).to_le_bytes());
        // then the tally of deferred creations (a version without it reads the first 16)
        super::deferred::encode_tally(&tally, &mut v);
        drop(tally);
        // then the marker of bytes counted as written (older versions counted them compressed
        // and ignore it: the tally is read in whole chunks of 24)
        v.push(COUNTS_AS_WRITTEN);
        Some(Op::put(Tree::History, keys::COUNTS.to_vec(), v))
    }

    /// Takes the totals the last change stored (before any write of this run). False when
    /// there are none (history kept by a version without them, or none yet) or their bytes were
    /// counted compressed (by an older version; its tally of deferred creations is taken):
    /// `count` scans.
    pub fn load_counts(&self) -> Result<bool, StoreError> {
        let stored = self.store.get(Tree::History, keys::COUNTS).map_err(err)?;
        let Some((b, e)) = stored.as_deref().and_then(|v| {
            let b = i64::from_le_bytes(v.get(..8)?.try_into().ok()?);
            let e = i64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
            Some((b, e))
        }) else {
            return Ok(false);
        };
        let tally = stored.as_deref().and_then(|v| v.get(16..)).unwrap_or(&[]);
        let as_written = tally.len() % 24 == 1 && tally.last() == Some(&COUNTS_AS_WRITTEN);
        let tally = &tally[..tally.len() - tally.len() % 24];
        self.set_tally(super::deferred::decode_tally(tally));
        if !as_written {
            return Ok(false);
        }
        self.bytes.store(b, Ordering::Relaxed);
        self.events.store(e, Ordering::Relaxed);
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
            r if self.recent(kind, id).is_some_and(|s| s.revision == r - 1) => true,
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
        let event = Op::put(Tree::History, keys::event(kind, id, rev), record.encode());
        let mut added = op_bytes(&event);
        ops.push(event);
        // a creation at `/` is its own snapshot (read.rs `base_at`)
        if (starts_run || rev % every == 0) && !record.self_contained() {
            let snap = Op::put(Tree::History, keys::snapshot(kind, id, rev), state.to_vec());
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
        if self.recorded(kind, id, bucket, rev) {
            ops.push(Op::put(Tree::History, keys::time(bucket, kind, id), []));
        }
        ops.extend(self.counts_op());
        Ok(ops)
    }

    fn recent_lock(&self) -> std::sync::MutexGuard<'_, [Map<String, Recent>; 2]> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recent(&self, kind: Kind, id: &str) -> Option<Recent> {
        self.recent_lock()[slot(kind)].get(id).copied()
    }

    /// Remembers that the event of `kind id` at `revision` is recorded in `bucket` (the ops are
    /// submitted in the caller's unit: a unit that fails leaves its revision unused, and the
    /// write after it asks the store again). True unless the entity was indexed in `bucket`.
    fn recorded(&self, kind: Kind, id: &str, bucket: i64, revision: u64) -> bool {
        let mut g = self.recent_lock();
        if let Some(s) = g[slot(kind)].get_mut(id) {
            let first = s.bucket != bucket;
            *s = Recent { bucket, revision };
            return first;
        }
        if g.iter().map(|m| m.len()).sum::<usize>() >= RECENT_MAX {
            *g = Default::default();
        }
        g[slot(kind)].insert(id.to_owned(), Recent { bucket, revision });
        true
    }

    /// Forgets what was recorded (after retention removed time index entries of the current
    /// bucket, so they are written again).
    pub(super) fn forget_indexed(&self) {
        *self.recent_lock() = Default::default();
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
        // its last event may be among them: the next change asks the store
        self.recent_lock()[slot(kind)].remove(id);
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
