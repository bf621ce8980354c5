//! Policy enforcement of thing commands (pure), as Ditto's `ThingCommandEnforcement`: READ on
//! condition fields first, then READ (reads, 404 without) or WRITE (writes, 403 `*.notmodifiable`
//! without, whatever READ says) with Ditto's per-command errors, the merge leaf rule,
//! READ-filtered retrieve results, and the checks when a thing is created.

use super::{errors, ThingState};
use crate::error::DittoError;
use crate::policy::{Enforcer, POLICY_ALLOWLIST, READ, THING_ALLOWLIST, WRITE};
use crate::protocol::{Action, ThingCommand, ThingPath};
use serde_json::Value;

/// Who asks, and what the thing's current policy allows.
pub struct Access<'a> {
    /// the requester's authorization subjects
    pub subjects: &'a [String],
    /// enforcer of the thing's current policy (`None`: the thing has no (more) policy)
    pub enforcer: Option<&'a Enforcer>,
}

/// The error for a thing whose policy no longer exists (Ditto's wording).
fn policy_gone(cmd: &ThingCommand, pid: &str) -> DittoError {
    let id = cmd.thing_id.to_string();
    let message = format!("The Thing with ID '{id}' could not be accessed as its Policy with ID '{pid}' is not or no longer existing.");
    let desc = format!(
        "Recreate/create the Policy with ID '{pid}' in order to get access to the Thing again."
    );
    let base = if cmd.action == Action::Retrieve {
        errors::not_found(&id, &ThingPath::Root)
    } else {
        errors::not_modifiable(&id, &ThingPath::Root)
    };
    DittoError {
        message,
        description: Some(desc.into()),
        ..base
    }
}

/// Leaves of a merge patch as resource paths (a regex-delete key stands for its parent).
fn merge_leaves(path: Vec<String>, v: &Value, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k.starts_with("{{") && k.contains('~') && x.is_null() {
                    out.push(path.clone());
                } else {
                    let mut p = path.clone();
                    p.push(k.clone());
                    merge_leaves(p, x, out);
                }
            }
        }
        _ => out.push(path),
    }
}

/// True if the requester may READ every (non-placeholder) field an RQL condition references.
fn condition_readable(e: &Enforcer, subs: &[String], q: &crate::rql::Query) -> bool {
    q.properties()
        .iter()
        .filter(|p| p.placeholder.is_none())
        .all(|p| e.has_unrestricted(subs, "thing", &p.segments, READ))
}

