//! States from history: a thing or policy at a revision or at a time. A thing is rebuilt from
//! the nearest kept snapshot at or below the revision plus the events after it
//! (`engine::replay`); a policy keeps a snapshot per revision. What retention dropped, or
//! would drop now (read-time bounds: age, revisions), is `NotKept`, never a neighbouring state.
//! Timestamps follow Ditto (`AbstractPersistenceActor`): the state after the last event
//! strictly before the instant; an instant in the future is not kept.

use super::keys::{self, Kind};
use super::log::History;
use super::record::{self, Record};
use crate::engine::replay::{self, Step};
use crate::engine::ThingState;
use crate::policy::PolicyState;
use crate::store::StoreError;

/// What a historical retrieve asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Revision(u64),
    /// epoch millis
    Timestamp(i64),
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Found<S> {
    /// the current state is the one asked for (answered like a plain retrieve)
    Current,
    /// an earlier state and the event that made it (its `historical-headers`)
    Past(S, Box<Record>),
    /// not kept (dropped, beyond the bounds, before the entity existed, in the future)
    NotKept,
}

/// What the store holds of an entity's current state.
pub struct Current {
    pub revision: u64,
    /// last modification (the timestamp of the current revision's event)
    pub modified: i64,
}

fn corrupt(kind: Kind, id: &str, rev: u64) -> StoreError {
    StoreError(format!(
        "history: {} {id} revision {rev} is not readable",
        kind.name()
    ))
}

impl History {
    /// The oldest kept event revision of an entity.
    pub fn first_kept(&self, kind: Kind, id: &str) -> Result<Option<u64>, StoreError> {
        let first = self.scan(&keys::events_of(kind, id), None, 1)?;
        Ok(first.first().and_then(|(k, _)| keys::revision(k)))
    }

    fn event_at(&self, kind: Kind, id: &str, rev: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(&keys::event(kind, id, rev))
    }

    /// The revision `at` names, if it is kept now: `Ok(None)` = `Current`, `Err(())` in
    /// the inner result = not kept.
    fn resolve(
        &self,
        kind: Kind,
        id: &str,
        at: At,
        cur: &Current,
        now: i64,
    ) -> Result<Result<Option<u64>, ()>, StoreError> {
        let cutoff = now.saturating_sub(self.cfg.max_age_ms());
        let max = self.cfg.max_revisions;
        let rev = match at {
            At::Revision(r) if r == cur.revision => return Ok(Ok(None)),
            At::Revision(r) if r > cur.revision || r == 0 => return Ok(Err(())),
            At::Revision(r) => {
                // the state at r was current until r + 1 was written: kept while that is
                // within the age bound
                let next = self.event_at(kind, id, r + 1)?;
                match next.as_deref().and_then(record::timestamp) {
                    Some(t) if t >= cutoff => r,
                    _ => return Ok(Err(())),
                }
            }
            At::Timestamp(t) if t > now || t < cutoff => return Ok(Err(())),
            At::Timestamp(t) if cur.modified < t => return Ok(Ok(None)),
            At::Timestamp(t) => match self.last_before(kind, id, t, cur.revision)? {
                Some(r) => r,
                None => return Ok(Err(())),
            },
        };
        if max > 0 && rev + max <= cur.revision {
            return Ok(Err(()));
        }
        match self.first_kept(kind, id)? {
            Some(o) if o <= rev => Ok(Ok(Some(rev))),
            _ => Ok(Err(())),
        }
    }

