//! Thing metadata headers (Ditto's `put-metadata`, `get-metadata`, `delete-metadata`): the
//! header checks, the `_metadata` tree after a write (it mirrors the thing; header keys are
//! relative to the command's path; `*/<name>` applies `<name>` to every leaf the command wrote;
//! deleted or merge-nulled data loses its metadata) and the `ditto-metadata` answer of a read.

use crate::error::DittoError;
use crate::model::pointer;
use crate::protocol::{Action, EventAction, Headers, ThingCommand};
use serde_json::{Map, Value};

const PUT: &str = "put-metadata";
const GET: &str = "get-metadata";
const DELETE: &str = "delete-metadata";

/// 400 `things:metadata.headersconflict` when more than one metadata header is present.
pub fn check_headers(h: &Headers, action: Action) -> Result<(), DittoError> {
    let n = [PUT, GET, DELETE]
        .iter()
        .filter(|k| h.get(k).is_some())
        .count();
    if n <= 1 {
        return Ok(());
    }
    let (msg, desc) = if action == Action::Retrieve {
        ("Metadata of the Thing could not be retrieved.",
         "Multiple metadata headers were specified. For GET requests only the 'get-metadata' header can be specified.")
    } else {
        ("Metadata of the Thing could not be created, modified or deleted.",
         "Multiple metadata headers were specified. For PUT/PATCH requests either the 'put-metadata' or 'delete-metadata' header can be specified not both at the same time.")
    };
    Err(DittoError::new(400, "things:metadata.headersconflict", msg).describe(desc))
}

/// 400 `things:metadata.notmodifiable`: metadata both in `put-metadata` and in `_metadata`.
pub fn not_modifiable() -> DittoError {
    DittoError::new(400, "things:metadata.notmodifiable", "Metadata of the Thing could not be modified")
        .describe("Multiple occurrences of metadata per request is not allowed. Either specify metadata in the header 'put-metadata' or in the Thing '_metadata'.")
}

/// True if the command carries `put-metadata`.
pub fn has_put(h: &Headers) -> bool {
    h.get(PUT).is_some()
}

/// One `put-metadata` entry: `key` relative to the command's path, or `*/<name>` (`leaf`).
struct PutEntry {
    key: Vec<String>,
    leaf: bool,
    value: Value,
}