/// Authorizes a command on an existing thing.
pub fn check(state: &ThingState, cmd: &ThingCommand, acc: &Access) -> Result<(), DittoError> {
    let Some(e) = acc.enforcer else {
        let id = cmd.thing_id.to_string();
        let pid = state
            .thing
            .get("policyId")
            .and_then(Value::as_str)
            .unwrap_or(&id);
        return Err(policy_gone(cmd, pid));
    };
    let subs = acc.subjects;
    let res = cmd.path.segments();
    // Ditto's ThingCommandEnforcement.authorizeByPolicyOrThrow: READ on every field a
    // `condition` (or, for merges, a `merge-thing-patch-conditions` condition) references is
    // checked first; unparsable ones fail later with their own 400.
    let mut queries: Vec<crate::rql::Query> = Vec::new();
    if let Some(c) = cmd.headers.get_str("condition") {
        queries.extend(crate::rql::parse(&c).ok());
    }
    if cmd.action == Action::Merge {
        if let Ok(Some(pcs)) = super::patch_conditions::parse(&cmd.headers) {
            queries.extend(pcs.into_iter().map(|pc| pc.query));
        }
    }
    if !queries.iter().all(|q| condition_readable(e, subs, q)) {
        return Err(DittoError::new(412, "things:condition.failed", "The specified resource in the condition could not be found or the requester had insufficient permissions to access it.")
            .describe("Check if you have sufficient permissions to access the specified resource (READ permission is required)."));
    }
    let allowed = match cmd.action {
        Action::Retrieve => e.has_partial_at(subs, "thing", res, READ),
        Action::Merge => {
            if e.has_unrestricted_at(subs, "thing", res.clone(), WRITE) {
                true
            } else if e.has_partial_at(subs, "thing", res, WRITE) {
                let mut leaves = Vec::new();
                if let Some(v) = &cmd.value {
                    merge_leaves(cmd.path.pointer(), v, &mut leaves);
                }
                leaves
                    .iter()
                    .all(|l| e.has_unrestricted(subs, "thing", l, WRITE))
            } else {
                false
            }
        }
        _ => e.has_unrestricted_at(subs, "thing", res, WRITE),
    };
    if allowed {
        return Ok(());
    }
    // Ditto's ThingCommandToAccessExceptionRegistry (reads: 404) and
    // ThingCommandToModifyExceptionRegistry (writes: 403 whatever READ says; a merge has no
    // entry there and falls back to `things:thing.notmodifiable`)
    let id = cmd.thing_id.to_string();
    Err(match (cmd.action, &cmd.path) {
        (Action::Retrieve, p) => errors::not_found(&id, p),
        (Action::Delete, ThingPath::Root) => errors::not_deletable(&id),
        (Action::Merge, _) => errors::not_modifiable(&id, &ThingPath::Root),
        (_, p) => errors::not_modifiable(&id, p),
    })
}

/// A retrieve result as the requester may see it. At `/` the thing is filtered with Ditto's
/// allow-list and an inline `_policy` is filtered by READ on `policy:`.
pub fn filter_retrieve(acc: &Access, cmd: &ThingCommand, value: Value) -> Value {
    let Some(e) = acc.enforcer else {
        return value;
    };
    if cmd.path == ThingPath::Root {
        return root_view(e, acc.subjects, value).unwrap_or(Value::Object(Default::default()));
    }
    if value.is_object() {
        return e
            .view(acc.subjects, "thing", &cmd.path.pointer(), &value)
            .unwrap_or(Value::Object(Default::default()));
    }
    value
}

/// The READ view of a whole thing (with an optional inline `_policy`); `None` = unreadable.
/// `_metadata` mirrors the thing, so it is filtered as the thing is.
pub fn root_view(e: &Enforcer, subjects: &[String], mut value: Value) -> Option<Value> {
    let policy = value.as_object_mut().and_then(|m| m.remove("_policy"));
    let metadata = value.as_object_mut().and_then(|m| m.remove("_metadata"));
    let mut out = e.root_view(subjects, "thing", &value, &THING_ALLOWLIST)?;
    if let (Some(p), Value::Object(m)) = (policy, &mut out) {
        if let Some(p) = e.root_view(subjects, "policy", &p, &POLICY_ALLOWLIST) {
            m.insert("_policy".into(), p);
        }
    }
    if let (Some(md), Value::Object(m)) = (metadata, &mut out) {
        if let Some(md) = e.root_view(subjects, "thing", &md, &[]) {
            m.insert("_metadata".into(), md);
        }
    }
    Some(out)
}

/// Metadata at the retrieved path (`ditto-metadata`) as the requester may READ the thing there.
pub fn filter_metadata(acc: &Access, cmd: &ThingCommand, md: Value) -> Value {
    let Some(e) = acc.enforcer else {
        return md;
    };
    let empty = || Value::Object(Default::default());
    if cmd.path == ThingPath::Root {
        return e
            .root_view(acc.subjects, "thing", &md, &[])
            .unwrap_or_else(empty);
    }
    e.view(acc.subjects, "thing", &cmd.path.pointer(), &md)
        .unwrap_or_else(empty)
}

