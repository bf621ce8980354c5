//! A stored thing decoded down to what a filter looks at (pure): the parts of its JSON on the
//! filter's property paths (whole subtrees at their ends, and whole where a path meets a
//! non-object, e.g. an array the evaluator descends into), plus `thingId` and `policyId`.
//! Everything else is skipped without being built. The filter evaluates the same on it as on
//! the whole thing; a count, which returns no thing, needs no more.

use crate::rql::{Property, Query};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The object keys to keep, as a trie.
#[derive(Debug, Default)]
pub struct Keep {
    /// keep the whole value here
    all: bool,
    /// `features/*`: every key, then the child's paths
    any: Option<Box<Keep>>,
    keys: BTreeMap<String, Keep>,
}

impl Keep {
    /// What a filter looks at: its properties (placeholders need nothing), `thingId` (also the
    /// namespace) and `policyId`.
    pub fn of(filter: Option<&Query>) -> Keep {
        let mut k = Keep::default();
        for root in ["thingId", "policyId", "_namespace"] {
            k.keys.entry(root.to_owned()).or_default().all = true;
        }
        for p in filter.map(Query::properties).unwrap_or_default() {
            k.add(p);
        }
        k.spread();
        k
    }

    /// Adds the wildcard's paths to each key named beside it (`features/*/properties/t` and
    /// `features/f/properties/u` both look into feature `f`).
    fn spread(&mut self) {
        if let Some(any) = self.any.as_deref() {
            for c in self.keys.values_mut() {
                c.union(any);
            }
        }
        self.keys.values_mut().for_each(Keep::spread);
        if let Some(any) = self.any.as_deref_mut() {
            any.spread();
        }
    }

    fn union(&mut self, other: &Keep) {
        if self.all || other.all {
            *self = Keep {
                all: true,
                ..Keep::default()
            };
            return;
        }
        for (k, o) in &other.keys {
            self.keys.entry(k.clone()).or_default().union(o);
        }
        if let Some(o) = &other.any {
            self.any.get_or_insert_with(Box::default).union(o);
        }
    }

    fn add(&mut self, p: &Property) {
        if p.placeholder.is_some() {
            return;
        }
        let segs = &p.segments;
        let mut node = self;
        for (i, s) in segs.iter().enumerate() {
            if node.all {
                return;
            }
            // the evaluator's one wildcard (`rql::lookup`)
            node = if i == 1 && s == "*" && segs[0] == "features" {
                node.any.get_or_insert_with(Box::default)
            } else {
                node.keys.entry(s.clone()).or_default()
            };
        }
        node.all = true;
        node.keys.clear();
        node.any = None;
    }

    fn child(&self, key: &str) -> Option<&Keep> {
        self.keys.get(key).or(self.any.as_deref())
    }
}

/// The stored thing (`ThingState::to_bytes`) pruned to `keep`, and its tombstone flag; `None`
/// if the bytes are not a complete stored thing (the caller decodes them in full then).
pub fn decode(bytes: &[u8], keep: &Keep) -> Option<(Value, bool)> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let out = Stored(keep).deserialize(&mut de).ok()?;
    de.end().ok()?;
    out
}

/// `{"t": thing, "r": .., "c": .., "m": .., "md": .., "d": ..}`
struct Stored<'k>(&'k Keep);

impl<'de> DeserializeSeed<'de> for Stored<'_> {
    type Value = Option<(Value, bool)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Stored<'_> {
    type Value = Option<(Value, bool)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stored thing")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut thing, mut deleted, mut seen) = (None, false, 0u8);
        while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "t" => thing = Some(m.next_value_seed(Pruned(self.0))?),
                "d" => deleted = m.next_value::<bool>()?,
                "r" => seen |= m.next_value::<u64>().map(|_| 1)?,
                "c" => seen |= m.next_value::<i64>().map(|_| 2)?,
                "m" => seen |= m.next_value::<i64>().map(|_| 4)?,
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        // what `ThingState::from_bytes` requires
        Ok(thing.filter(|_| seen == 7).map(|t| (t, deleted)))
    }
}

/// A JSON value with only the kept keys of its objects.
struct Pruned<'k>(&'k Keep);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.all {
            return Value::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = m.next_key::<String>()? {
            match self.0.child(&k) {
                Some(c) => {
                    let v = m.next_value_seed(Pruned(c))?;
                    out.insert(k, v);
                }
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
    // a non-object on a kept path is kept whole
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = s.next_element::<Value>()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ThingState;
    use crate::rql::{lookup, parse};
    use serde_json::json;

    fn stored(thing: Value, deleted: bool) -> Vec<u8> {
        ThingState {
            thing,
            revision: 3,
            created: 1,
            modified: 2,
            metadata: Some(json!({"attributes": {"a": {"m": 1}}})),
            deleted,
        }
        .to_bytes()
    }

    #[test]
    fn keeps_what_the_filter_looks_at_and_lookups_agree() {
        let thing = json!({"thingId": "n:t", "policyId": "n:p", "definition": "d:e:1",
            "attributes": {"a": 1, "b": {"c": [1, {"d": 2}], "e": "x"}, "tags": [{"k": "v"}],
                           "big": {"x": [1, 2, 3]}},
            "features": {"f": {"properties": {"t": 1.5, "u": null}}, "g": {"properties": {"t": 2}}}});
        let filter = "and(eq(attributes/a,1),exists(attributes/b/c/d),eq(attributes/tags/k,'v'),\
            gt(features/*/properties/t,1),eq(features/f/properties/u,null),like(_namespace,'n'),\
            eq(time:now,1))";
        let q = parse(filter).unwrap();
        let keep = Keep::of(Some(&q));
        let (pruned, deleted) = decode(&stored(thing.clone(), false), &keep).unwrap();
        assert!(!deleted);
        assert_eq!(
            pruned,
            json!({"thingId": "n:t", "policyId": "n:p",
                "attributes": {"a": 1, "b": {"c": [1, {"d": 2}]}, "tags": [{"k": "v"}]},
                "features": {"f": {"properties": {"t": 1.5, "u": null}},
                             "g": {"properties": {"t": 2}}}})
        );
        for p in q.properties() {
            assert_eq!(lookup(&pruned, p), lookup(&thing, p), "{}", p.raw);
        }
        let (_, deleted) = decode(&stored(thing, true), &keep).unwrap();
        assert!(deleted);
    }

    #[test]
    fn a_prefix_keeps_the_whole_subtree_and_incomplete_bytes_are_refused() {
        let thing = json!({"thingId": "n:t", "attributes": {"a": {"b": 1, "c": 2}, "z": 0}});
        let q = parse("and(eq(attributes/a/b,1),exists(attributes/a))").unwrap();
        let (pruned, _) = decode(&stored(thing, false), &Keep::of(Some(&q))).unwrap();
        assert_eq!(
            pruned,
            json!({"thingId": "n:t", "attributes": {"a": {"b": 1, "c": 2}}})
        );
        let keep = Keep::of(None);
        assert!(decode(br#"{"t":{},"r":1,"c":1}"#, &keep).is_none(), "no m");
        assert!(
            decode(br#"{"t":{},"r":-1,"c":1,"m":1}"#, &keep).is_none(),
            "bad r"
        );
        assert!(decode(br#"{"t":{},"r":1,"c":1,"m":1} x"#, &keep).is_none());
        assert!(decode(b"[]", &keep).is_none());
    }
}
