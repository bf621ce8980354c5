//! Retention, incremental: a sweep walks the time index oldest first, a few entities per step,
//! and drops what the age bound (the state current at the cutoff stays, as the start of what
//! is kept) or the bytes bound (oldest buckets first) no longer keeps; the revisions bound is
//! kept by the write path (`log.rs`). Reads apply the age and revisions bounds exactly, so how
//! late a sweep runs changes the disk, never an answer. Also the count of what is kept at
//! start and the figures of `/status/health`.

use super::keys::{self, Kind};
use super::log::{op_bytes, History, PAGE};
use super::record;
use crate::store::{Op, StoreError, Tree};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// Time index entries (entities) handled per sweep step.
const STEP: usize = 64;

/// Runs a closure under the write lock of an entity (the hub's per-entity lock).
pub type Locked<'a> = &'a dyn Fn(Kind, &str, &mut dyn FnMut());

/// What one sweep step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// time index entries handled
    pub entries: usize,
    /// a full step: call again soon
    pub more: bool,
}

impl History {
    /// Counts the kept events and bytes (once, at start; bytes retention waits for it).
    /// Writes during the count are counted once (what they added is taken over; a write the
    /// scan also saw counts twice, a bounded overcount).
    pub fn count(&self) -> Result<(), StoreError> {
        let before = (
            self.bytes.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
        );
        // deferred creations are not in the scan: what the tally holds now counts
        let deferred = self.deferred_count();
        let (mut bytes, mut events) = (-before.0, deferred - before.1);
        for prefix in [&b"e"[..], &b"s"[..]] {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = self.scan_raw(prefix, after.as_deref(), 1024)?;
                let full = page.len() == 1024;
                for (k, v) in &page {
                    bytes += (k.len() + v.len()) as i64;
                    events += (prefix == b"e") as i64;
                }
                match page.into_iter().last() {
                    Some((k, _)) if full => after = Some(k),
                    _ => break,
                }
            }
        }
        self.account(bytes, events);
        self.counted.store(true, Ordering::Release);
        // changes made before the count finished stored no totals (`counts_op`): store them
        // now, or a restart would find none and lose the tally of deferred creations, which no
        // scan sees (a creation made right after a first start then counted 0 events)
        if self.events.load(Ordering::Relaxed) != 0 || self.bytes.load(Ordering::Relaxed) != 0 {
            self.store.submit(self.counts_op().into_iter().collect());
        }
        Ok(())
    }

    fn over_bytes(&self) -> bool {
        let max = self.cfg.max_bytes();
        max > 0
            && self.counted.load(Ordering::Acquire)
            && self.bytes.load(Ordering::Relaxed) > max as i64
    }

    /// One bounded retention step at `now`.
    pub fn sweep(&self, now: i64, locked: Locked) -> Result<Swept, StoreError> {
        if !self.cfg.enabled {
            return Ok(Swept::default());
        }
        let cutoff = now.saturating_sub(self.cfg.max_age_ms());
        let bucket_ms = self.bucket_ms();
        let current_bucket = now - now.rem_euclid(bucket_ms);
        // deferred creations have no time index entry: uncounted here once too old
        if let Some(op) = self
            .expire_deferred(cutoff)
            .then(|| self.counts_op())
            .flatten()
        {
            self.store.submit(vec![op]);
        }
        let page = self.scan(keys::TIME_PREFIX, None, STEP)?;
        let mut done = Swept {
            entries: 0,
            more: page.len() == STEP,
        };
        for (k, _) in page {
            let Some((bucket, kind, id)) = keys::parse_time(&k) else {
                self.store.submit(vec![Op::delete(Tree::History, k)]);
                continue;
            };
            let end = bucket.saturating_add(bucket_ms);
            let limit = if end <= cutoff {
                Drop::Expired(cutoff)
            } else if self.over_bytes() {
                Drop::Before(end)
            } else {
                done.more = false;
                break;
            };
            let mut result = Ok(());
            locked(kind, &id, &mut || {
                result = self.fold(kind, &id, limit).map(|mut ops| {
                    ops.push(Op::delete(Tree::History, k.clone()));
                    ops.extend(self.counts_op());
                    self.store.submit(ops);
                });
            });
            result?;
            if bucket >= current_bucket {
                self.forget_indexed();
            }
            done.entries += 1;
        }
        Ok(done)
    }

    /// The ops that drop what `limit` no longer keeps of one entity.
    fn fold(&self, kind: Kind, id: &str, limit: Drop) -> Result<Vec<Op>, StoreError> {
        let limit_ts = match limit {
            Drop::Expired(t) | Drop::Before(t) => t,
        };
        // the last event before the limit and the first one at or after it
        let prefix = keys::events_of(kind, id);
        let (mut last_old, mut first_new) = (None, None);
        let mut after: Option<Vec<u8>> = None;
        'scan: loop {
            let page = self.scan(&prefix, after.as_deref(), PAGE)?;
            let full = page.len() == PAGE;
            for (k, v) in page {
                let rev = keys::revision(&k);
                match record::timestamp(&v) {
                    Some(t) if t >= limit_ts => {
                        first_new = rev;
                        break 'scan;
                    }
                    _ => last_old = rev,
                }
                after = Some(k);
            }
            if !full {
                break;
            }
        }
        let mut ops = Vec::new();
        let Some(last_old) = last_old else {
            return Ok(ops);
        };
        let Some(first_new) = first_new else {
            // nothing newer is kept: the current state answers for the rest
            self.drop_below(kind, id, u64::MAX, &mut ops)?;
            return Ok(ops);
        };
        let keep = match limit {
            Drop::Expired(_) => last_old,
            Drop::Before(_) => first_new,
        };
        let based = match kind {
            Kind::Thing => self.thing_base(id, keep)?.is_some(),
            Kind::Policy => self.policy_base(id, keep)?.is_some(),
        };
        if !based {
            if kind == Kind::Policy {
                return Err(StoreError(format!(
                    "history: policy {id} has no snapshot at {keep}"
                )));
            }
            let (state, _) = self.rebuild_thing(id, keep)?;
            let snap = Op::put(
                Tree::History,
                keys::snapshot(kind, id, keep),
                state.to_bytes(),
            );
            self.account(op_bytes(&snap), 0);
            ops.push(snap);
        }
        self.drop_below(kind, id, keep, &mut ops)?;
        Ok(ops)
    }

    /// What `/status/health` shows: on, events and bytes kept, the oldest event's time.
    pub fn health(&self) -> Value {
        if !self.cfg.enabled {
            return json!({"enabled": false});
        }
        let oldest = self
            .oldest()
            .ok()
            .flatten()
            .map(crate::clock::format_millis);
        json!({
            "enabled": true,
            "events": self.events.load(Ordering::Relaxed).max(0),
            "bytes": self.bytes.load(Ordering::Relaxed).max(0),
            "counted": self.counted.load(Ordering::Acquire),
            "oldest": oldest,
            "maxAgeSecs": self.cfg.max_age_secs,
            "maxRevisions": self.cfg.max_revisions,
            "maxBytes": self.cfg.max_bytes(),
        })
    }

    /// The time of the oldest kept event (of the first entities of the time index, and of the
    /// deferred creations).
    pub fn oldest(&self) -> Result<Option<i64>, StoreError> {
        let mut oldest: Option<i64> = self.oldest_deferred();
        for (k, _) in self.scan(keys::TIME_PREFIX, None, 8)? {
            let Some((_, kind, id)) = keys::parse_time(&k) else {
                continue;
            };
            let first = self.scan(&keys::events_of(kind, &id), None, 1)?;
            if let Some(t) = first.first().and_then(|(_, v)| record::timestamp(v)) {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
        }
        Ok(oldest)
    }
}

/// What a fold drops.
#[derive(Debug, Clone, Copy)]
enum Drop {
    /// older than the age bound (ms): all but the state current at the cutoff
    Expired(i64),
    /// everything before this time (ms; the bytes bound)
    Before(i64),
}
