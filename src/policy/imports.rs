//! Policy imports resolved for enforcement, as Ditto's `PolicyImporter`: every entry of an
//! imported policy whose `importable` is `implicit` (the default), or `explicit` and listed in the
//! import's `entries`, joins the importing policy as `imported-<policyId>-<label>` (`never`: not
//! imported); an import's `transitiveImports` pull the listed imports of the imported policy in
//! first (under their own labels; cycles skipped, at most 10 deep). A missing policy adds nothing.
//! Also the `policy-view: resolved` retrieve: that merged policy as a requester may see it.

use super::{Enforcer, READ};
use crate::error::DittoError;
use crate::protocol::Headers;
use serde_json::{Map, Value};

/// Deepest chain of transitive imports followed (Ditto's limit).
const MAX_DEPTH: usize = 10;

/// `policy` with the entries of its imports added, and the IDs of every policy that was read to
/// resolve it (a change to any of them changes the result).
pub fn resolve(policy: Value, load: Lookup) -> Result<(Value, Vec<String>), DittoError> {
    let Some(imports) = policy.get("imports").and_then(Value::as_object) else {
        return Ok((policy, Vec::new()));
    };
    let mut used = Vec::new();
    let mut entries = entries_of(&policy);
    let own = policy.get("policyId").and_then(Value::as_str).unwrap_or("");
    for (id, import) in imports {
        let Some(imported) = load_once(id, load, &mut used)? else {
            continue;
        };
        let visited = vec![own.to_owned(), id.clone()];
        let available = with_transitive(&imported, import, load, 1, &visited, &mut used)?;
        for (label, entry) in importable(available, import) {
            entries
                .entry(format!("imported-{id}-{label}"))
                .or_insert(entry);
        }
    }
    let mut out = policy;
    out["entries"] = Value::Object(entries);
    Ok((out, used))
}

/// A lookup of stored policies by ID (to resolve imports); a failed read is an error.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<Value>, DittoError>;

/// The enforcer of `policy` with its imports resolved through `imported`.
pub fn enforcer_of(policy: &Value, now: i64, imported: Lookup) -> Result<Enforcer, DittoError> {
    let has_imports = policy
        .get("imports")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    if has_imports {
        let (resolved, _) = resolve(policy.clone(), imported)?;
        Ok(Enforcer::from_policy(&resolved, now, None))
    } else {
        Ok(Enforcer::from_policy(policy, now, None))
    }
}

/// True if a retrieve asks for `policy-view: resolved` (header or query); `original`, blank or
/// absent: false; anything else 400 `policies:view.invalid`.
pub fn wants_resolved(h: &Headers) -> Result<bool, DittoError> {
    let Some(raw) = h.get_str("policy-view") else {
        return Ok(false);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "original" => Ok(false),
        "resolved" => Ok(true),
        _ => Err(DittoError::new(
            400,
            "policies:view.invalid",
            format!(
                "The 'policy-view' parameter has an invalid value: '{raw}'. Valid values: 'original', 'resolved'."
            ),
        )
        .describe("Use 'original' (or omit) for the stored policy, or 'resolved' for the merged view.")),
    }
}

/// The resolved policy as `subjects` may see it: imported entries whose source entry they may not
/// READ in the imported policy are left out (Ditto's `hasSourceSideRead`).
pub fn resolved_view(
    policy: &Value,
    load: Lookup,
    subjects: Option<&[String]>,
    now: i64,
) -> Result<Value, DittoError> {
    let (mut merged, _) = resolve(policy.clone(), load)?;
    let (Some(subjects), Some(imports)) =
        (subjects, policy.get("imports").and_then(Value::as_object))
    else {
        return Ok(merged);
    };
    for id in imports.keys() {
        let Some(source) = load(id)? else { continue };
        let enforcer = Enforcer::from_policy(&source, now, None);
        if let Some(entries) = merged["entries"].as_object_mut() {
            for label in entries_of(&source).keys() {
                let path = ["entries".to_owned(), label.clone()];
                if !enforcer.has_partial(subjects, "policy", &path, READ) {
                    entries.remove(&format!("imported-{id}-{label}"));
                }
            }
        }
    }
    Ok(merged)
}

