//! A count's candidates decided from the index alone: when every property of the filter is the
//! driving index range's path, a single-valued entry's key holds the value the filter looks at,
//! and the thing's policy summary (`search::access`) says whether the requester READs the whole
//! thing or nothing of it. Then neither the thing nor its policy is loaded; anything else
//! (several values, an inexact key, a fine-grained policy, partial READ) is left to the full path.

use super::access::{self, Verdict};
use super::access_map::{AccessMap, Snapshot, BUILD_AFTER};
use super::eval;
use super::keys::{self, VALUE};
use super::plan::{self, Range, Source};
use super::scan::{store_err, Cand};
use crate::error::DittoError;
use crate::rql::{Env, Query};
use crate::store::{Reader, Tree};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Policy verdicts remembered per count (cleared when full).
const MEMO: usize = 256;

/// Deciding a count's candidates from index keys.
pub(super) struct ByIndex {
    range: Range,
    segments: Vec<String>,
    /// `{"a": {"b": <leaf>}}` for the filter's path `a/b`; each candidate's value goes in
    doc: Value,
    /// verdicts of policies with another ID than their thing (shared by several things)
    memo: HashMap<Vec<u8>, Verdict>,
    /// the last candidate's encoded value and whether it matched (`None`: not exact): the
    /// candidates of an `eq` or a narrow range share a value, decoded and evaluated once
    last: Option<(Vec<u8>, Option<bool>)>,
    /// the foreign policy ID of the current candidate (reused: no allocation per candidate)
    pid: Vec<u8>,
    /// the hub's copy of the access entries (`search::access_map`) and, once current, its
    /// snapshot, with the verdict of each summary class for this requester
    map: Arc<AccessMap>,
    snap: Option<Arc<Snapshot>>,
    verdicts: Vec<Option<Verdict>>,
    /// candidates whose access entries were read (no current snapshot)
    slow: u32,
    /// the current candidate's access key prefix (reused)
    prefix: Vec<u8>,
}

impl ByIndex {
    /// Possible for this filter and driver? (`full`: the filter reads `_created`/`_modified`/...)
    /// `map`: the hub's access map; `changes`: `Store::watched_changes` at the count's start.
    pub(super) fn of(
        filter: Option<&Query>,
        driver: &Source,
        full: bool,
        map: &Arc<AccessMap>,
        changes: u64,
    ) -> Option<ByIndex> {
        let (Some(q), Source::Index(r), false) = (filter, driver, full) else {
            return None;
        };
        let props = q.properties();
        let first = props.first()?;
        let same = props
            .iter()
            .all(|p| plan::index_path(p) == Some(r.path.as_str()));
        (r.kind == VALUE && same).then(|| ByIndex {
            range: r.clone(),
            doc: nest(&first.segments, Value::Null),
            segments: first.segments.clone(),
            memo: HashMap::new(),
            last: None,
            pid: Vec::new(),
            map: Arc::clone(map),
            snap: map.current(changes),
            verdicts: Vec::new(),
            slow: 0,
            prefix: Vec::new(),
        })
    }

    /// `Some(matches)` if the index decides the candidate, `None` if the full path must.
    pub(super) fn decide(
        &mut self,
        store: &Reader,
        subjects: &[String],
        q: &Query,
        now: i64,
        c: &Cand,
    ) -> Result<Option<bool>, DittoError> {
        let (Some(key), false, 0) = (c.key, c.multi, c.branch) else {
            return Ok(None);
        };
        let Some(enc) = self.range.value_of(key) else {
            return Ok(None);
        };
        let Some(matches) = self.matches(q, now, enc) else {
            return Ok(None);
        };
        Ok(match self.verdict(store, subjects, c.id)? {
            Verdict::Ask => None,
            Verdict::Nothing => Some(false),
            // the READ view is the whole thing, whose only value on the filter's path is this
            Verdict::All => Some(matches),
        })
    }

