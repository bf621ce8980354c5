//! Writing commands: create, modify (create-or-replace at a path), merge (RFC 7396 with
//! Ditto's extensions) and delete. Each returns the new state, its encoded bytes, the
//! response and the event; revisions increase by exactly one per change.

use super::conditions::{check_condition, check_etags, Checks, IfEqual};
use super::state::Replaced;
use super::{errors, validate, Ctx, Event, Outcome, ThingState, MAX_THING_BYTES};
use crate::bounds;
use crate::error::DittoError;
use crate::model::{etag::hash_etag, merge, pointer};
use crate::protocol::{Action, EventAction, ThingCommand, ThingPath};
use serde_json::{Map, Value};

/// ETag of the resource at `path` in `state` (`None` if absent).
pub fn etag_at(state: &ThingState, path: &ThingPath) -> Option<String> {
    if *path == ThingPath::Root {
        return Some(state.etag());
    }
    pointer::get(&state.thing, &path.pointer()).map(hash_etag)
}

/// `if-match` / `if-none-match` of a write against the addressed resource (whose ETag is only
/// computed when one of them is present).
fn check_write_etags(state: &ThingState, cmd: &ThingCommand) -> Result<(), DittoError> {
    let h = &cmd.headers;
    if h.get("if-match").is_none() && h.get("if-none-match").is_none() {
        return Ok(());
    }
    check_etags(h, etag_at(state, &cmd.path).as_deref(), false)
}

/// The features a path needs to exist before a modify/delete can address it.
fn require_feature(state: &ThingState, cmd: &ThingCommand) -> Result<(), DittoError> {
    match &cmd.path {
        ThingPath::Feature(_) => Ok(()),
        p => match p.feature_id() {
            Some(f)
                if pointer::get(&state.thing, &["features".to_owned(), f.to_owned()]).is_none() =>
            {
                Err(errors::feature_not_found(&cmd.thing_id.to_string(), f))
            }
            _ => Ok(()),
        },
    }
}

fn value_of(cmd: &ThingCommand) -> Result<&Value, DittoError> {
    cmd.value
        .as_ref()
        .ok_or_else(|| DittoError::field_missing("/value"))
}

/// A change decided by a write command, before it becomes an `Outcome`.
struct Change {
    thing: Value,
    created: Option<i64>,
    status: u16,
    action: EventAction,
    event_value: Option<Value>,
    /// `_metadata` of a created thing's payload
    inline_metadata: Option<Value>,
    /// a modify below the root: the command's path now holds `event_value` (its ETag is that
    /// value's hash) and `plan_modify` bounded the thing's depth (`depth::check`)
    replaced_below_root: bool,
}

/// Builds the outcome of a write: new revision, size check, encoded bytes, event.
fn finish(
    prev: Option<&ThingState>,
    change: Change,
    cmd: &ThingCommand,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    finish_or_back(prev, change, cmd, ctx).map_err(|b| b.0)
}

