//! The policy model: validation and normalisation of policy JSON (labels, subject IDs with
//! expiry and announcement, resource keys, permissions, imports), the lockout rule, and the
//! compact `Rule` view of the entries that the enforcer is built from.

use super::errors;
use crate::error::DittoError;
use crate::model::parse_policy_id;
use serde_json::{Map, Value};

/// Largest policy (serialized JSON), as Ditto's default (100 kB).
pub const MAX_POLICY_BYTES: usize = 100 * 1024;
/// Most imports of one policy (Ditto's default limit).
pub const MAX_IMPORTS: usize = 10;

/// Permission bits.
pub const READ: u8 = 1;
/// WRITE permission bit.
pub const WRITE: u8 = 2;
/// EXECUTE permission bit.
pub const EXECUTE: u8 = 4;

/// Permission name -> bit (unknown names are kept in JSON but never grant anything).
pub fn perm_bit(p: &str) -> u8 {
    match p {
        "READ" => READ,
        "WRITE" => WRITE,
        "EXECUTE" => EXECUTE,
        _ => 0,
    }
}

/// A subject of an entry as the enforcer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectRule {
    /// `<issuer>:<subject>`
    pub id: String,
    /// expiry (epoch millis)
    pub expiry: Option<i64>,
}

/// One resource of an entry: type (`thing`, `policy`, `message`), path segments, permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRule {
    /// resource type
    pub rtype: String,
    /// path segments below the type
    pub path: Vec<String>,
    /// granted permission bits
    pub grant: u8,
    /// revoked permission bits
    pub revoke: u8,
}

/// A policy entry reduced to what enforcement needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// entry label
    pub label: String,
    /// subjects
    pub subjects: Vec<SubjectRule>,
    /// resources
    pub resources: Vec<ResourceRule>,
    /// namespace patterns the entry applies to (empty = all)
    pub namespaces: Vec<String>,
    /// `importable`: implicit (default), explicit, never
    pub importable: String,
}

/// Splits a resource key `type:/path` into (type, segments); `None` if malformed.
pub fn parse_resource_key(key: &str) -> Option<(String, Vec<String>)> {
    let (t, p) = key.split_once(':')?;
    if t.is_empty() || t.contains('/') || !(p.is_empty() || p.starts_with('/')) {
        return None;
    }
    let segs = p
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some((t.to_owned(), segs))
}

/// True if `ns` matches an entry namespace pattern (`a.b` exact, `a.b.*` strict sub-namespaces).
pub fn namespace_matches(pattern: &str, ns: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(base) => {
            ns.len() > base.len() + 1 && ns.starts_with(base) && ns[base.len()..].starts_with('.')
        }
        None => pattern == ns,
    }
}

/// The entries of a stored (already valid) policy as rules; malformed parts are skipped.
pub fn rules(policy: &Value) -> Vec<Rule> {
    let Some(entries) = policy.get("entries").and_then(Value::as_object) else {
        return Vec::new();
    };
    entries.iter().map(|(l, e)| rule(l, e)).collect()
}

