//! Kept events of one entity in revision order, a page at a time (the persisted-event
//! streams: SSE `from-historical-*`, WS `subscribeForPersistedEvents`). The read-time bounds
//! apply as in `read.rs`: an event older than the age bound, or more than `max_revisions`
//! below the current revision, is not kept, whether or not a sweep removed it yet.

use super::keys::{self, Kind};
use super::log::History;
use super::record::Record;
use crate::store::StoreError;

impl History {
    /// Up to `limit` kept events of `kind id` with revisions in `revs` (`current`: the
    /// entity's revision now; `now`: epoch millis).
    pub fn events(
        &self,
        kind: Kind,
        id: &str,
        revs: std::ops::RangeInclusive<u64>,
        current: u64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(u64, Record)>, StoreError> {
        let cutoff = now.saturating_sub(self.cfg.max_age_ms());
        let max = self.cfg.max_revisions;
        let lowest = match max {
            0 => 1,
            m => current.saturating_sub(m - 1).max(1),
        };
        let (from, to) = (revs.start().max(&lowest).to_owned(), *revs.end());
        if from > to || limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = keys::events_of(kind, id);
        let after = keys::event(kind, id, from - 1);
        let mut out = Vec::new();
        for (k, v) in self.scan(&prefix, Some(&after), limit)? {
            let Some(rev) = keys::revision(&k).filter(|r| *r <= to) else {
                break;
            };
            let Some(r) = Record::decode(&v) else {
                return Err(StoreError(format!(
                    "history: {} {id} revision {rev} is not readable",
                    kind.name()
                )));
            };
            if r.timestamp >= cutoff {
                out.push((rev, r));
            }
        }
        Ok(out)
    }

    /// The first kept revision whose event is strictly after `t` (epoch millis), if any at
    /// or below `current`.
    pub fn first_after(
        &self,
        kind: Kind,
        id: &str,
        t: i64,
        current: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(first) = self.first_kept(kind, id)? else {
            return Ok(None);
        };
        // events with a timestamp <= t come first (timestamps grow with revisions)
        let last_not_after = self.last_before(kind, id, t.saturating_add(1), current)?;
        let r = last_not_after.map_or(first, |r| r + 1);
        Ok((r <= current).then_some(r))
    }
}