/// `finish`, giving the changed thing back with the error (an in-place write undoes itself).
fn finish_or_back(
    prev: Option<&ThingState>,
    change: Change,
    cmd: &ThingCommand,
    ctx: &Ctx,
) -> Result<Outcome, Box<(DittoError, Value)>> {
    let Change {
        thing,
        created,
        status,
        action,
        event_value,
        inline_metadata,
        replaced_below_root,
    } = change;
    let base = match inline_metadata {
        Some(m) => Some(m),
        None => prev.filter(|p| !p.deleted).and_then(|p| p.metadata.clone()),
    };
    let (metadata, event_metadata) =
        match super::metadata::after_write(base, cmd, action, event_value.as_ref()) {
            Ok(m) => m,
            Err(e) => return Err(Box::new((e, thing))),
        };
    let revision = prev.map(|p| p.revision).unwrap_or(0) + 1;
    let state = ThingState {
        thing,
        revision,
        created: created.or(prev.map(|p| p.created)).unwrap_or(ctx.now),
        modified: ctx.now,
        metadata,
        deleted: action == EventAction::Deleted && cmd.path == ThingPath::Root,
    };
    let bytes = state.to_bytes();
    if bytes.len() > MAX_THING_BYTES {
        let e = errors::too_large(bytes.len(), MAX_THING_BYTES);
        return Err(Box::new((e, state.thing)));
    }
    let md = state.metadata.as_ref();
    if let Err(e) = super::depth::check(prev, &bytes, md, replaced_below_root) {
        return Err(Box::new((e, state.thing)));
    }
    let etag = match (&event_value, action) {
        (_, EventAction::Deleted) => None,
        // the value just written at the path: no lookup (and no pointer built) for its ETag;
        // Ditto answers a modify with the written value's ETag (things service tests:
        // `ETagTestUtils.modifyAttributeResponse`, `EntityTag.fromEntity(attributeValue)`)
        (Some(v), _) if replaced_below_root => Some(hash_etag(v)),
        _ => etag_at(&state, &cmd.path),
    };
    let value = if status == 201 {
        event_value.clone()
    } else {
        None
    };
    let event = Event {
        action,
        path: cmd.raw_path.clone(),
        value: event_value,
        revision,
        timestamp: ctx.now,
        metadata: event_metadata,
    };
    Ok(Outcome {
        status,
        value,
        etag,
        state: Some(state),
        bytes: Some(bytes),
        event: Some(event),
        policy: None,
        ditto_metadata: None,
        historical_headers: None,
    })
}

/// Strips inline `_` fields from a thing payload and checks `thingId` against the topic.
fn clean_thing_payload(cmd: &ThingCommand, v: &Value) -> Result<Map<String, Value>, DittoError> {
    let mut m = v
        .as_object()
        .cloned()
        .ok_or_else(|| errors::wrong_type("/", "JsonObject"))?;
    if let Some(id) = m.get("thingId") {
        check_payload_thing_id(&cmd.thing_id.to_string(), id)?;
    }
    m.retain(|k, _| !k.starts_with('_'));
    Ok(m)
}

/// A `thingId` in a thing payload: it must be a valid thing ID (400 `things:id.invalid`, as
/// Ditto parses the payload thing before comparing) equal to the topic's (400
/// `things:id.notsettable`).
fn check_payload_thing_id(id: &str, v: &Value) -> Result<(), DittoError> {
    if let Some(s) = v.as_str() {
        crate::model::parse_thing_id(s)?;
    }
    if v.as_str() != Some(id) {
        return Err(errors::id_not_settable());
    }
    Ok(())
}

/// Canonical key order for a stored thing.
pub(super) fn ordered_thing(id: &str, mut m: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("thingId".into(), Value::String(id.to_owned()));
    for k in ["policyId", "definition", "attributes", "features"] {
        if let Some(v) = m.remove(k) {
            if !(v.is_null() && k != "definition") {
                out.insert(k.into(), v);
            }
        }
    }
    m.remove("thingId");
    out.extend(m);
    Value::Object(out)
}