    /// The last kept revision below `current` whose event is strictly before `t` (binary
    /// search over the kept, contiguous revisions).
    pub(super) fn last_before(
        &self,
        kind: Kind,
        id: &str,
        t: i64,
        current: u64,
    ) -> Result<Option<u64>, StoreError> {
        let Some(o) = self.first_kept(kind, id)? else {
            return Ok(None);
        };
        let ts = |r: u64| -> Result<Option<i64>, StoreError> {
            Ok(self
                .event_at(kind, id, r)?
                .as_deref()
                .and_then(record::timestamp))
        };
        if ts(o)?.is_none_or(|x| x >= t) {
            return Ok(None);
        }
        // invariant: ts(lo) < t, and every revision from hi up is at or after t
        let (mut lo, mut hi) = (o, current);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match ts(mid)? {
                Some(x) if x < t => lo = mid,
                Some(_) => hi = mid,
                None => return Ok(None),
            }
        }
        Ok(Some(lo))
    }

    /// A thing at a revision or time. `cur` is what the store holds now.
    pub fn thing_at(
        &self,
        id: &str,
        at: At,
        cur: &ThingState,
        now: i64,
    ) -> Result<Found<ThingState>, StoreError> {
        let current = Current {
            revision: cur.revision,
            modified: cur.modified,
        };
        let rev = match self.resolve(Kind::Thing, id, at, &current, now)? {
            Err(()) => return Ok(Found::NotKept),
            Ok(None) => return Ok(Found::Current),
            Ok(Some(r)) => r,
        };
        let (state, record) = self.rebuild_thing(id, rev)?;
        Ok(Found::Past(state, Box::new(record)))
    }

    /// The thing at `rev` from what is kept there alone: its snapshot, or a creation at `/`
    /// replayed onto nothing (`None`: neither is kept).
    pub(super) fn thing_base(&self, id: &str, rev: u64) -> Result<Option<ThingState>, StoreError> {
        let bad = || corrupt(Kind::Thing, id, rev);
        if let Some(b) = self.get(&keys::snapshot(Kind::Thing, id, rev))? {
            return ThingState::from_bytes(&b).map(Some).map_err(|_| bad());
        }
        let Some(r) = self
            .event_at(Kind::Thing, id, rev)?
            .as_deref()
            .and_then(Record::decode)
        else {
            return Ok(None);
        };
        if !r.self_contained() {
            return Ok(None);
        }
        let step = Step {
            action: r.action,
            path: &r.path,
            value: r.value.as_ref(),
            full_metadata: r.full_metadata.as_ref(),
            revision: rev,
            timestamp: r.timestamp,
        };
        replay::apply(None, id, &step).map(Some).map_err(|_| bad())
    }

    /// The policy at `rev` from what is kept there: its snapshot, or its creation's value.
    pub(super) fn policy_base(
        &self,
        id: &str,
        rev: u64,
    ) -> Result<Option<PolicyState>, StoreError> {
        if let Some(b) = self.get(&keys::snapshot(Kind::Policy, id, rev))? {
            return Ok(PolicyState::from_bytes(&b));
        }
        let r = self
            .event_at(Kind::Policy, id, rev)?
            .as_deref()
            .and_then(Record::decode);
        Ok(r.filter(Record::self_contained).and_then(|r| {
            Some(PolicyState {
                policy: r.value?,
                revision: rev,
                created: r.timestamp,
                modified: r.timestamp,
            })
        }))
    }

    /// The thing at kept revision `rev` and the event that made it.
    pub(super) fn rebuild_thing(
        &self,
        id: &str,
        rev: u64,
    ) -> Result<(ThingState, Record), StoreError> {
        let kind = Kind::Thing;
        let bad = || corrupt(kind, id, rev);
        let every = self.every(kind);
        let m = rev / every * every;
        let near = match m {
            0 => None,
            m => self.thing_base(id, m)?.map(|b| (m, b)),
        };
        let (base_rev, base) = match near {
            Some(x) => x,
            None => {
                let o = self
                    .first_kept(kind, id)?
                    .filter(|o| *o <= rev)
                    .ok_or_else(bad)?;
                (o, self.thing_base(id, o)?.ok_or_else(bad)?)
            }
        };
        let mut state = base;
        let mut last = self
            .event_at(kind, id, base_rev)?
            .as_deref()
            .and_then(Record::decode)
            .ok_or_else(bad)?;
        let prefix = keys::events_of(kind, id);
        let mut after = keys::event(kind, id, base_rev);
        let mut next = base_rev + 1;
        while next <= rev {
            let want = (rev + 1 - next).min(super::log::PAGE as u64) as usize;
            let page = self.scan(&prefix, Some(&after), want)?;
            if page.is_empty() {
                return Err(bad());
            }
            for (k, v) in page {
                if keys::revision(&k) != Some(next) {
                    return Err(bad());
                }
                let r = Record::decode(&v).ok_or_else(bad)?;
                let step = Step {
                    action: r.action,
                    path: &r.path,
                    value: r.value.as_ref(),
                    full_metadata: r.full_metadata.as_ref(),
                    revision: next,
                    timestamp: r.timestamp,
                };
                state = replay::apply(Some(&state), id, &step).map_err(|e| {
                    StoreError(format!("history: {id} revision {next}: {}", e.message))
                })?;
                last = r;
                after = k;
                next += 1;
            }
        }
        Ok((state, last))
    }

    /// A policy at a revision or time. `cur` is what the store holds now.
    pub fn policy_at(
        &self,
        id: &str,
        at: At,
        cur: &PolicyState,
        now: i64,
    ) -> Result<Found<PolicyState>, StoreError> {
        let current = Current {
            revision: cur.revision,
            modified: cur.modified,
        };
        let rev = match self.resolve(Kind::Policy, id, at, &current, now)? {
            Err(()) => return Ok(Found::NotKept),
            Ok(None) => return Ok(Found::Current),
            Ok(Some(r)) => r,
        };
        let bad = || corrupt(Kind::Policy, id, rev);
        let state = self.policy_base(id, rev)?.ok_or_else(bad)?;
        let record = self
            .event_at(Kind::Policy, id, rev)?
            .as_deref()
            .and_then(Record::decode)
            .ok_or_else(bad)?;
        Ok(Found::Past(state, Box::new(record)))
    }
}