/// One entry as a rule.
pub fn rule(label: &str, e: &Value) -> Rule {
    let subjects = e
        .get("subjects")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(id, s)| SubjectRule {
                    id: id.clone(),
                    expiry: s
                        .get("expiry")
                        .and_then(Value::as_str)
                        .and_then(crate::clock::parse_iso),
                })
                .collect()
        })
        .unwrap_or_default();
    let bits = |v: Option<&Value>| {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .fold(0, |b, p| b | perm_bit(p))
            })
            .unwrap_or(0)
    };
    let resources = e
        .get("resources")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, r)| {
                    let (rtype, mut path) = parse_resource_key(k)?;
                    let mut grant = bits(r.get("grant"));
                    let revoke = bits(r.get("revoke"));
                    // A resource deeper than any document (stored by an older version) would
                    // make the enforcer's trie that deep: keep it fail-closed at the bound
                    // (its revokes apply at the deepest allowed level, its grants are dropped).
                    if path.len() > crate::bounds::MAX_POINTER_SEGMENTS {
                        path.truncate(crate::bounds::MAX_POINTER_SEGMENTS);
                        grant = 0;
                    }
                    Some(ResourceRule {
                        rtype,
                        path,
                        grant,
                        revoke,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let namespaces = e
        .get("namespaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let importable = e
        .get("importable")
        .and_then(Value::as_str)
        .unwrap_or("implicit")
        .to_owned();
    Rule {
        label: label.to_owned(),
        subjects,
        resources,
        namespaces,
        importable,
    }
}

/// Checks a label: non-empty, no `/` or control characters, no reserved prefix.
pub fn validate_label(label: &str) -> Result<(), DittoError> {
    if label.starts_with("imported") || label.starts_with("nsimported") {
        return Err(errors::label_invalid(label));
    }
    if label.is_empty() || label.contains('/') || label.chars().any(char::is_control) {
        return Err(errors::entry_invalid_because(format!(
            "The label '{label}' of the policy entry is invalid: it must be non-empty and contain neither '/' nor control characters."
        )));
    }
    Ok(())
}

/// Checks a subject ID: `<issuer>:<subject>`, both parts present, no control characters.
pub fn validate_subject_id(id: &str) -> Result<(), DittoError> {
    match id.split_once(':') {
        Some((i, s)) if !i.is_empty() && !s.is_empty() && !id.chars().any(char::is_control) => {
            Ok(())
        }
        _ => Err(errors::subject_id_invalid(id)),
    }
}

/// Parses a `beforeExpiry`-style duration (`<n>s`, `<n>m`, `<n>h`) to millis.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let (num, mult) = if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s.strip_suffix('s')?, 1000)
    };
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    n.checked_mul(mult)
}

/// Validates and normalises one subject (`type`, `expiry`, `announcement`).
pub fn normalize_subject(id: &str, v: &Value, now: i64) -> Result<Value, DittoError> {
    validate_subject_id(id)?;
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type(&format!("/subjects/{id}"), "JsonObject"))?;
    let mut out = Map::new();
    for (k, x) in m {
        match k.as_str() {
            "__schemaVersion" => {}
            "type" => {
                let t = x
                    .as_str()
                    .ok_or_else(|| errors::wrong_type(&format!("/subjects/{id}/type"), "String"))?;
                out.insert(k.clone(), Value::String(t.to_owned()));
            }
            "expiry" => {
                let s = x.as_str().unwrap_or_default();
                let at = crate::clock::parse_iso(s)
                    .ok_or_else(|| errors::expiry_invalid(&x.to_string(), false))?;
                if at <= now {
                    return Err(errors::expiry_invalid(s, true));
                }
                out.insert(k.clone(), x.clone());
            }
            "announcement" => {
                let a = x.as_object().ok_or_else(|| {
                    errors::wrong_type(&format!("/subjects/{id}/announcement"), "JsonObject")
                })?;
                for key in ["beforeExpiry", "randomizationInterval"] {
                    if let Some(d) = a.get(key) {
                        let s = d.as_str().unwrap_or_default();
                        if parse_duration_ms(s).is_none() {
                            return Err(errors::announcement_invalid(s));
                        }
                    }
                }
                out.insert(k.clone(), x.clone());
            }
            _ => {
                out.insert(k.clone(), x.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

/// Validates and normalises one resource (`grant`, `revoke`).
pub fn normalize_resource(key: &str, v: &Value) -> Result<Value, DittoError> {
    let Some((_, path)) = parse_resource_key(key) else {
        return Err(errors::entry_invalid_because(format!(
            "The resource key '{key}' is invalid: it must look like '<type>:/<path>'."
        )));
    };
    if path.len() > crate::bounds::MAX_POINTER_SEGMENTS {
        return Err(crate::bounds::pointer_too_long(key, path.len()));
    }
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type(&format!("/resources/{key}"), "JsonObject"))?;
    let list = |name: &str| -> Result<Value, DittoError> {
        let mut out: Vec<Value> = Vec::new();
        match m.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for p in a {
                    let s = p.as_str().ok_or_else(|| {
                        errors::wrong_type(
                            &format!("/resources/{key}/{name}"),
                            "JsonArray of String",
                        )
                    })?;
                    if !out.iter().any(|x| x == s) {
                        out.push(Value::String(s.to_owned()));
                    }
                }
            }
            Some(_) => {
                return Err(errors::wrong_type(
                    &format!("/resources/{key}/{name}"),
                    "JsonArray",
                ))
            }
        }
        Ok(Value::Array(out))
    };
    let mut out = Map::new();
    out.insert("grant".into(), list("grant")?);
    out.insert("revoke".into(), list("revoke")?);
    Ok(Value::Object(out))
}

/// Validates and normalises a `subjects` object.
pub fn normalize_subjects(v: &Value, now: i64) -> Result<Value, DittoError> {
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type("/subjects", "JsonObject"))?;
    let mut out = Map::new();
    for (id, s) in m {
        out.insert(id.clone(), normalize_subject(id, s, now)?);
    }
    Ok(Value::Object(out))
}

/// Validates and normalises a `resources` object.
pub fn normalize_resources(v: &Value) -> Result<Value, DittoError> {
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type("/resources", "JsonObject"))?;
    let mut out = Map::new();
    for (k, r) in m {
        out.insert(k.clone(), normalize_resource(k, r)?);
    }
    Ok(Value::Object(out))
}