fn entries_of(policy: &Value) -> Map<String, Value> {
    policy
        .get("entries")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn load_once(id: &str, load: Lookup, used: &mut Vec<String>) -> Result<Option<Value>, DittoError> {
    if !used.iter().any(|u| u == id) {
        used.push(id.to_owned());
    }
    load(id)
}

/// The entries of `imported` plus those of its imports listed in `import.transitiveImports`.
fn with_transitive(
    imported: &Value,
    import: &Value,
    load: Lookup,
    depth: usize,
    visited: &[String],
    used: &mut Vec<String>,
) -> Result<Map<String, Value>, DittoError> {
    let mut entries = entries_of(imported);
    let transitive: Vec<&str> = import
        .get("transitiveImports")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(its_imports) = imported.get("imports").and_then(Value::as_object) else {
        return Ok(entries);
    };
    if transitive.is_empty() || depth >= MAX_DEPTH {
        return Ok(entries);
    }
    for (id, inner) in its_imports {
        if !transitive.contains(&id.as_str()) || visited.contains(id) {
            continue;
        }
        let Some(next) = load_once(id, load, used)? else {
            continue;
        };
        let mut seen = visited.to_vec();
        seen.push(id.clone());
        let available = with_transitive(&next, inner, load, depth + 1, &seen, used)?;
        for (label, entry) in importable(available, inner) {
            entries.entry(label).or_insert(entry);
        }
    }
    Ok(entries)
}

/// The entries an import takes: `implicit` ones, and `explicit` ones it lists in `entries`.
fn importable(
    entries: Map<String, Value>,
    import: &Value,
) -> impl Iterator<Item = (String, Value)> + '_ {
    let listed = |label: &str| {
        import
            .get("entries")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|l| l.as_str() == Some(label)))
    };
    entries.into_iter().filter(move |(label, e)| {
        match e
            .get("importable")
            .and_then(Value::as_str)
            .unwrap_or("implicit")
        {
            "implicit" => true,
            "explicit" => listed(label),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(subject: &str, importable: Option<&str>) -> Value {
        let mut e = json!({"subjects": {subject: {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}});
        if let Some(i) = importable {
            e["importable"] = json!(i);
        }
        e
    }

    fn store(id: &str) -> Result<Option<Value>, DittoError> {
        Ok(stored(id))
    }

    fn stored(id: &str) -> Option<Value> {
        match id {
            "n:base" => Some(json!({"policyId": "n:base", "entries": {
                "viewers": entry("u:bob", None),
                "admins": entry("u:carol", Some("explicit")),
                "private": entry("u:dave", Some("never"))},
                "imports": {"n:root": {"transitiveImports": ["n:base"]}}})),
            "n:root" => Some(json!({"policyId": "n:root", "entries": {
                "ops": entry("u:erin", None)},
                "imports": {"n:base": {"transitiveImports": ["n:root"]}}})),
            _ => None,
        }
    }

    fn labels(v: &Value) -> Vec<&str> {
        let mut l: Vec<&str> = v["entries"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        l.sort();
        l
    }

    #[test]
    fn implicit_and_listed_explicit_entries_are_imported_never_never() {
        let p = json!({"policyId": "n:thing", "entries": {"owner": entry("u:owner", None)},
            "imports": {"n:base": {"entries": ["admins"]}, "n:missing": {}}});
        let (r, used) = resolve(p.clone(), &store).unwrap();
        assert_eq!(
            labels(&r),
            ["imported-n:base-admins", "imported-n:base-viewers", "owner"]
        );
        assert_eq!(
            r["entries"]["imported-n:base-viewers"],
            entry("u:bob", None)
        );
        assert_eq!(used, ["n:base", "n:missing"]);
        let (r, _) = resolve(
            json!({"policyId": "n:thing", "entries": {}, "imports": {"n:base": {}}}),
            &store,
        )
        .unwrap();
        assert_eq!(
            labels(&r),
            ["imported-n:base-viewers"],
            "explicit needs listing"
        );
    }

    #[test]
    fn transitive_imports_only_when_listed_and_cycles_end() {
        let p = |t: Value| {
            json!({"policyId": "n:thing", "entries": {},
                "imports": {"n:base": {"transitiveImports": t}}})
        };
        let (r, used) = resolve(p(json!([])), &store).unwrap();
        assert_eq!(labels(&r), ["imported-n:base-viewers"]);
        assert_eq!(used, ["n:base"]);
        // n:root imports n:base back (cycle): followed once, then skipped
        let (r, used) = resolve(p(json!(["n:root"])), &store).unwrap();
        assert_eq!(
            labels(&r),
            ["imported-n:base-ops", "imported-n:base-viewers"]
        );
        assert_eq!(used, ["n:base", "n:root"]);
    }

    #[test]
    fn resolved_view_hides_entries_unreadable_at_the_source() {
        let mut base = stored("n:base").unwrap();
        base["entries"]["reader"] = json!({"subjects": {"u:me": {"type": "t"}},
            "resources": {"policy:/entries/viewers": {"grant": ["READ"], "revoke": []}}});
        let load = |id: &str| {
            if id == "n:base" {
                Ok(Some(base.clone()))
            } else {
                store(id)
            }
        };
        let p = json!({"policyId": "n:thing", "entries": {}, "imports": {"n:base": {}}});
        let me = ["u:me".to_owned()];
        let v = resolved_view(&p, &load, Some(&me), 0).unwrap();
        assert_eq!(
            labels(&v),
            ["imported-n:base-viewers"],
            "reader entry: READ on viewers only"
        );
        let v = resolved_view(&p, &load, Some(&["u:other".to_owned()]), 0).unwrap();
        assert_eq!(labels(&v), Vec::<&str>::new());
        let all = resolved_view(&p, &load, None, 0).unwrap();
        assert_eq!(
            labels(&all),
            ["imported-n:base-reader", "imported-n:base-viewers"]
        );
    }

    #[test]
    fn policy_view_values() {
        let h = |v: &str| {
            let mut h = Headers::new();
            h.insert("Policy-View", v);
            h
        };
        assert!(!wants_resolved(&Headers::new()).unwrap());
        assert!(!wants_resolved(&h(" Original ")).unwrap());
        assert!(!wants_resolved(&h("")).unwrap());
        assert!(wants_resolved(&h("RESOLVED")).unwrap());
        let e = wants_resolved(&h("merged")).unwrap_err();
        assert_eq!((e.status, &*e.error), (400, "policies:view.invalid"));
    }

    #[test]
    fn without_imports_the_policy_is_unchanged() {
        let p = json!({"policyId": "n:p", "entries": {"a": entry("u:a", None)}});
        assert_eq!(resolve(p.clone(), &store).unwrap(), (p.clone(), vec![]));
    }

    #[test]
    fn a_failed_read_of_an_import_is_an_error_not_a_missing_policy() {
        let failing = |_: &str| Err(DittoError::unavailable("n:base"));
        let p = json!({"policyId": "n:thing", "entries": {}, "imports": {"n:base": {}}});
        let e = resolve(p.clone(), &failing).unwrap_err();
        assert_eq!(e.status, 503);
        assert!(enforcer_of(&p, 0, &failing).is_err());
        // a policy that does not exist adds nothing (Ditto)
        let (r, _) = resolve(p, &|_| Ok(None)).unwrap();
        assert_eq!(labels(&r), Vec::<&str>::new());
    }
}
