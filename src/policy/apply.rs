//! The policy command engine: `apply(current, command, now, subjects, imported)` for create /
//! modify / retrieve / delete on every path of policies.md section 6, with Ditto's statuses
//! (201 + value, 204, 200 + READ-filtered value), authorization against the current policy
//! (imports resolved), and error codes.

use super::command::{etag_of, missing, read_outcome, value_at, PolicyCommand, PolicyOutcome};
use super::enforcer::{Enforcer, POLICY_ALLOWLIST};
use super::imports::{enforcer_of, Lookup};
use super::model::{READ, WRITE};
use super::{errors, write, PolicyPath, PolicyState};
use crate::engine::conditions::check_etags;
use crate::error::DittoError;
use crate::model::FieldSelector;
use crate::protocol::{unknown_path, Action};
use serde_json::Value;

/// Applies a policy command to the current state (`None` = no such policy). `subjects` are the
/// requester's; `None` = trusted internal caller (no authorization). `imported` loads the
/// policies the policy imports (authorization sees their entries, as in Ditto).
pub fn apply(
    current: Option<&PolicyState>,
    cmd: &PolicyCommand,
    now: i64,
    subjects: Option<&[String]>,
    imported: Lookup,
) -> Result<PolicyOutcome, DittoError> {
    let id = cmd.policy_id.as_str();
    let pre = |e: DittoError| errors::as_policy_precondition(e);
    let state = match (cmd.action, current) {
        (Action::Create, Some(_)) => return Err(errors::conflict(id)),
        (Action::Create, None) | (Action::Modify, None) if cmd.path == PolicyPath::Root => {
            check_etags(&cmd.headers, None, false).map_err(pre)?;
            return write::create(cmd, now, subjects, imported);
        }
        (_, None) => return Err(errors::policy_not_found(id)),
        (_, Some(s)) => s,
    };
    // Ditto's PolicyCommandEnforcement: the policy with its imports resolved; a read needs
    // READ somewhere at the path (404 without), a write unrestricted WRITE (403 without,
    // whatever READ says)
    let enforcer = enforcer_of(&state.policy, now, imported)?;
    let res = cmd.path.resource();
    if let Some(subs) = subjects {
        if cmd.action == Action::Retrieve {
            if !enforcer.has_partial(subs, "policy", &res, READ) {
                return Err(errors::not_found(id, &cmd.path));
            }
        } else if !enforcer.has_unrestricted(subs, "policy", &res, WRITE) {
            return Err(errors::not_modifiable(id, &cmd.path));
        }
    }
    let etag = etag_of(state, &cmd.path);
    check_etags(
        &cmd.headers,
        etag.as_deref(),
        cmd.action == Action::Retrieve,
    )
    .map_err(pre)?;
    match cmd.action {
        Action::Retrieve => retrieve(state, cmd, &enforcer, subjects, etag),
        Action::Modify => write::modify(state, cmd, now),
        Action::Delete => write::delete(state, cmd, now),
        _ => Err(unknown_path(&cmd.raw_path)),
    }
}

fn retrieve(
    state: &PolicyState,
    cmd: &PolicyCommand,
    enforcer: &Enforcer,
    subjects: Option<&[String]>,
    etag: Option<String>,
) -> Result<PolicyOutcome, DittoError> {
    let id = cmd.policy_id.as_str();
    let fields = match cmd.fields.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(FieldSelector::parse(f)?),
        None => None,
    };
    let value = match (&cmd.path, &fields) {
        (PolicyPath::Root, Some(sel)) => sel.select(&state.full_view()),
        (p, sel) => {
            let v = value_at(&state.policy, p).ok_or_else(|| missing(id, &state.policy, p))?;
            match sel {
                Some(sel) if v.is_object() => sel.select(&v),
                _ => v,
            }
        }
    };
    let Some(subs) = subjects else {
        return Ok(read_outcome(value, etag));
    };
    let filtered = if cmd.path == PolicyPath::Root {
        enforcer.root_view(subs, "policy", &value, &POLICY_ALLOWLIST)
    } else if value.is_object() {
        enforcer.view(subs, "policy", &cmd.path.resource(), &value)
    } else {
        Some(value)
    };
    Ok(read_outcome(
        filtered.unwrap_or(Value::Object(Default::default())),
        etag,
    ))
}

#[cfg(test)]
mod tests;