    /// Whether a thing whose only value on the filter's path is `enc` matches; `None` if the
    /// key does not hold the value exactly. Remembered for the next candidate's value.
    fn matches(&mut self, q: &Query, now: i64, enc: &[u8]) -> Option<bool> {
        if let Some((last, m)) = &self.last {
            if last.as_slice() == enc {
                return *m;
            }
        }
        let m = keys::exact_value(enc).and_then(|value| {
            let at = leaf(&mut self.doc, &self.segments)?;
            *at = value;
            Some(eval::matches(q, &self.doc, &Env::at(now)))
        });
        let (last, slot) = self.last.get_or_insert_with(|| (Vec::new(), None));
        last.clear();
        last.extend_from_slice(enc);
        *slot = m;
        m
    }

    /// The verdict of the thing's policy: the thing's access entry (none: the policy has the
    /// thing's ID), then the policy's summary (found by the same scan when it has the thing's
    /// ID). Read in place: nothing is copied for a thing with its own policy.
    fn verdict(
        &mut self,
        store: &Reader,
        subjects: &[String],
        thing: &str,
    ) -> Result<Verdict, DittoError> {
        if let Some(v) = self.mapped(store, subjects, thing)? {
            return Ok(v);
        }
        let (mut foreign, mut own) = (false, Verdict::Ask);
        let pid = &mut self.pid;
        store
            .each(Tree::Index, &access::prefix(thing), None, 2, &mut |k, v| {
                match k.last() {
                    Some(&access::THING) => {
                        foreign = true;
                        pid.clear();
                        pid.extend_from_slice(v);
                    }
                    Some(&access::POLICY) => own = access::verdict_of(v, subjects),
                    _ => {}
                }
                true
            })
            .map_err(store_err)?;
        let pid = access::policy_of(thing.as_bytes(), foreign.then_some(self.pid.as_slice()));
        if pid == thing.as_bytes() {
            // the thing's own policy: read along with its access entry, used once
            return Ok(own);
        }
        if let Some(v) = self.memo.get(pid) {
            return Ok(*v);
        }
        let summary = match std::str::from_utf8(pid) {
            Ok(p) => store
                .get(Tree::Index, &access::key(p, access::POLICY))
                .map_err(store_err)?,
            Err(_) => None,
        };
        let v = summary.map_or(Verdict::Ask, |s| access::verdict_of(&s, subjects));
        if self.memo.len() >= MEMO {
            self.memo.clear();
        }
        self.memo.insert(pid.to_vec(), v);
        Ok(v)
    }
}

impl ByIndex {
    /// The verdict from the access map when it holds the thing (its policy has its ID), else
    /// `None` (read the entries). Builds the map once this count has read [`BUILD_AFTER`]
    /// candidates' entries without a current one.
    fn mapped(
        &mut self,
        store: &Reader,
        subjects: &[String],
        thing: &str,
    ) -> Result<Option<Verdict>, DittoError> {
        if self.snap.is_none() {
            self.slow += 1;
            if self.slow != BUILD_AFTER {
                return Ok(None);
            }
            let changes = store.watched_changes();
            self.snap = self.map.build(store, changes).map_err(store_err)?;
        }
        let Some(snap) = &self.snap else {
            return Ok(None);
        };
        keys::path_prefix_into(&mut self.prefix, access::ACCESS, thing);
        let Some(c) = snap.class_of(&self.prefix) else {
            return Ok(None);
        };
        if self.verdicts.len() <= c {
            self.verdicts.resize(c + 1, None);
        }
        Ok(Some(
            *self.verdicts[c].get_or_insert_with(|| snap.verdict(c, subjects)),
        ))
    }
}

/// The value at `segments` of a document made by [`nest`].
fn leaf<'d>(mut doc: &'d mut Value, segments: &[String]) -> Option<&'d mut Value> {
    for s in segments {
        doc = doc.as_object_mut()?.get_mut(s.as_str())?;
    }
    Some(doc)
}

/// `{"a": {"b": value}}` for segments `a/b`.
fn nest(segments: &[String], value: Value) -> Value {
    segments.iter().rev().fold(value, |v, s| {
        let mut m = Map::new();
        m.insert(s.clone(), v);
        Value::Object(m)
    })
}

#[cfg(test)]
#[path = "counted_tests.rs"]
pub(super) mod tests;
