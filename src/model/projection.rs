//! Projection of a JSON object onto field-selector pointers, as Ditto's
//! `ImmutableJsonObject.get(JsonFieldSelector)` does it: pointers that do not exist are dropped,
//! the rest go into a trie (`JsonFieldSelectorTrie`: a shorter pointer wins) that filters the
//! object, descending through arrays; `*` segments are expanded against the document first.

use serde_json::{Map, Value};
use std::collections::HashSet;

/// Projects a non-empty object; `{}` if no pointer exists in it.
pub(crate) fn project(obj: &Map<String, Value>, pointers: &[Vec<String>], wildcard: bool) -> Value {
    let mut trie = Trie::default();
    for p in pointers {
        if wildcard && p.iter().any(|seg| seg == "*") {
            let mut expanded = Vec::new();
            expand(&[obj], p, &mut Vec::new(), &mut expanded);
            for e in &expanded {
                trie.insert(e);
            }
        } else if contains(&[obj], p) {
            trie.insert(p);
        }
    }
    if trie.children.is_empty() {
        return Value::Object(Map::new());
    }
    Value::Object(filter_object(obj, &trie))
}

/// The objects one level down under `key` (arrays are flattened to their object elements).
fn children<'a>(nodes: &[&'a Map<String, Value>], key: &str) -> Vec<&'a Map<String, Value>> {
    let mut out = Vec::new();
    for node in nodes {
        match node.get(key) {
            Some(Value::Object(m)) => out.push(m),
            Some(Value::Array(items)) => out.extend(items.iter().filter_map(Value::as_object)),
            _ => {}
        }
    }
    out
}

/// Ditto's `containsFlatteningArrays`: the full path exists in at least one branch.
fn contains(nodes: &[&Map<String, Value>], path: &[String]) -> bool {
    match path.split_first() {
        None => false,
        Some((key, [])) => nodes.iter().any(|n| n.contains_key(key)),
        Some((key, rest)) => {
            let next = children(nodes, key);
            !next.is_empty() && contains(&next, rest)
        }
    }
}

/// Expands `*` segments against the document; yields only paths that exist.
fn expand(
    nodes: &[&Map<String, Value>],
    path: &[String],
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let Some((seg, rest)) = path.split_first() else {
        return;
    };
    let keys: Vec<&str> = if seg == "*" {
        let mut seen = HashSet::new();
        nodes
            .iter()
            .flat_map(|n| n.keys())
            .map(String::as_str)
            .filter(|k| seen.insert(*k))
            .collect()
    } else {
        vec![seg.as_str()]
    };
    for key in keys {
        prefix.push(key.to_owned());
        if rest.is_empty() {
            if nodes.iter().any(|n| n.contains_key(key)) {
                out.push(prefix.clone());
            }
        } else {
            let next = children(nodes, key);
            if !next.is_empty() {
                expand(&next, rest, prefix, out);
            }
        }
        prefix.pop();
    }
}

/// Ditto's `JsonFieldSelectorTrie`: a node without children selects the whole value.
#[derive(Default)]
struct Trie {
    children: Vec<(String, Trie)>,
}

impl Trie {
    fn insert(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if let Some((_, child)) = self.children.iter_mut().find(|(k, _)| k == first) {
            if rest.is_empty() {
                child.children.clear(); // the shorter pointer selects everything below
            } else if !child.children.is_empty() {
                child.insert(rest);
            }
        } else {
            let mut child = Trie::default();
            child.insert(rest);
            self.children.push((first.clone(), child));
        }
    }
}

fn filter_object(obj: &Map<String, Value>, trie: &Trie) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, sub) in &trie.children {
        if let Some(val) = obj.get(key) {
            out.insert(key.clone(), filter_value(val, sub));
        }
    }
    out
}

