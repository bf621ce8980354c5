//! The search index entries of one thing and the delta between two states of it (pure):
//! `delta(entries(old), entries(new))` is what the twin write path adds to the SAME store submit
//! as the thing (computed per changed subtree by `search::delta`),
//! so the index is exactly as durable as the twin. Indexed: every scalar leaf under `attributes`
//! and `features/*/{properties,desiredProperties,definition}` (array elements included, marked
//! multi-valued) as a value entry, every object/array node there and `features/<id>` as an
//! existence entry (a scalar's existence is its value entry), plus `policyId`, `definition`,
//! `_created`, `_modified` (`_revision` changes with every write and is not indexed), and the
//! thing's policy ID under `search::access` (a count decides visibility from it).
//!
//! Bound: a thing yields at most [`MAX_ENTRIES`] entries and no path longer than
//! [`MAX_PATH_BYTES`]; a thing beyond that is stored as one overflow marker instead (no other
//! entries) and every index-driven query considers it as a candidate, so results stay exact.

use super::access;
use super::keys::{self, EXISTS, FLAG_MULTI, MULTI};
use crate::engine::state::ThingState;
use crate::store::{Op, Tree};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most index entries of one thing (above: the thing is an overflow thing).
pub const MAX_ENTRIES: usize = 1024;
/// Longest indexed path in bytes (a longer one makes the thing an overflow thing).
pub const MAX_PATH_BYTES: usize = 512;

/// Index entries of one thing: key -> stored value.
pub type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// The parts of a feature that are indexed.
pub(super) const FEATURE_PARTS: [&str; 3] = ["properties", "desiredProperties", "definition"];

/// How a thing is indexed: its number of entries, or the overflow marker alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Entries(usize),
    Overflow,
}

pub(super) struct Builder<'a> {
    id: &'a str,
    pub(super) out: Entries,
    pub(super) overflow: bool,
}

impl<'a> Builder<'a> {
    pub(super) fn new(id: &'a str) -> Self {
        Builder {
            id,
            out: Entries::new(),
            overflow: false,
        }
    }
    fn full(&mut self, path: &str) -> bool {
        if path.len() > MAX_PATH_BYTES || self.out.len() >= MAX_ENTRIES {
            self.overflow = true;
        }
        self.overflow
    }

    fn put(&mut self, key: Vec<u8>, flags: u8) {
        self.out
            .entry(key)
            .and_modify(|v| {
                if let Some(f) = v.first_mut() {
                    *f |= flags;
                }
            })
            .or_insert_with(|| vec![flags]);
    }

    fn exists(&mut self, path: &str) {
        if !self.full(path) {
            self.out
                .insert(keys::path_key(EXISTS, path, self.id), Vec::new());
        }
    }

    fn multi(&mut self, path: &str) {
        if !self.full(path) {
            self.out
                .insert(keys::path_key(MULTI, path, self.id), Vec::new());
        }
    }

    fn value(&mut self, path: &str, v: &Value, multi: bool) {
        if self.full(path) {
            return;
        }
        let flags = if multi { FLAG_MULTI } else { 0 };
        self.put(keys::value_key(path, v, self.id), flags);
        if multi {
            self.multi(path);
        }
    }

    /// `_created` / `_modified` as their ISO text.
    pub(super) fn stamp(&mut self, field: &str, millis: i64) {
        let v = Value::String(crate::clock::format_millis(millis));
        self.value(field, &v, false);
    }

    /// Feature `fid`: its existence and its indexed parts.
    pub(super) fn feature(&mut self, fid: &str, f: &Value) {
        let base = format!("features/{fid}");
        self.exists(&base);
        if let Value::Object(parts) = f {
            for (k, v) in parts {
                if FEATURE_PARTS.contains(&k.as_str()) {
                    self.walk(&format!("{base}/{k}"), v, false);
                }
            }
        }
    }

