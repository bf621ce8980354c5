//! Writing policy commands: create (lockout and creator checks), modify at every path (201 when
//! the addressed part is new, 204 otherwise) and delete, each validated and checked against the
//! lockout rule before it becomes the next revision.

use super::command::{
    missing, validate_new_policy, value_at, PolicyCommand, PolicyOutcome, PolicyState,
};
use super::imports::{enforcer_of, Lookup};
use super::model::{self, WRITE};
use super::{errors, PolicyPath};
use crate::error::DittoError;
use serde_json::{Map, Value};

fn value_of(cmd: &PolicyCommand) -> Result<&Value, DittoError> {
    cmd.value
        .as_ref()
        .ok_or_else(|| DittoError::field_missing("/value"))
}

/// CreatePolicy (and modify `/` of a missing policy).
pub fn create(
    cmd: &PolicyCommand,
    now: i64,
    subjects: Option<&[String]>,
    imported: Lookup,
) -> Result<PolicyOutcome, DittoError> {
    let id = cmd.policy_id.as_str();
    let policy = validate_new_policy(id, value_of(cmd)?, now)?;
    if let Some(subs) = subjects {
        let lockout_ok = cmd.headers.bool("allow-policy-lockout")?.unwrap_or(false);
        // the new policy with its imports resolved (Ditto's PolicyEnforcerActor for CreatePolicy)
        let e = enforcer_of(&policy, now, imported)?;
        if !lockout_ok && !e.has_unrestricted(subs, "policy", &[], WRITE) {
            return Err(errors::not_creatable(id));
        }
    }
    let state = PolicyState::new(policy.clone(), now);
    Ok(PolicyOutcome {
        status: 201,
        value: Some(super::json::policy(&policy)),
        etag: Some(state.etag()),
        state: Some(state),
        deleted: false,
    })
}

/// The object member `key` of `v`, created (or replaced by an object) if needed.
fn ensure_obj<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let e = v
        .as_object_mut()?
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e.as_object_mut()
}

/// The entry `label` of a policy, created if missing.
fn entry_mut<'a>(p: &'a mut Value, label: &str) -> Option<&'a mut Value> {
    let entries = ensure_obj(p, "entries")?;
    Some(
        entries
            .entry(label.to_owned())
            .or_insert_with(|| Value::Object(Map::new())),
    )
}

/// Sets `value` at `path` in `policy`; returns whether the addressed part existed before.
fn set_at(policy: &mut Value, path: &PolicyPath, value: Value) -> bool {
    let put = |m: Option<&mut Map<String, Value>>, k: &str, v: Value| {
        m.map(|m| m.insert(k.to_owned(), v).is_some())
            .unwrap_or(false)
    };
    match path {
        PolicyPath::Root => {
            *policy = value;
            true
        }
        PolicyPath::Entries => put(policy.as_object_mut(), "entries", value),
        PolicyPath::Imports => put(policy.as_object_mut(), "imports", value),
        PolicyPath::Entry(l) => put(ensure_obj(policy, "entries"), l, value),
        PolicyPath::EntryField(l, f) => put(
            entry_mut(policy, l).and_then(Value::as_object_mut),
            f,
            value,
        ),
        PolicyPath::Subjects(l) => put(
            entry_mut(policy, l).and_then(Value::as_object_mut),
            "subjects",
            value,
        ),
        PolicyPath::Resources(l) => put(
            entry_mut(policy, l).and_then(Value::as_object_mut),
            "resources",
            value,
        ),
        PolicyPath::Subject(l, s) => put(
            entry_mut(policy, l).and_then(|e| ensure_obj(e, "subjects")),
            s,
            value,
        ),
        PolicyPath::Resource(l, k) => put(
            entry_mut(policy, l).and_then(|e| ensure_obj(e, "resources")),
            k,
            value,
        ),
        PolicyPath::Import(i) => put(ensure_obj(policy, "imports"), i, value),
        PolicyPath::ImportField(i, f) => {
            let imp = ensure_obj(policy, "imports").map(|m| {
                m.entry(i.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
            });
            put(imp.and_then(Value::as_object_mut), f, value)
        }
    }
}

fn entry<'a>(p: &'a mut Value, l: &str) -> Option<&'a mut Value> {
    p.get_mut("entries").and_then(|e| e.get_mut(l))
}

/// Removes the addressed part; false if it did not exist.
fn remove_at(policy: &mut Value, path: &PolicyPath) -> bool {
    let member = |v: Option<&mut Value>, k: &str| -> bool {
        v.and_then(Value::as_object_mut)
            .is_some_and(|m| m.remove(k).is_some())
    };
    match path {
        PolicyPath::Entry(l) => member(policy.get_mut("entries"), l),
        PolicyPath::EntryField(l, f) => member(entry(policy, l), f),
        PolicyPath::Subject(l, s) => {
            member(entry(policy, l).and_then(|e| e.get_mut("subjects")), s)
        }
        PolicyPath::Resource(l, k) => {
            member(entry(policy, l).and_then(|e| e.get_mut("resources")), k)
        }
        PolicyPath::Imports => member(Some(policy), "imports"),
        PolicyPath::Import(i) => member(policy.get_mut("imports"), i),
        _ => false,
    }
}

