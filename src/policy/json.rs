//! Policies as Ditto serialises them: `imports` is always present (`{}` when there are none) and
//! every entry carries its `importable` type (`implicit` by default), as `ImmutablePolicy.toJson`
//! and `ImmutablePolicyEntry.toJson` write them; a non-empty import always lists its `entries`
//! (`ImmutableEffectedImports.toJson`). Stored policies keep what was sent; this is the view.

use serde_json::{Map, Value};

/// Field order of an entry in Ditto's JSON.
const ENTRY_ORDER: [&str; 6] = [
    "subjects",
    "resources",
    "namespaces",
    "importable",
    "allowedAdditions",
    "references",
];

/// An entry with Ditto's defaults, fields in Ditto's order (unknown fields kept at the end).
pub fn entry(e: &Value) -> Value {
    let Value::Object(m) = e else {
        return e.clone();
    };
    let mut out = Map::new();
    for k in ENTRY_ORDER {
        match m.get(k) {
            Some(v) => {
                out.insert(k.to_owned(), v.clone());
            }
            None if k == "importable" => {
                out.insert(k.to_owned(), Value::String("implicit".into()));
            }
            None => {}
        }
    }
    for (k, v) in m {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The `entries` object with every entry as [`entry`].
pub fn entries(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(l, e)| (l.clone(), entry(e))).collect()),
        other => other.clone(),
    }
}

/// One import: `{}` stays `{}`; otherwise `entries` is always written.
pub fn import(v: &Value) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() && !m.contains_key("entries") => {
            let mut out = Map::new();
            out.insert("entries".into(), Value::Array(vec![]));
            out.extend(m.iter().map(|(k, x)| (k.clone(), x.clone())));
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The `imports` object with every import as [`import`].
pub fn imports(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(i, x)| (i.clone(), import(x))).collect()),
        other => other.clone(),
    }
}

/// A whole policy (also with `_revision` etc.): `policyId`, `imports`, `entries` first, in
/// Ditto's order, then the rest.
pub fn policy(p: &Value) -> Value {
    let Value::Object(m) = p else {
        return p.clone();
    };
    let mut out = Map::new();
    if let Some(id) = m.get("policyId") {
        out.insert("policyId".into(), id.clone());
    }
    let imp = m.get("imports").map_or(Value::Object(Map::new()), imports);
    out.insert("imports".into(), imp);
    if let Some(e) = m.get("entries") {
        out.insert("entries".into(), entries(e));
    }
    for (k, v) in m {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ditto_defaults_are_written() {
        let stored = json!({"policyId": "a:b", "entries": {"DEFAULT": {
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}},
            "subjects": {"s:1": {"type": "t"}}}}});
        let v = policy(&stored);
        assert_eq!(
            v,
            json!({"policyId": "a:b", "imports": {}, "entries": {"DEFAULT": {
                "subjects": {"s:1": {"type": "t"}},
                "resources": {"thing:/": {"grant": ["READ"], "revoke": []}},
                "importable": "implicit"}}})
        );
        let keys: Vec<&String> = v["entries"]["DEFAULT"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["subjects", "resources", "importable"],
            "Ditto's order"
        );
        let explicit = entry(&json!({"subjects": {}, "importable": "never", "namespaces": ["x"]}));
        assert_eq!(
            explicit,
            json!({"subjects": {}, "namespaces": ["x"], "importable": "never"})
        );
        assert_eq!(
            imports(&json!({"a:x": {}, "a:y": {"transitiveImports": ["a:z"]}})),
            json!({"a:x": {}, "a:y": {"entries": [], "transitiveImports": ["a:z"]}})
        );
        let full = policy(&json!({"policyId": "a:b", "entries": {}, "_revision": 3,
                                  "imports": {"a:x": {"entries": ["E"]}}}));
        let keys: Vec<&String> = full.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["policyId", "imports", "entries", "_revision"]);
    }
}
