//! Reading commands: retrieve at any path with the `fields` selector (relative to the
//! addressed resource; `_revision`, `_created`, `_modified`, `_metadata`, `_namespace`,
//! `_policy` selectable at the root) and the per-thing view used by retrieve-multiple.

use super::conditions::{check_condition, check_etags, Checks};
use super::write::etag_at;
use super::{errors, Ctx, Outcome, ThingState};
use crate::error::DittoError;
use crate::model::{pointer, FieldSelector};
use crate::protocol::{ThingCommand, ThingPath};
use serde_json::Value;

/// Parses a `fields` selector; at the thing root its roots must be thing fields.
pub fn parse_fields(
    fields: Option<&str>,
    at_root: bool,
) -> Result<Option<FieldSelector>, DittoError> {
    let Some(f) = fields.filter(|f| !f.trim().is_empty()) else {
        return Ok(None);
    };
    let sel = FieldSelector::parse(f)?;
    if at_root {
        sel.validate_thing_roots()?;
    }
    Ok(Some(sel))
}

/// The thing as a retrieve at `/` returns it, after `fields`.
pub fn thing_view(
    state: &ThingState,
    fields: Option<&FieldSelector>,
    ctx: &Ctx,
) -> Result<Value, DittoError> {
    let Some(sel) = fields else {
        return Ok(state.thing.clone());
    };
    let mut view = state.full_view();
    if sel.roots().any(|r| r == "_policy") {
        let pid = state
            .thing
            .get("policyId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let (Some(p), Value::Object(m)) = (ctx.lookup.policy(pid)?, &mut view) {
            m.insert("_policy".into(), crate::policy::json::policy(&p));
        }
    }
    Ok(sel.select(&view))
}

/// The thing as retrieve-multiple returns it to the requester (`None` = not readable).
pub fn readable_thing_view(
    state: &ThingState,
    fields: Option<&FieldSelector>,
    ctx: &Ctx,
) -> Result<Option<Value>, DittoError> {
    let v = thing_view(state, fields, ctx)?;
    Ok(match &ctx.access {
        None => Some(v),
        Some(acc) => acc
            .enforcer
            .and_then(|e| super::enforce::root_view(e, acc.subjects, v)),
    })
}

/// RetrieveThing and all sub-resource retrieves.
pub fn retrieve(
    state: &ThingState,
    cmd: &ThingCommand,
    checks: &Checks,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    let id = cmd.thing_id.to_string();
    let at_root = cmd.path == ThingPath::Root;
    let fields = parse_fields(cmd.fields.as_deref(), at_root)?;
    if let Some(f) = cmd.path.feature_id() {
        if !matches!(cmd.path, ThingPath::Feature(_))
            && pointer::get(&state.thing, &["features".to_owned(), f.to_owned()]).is_none()
        {
            return Err(errors::feature_not_found(&id, f));
        }
    }
    let value = if at_root {
        thing_view(state, fields.as_ref(), ctx)?
    } else {
        let v = pointer::get(&state.thing, &cmd.path.pointer())
            .ok_or_else(|| errors::not_found(&id, &cmd.path))?;
        match &fields {
            Some(sel) if v.is_object() => sel.select(v),
            _ => v.clone(),
        }
    };
    let value = match &ctx.access {
        Some(acc) => super::enforce::filter_retrieve(acc, cmd, value),
        None => value,
    };
    if super::wot::requested(&cmd.headers, &cmd.path) {
        // never the plain JSON: Ditto answers a Thing Description or an error
        return Err(super::wot::thing_description(state, &cmd.path));
    }
    let etag = etag_at(state, &cmd.path);
    check_etags(&cmd.headers, etag.as_deref(), true)?;
    check_condition(checks, state)?;
    let mut out = Outcome::read(value, etag);
    out.ditto_metadata =
        super::metadata::for_get(state.metadata.as_ref(), cmd)?.map(|md| match &ctx.access {
            Some(acc) => super::enforce::filter_metadata(acc, cmd, md),
            None => md,
        });
    Ok(out)
}