    /// A node at `path` as RQL's lookup sees it (arrays are walked through transparently).
    pub(super) fn walk(&mut self, path: &str, v: &Value, multi: bool) {
        if self.overflow {
            return;
        }
        if let ("policyId", Value::String(pid)) = (path, v) {
            // who may READ the thing is decided by its policy's summary (`search::access`)
            if let Some(value) = access::thing_value(self.id, pid) {
                self.out.insert(access::key(self.id, access::THING), value);
            }
        }
        match v {
            Value::Object(m) => {
                self.exists(path);
                for (k, c) in m {
                    self.walk(&format!("{path}/{k}"), c, multi);
                }
            }
            Value::Array(items) => {
                self.exists(path);
                self.multi(path);
                for e in items {
                    self.element(path, e);
                }
            }
            scalar => self.value(path, scalar, multi),
        }
    }

    fn element(&mut self, path: &str, e: &Value) {
        match e {
            Value::Object(m) => {
                for (k, c) in m {
                    self.walk(&format!("{path}/{k}"), c, true);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| self.element(path, x)),
            scalar => self.value(path, scalar, true),
        }
    }
}

/// The index entries of a live thing (tombstones have none).
pub fn entries(state: &ThingState) -> Entries {
    sized_entries(state).0
}

/// The index entries of a thing and how it is indexed.
pub fn sized_entries(state: &ThingState) -> (Entries, Size) {
    let t = &state.thing;
    let Some(id) = t.get("thingId").and_then(Value::as_str) else {
        return (Entries::new(), Size::Entries(0));
    };
    if state.deleted {
        return (Entries::new(), Size::Entries(0));
    }
    let mut b = Builder::new(id);
    for field in ["policyId", "definition"] {
        if let Some(v) = t.get(field) {
            b.walk(field, v, false);
        }
    }
    b.stamp("_created", state.created);
    b.stamp("_modified", state.modified);
    if let Some(Value::Object(attrs)) = t.get("attributes") {
        for (k, v) in attrs {
            b.walk(&format!("attributes/{k}"), v, false);
        }
    }
    if let Some(Value::Object(features)) = t.get("features") {
        for (fid, f) in features {
            b.feature(fid, f);
        }
    }
    if b.overflow {
        let mut only = Entries::new();
        only.insert(keys::overflow_key(id), Vec::new());
        return (only, Size::Overflow);
    }
    let n = b.out.len();
    (b.out, Size::Entries(n))
}

/// The index writes that turn entries `old` into `new`.
pub fn delta(old: &Entries, new: &Entries) -> Vec<Op> {
    let mut ops = Vec::new();
    for k in old.keys() {
        if !new.contains_key(k) {
            ops.push(Op::delete(Tree::Index, k.clone()));
        }
    }
    for (k, v) in new {
        match old.get(k) {
            // the index holds exactly the thing's entries (`old`): a new one is not there
            None => ops.push(Op::create(Tree::Index, k.clone(), v.clone())),
            Some(o) if o != v => ops.push(Op::put(Tree::Index, k.clone(), v.clone())),
            Some(_) => {}
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(t: Value) -> ThingState {
        ThingState {
            thing: t,
            revision: 3,
            created: 0,
            modified: 1000,
            metadata: None,
            deleted: false,
        }
    }

    fn readable(e: &Entries) -> Vec<String> {
        e.iter()
            .map(|(k, v)| {
                let s: String = k
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() {
                            (b as char).to_string()
                        } else {
                            format!("<{b:x}>")
                        }
                    })
                    .collect();
                format!("{s}={v:?}")
            })
            .collect()
    }

    #[test]
    fn leaves_arrays_and_existence() {
        let s = state(json!({"thingId": "n:t", "policyId": "n:p",
            "attributes": {"a": 1, "tags": ["x", {"k": true}], "o": {}},
            "features": {"f": {"properties": {"p": null}, "definition": ["d:e:1"], "other": 5}}}));
        let e = entries(&s);
        let has = |k: &[u8]| e.contains_key(k);
        assert!(has(&keys::value_key("attributes/a", &json!(1), "n:t")));
        assert_eq!(
            e[&keys::value_key("attributes/tags", &json!("x"), "n:t")],
            vec![FLAG_MULTI]
        );
        assert_eq!(
            e[&keys::value_key("attributes/tags/k", &json!(true), "n:t")],
            vec![FLAG_MULTI]
        );
        for p in [
            "attributes/tags",
            "attributes/o",
            "features/f",
            "features/f/properties",
            "features/f/definition",
        ] {
            assert!(has(&keys::path_key(EXISTS, p, "n:t")), "exists {p}");
        }
        for p in ["attributes/a", "attributes/tags/k", "policyId"] {
            assert!(
                !has(&keys::path_key(EXISTS, p, "n:t")),
                "scalar {p}: value entry only"
            );
        }
        for p in [
            "attributes/tags",
            "attributes/tags/k",
            "features/f/definition",
        ] {
            assert!(has(&keys::path_key(MULTI, p, "n:t")), "multi {p}");
        }
        assert!(!has(&keys::path_key(MULTI, "attributes/a", "n:t")));
        assert!(has(&keys::value_key(
            "features/f/properties/p",
            &json!(null),
            "n:t"
        )));
        assert!(!has(&keys::value_key("_revision", &json!(3), "n:t")));
        assert!(has(&keys::value_key(
            "_modified",
            &json!("1970-01-01T00:00:01.000Z"),
            "n:t"
        )));
        assert!(!has(&keys::path_key(EXISTS, "features/f/other", "n:t")));
        assert!(
            has(&crate::search::access::key("n:t", b't')),
            "the policy ID"
        );
        assert_eq!(e.len(), 17, "{:#?}", readable(&e));
    }

    #[test]
    fn overflow_and_tombstones() {
        let big: serde_json::Map<String, Value> = (0..MAX_ENTRIES)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let e = entries(&state(json!({"thingId": "n:t", "attributes": big})));
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            vec![&keys::overflow_key("n:t")]
        );
        let long = "x".repeat(MAX_PATH_BYTES);
        let e = entries(&state(json!({"thingId": "n:t", "attributes": {long: 1}})));
        assert_eq!(e.len(), 1);
        let mut s = state(json!({"thingId": "n:t", "attributes": {"a": 1}}));
        s.deleted = true;
        assert!(entries(&s).is_empty());
        assert!(entries(&state(json!({"attributes": {"a": 1}}))).is_empty());
    }