/// CreateThing, and modify/merge at `/` of a missing (or deleted) thing.
pub fn create(
    prev: Option<&ThingState>,
    cmd: &ThingCommand,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    let id = cmd.thing_id.to_string();
    let raw = match (&cmd.value, cmd.action) {
        (None, Action::Create) => Value::Object(Map::new()),
        (None, _) => return Err(DittoError::field_missing("/value")),
        (Some(Value::Null), Action::Merge) => return Err(errors::merge_invalid()),
        (Some(v), Action::Merge) => merge::strip_nulls(v),
        (Some(v), _) => v.clone(),
    };
    let obj = raw
        .as_object()
        .ok_or_else(|| errors::wrong_type("/", "JsonObject"))?;
    let inline_policy = obj.get("_policy").cloned();
    if inline_policy.is_some() && obj.contains_key("_copyPolicyFrom") {
        return Err(DittoError::new(400, "things:policy.conflicting", format!("The Thing with ID '{id}' could not be created as it contained an inline Policy as well as a policyID to copy."))
            .describe("Please either define an inline Policy or define a policy to copy, but not both."));
    }
    if inline_policy.is_some() && obj.contains_key("policyId") {
        return Err(DittoError::new(400, "things:policy.id.notallowed", format!("The Thing with ID '{id}' could not be modified as it contained an inline Policy with an ID or a Policy ID and a Policy"))
            .describe("If you want to use an existing Policy, specify it as 'policyId' in the Thing JSON. If you want to create a Thing with inline Policy, no Policy ID is allowed as it will be created with the Thing ID."));
    }
    let copy_from = obj.get("_copyPolicyFrom").cloned();
    let inline_metadata = obj.get("_metadata").filter(|m| m.is_object()).cloned();
    if inline_metadata.is_some() && super::metadata::has_put(&cmd.headers) {
        return Err(super::metadata::not_modifiable());
    }
    let mut m = clean_thing_payload(cmd, &raw)?;
    let chosen = super::policy_source::choose(cmd, &m, inline_policy, copy_from.as_ref(), ctx)?;
    if let Some(acc) = &ctx.access {
        super::enforce::check_create(
            cmd,
            acc.subjects,
            &chosen.policy_id,
            &chosen.policy,
            chosen.new_policy.is_some(),
            ctx.now,
        )?;
    }
    m.insert("policyId".into(), Value::String(chosen.policy_id.clone()));
    let new_policy = chosen.new_policy.map(|p| (chosen.policy_id, p));
    let thing = ordered_thing(&id, m);
    validate::thing(&thing)?;
    let prev = prev.filter(|p| p.deleted);
    let mut out = finish(
        prev,
        Change {
            thing: thing.clone(),
            created: Some(ctx.now),
            status: 201,
            action: EventAction::Created,
            event_value: Some(thing),
            inline_metadata,
            replaced_below_root: false,
        },
        cmd,
        ctx,
    )?;
    out.etag = out.state.as_ref().map(ThingState::etag);
    out.policy = new_policy;
    Ok(out)
}

/// What a modify writes, once every check passed: the new value at `ptr` and whether
/// something was there.
/// `current`: the value at `ptr` (looked up by the caller, who walks there anyway).
fn plan_modify(
    state: &ThingState,
    cmd: &ThingCommand,
    checks: &Checks,
    ptr: &[String],
    current: Option<&Value>,
) -> Result<(Value, bool), DittoError> {
    let value = value_of(cmd)?;
    // refused before anything deep is built (the check in `finish` covers the rest)
    bounds::check_write("thing", ptr.len(), bounds::value_depth(value))?;
    if cmd.path != ThingPath::Root {
        validate::value_for(&cmd.path, value)?;
    }
    require_feature(state, cmd)?;
    let (new_value, existed) = if cmd.path == ThingPath::Root {
        let id = cmd.thing_id.to_string();
        if value.get("_policy").is_some() {
            return Err(DittoError::new(400, "things:policy.notallowed", format!("The Thing with ID '{id}' could not be modified as it contained an inline Policy"))
                .describe("Once a Thing with inline Policy is created it can't be modified with another Policy. Use the Policy resources to modify the existing Policy."));
        }
        let mut m = clean_thing_payload(cmd, value)?;
        if !m.contains_key("policyId") {
            if let Some(p) = state.thing.get("policyId") {
                m.insert("policyId".into(), p.clone());
            }
        }
        (ordered_thing(&id, m), true)
    } else {
        (value.clone(), current.is_some())
    };
    if cmd.path == ThingPath::Root {
        validate::thing(&new_value)?;
    }
    check_write_etags(state, cmd)?;
    if checks.if_equal != IfEqual::Update && existed && current == Some(&new_value) {
        return Err(errors::equal_skipped());
    }
    check_condition(checks, state)?;
    Ok((new_value, existed))
}

fn modified_or_created(existed: bool) -> (u16, EventAction) {
    if existed {
        (204, EventAction::Modified)
    } else {
        (201, EventAction::Created)
    }
}

