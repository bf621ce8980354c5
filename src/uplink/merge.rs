//! The 3-way merge of the uplink (pure): the edge's and the cloud's version of a thing against
//! the last synced document, per JSON leaf. A leaf changed on one side wins; changed on both
//! (differently), its owner wins: the cloud owns `features/*/desiredProperties`, the edge owns
//! everything else (definition, attributes, feature definitions and properties, existence).

use serde_json::{Map, Value};

/// Objects deeper than this are compared as one leaf (documents are parsed with serde_json's
/// depth limit of 128, so this only bounds the work, never the input).
const MAX_DEPTH: usize = 64;

/// Which side wins a leaf that both changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// the edge box (its devices are the source of truth)
    Edge,
    /// the cloud (fleet applications set what the devices should do)
    Cloud,
}

/// The owner of a path of the synced document (segments from its root).
pub fn owner(path: &[&str]) -> Owner {
    match path {
        ["features", _, "desiredProperties", ..] => Owner::Cloud,
        _ => Owner::Edge,
    }
}

/// The part of a thing that is synced: `definition`, `attributes` and `features` (the thing
/// ID is the key; `policyId` is each side's own; `_metadata` stays local).
pub fn synced_part(thing: &Value) -> Value {
    let mut out = Map::new();
    if let Some(m) = thing.as_object() {
        for k in ["definition", "attributes", "features"] {
            if let Some(v) = m.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Merges the edge's (`local`) and the cloud's version against `base` (`None` = no common
/// ancestor: every difference counts as changed on both sides).
pub fn merge3(base: Option<&Value>, local: &Value, cloud: &Value) -> Value {
    let mut path = Vec::new();
    let base = base.map(Some);
    merge_at(&mut path, base, Some(local), Some(cloud)).unwrap_or(Value::Object(Map::new()))
}

/// `base`: `None` = no ancestor known; `Some(None)` = the ancestor had nothing here.
fn merge_at<'a>(
    path: &mut Vec<&'a str>,
    base: Option<Option<&'a Value>>,
    local: Option<&'a Value>,
    cloud: Option<&'a Value>,
) -> Option<Value> {
    if let (Some(Value::Object(l)), Some(Value::Object(c))) = (local, cloud) {
        if path.len() < MAX_DEPTH {
            let b = base.map(|b| b.and_then(Value::as_object));
            let mut out = Map::new();
            let keys = l.keys().chain(c.keys().filter(|k| !l.contains_key(*k)));
            for k in keys {
                path.push(k);
                let bk = b.map(|b| b.and_then(|b| b.get(k)));
                let merged = merge_at(path, bk, l.get(k), c.get(k));
                path.pop();
                if let Some(v) = merged {
                    out.insert(k.clone(), v);
                }
            }
            return Some(Value::Object(out));
        }
    }
    pick(path, base, local, cloud).cloned()
}

/// The winner of one leaf (or of a subtree that one side replaced or removed as a whole).
fn pick<'a>(
    path: &[&str],
    base: Option<Option<&'a Value>>,
    local: Option<&'a Value>,
    cloud: Option<&'a Value>,
) -> Option<&'a Value> {
    if local == cloud {
        return local;
    }
    match base {
        Some(b) if local == b => cloud,
        Some(b) if cloud == b => local,
        _ => match owner(path) {
            Owner::Edge => local,
            Owner::Cloud => cloud,
        },
    }
}

/// The RFC 7396 merge patch that turns `from` into `to`, `None` if they are equal. (A `null`
/// leaf cannot be written by a merge patch: it is sent as a deletion.)
pub fn diff(from: &Value, to: &Value) -> Option<Value> {
    diff_at(from, to, 0)
}

fn diff_at(from: &Value, to: &Value, depth: usize) -> Option<Value> {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) if depth < MAX_DEPTH => {
            let mut out = Map::new();
            for (k, tv) in t {
                match f.get(k) {
                    Some(fv) => {
                        if let Some(d) = diff_at(fv, tv, depth + 1) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        out.insert(k.clone(), tv.clone());
                    }
                }
            }
            for k in f.keys().filter(|k| !t.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ if from == to => None,
        _ => Some(to.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge_patch;
    use serde_json::json;

    fn check(base: Option<Value>, local: Value, cloud: Value, want: Value) {
        let m = merge3(base.as_ref(), &local, &cloud);
        assert_eq!(m, want);
        // the two patches bring each side to the merge result
        for side in [&local, &cloud] {
            let mut s = side.clone();
            if let Some(p) = diff(side, &m) {
                merge_patch(&mut s, &p);
            }
            assert_eq!(s, m, "patching {side} by the diff reaches the merge");
        }
    }

    #[test]
    fn a_leaf_changed_on_one_side_wins() {
        let base = json!({"attributes": {"a": 1, "b": 1}, "features": {"f": {"desiredProperties": {"on": false}}}});
        check(
            Some(base.clone()),
            json!({"attributes": {"a": 2, "b": 1}, "features": {"f": {"desiredProperties": {"on": false}}}}),
            json!({"attributes": {"a": 1, "b": 3}, "features": {"f": {"desiredProperties": {"on": true}}}}),
            json!({"attributes": {"a": 2, "b": 3}, "features": {"f": {"desiredProperties": {"on": true}}}}),
        );
    }

    #[test]
    fn changed_on_both_sides_the_owner_wins() {
        let base = json!({"attributes": {"a": 1}, "features": {"f": {"properties": {"t": 1}, "desiredProperties": {"t": 1}}}});
        check(
            Some(base),
            json!({"attributes": {"a": 2}, "features": {"f": {"properties": {"t": 2}, "desiredProperties": {"t": 2}}}}),
            json!({"attributes": {"a": 3}, "features": {"f": {"properties": {"t": 3}, "desiredProperties": {"t": 3}}}}),
            json!({"attributes": {"a": 2}, "features": {"f": {"properties": {"t": 2}, "desiredProperties": {"t": 3}}}}),
        );
    }

    #[test]
    fn deletions_are_changes() {
        let base = json!({"attributes": {"a": 1, "b": 1, "c": 1}});
        // local deleted a, cloud deleted b, c changed in the cloud
        check(
            Some(base),
            json!({"attributes": {"b": 1, "c": 1}}),
            json!({"attributes": {"a": 1, "c": 2}}),
            json!({"attributes": {"c": 2}}),
        );
        // a feature deleted at the edge while the cloud set a desired property in it: the
        // edge owns the feature's existence
        let base = json!({"features": {"f": {"properties": {"x": 1}}}});
        check(
            Some(base),
            json!({"features": {}}),
            json!({"features": {"f": {"properties": {"x": 1}, "desiredProperties": {"x": 5}}}}),
            json!({"features": {}}),
        );
    }

    #[test]
    fn a_key_new_on_one_side_is_kept() {
        let base = json!({"attributes": {"a": 1}});
        check(
            Some(base),
            json!({"attributes": {"a": 1, "e": 1}}),
            json!({"attributes": {"a": 1, "c": 3}, "features": {"n": {}}}),
            json!({"attributes": {"a": 1, "e": 1, "c": 3}, "features": {"n": {}}}),
        );
    }

    #[test]
    fn without_base_the_owner_decides_every_difference() {
        check(
            None,
            json!({"attributes": {"a": 1, "only_edge": true}, "features": {"f": {"desiredProperties": {"d": 1}}}}),
            json!({"attributes": {"a": 2, "only_cloud": true}, "features": {"f": {"desiredProperties": {"d": 2}}}}),
            json!({"attributes": {"a": 1, "only_edge": true}, "features": {"f": {"desiredProperties": {"d": 2}}}}),
        );
    }

    #[test]
    fn arrays_are_leaves_and_types_may_change() {
        let base = json!({"attributes": {"l": [1, 2], "o": {"x": 1}}});
        check(
            Some(base),
            json!({"attributes": {"l": [1, 2, 3], "o": {"x": 1}}}),
            json!({"attributes": {"l": [1, 2], "o": "flat"}}),
            json!({"attributes": {"l": [1, 2, 3], "o": "flat"}}),
        );
    }

    #[test]
    fn diff_is_minimal() {
        let a = json!({"attributes": {"a": 1, "b": {"c": 2, "d": 3}}, "features": {}});
        assert_eq!(diff(&a, &a), None);
        let b = json!({"attributes": {"a": 1, "b": {"c": 2, "d": 4}, "e": 5}});
        assert_eq!(
            diff(&a, &b),
            Some(json!({"attributes": {"b": {"d": 4}, "e": 5}, "features": null}))
        );
    }

    #[test]
    fn synced_part_leaves_ids_policy_and_metadata_out() {
        let t = json!({"thingId": "n:t", "policyId": "n:p", "attributes": {"a": 1},
                       "_metadata": {}, "definition": "a:b:1"});
        assert_eq!(
            synced_part(&t),
            json!({"definition": "a:b:1", "attributes": {"a": 1}})
        );
    }

    #[test]
    fn deep_documents_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!({ "x": deep });
        }
        let mut other = json!(2);
        for _ in 0..200 {
            other = json!({ "x": other });
        }
        // beyond the depth bound the subtree is one leaf: the edge's wins without a base
        assert_eq!(merge3(None, &deep, &other), deep);
        assert_eq!(merge3(Some(&deep), &deep, &other), other);
        let mut patched = deep.clone();
        merge_patch(&mut patched, &diff(&deep, &other).unwrap());
        assert_eq!(patched, other);
    }
}