/// Validates the value written at `path` (normalised form returned).
fn normalize(id: &str, path: &PolicyPath, v: &Value, now: i64) -> Result<Value, DittoError> {
    match path {
        PolicyPath::Root => model::normalize_policy(id, v, now),
        PolicyPath::Entries => model::normalize_entries(v, now),
        PolicyPath::Entry(l) => model::normalize_entry(l, v, now),
        PolicyPath::EntryField(_, f) => model::normalize_entry_field(f, v),
        PolicyPath::Subjects(_) => model::normalize_subjects(v, now),
        PolicyPath::Subject(_, s) => model::normalize_subject(s, v, now),
        PolicyPath::Resources(_) => model::normalize_resources(v),
        PolicyPath::Resource(_, k) => model::normalize_resource(k, v),
        PolicyPath::Imports => model::normalize_imports(id, v),
        PolicyPath::Import(i) => model::normalize_import(id, i, v),
        PolicyPath::ImportField(i, f) => {
            let mut m = Map::new();
            m.insert((*f).to_owned(), v.clone());
            let n = model::normalize_import(id, i, &Value::Object(m))?;
            Ok(n.get(*f).cloned().unwrap_or(Value::Array(vec![])))
        }
    }
}

/// The next revision after a change, checked for size, entry validity and lockout.
fn finish(
    state: &PolicyState,
    cmd: &PolicyCommand,
    policy: Value,
    status: u16,
    value: Option<Value>,
    now: i64,
) -> Result<PolicyOutcome, DittoError> {
    let id = cmd.policy_id.as_str();
    let modifies = cmd.action == crate::protocol::Action::Modify;
    if let Some(l) = cmd.path.label().filter(|_| modifies) {
        if let Some(e) = value_at(&policy, &PolicyPath::Entry(l.to_owned())) {
            // Revalidate the touched entry; expiries already stored are not re-checked.
            model::normalize_entry(l, &e, i64::MIN)?;
        }
    }
    if let Some(n) = policy
        .get("imports")
        .and_then(Value::as_object)
        .map(Map::len)
    {
        if n > model::MAX_IMPORTS {
            return Err(errors::imports_too_large(n, model::MAX_IMPORTS));
        }
    }
    model::check_size(id, &policy)?;
    if !model::keeps_policy_writer(&policy) {
        return Err(match cmd.path.label() {
            Some(l) => errors::entry_modification_invalid(id, l),
            None => errors::modification_invalid(id),
        });
    }
    let next = PolicyState {
        policy,
        revision: state.revision + 1,
        created: state.created,
        modified: now,
    };
    let etag = match &cmd.path {
        PolicyPath::Root => Some(next.etag()),
        p => {
            value_at(&next.policy, p).map(|v| format!("\"hash:{}\"", crate::model::value_hash(&v)))
        }
    };
    Ok(PolicyOutcome {
        status,
        value,
        etag,
        state: Some(next),
        deleted: false,
    })
}

/// Modify at any path of an existing policy.
pub fn modify(
    state: &PolicyState,
    cmd: &PolicyCommand,
    now: i64,
) -> Result<PolicyOutcome, DittoError> {
    let id = cmd.policy_id.as_str();
    let v = normalize(id, &cmd.path, value_of(cmd)?, now)?;
    let needs_entry = !matches!(
        cmd.path,
        PolicyPath::Root | PolicyPath::Entries | PolicyPath::Entry(_)
    ) && cmd.path.label().is_some();
    if needs_entry
        && value_at(
            &state.policy,
            &PolicyPath::Entry(cmd.path.label().unwrap_or_default().to_owned()),
        )
        .is_none()
    {
        return Err(missing(id, &state.policy, &cmd.path));
    }
    if let PolicyPath::ImportField(i, _) = &cmd.path {
        if value_at(&state.policy, &PolicyPath::Import(i.clone())).is_none() {
            return Err(missing(id, &state.policy, &cmd.path));
        }
    }
    let mut policy = state.policy.clone();
    let existed = set_at(&mut policy, &cmd.path, v.clone());
    let creates = match &cmd.path {
        PolicyPath::Entry(_)
        | PolicyPath::Subject(..)
        | PolicyPath::Resource(..)
        | PolicyPath::Import(_) => !existed,
        PolicyPath::EntryField(_, "references") => !existed,
        _ => false,
    };
    // 201 answers with the created part as Ditto serialises it (an entry with `importable`)
    let (status, value) = if creates {
        (201, value_at(&policy, &cmd.path).or(Some(v)))
    } else {
        (204, None)
    };
    finish(state, cmd, policy, status, value, now)
}

/// Delete at a deletable path of an existing policy.
pub fn delete(
    state: &PolicyState,
    cmd: &PolicyCommand,
    now: i64,
) -> Result<PolicyOutcome, DittoError> {
    let id = cmd.policy_id.as_str();
    if cmd.path == PolicyPath::Root {
        return Ok(PolicyOutcome {
            status: 204,
            value: None,
            etag: None,
            state: None,
            deleted: true,
        });
    }
    let mut policy = state.policy.clone();
    if !remove_at(&mut policy, &cmd.path) {
        if cmd.path == PolicyPath::Imports {
            return finish(state, cmd, policy, 204, None, now);
        }
        return Err(missing(id, &state.policy, &cmd.path));
    }
    let mut out = finish(state, cmd, policy, 204, None, now)?;
    out.etag = None;
    Ok(out)
}