/// Modify (create-or-replace) at any path of an existing thing.
pub fn modify(
    state: &ThingState,
    cmd: &ThingCommand,
    checks: &Checks,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    let ptr = cmd.path.pointer();
    let current = pointer::get(&state.thing, &ptr);
    let (new_value, existed) = plan_modify(state, cmd, checks, &ptr, current)?;
    let mut thing = state.thing.clone();
    if cmd.path == ThingPath::Root {
        thing = new_value.clone();
    } else {
        pointer::set(&mut thing, &ptr, new_value.clone());
    }
    let (status, action) = modified_or_created(existed);
    let event_value = if cmd.path == ThingPath::Root {
        thing.clone()
    } else {
        new_value
    };
    finish(
        Some(state),
        Change {
            thing,
            created: None,
            status,
            action,
            event_value: Some(event_value),
            inline_metadata: None,
            replaced_below_root: cmd.path != ThingPath::Root,
        },
        cmd,
        ctx,
    )
}

/// `modify` written into `state` instead of a copy, for a path the index delta can follow
/// (`search::delta::in_place_path`) whose parent object exists: the outcome and what the write
/// replaced. Anything else, or a refusal, gives `state` back unchanged.
// the `Err` is the caller's own state handed back (moved, never copied); boxing it would cost
// an allocation per command that is not written in place
#[allow(clippy::result_large_err)]
pub(super) fn modify_in_place(
    mut state: ThingState,
    cmd: &ThingCommand,
    checks: &Checks,
    ctx: &Ctx,
) -> Result<(Outcome, Replaced), ThingState> {
    let path = cmd.path.pointer();
    let Some((last, parents)) = path.split_last() else {
        return Err(state);
    };
    let parent = match pointer::get(&state.thing, parents) {
        Some(Value::Object(p)) if crate::search::delta::in_place_path(&path) => p,
        _ => return Err(state),
    };
    let Ok((new_value, existed)) = plan_modify(&state, cmd, checks, &path, parent.get(last)) else {
        return Err(state);
    };
    let event_value = new_value.clone();
    let Some(parent) = pointer::get_mut(&mut state.thing, parents).and_then(Value::as_object_mut)
    else {
        return Err(state);
    };
    // an existing key keeps its place (its value replaced there: no copy of the key), a new
    // one goes last (as `pointer::set`)
    let old = match parent.get_mut(last) {
        Some(slot) => Some(std::mem::replace(slot, new_value)),
        None => parent.insert(last.clone(), new_value),
    };
    let (status, action) = modified_or_created(existed);
    let thing = std::mem::take(&mut state.thing);
    let change = Change {
        thing,
        created: None,
        status,
        action,
        event_value: Some(event_value),
        inline_metadata: None,
        replaced_below_root: true,
    };
    // `finish` reads no more of `prev` than its revision, times and metadata (and the depth of
    // its thing only to let a write through that is refused here: then `modify` decides)
    match finish_or_back(Some(&state), change, cmd, ctx) {
        Ok(outcome) => Ok((
            outcome,
            Replaced {
                path,
                old,
                modified: state.modified,
                created: state.created,
            },
        )),
        Err(back) => {
            let mut thing = back.1;
            if let Some(p) = pointer::get_mut(&mut thing, parents).and_then(Value::as_object_mut) {
                match old {
                    Some(o) => {
                        p.insert(last.clone(), o);
                    }
                    None => {
                        p.shift_remove(last);
                    }
                }
            }
            state.thing = thing;
            Err(state)
        }
    }
}

/// The thing after merging `patch` at the command's path (validated at `/`).
fn merged_thing(
    state: &ThingState,
    cmd: &ThingCommand,
    patch: &Value,
) -> Result<Value, DittoError> {
    let ptr = cmd.path.pointer();
    let mut thing = state.thing.clone();
    if patch.is_null() {
        pointer::remove(&mut thing, &ptr);
    } else {
        let mut target = pointer::get(&state.thing, &ptr)
            .cloned()
            .unwrap_or(Value::Null);
        merge::merge_patch(&mut target, patch);
        if cmd.path == ThingPath::Root {
            thing = target;
        } else {
            validate::value_for(&cmd.path, &target)?;
            pointer::set(&mut thing, &ptr, target);
        }
    }
    if cmd.path == ThingPath::Root {
        let m = thing.as_object().cloned().unwrap_or_default();
        thing = ordered_thing(&cmd.thing_id.to_string(), m);
        validate::thing(&thing)?;
    }
    Ok(thing)
}