/// Validates an entry-level field (`namespaces`, `importable`, `allowedAdditions`, `references`).
pub fn normalize_entry_field(field: &str, v: &Value) -> Result<Value, DittoError> {
    let strings = |v: &Value| {
        v.as_array()
            .filter(|a| a.iter().all(Value::is_string))
            .is_some()
    };
    let ok = match field {
        "namespaces" | "allowedAdditions" => strings(v),
        "importable" => matches!(v.as_str(), Some("implicit" | "explicit" | "never")),
        "references" => v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
        _ => false,
    };
    if ok {
        Ok(v.clone())
    } else {
        Err(errors::wrong_type(&format!("/{field}"), "valid value"))
    }
}

/// Validates and normalises one entry (needs at least one known permission).
pub fn normalize_entry(label: &str, v: &Value, now: i64) -> Result<Value, DittoError> {
    validate_label(label)?;
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type(&format!("/entries/{label}"), "JsonObject"))?;
    let mut out = Map::new();
    let subjects = m
        .get("subjects")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    out.insert("subjects".into(), normalize_subjects(&subjects, now)?);
    let resources = m
        .get("resources")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let resources = normalize_resources(&resources)?;
    let known = resources
        .as_object()
        .map(|r| {
            r.values().any(|x| {
                ["grant", "revoke"].iter().any(|g| {
                    x[g].as_array().is_some_and(|a| {
                        a.iter().filter_map(Value::as_str).any(|p| perm_bit(p) != 0)
                    })
                })
            })
        })
        .unwrap_or(false);
    if !known {
        return Err(errors::entry_invalid());
    }
    out.insert("resources".into(), resources);
    for (k, x) in m {
        match k.as_str() {
            "subjects" | "resources" | "__schemaVersion" => {}
            f @ ("namespaces" | "importable" | "allowedAdditions" | "references") => {
                out.insert(k.clone(), normalize_entry_field(f, x)?);
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// Validates and normalises the `entries` object.
pub fn normalize_entries(v: &Value, now: i64) -> Result<Value, DittoError> {
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type("/entries", "JsonObject"))?;
    let mut out = Map::new();
    for (l, e) in m {
        out.insert(l.clone(), normalize_entry(l, e, now)?);
    }
    Ok(Value::Object(out))
}

/// Validates one import (`entries`, `transitiveImports` lists of strings).
pub fn normalize_import(own_id: &str, imported: &str, v: &Value) -> Result<Value, DittoError> {
    parse_policy_id(imported)?;
    if imported == own_id {
        return Err(errors::import_invalid());
    }
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type(&format!("/imports/{imported}"), "JsonObject"))?;
    let mut out = Map::new();
    for (k, x) in m {
        match k.as_str() {
            "entries" | "transitiveImports" => {
                if !x.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    return Err(errors::wrong_type(
                        &format!("/imports/{imported}/{k}"),
                        "JsonArray of String",
                    ));
                }
                out.insert(k.clone(), x.clone());
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// Validates the `imports` object.
pub fn normalize_imports(own_id: &str, v: &Value) -> Result<Value, DittoError> {
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type("/imports", "JsonObject"))?;
    if m.len() > MAX_IMPORTS {
        return Err(errors::imports_too_large(m.len(), MAX_IMPORTS));
    }
    let mut out = Map::new();
    for (id, i) in m {
        out.insert(id.clone(), normalize_import(own_id, id, i)?);
    }
    Ok(Value::Object(out))
}

/// Validates and normalises a whole policy for `id` (payload `policyId` must match).
pub fn normalize_policy(id: &str, v: &Value, now: i64) -> Result<Value, DittoError> {
    let m = v
        .as_object()
        .ok_or_else(|| errors::wrong_type("/", "JsonObject"))?;
    if let Some(pid) = m.get("policyId") {
        if pid.as_str() != Some(id) {
            return Err(errors::id_not_settable());
        }
    }
    let mut out = Map::new();
    out.insert("policyId".into(), Value::String(id.to_owned()));
    if let Some(imports) = m.get("imports") {
        out.insert("imports".into(), normalize_imports(id, imports)?);
    }
    let entries = m
        .get("entries")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    out.insert("entries".into(), normalize_entries(&entries, now)?);
    check_size(id, &Value::Object(out.clone()))?;
    Ok(Value::Object(out))
}

/// 413 if the policy JSON exceeds [`MAX_POLICY_BYTES`]; 400 `json.invalid` if it is nested
/// deeper than [`crate::bounds::MAX_JSON_DEPTH`] (a subject's free-form fields, written at a deep
/// path, could otherwise make it unreadable).
pub fn check_size(_id: &str, policy: &Value) -> Result<(), DittoError> {
    let text = policy.to_string();
    if text.len() > MAX_POLICY_BYTES {
        return Err(errors::too_large(text.len(), MAX_POLICY_BYTES));
    }
    let depth = crate::bounds::text_depth(text.as_bytes());
    if depth > crate::bounds::MAX_JSON_DEPTH {
        return Err(crate::bounds::document_too_deep("policy", depth));
    }
    Ok(())
}

/// Ditto's lockout rule: without imports, some permanent (non-expiring) subject must be granted
/// WRITE on `policy:/` by an entry, and not be revoked WRITE on `policy:/` by any entry.
pub fn keeps_policy_writer(policy: &Value) -> bool {
    if policy
        .get("imports")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return true;
    }
    let rules = rules(policy);
    let at_root = |r: &Rule, grant: bool| {
        r.resources.iter().any(|x| {
            x.rtype == "policy"
                && x.path.is_empty()
                && (if grant { x.grant } else { x.revoke }) & WRITE != 0
        })
    };
    let revoked: Vec<&str> = rules
        .iter()
        .filter(|r| at_root(r, false))
        .flat_map(|r| r.subjects.iter().map(|s| s.id.as_str()))
        .collect();
    rules.iter().filter(|r| at_root(r, true)).any(|r| {
        r.subjects
            .iter()
            .any(|s| s.expiry.is_none() && !revoked.contains(&s.id.as_str()))
    })
}

#[cfg(test)]
mod tests;