/// Checks a thing creation under `policy` (the new or referenced policy): a newly created
/// policy must leave the creator WRITE on `policy:/` (unless `allow-policy-lockout`), and the
/// creator needs WRITE on `thing:/`.
pub fn check_create(
    cmd: &ThingCommand,
    subjects: &[String],
    policy_id: &str,
    policy: &Value,
    new_policy: bool,
    now: i64,
) -> Result<(), DittoError> {
    let e = Enforcer::from_policy(policy, now, Some(&cmd.thing_id.namespace));
    if new_policy {
        let lockout_ok = cmd.headers.bool("allow-policy-lockout")?.unwrap_or(false);
        if !lockout_ok && !e.has_unrestricted(subjects, "policy", &[], WRITE) {
            return Err(crate::policy::errors::not_creatable(policy_id));
        }
    }
    if !e.has_unrestricted(subjects, "thing", &[], WRITE) {
        return Err(errors::not_modifiable(
            &cmd.thing_id.to_string(),
            &ThingPath::Root,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Envelope, Signal};
    use serde_json::json;

    fn cmd(action: &str, path: &str, value: Option<Value>) -> ThingCommand {
        let mut v = json!({"topic": format!("ns/t/things/twin/commands/{action}"), "path": path,
                           "headers": {"content-type": "application/merge-patch+json"}});
        if let Some(x) = value {
            v["value"] = x;
        }
        match Signal::from_envelope(Envelope::parse(&v.to_string()).unwrap()).unwrap() {
            Signal::Thing(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_follow_read_and_write_and_merge_leaves() {
        let policy = json!({"policyId": "ns:t", "entries": {"e": {
        "subjects": {"x:s": {"type": "t"}},
        "resources": {
            "thing:/": {"grant": ["READ"], "revoke": []},
            "thing:/attributes": {"grant": ["WRITE"], "revoke": []},
            "thing:/attributes/serial": {"grant": [], "revoke": ["WRITE", "READ"]}
        }}}});
        let e = Enforcer::from_policy(&policy, 0, None);
        let subjects = vec!["x:s".to_owned()];
        let acc = Access {
            subjects: &subjects,
            enforcer: Some(&e),
        };
        let state = ThingState {
            thing: json!({"thingId": "ns:t", "policyId": "ns:t"}),
            revision: 1,
            created: 0,
            modified: 0,
            metadata: None,
            deleted: false,
        };
        let err = |c: ThingCommand| check(&state, &c, &acc).err().map(|e| e.error.to_string());
        assert_eq!(err(cmd("modify", "/attributes/a", Some(json!(1)))), None);
        assert_eq!(
            err(cmd("modify", "/attributes", Some(json!({})))).as_deref(),
            Some("things:attributes.notmodifiable")
        );
        assert_eq!(
            err(cmd("modify", "/attributes/serial", Some(json!(1)))).as_deref(),
            Some("things:attribute.notmodifiable"),
            "no WRITE: 403 although READ is revoked too (Ditto)"
        );
        assert_eq!(
            err(cmd("delete", "/", None)).as_deref(),
            Some("things:thing.notdeletable")
        );
        assert_eq!(
            err(cmd(
                "merge",
                "/attributes",
                Some(json!({"a": 1, "b": {"c": null}}))
            )),
            None
        );
        assert_eq!(
            err(cmd(
                "merge",
                "/attributes",
                Some(json!({"a": 1, "serial": 2}))
            ))
            .as_deref(),
            Some("things:thing.notmodifiable"),
            "a merge falls back to the thing's error (Ditto's registry has no MergeThing)"
        );
        assert_eq!(
            err(cmd("retrieve", "/attributes/serial", None)).as_deref(),
            Some("things:attribute.notfound")
        );
        let gone = Access {
            subjects: &subjects,
            enforcer: None,
        };
        let e = check(&state, &cmd("retrieve", "/", None), &gone).unwrap_err();
        assert_eq!((e.status, &*e.error), (404, "things:thing.notfound"));
        assert!(e.message.contains("no longer existing"));
    }
}