/// Merge (RFC 7396) at any path of an existing thing, after `merge-thing-patch-conditions`.
pub fn merge(
    state: &ThingState,
    cmd: &ThingCommand,
    checks: &Checks,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    let id = cmd.thing_id.to_string();
    let mut patch = value_of(cmd)?.clone();
    let ptr = cmd.path.pointer();
    match (&cmd.path, &patch) {
        (ThingPath::Root, Value::Null) => return Err(errors::merge_invalid()),
        (ThingPath::PolicyId, Value::Null) => return Err(errors::policy_id_not_deletable()),
        (ThingPath::Root, Value::Object(m)) => {
            match m.get("thingId") {
                Some(Value::Null) => return Err(errors::id_not_deletable()),
                Some(v) => check_payload_thing_id(&id, v)?,
                _ => {}
            }
            if m.get("policyId") == Some(&Value::Null) {
                return Err(errors::policy_id_not_deletable());
            }
        }
        (ThingPath::Root, _) => return Err(errors::merge_invalid()),
        _ => {}
    }
    bounds::check_write("thing", ptr.len(), bounds::merge_depth(&patch))?;
    crate::model::validate_keys(&patch)?;
    merge::validate_patch_regexes(&patch)?;
    check_write_etags(state, cmd)?;
    let current = pointer::get(&state.thing, &ptr);
    if checks.if_equal == IfEqual::SkipMinimizingMerge {
        if let Some(cur) = current {
            patch = merge::minimize_patch(cur, &patch).ok_or_else(errors::equal_skipped)?;
        }
    }
    // `merge-thing-patch-conditions` filter the patch against the current thing; `if-equal:
    // skip` still compares the unfiltered patch (Ditto checks it before applying the merge).
    let filtered = checks.patch_conditions.map(|conds| {
        let env = crate::rql::Env::at(checks.now);
        super::patch_conditions::filter(&patch, conds, &state.full_view(), &env)
    });
    let effective = filtered.as_ref().unwrap_or(&patch);
    let thing = merged_thing(state, cmd, effective)?;
    if checks.if_equal == IfEqual::Skip {
        let unchanged = if *effective == patch {
            thing == state.thing
        } else {
            merged_thing(state, cmd, &patch).is_ok_and(|t| t == state.thing)
        };
        if unchanged {
            return Err(errors::equal_skipped());
        }
    }
    check_condition(checks, state)?;
    let patch = filtered.unwrap_or(patch);
    finish(
        Some(state),
        Change {
            thing,
            created: None,
            status: 204,
            action: EventAction::Merged,
            event_value: Some(patch),
            inline_metadata: None,
            replaced_below_root: false,
        },
        cmd,
        ctx,
    )
}

/// Delete at any path of an existing thing (`/` leaves a tombstone).
pub fn delete(
    state: &ThingState,
    cmd: &ThingCommand,
    checks: &Checks,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    let id = cmd.thing_id.to_string();
    require_feature(state, cmd)?;
    let ptr = cmd.path.pointer();
    if cmd.path != ThingPath::Root && pointer::get(&state.thing, &ptr).is_none() {
        return Err(errors::not_found(&id, &cmd.path));
    }
    check_write_etags(state, cmd)?;
    check_condition(checks, state)?;
    let thing = if cmd.path == ThingPath::Root {
        serde_json::json!({"thingId": id})
    } else {
        let mut t = state.thing.clone();
        pointer::remove(&mut t, &ptr);
        t
    };
    finish(
        Some(state),
        Change {
            thing,
            created: None,
            status: 204,
            action: EventAction::Deleted,
            event_value: None,
            inline_metadata: None,
            replaced_below_root: false,
        },
        cmd,
        ctx,
    )
}
