//! Deferred creation events. An entity (thing or policy) still at revision 1 *is* its creation
//! event's content, so that event is not written when it is created: it is written in the unit
//! of the entity's first change (its old state is still in the store then), or dropped there when
//! the age bound no longer keeps it. Until then every history read sees it as if it were stored:
//! `History::get` and `History::scan` synthesize it here, and only here, from the entity's stored
//! state, which also keeps its persisted headers (`"h"`, only when there are any; directories
//! written before kept them under `keys::headers` and are still read, see `headers_in`). The
//! totals count it as an event of 0 bytes; a tally per time bucket, stored with the totals, lets
//! the sweep uncount the ones the age bound drops. (Measured: BENCHMARKS.md "History".)

use super::keys::{self, Kind};
use super::log::{op_bytes, Change, History};
use super::record::Record;
use crate::engine::ThingState;
use crate::policy::PolicyState;
use crate::protocol::EventAction;
use crate::store::{Entries, Op, StoreError, Tree};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Field of an entity's stored state (a JSON object: `t`/`p`, `r`, `c`, `m`...) that holds the
/// persisted headers of its deferred creation; the entity's next write (which materializes the
/// creation event) leaves it out, as that state is built anew.
const HEADERS_FIELD: &str = "h";

/// `state` with `headers` added as its last field (spliced into the JSON object's text, which
/// `ThingState` / `PolicyState` ignore when they read it); `None` if `state` is no object.
fn with_headers(state: &[u8], headers: &Map<String, Value>) -> Option<Vec<u8>> {
    let body = state.strip_suffix(b"}")?;
    if !body.starts_with(b"{") || body.len() < 2 {
        return None;
    }
    let mut out = Vec::with_capacity(state.len() + 64);
    out.extend_from_slice(body);
    out.extend_from_slice(format!(",\"{HEADERS_FIELD}\":").as_bytes());
    serde_json::to_writer(&mut out, headers).ok()?;
    out.push(b'}');
    Some(out)
}

/// The persisted headers kept in a stored state, if any.
fn headers_in(state: &[u8]) -> Option<Map<String, Value>> {
    #[derive(serde::Deserialize)]
    struct Kept {
        #[serde(rename = "h")]
        headers: Option<Map<String, Value>>,
    }
    serde_json::from_slice::<Kept>(state).ok()?.headers
}

/// Deferred creations not yet written, per time bucket start: (count, earliest timestamp).
pub(super) type Tally = BTreeMap<i64, (i64, i64)>;

/// The creation record an entity's stored state stands for while it is at revision 1 (no
/// headers); `None` for any other state.
pub fn creation_of(kind: Kind, state: &[u8]) -> Option<Record> {
    let (revision, timestamp, value, full_metadata) = match kind {
        Kind::Thing => {
            let s = ThingState::from_bytes(state).ok().filter(|s| !s.deleted)?;
            (s.revision, s.modified, s.thing, s.metadata)
        }
        Kind::Policy => {
            let s = PolicyState::from_bytes(state)?;
            let v = crate::policy::json::policy(&s.policy);
            (s.revision, s.modified, v, None)
        }
    };
    (revision == 1).then(|| Record {
        action: EventAction::Created,
        timestamp,
        path: "/".into(),
        value: Some(value),
        metadata: None,
        full_metadata,
        headers: Map::new(),
    })
}

fn tree(kind: Kind) -> Tree {
    match kind {
        Kind::Thing => Tree::Things,
        Kind::Policy => Tree::Policies,
    }
}