    fn index_ops(old: Option<&ThingState>, new: Option<&ThingState>) -> Vec<Op> {
        delta(
            &old.map(entries).unwrap_or_default(),
            &new.map(entries).unwrap_or_default(),
        )
    }

    #[test]
    fn ops_are_the_delta() {
        let a = state(json!({"thingId": "n:t", "attributes": {"a": 1, "b": "x"}}));
        let mut b = a.clone();
        b.thing["attributes"]["a"] = json!(2);
        let ops = index_ops(Some(&a), Some(&b));
        let del = keys::value_key("attributes/a", &json!(1), "n:t");
        let put = keys::value_key("attributes/a", &json!(2), "n:t");
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert!(ops.contains(&Op::delete(Tree::Index, del)));
        assert!(
            ops.contains(&Op::create(Tree::Index, put, vec![0])),
            "a new entry"
        );
        let created = index_ops(None, Some(&a));
        assert_eq!(created.len(), entries(&a).len());
        let gone = index_ops(Some(&a), None);
        assert!(gone
            .iter()
            .all(|o| o.value.is_none() && o.tree == Tree::Index));
        assert_eq!(gone.len(), created.len());
        let mut tomb = a.clone();
        tomb.deleted = true;
        assert_eq!(index_ops(Some(&a), Some(&tomb)), gone);
        assert!(index_ops(Some(&a), Some(&a)).is_empty());
    }
}