fn filter_value(val: &Value, trie: &Trie) -> Value {
    if trie.children.is_empty() {
        return val.clone();
    }
    match val {
        Value::Object(m) => Value::Object(filter_object(m, trie)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|e| match e {
                    Value::Object(m) => Value::Object(filter_object(m, trie)),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::fields::tests::thing;
    use crate::model::FieldSelector;
    use serde_json::json;

    fn sel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    #[test]
    fn select_thing_example() {
        let out = sel("thingId,attributes(location,model),features/*/properties/on,_revision")
            .select(&thing());
        let expected = json!({
            "thingId": "org.eclipse.ditto:fancy-thing",
            "attributes": {"location": {"floor": 3, "room": "a"}, "model": "X"},
            "features": {"lamp": {"properties": {"on": false}}, "heater": {"properties": {"on": true}}},
            "_revision": 7
        });
        assert_eq!(out, expected);
        // selector order, not document order
        assert_eq!(
            serde_json::to_string(&out["attributes"]).unwrap(),
            r#"{"location":{"floor":3,"room":"a"},"model":"X"}"#
        );
    }

    #[test]
    fn select_missing_and_prefix_rules() {
        let t = thing();
        assert_eq!(sel("nope,attributes/nope").select(&t), json!({}));
        assert_eq!(
            sel("attributes/nope,attributes/model").select(&t),
            json!({"attributes": {"model": "X"}})
        );
        assert_eq!(
            sel("attributes/model/deeper").select(&t),
            json!({}),
            "through a scalar is absent"
        );
        assert_eq!(
            sel("attributes/location/floor,attributes/location").select(&t)["attributes"]
                ["location"]["room"],
            "a"
        );
        assert_eq!(
            sel("attributes/location,attributes/location/floor").select(&t)["attributes"]
                ["location"]["room"],
            "a"
        );
        assert_eq!(sel("/").select(&t), json!({}));
        assert_eq!(sel("a").select(&json!({})), json!({}));
        assert_eq!(sel("a").select(&json!(5)), json!(5));
        assert_eq!(sel("a").select(&json!({"a": null})), json!({"a": null}));
    }

    #[test]
    fn select_wildcards() {
        let t = thing();
        assert_eq!(
            sel("features/*/desiredProperties").select(&t),
            json!({"features": {"heater": {"desiredProperties": {"on": false}}}})
        );
        assert_eq!(sel("features/*").select(&t)["features"], t["features"]);
        assert_eq!(sel("*").select(&t), t);
        let feats = &t["features"];
        assert_eq!(
            sel("*/properties/speed").select(feats),
            json!({"fan": {"properties": {"speed": 3}}})
        );
        assert_eq!(sel("features/*/nothing").select(&t), json!({}));
        // literal mode: `*` is a key
        let v = json!({"*": 1, "a": 2});
        assert_eq!(sel("*").select_literal(&v), json!({"*": 1}));
        assert_eq!(sel("*").select(&v), v);
        assert_eq!(
            sel("x/*").select_literal(&json!({"x": {"y": 1}})),
            json!({})
        );
    }

    #[test]
    fn select_through_arrays() {
        let v = json!({"a": [{"b": 1, "c": 2}, {"c": 3}, 5, [{"b": 9}]], "d": 1});
        assert_eq!(
            sel("a/b").select(&v),
            json!({"a": [{"b": 1}, {}, 5, [{"b": 9}]]})
        );
        assert_eq!(sel("a/x").select(&v), json!({}));
        assert_eq!(sel("a").select(&v), json!({"a": v["a"]}));
        assert_eq!(
            sel("a/*").select(&v),
            json!({"a": [{"b": 1, "c": 2}, {"c": 3}, 5, [{"b": 9}]]})
        );
        let nested = json!({"a": [{"b": {"c": 1, "d": 2}}, {"b": 7}]});
        assert_eq!(
            sel("a/b/c").select(&nested),
            json!({"a": [{"b": {"c": 1}}, {"b": 7}]})
        );
    }
}