/// The tally as stored after the totals: (bucket, count, earliest) as i64 LE each.
pub(super) fn encode_tally(t: &Tally, out: &mut Vec<u8>) {
    for (bucket, (n, first)) in t {
        for x in [*bucket, *n, *first] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

pub(super) fn decode_tally(b: &[u8]) -> Tally {
    let int = |c: &[u8]| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    b.chunks_exact(24)
        .map(|c| (int(&c[..8]), (int(&c[8..16]), int(&c[16..]))))
        .collect()
}

impl History {
    pub(super) fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bucket_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.bucket_ms())
    }

    /// The creation event of `kind id` if it is deferred (the entity is at revision 1; the
    /// caller knows that no event is stored there), with its persisted headers (and whether
    /// they were kept under a key of their own, as before they went into the state).
    fn deferred_with_source(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<Option<(Record, bool)>, StoreError> {
        let Some(state) = self.store.get(tree(kind), id.as_bytes())? else {
            return Ok(None);
        };
        let Some(mut r) = creation_of(kind, &state) else {
            return Ok(None);
        };
        if let Some(h) = headers_in(&state) {
            r.headers = h;
            return Ok(Some((r, false)));
        }
        let side = self.store.get(Tree::History, &keys::headers(kind, id))?;
        if let Some(h) = &side {
            r.headers = serde_json::from_slice(h).unwrap_or_default();
        }
        Ok(Some((r, side.is_some())))
    }

    fn deferred_creation(&self, kind: Kind, id: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.deferred_with_source(kind, id)?.map(|(r, _)| r))
    }

    /// What `get` answers for `key`: the stored value, else a deferred creation event.
    pub(super) fn with_deferred(
        &self,
        key: &[u8],
        stored: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match (stored, keys::parse_event(key)) {
            (None, Some((kind, id, 1))) => {
                Ok(self.deferred_creation(kind, id)?.map(|r| r.encode()))
            }
            (stored, _) => Ok(stored),
        }
    }

    /// What `scan` answers: the stored entries, else (none stored under an entity's event
    /// prefix, from revision 1 on) its deferred creation event.
    pub(super) fn scan_with_deferred(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        stored: Entries,
    ) -> Result<Entries, StoreError> {
        let Some((kind, id)) = keys::parse_events_of(prefix).filter(|_| stored.is_empty()) else {
            return Ok(stored);
        };
        let first = keys::event(kind, id, 1);
        if after.is_some_and(|a| a >= first.as_slice()) {
            return Ok(stored);
        }
        let r = self.deferred_creation(kind, id)?;
        Ok(r.map(|r| vec![(first, r.encode())]).unwrap_or_default())
    }

    /// Defers the creation `change` records, when its state stands for it exactly: adds to
    /// `ops` its state again with its headers in it (if any; after the entity's own write in
    /// the unit, so it replaces it), counts it. False: write it as any other event.
    pub(super) fn defer(&self, change: &Change, ops: &mut Vec<Op>) -> bool {
        let r = &change.record;
        // Only a creation can be deferred: decide on the revision before decoding the state
        // (decoding it for every change was 15 % of a modify's CPU, BENCHMARKS.md round 4).
        if change.revision != 1 {
            return false;
        }
        let same = creation_of(change.kind, change.state).is_some_and(|mut c| {
            c.headers = r.headers.clone();
            c == *r
        });
        if !same {
            return false;
        }
        if !r.headers.is_empty() {
            let Some(state) = with_headers(change.state, &r.headers) else {
                return false;
            };
            ops.push(Op::put(tree(change.kind), change.id, state));
        }
        let mut t = self.tally();
        let e = t
            .entry(self.bucket_of(r.timestamp))
            .or_insert((0, r.timestamp));
        e.0 += 1;
        e.1 = e.1.min(r.timestamp);
        drop(t);
        self.account(0, 1);
        true
    }

    /// Before the change at revision 2 of `kind id` (at `now`): writes its deferred creation
    /// into `ops` (with its time index entry), or drops it when it is older than the age bound.
    /// True when revision 1 is kept (stored before, or written now).
    pub(super) fn materialize(
        &self,
        kind: Kind,
        id: &str,
        now: i64,
        ops: &mut Vec<Op>,
    ) -> Result<bool, StoreError> {
        if self
            .store
            .get(Tree::History, &keys::event(kind, id, 1))?
            .is_some()
        {
            return Ok(true);
        }
        let Some((r, side)) = self.deferred_with_source(kind, id)? else {
            return Ok(false);
        };
        if side {
            ops.push(Op::delete(Tree::History, keys::headers(kind, id)));
        }
        let bucket = self.bucket_of(r.timestamp);
        let counted = {
            let mut t = self.tally();
            let counted = t.get_mut(&bucket).is_some_and(|e| {
                e.0 -= 1;
                true
            });
            if t.get(&bucket).is_some_and(|e| e.0 <= 0) {
                t.remove(&bucket);
            }
            counted
        };
        if r.timestamp < now.saturating_sub(self.cfg.max_age_ms()) {
            self.account(0, -(counted as i64));
            return Ok(false);
        }
        let event = Op::put(Tree::History, keys::event(kind, id, 1), r.encode());
        self.account(op_bytes(&event), !counted as i64);
        ops.push(event);
        // always (an older bucket than the one `first_in_bucket` remembers; a repeat is harmless)
        ops.push(Op::put(Tree::History, keys::time(bucket, kind, id), []));
        Ok(true)
    }

    /// Uncounts the deferred creations of buckets that ended at or before `cutoff` (the age
    /// bound no longer keeps them). True when something changed (the totals are to be stored).
    pub(super) fn expire_deferred(&self, cutoff: i64) -> bool {
        let bucket_ms = self.bucket_ms();
        let mut t = self.tally();
        let old: Vec<i64> = t
            .range(..=cutoff.saturating_sub(bucket_ms))
            .map(|(b, _)| *b)
            .collect();
        let n: i64 = old.iter().filter_map(|b| t.remove(b)).map(|e| e.0).sum();
        drop(t);
        self.account(0, -n);
        !old.is_empty()
    }

    /// How many deferred creations are counted.
    pub(super) fn deferred_count(&self) -> i64 {
        self.tally().values().map(|e| e.0).sum()
    }

    /// The earliest deferred creation still counted.
    pub(super) fn oldest_deferred(&self) -> Option<i64> {
        self.tally().values().map(|e| e.1).min()
    }

    /// Replaces the tally (totals loaded at start).
    pub(super) fn set_tally(&self, t: Tally) {
        *self.tally() = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tally_round_trips() {
        let mut t = Tally::new();
        t.insert(3_600_000, (2, 3_600_010));
        t.insert(7_200_000, (1, 7_200_500));
        let mut b = vec![];
        encode_tally(&t, &mut b);
        assert_eq!(b.len(), 48);
        assert_eq!(decode_tally(&b), t);
        assert_eq!(decode_tally(&[]), Tally::new());
    }

    #[test]
    fn only_a_state_at_revision_1_stands_for_its_creation() {
        let s = ThingState {
            thing: json!({"thingId": "n:a", "attributes": {"x": 1}}),
            revision: 1,
            created: 5,
            modified: 5,
            metadata: None,
            deleted: false,
        };
        let r = creation_of(Kind::Thing, &s.to_bytes()).unwrap();
        assert!(r.self_contained());
        assert_eq!((r.timestamp, r.value.as_ref()), (5, Some(&s.thing)));
        let later = ThingState {
            revision: 2,
            ..s.clone()
        };
        assert_eq!(creation_of(Kind::Thing, &later.to_bytes()), None);
        let gone = ThingState { deleted: true, ..s };
        assert_eq!(creation_of(Kind::Thing, &gone.to_bytes()), None);
        assert_eq!(creation_of(Kind::Policy, b"not a policy"), None);
    }
}