fn invalid(name: &str, raw: &Value, expected: &str) -> DittoError {
    let s = match raw {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    DittoError::header_invalid(name, &s, expected)
}

fn parse_put(h: &Headers) -> Result<Option<Vec<PutEntry>>, DittoError> {
    let Some(raw) = h.get(PUT) else {
        return Ok(None);
    };
    let bad = || invalid(PUT, raw, "JSON array of {\"key\",\"value\"} objects");
    let parsed;
    let list = match raw {
        Value::Array(a) => a,
        Value::String(s) => {
            parsed = crate::bounds::parse_value(s).ok_or_else(bad)?;
            parsed.as_array().ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let key = e.get("key").and_then(Value::as_str).ok_or_else(bad)?;
        let value = e.get("value").cloned().ok_or_else(bad)?;
        let path = pointer::parse_pointer(key)?;
        let leaf = path.first().is_some_and(|s| s == "*");
        let wild_ok = !leaf || (path.len() == 2 && path[1] != "*");
        if path.is_empty() || !wild_ok || (!leaf && path.iter().any(|s| s == "*")) {
            return Err(invalid(
                PUT,
                raw,
                "metadata key (a JSON pointer or '*/<name>')",
            ));
        }
        let key = if leaf { path[1..].to_vec() } else { path };
        out.push(PutEntry { key, leaf, value });
    }
    Ok(Some(out))
}

/// A `get-metadata` / `delete-metadata` list: comma-separated pointers (or a JSON array).
fn parse_list(h: &Headers, name: &str) -> Result<Option<Vec<Vec<String>>>, DittoError> {
    let Some(raw) = h.get(name) else {
        return Ok(None);
    };
    let items: Vec<&str> = match raw {
        Value::String(s) => s.split(',').map(str::trim).collect(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(invalid(name, raw, "comma-separated list of JSON pointers")),
    };
    items
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(pointer::parse_pointer)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Relative paths of the leaves (non-object, non-null values) of a written value. At the thing
/// root only `attributes` and `features` count (not `thingId`, `policyId`, `definition`).
fn leaves(v: &Value, at_root: bool) -> Vec<Vec<String>> {
    fn walk(v: &Value, cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    cur.push(k.clone());
                    walk(c, cur, out);
                    cur.pop();
                }
            }
            Value::Null => {}
            _ => out.push(cur.clone()),
        }
    }
    let mut out = Vec::new();
    let mut cur = Vec::new();
    match v.as_object().filter(|_| at_root) {
        Some(m) => {
            for k in ["attributes", "features"] {
                if let Some(c) = m.get(k) {
                    cur.push(k.to_owned());
                    walk(c, &mut cur, &mut out);
                    cur.pop();
                }
            }
        }
        None => walk(v, &mut cur, &mut out),
    }
    out
}

/// The concrete paths in `md` a pattern addresses: `*` alone = everything, `*/<name>` = `<name>`
/// under any object at any depth, any other `*` segment matches one level.
fn expand(md: &Value, pat: &[String]) -> Vec<Vec<String>> {
    fn one_level(v: &Value, pat: &[String], cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some((first, rest)) = pat.split_first() else {
            out.push(cur.clone());
            return;
        };
        let Some(m) = v.as_object() else { return };
        for (k, c) in m.iter().filter(|(k, _)| first == "*" || *k == first) {
            cur.push(k.clone());
            one_level(c, rest, cur, out);
            cur.pop();
        }
    }
    fn any_depth(v: &Value, name: &[String], cur: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some(m) = v.as_object() else { return };
        if pointer::get(v, name).is_some() {
            out.push(cur.iter().chain(name).cloned().collect());
        }
        for (k, c) in m.iter().filter(|(k, _)| Some(*k) != name.first()) {
            cur.push(k.clone());
            any_depth(c, name, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    match pat {
        [star] if star == "*" => out.push(Vec::new()),
        [star, rest @ ..] if star == "*" && !rest.is_empty() => {
            any_depth(md, rest, &mut Vec::new(), &mut out)
        }
        _ => one_level(md, pat, &mut Vec::new(), &mut out),
    }
    out
}

/// Removes empty objects left behind (the root stays).
fn prune(v: &mut Value) {
    if let Value::Object(m) = v {
        for c in m.values_mut() {
            prune(c);
        }
        m.retain(|_, c| !matches!(c, Value::Object(o) if o.is_empty()));
    }
}

/// Drops metadata of every member a merge patch sets to `null`.
fn remove_nulled(md: &mut Value, path: &mut Vec<String>, patch: &Value) {
    match patch {
        Value::Null => {
            pointer::remove(md, path);
        }
        Value::Object(m) => {
            for (k, c) in m {
                path.push(k.clone());
                remove_nulled(md, path, c);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The metadata after a write and the event's `metadata` (what `put-metadata` wrote, relative
/// to the command's path). `base` is the metadata before the change; `written` the value
/// written at the path (modify: the value, merge: the applied patch, create: the thing).
pub fn after_write(
    base: Option<Value>,
    cmd: &ThingCommand,
    action: EventAction,
    written: Option<&Value>,
) -> Result<(Option<Value>, Option<Value>), DittoError> {
    let h = &cmd.headers;
    if base.is_none() && h.get(PUT).is_none() {
        return Ok((None, None));
    }
    let mut path = cmd.path.pointer();
    let mut md = base;
    if let Some(m) = md.as_mut() {
        match (action, written) {
            (EventAction::Deleted, _) if path.is_empty() => md = None,
            (EventAction::Deleted, _) => {
                pointer::remove(m, &path);
            }
            (EventAction::Merged, Some(p)) => remove_nulled(m, &mut path, p),
            _ => {}
        }
    }
    if let (Some(list), Some(m)) = (parse_list(h, DELETE)?, md.as_mut()) {
        if let Some(rel) = pointer::get_mut(m, &path) {
            for pat in &list {
                for p in expand(rel, pat) {
                    if p.is_empty() {
                        *rel = Value::Object(Map::new());
                    } else {
                        pointer::remove(rel, &p);
                    }
                }
            }
        }
        prune(m);
    }
    let mut event_md = None;
    if let (Some(entries), Some(w)) = (parse_put(h)?, written) {
        let m = md.get_or_insert_with(|| Value::Object(Map::new()));
        if !pointer::get(m, &path).is_some_and(Value::is_object) {
            pointer::set(m, &path, Value::Object(Map::new()));
        }
        let mut put = Value::Object(Map::new());
        let mut write = |key: &[String], value: Value| {
            if let Some(rel) = pointer::get_mut(m, &path) {
                pointer::set(rel, key, value.clone());
            }
            pointer::set(&mut put, key, value);
        };
        for e in entries {
            // refused before a deep tree is built (the thing's own check covers the rest)
            let depth = crate::bounds::value_depth(&e.value);
            if e.leaf {
                for mut l in leaves(w, path.is_empty()) {
                    l.extend(e.key.iter().cloned());
                    crate::bounds::check_write("metadata", path.len() + l.len(), depth)?;
                    write(&l, e.value.clone());
                }
            } else {
                crate::bounds::check_write("metadata", path.len() + e.key.len(), depth)?;
                write(&e.key, e.value);
            }
        }
        event_md = Some(put);
    }
    Ok((
        md.filter(|m| m.as_object().is_none_or(|o| !o.is_empty())),
        event_md,
    ))
}

/// The `ditto-metadata` answer of a read with `get-metadata` (`None` without the header): the
/// selected metadata relative to the command's path, `{}` when there is none.
pub fn for_get(md: Option<&Value>, cmd: &ThingCommand) -> Result<Option<Value>, DittoError> {
    let Some(list) = parse_list(&cmd.headers, GET)? else {
        return Ok(None);
    };
    let mut out = Value::Object(Map::new());
    if let Some(rel) = md.and_then(|m| pointer::get(m, &cmd.path.pointer())) {
        for pat in &list {
            for p in expand(rel, pat) {
                if let Some(v) = pointer::get(rel, &p) {
                    pointer::set(&mut out, &p, v.clone());
                }
            }
        }
    }
    Ok(Some(out))
}
