//! The policy command engine: `apply(current, command, now, subjects)` for create / modify /
//! retrieve / delete on every path of policies.md section 6, with Ditto's statuses (201 + value,
//! 204, 200 + READ-filtered value), authorization against the current policy, and error codes.

use super::enforcer::{Enforcer, POLICY_ALLOWLIST};
use super::model::{self, READ, WRITE};
use super::{errors, json, write, PolicyPath};
use crate::engine::conditions::check_etags;
use crate::error::DittoError;
use crate::model::{parse_policy_id, value_hash, FieldSelector};
use crate::protocol::{unknown_path, Action, Criterion, Envelope, Group, Headers, Topic};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A policy command parsed from a Ditto Protocol envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyCommand {
    /// `ns:name`
    pub policy_id: String,
    /// create / retrieve / modify / delete
    pub action: Action,
    /// addressed resource
    pub path: PolicyPath,
    /// the envelope's path (responses echo it)
    pub raw_path: String,
    /// payload
    pub value: Option<Value>,
    /// field selector (retrieve `/`)
    pub fields: Option<String>,
    /// headers
    pub headers: Headers,
    /// topic (responses echo it)
    pub topic: Topic,
}

impl PolicyCommand {
    /// Interprets a `{ns}/{name}/policies/commands/{action}` envelope; `None` if not one.
    pub fn from_envelope(env: &Envelope) -> Option<Result<PolicyCommand, DittoError>> {
        let action = match (&env.topic.group, &env.topic.criterion, env.status) {
            (Group::Policies, Criterion::Commands(a), None) => *a,
            _ => return None,
        };
        Some(Self::parse(env, action))
    }

    fn parse(env: &Envelope, action: Action) -> Result<PolicyCommand, DittoError> {
        let id = format!("{}:{}", env.topic.namespace, env.topic.name);
        parse_policy_id(&id)?;
        let path = PolicyPath::parse(&env.path)?;
        let ok = match action {
            Action::Create => path == PolicyPath::Root,
            Action::Retrieve | Action::Modify => true,
            Action::Delete => matches!(
                path,
                PolicyPath::Root
                    | PolicyPath::Entry(_)
                    | PolicyPath::Subject(..)
                    | PolicyPath::Resource(..)
                    | PolicyPath::Imports
                    | PolicyPath::Import(_)
                    | PolicyPath::EntryField(_, "references")
            ),
            Action::Merge | Action::Migrate | Action::CheckPermissions => {
                return Err(crate::protocol::topic::unknown_topic(
                    &env.topic.to_string(),
                ))
            }
        };
        if !ok {
            return Err(unknown_path(&env.path));
        }
        Ok(PolicyCommand {
            policy_id: id,
            action,
            path,
            raw_path: env.path.clone(),
            value: env.value.clone(),
            fields: env.fields.clone(),
            headers: env.headers.clone(),
            topic: env.topic.clone(),
        })
    }
}

/// A policy as persisted: its JSON plus revision and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    /// the policy JSON (`policyId`, `imports`, `entries`)
    #[serde(rename = "p")]
    pub policy: Value,
    /// revision of the last change
    #[serde(rename = "r")]
    pub revision: u64,
    /// creation time, epoch millis
    #[serde(rename = "c")]
    pub created: i64,
    /// last modification time, epoch millis
    #[serde(rename = "m")]
    pub modified: i64,
}

impl PolicyState {
    /// Decodes stored bytes (also a bare policy JSON, as written by older versions).
    pub fn from_bytes(b: &[u8]) -> Option<PolicyState> {
        let v: Value = serde_json::from_slice(b).ok()?;
        if v.get("policyId").is_some() {
            return Some(PolicyState {
                policy: v,
                revision: 1,
                created: 0,
                modified: 0,
            });
        }
        serde_json::from_value(v).ok()
    }

    /// Encodes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A first revision of `policy` created at `now`.
    pub fn new(policy: Value, now: i64) -> PolicyState {
        PolicyState {
            policy,
            revision: 1,
            created: now,
            modified: now,
        }
    }

    /// The policy as Ditto writes it (see `json`) with `_revision`, `_created`, `_modified`
    /// (what `fields` selects from).
    pub fn full_view(&self) -> Value {
        let mut v = json::policy(&self.policy);
        if let Value::Object(m) = &mut v {
            m.insert("_revision".into(), self.revision.into());
            m.insert(
                "_created".into(),
                crate::clock::format_millis(self.created).into(),
            );
            m.insert(
                "_modified".into(),
                crate::clock::format_millis(self.modified).into(),
            );
        }
        v
    }

    /// `"rev:<n>"`.
    pub fn etag(&self) -> String {
        format!("\"rev:{}\"", self.revision)
    }
}

/// Result of a policy command.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    /// 200, 201, 204
    pub status: u16,
    /// response payload
    pub value: Option<Value>,
    /// ETag of the addressed resource
    pub etag: Option<String>,
    /// new state to persist (writes)
    pub state: Option<PolicyState>,
    /// the policy was deleted
    pub deleted: bool,
}

fn read_outcome(value: Value, etag: Option<String>) -> PolicyOutcome {
    PolicyOutcome {
        status: 200,
        value: Some(value),
        etag,
        state: None,
        deleted: false,
    }
}

/// The value at `path` of a policy as Ditto serialises it: with its defaults for absent
/// optional fields (`imports`, an entry's `importable`, ...; see `json`).
pub fn value_at(policy: &Value, path: &PolicyPath) -> Option<Value> {
    let entry = |l: &str| policy.get("entries")?.get(l);
    let import = |i: &str| policy.get("imports")?.get(i);
    match path {
        PolicyPath::Root => Some(json::policy(policy)),
        PolicyPath::Entries => policy.get("entries").map(json::entries),
        PolicyPath::Entry(l) => entry(l).map(json::entry),
        PolicyPath::EntryField(l, f) => {
            let e = entry(l)?;
            Some(e.get(*f).cloned().unwrap_or_else(|| match *f {
                "importable" => Value::String("implicit".into()),
                _ => Value::Array(vec![]),
            }))
        }
        PolicyPath::Subjects(l) => entry(l)?.get("subjects").cloned(),
        PolicyPath::Subject(l, s) => entry(l)?.get("subjects")?.get(s).cloned(),
        PolicyPath::Resources(l) => entry(l)?.get("resources").cloned(),
        PolicyPath::Resource(l, k) => entry(l)?.get("resources")?.get(k).cloned(),
        PolicyPath::Imports => Some(
            policy
                .get("imports")
                .map_or(Value::Object(Default::default()), json::imports),
        ),
        PolicyPath::Import(i) => import(i).map(json::import),
        PolicyPath::ImportField(i, f) => {
            Some(import(i)?.get(*f).cloned().unwrap_or(Value::Array(vec![])))
        }
    }
}

/// The 404 for the first missing part of `path` (the entry before its subject, ...).
pub fn missing(id: &str, policy: &Value, path: &PolicyPath) -> DittoError {
    if let Some(l) = path.label() {
        if value_at(policy, &PolicyPath::Entry(l.to_owned())).is_none() {
            return errors::not_found(id, &PolicyPath::Entry(l.to_owned()));
        }
    }
    if let PolicyPath::ImportField(i, _) = path {
        return errors::not_found(id, &PolicyPath::Import(i.clone()));
    }
    errors::not_found(id, path)
}

fn etag_of(state: &PolicyState, path: &PolicyPath) -> Option<String> {
    match path {
        PolicyPath::Root => Some(state.etag()),
        p => value_at(&state.policy, p).map(|v| format!("\"hash:{}\"", value_hash(&v))),
    }
}

/// A lookup of stored policies by ID (to resolve imports).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<Value>;

/// The enforcer of `policy` with its imports resolved through `imported`.
pub fn enforcer_of(policy: &Value, now: i64, imported: Lookup) -> Enforcer {
    let has_imports = policy
        .get("imports")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    if has_imports {
        let (resolved, _) = super::imports::resolve(policy.clone(), imported);
        Enforcer::from_policy(&resolved, now, None)
    } else {
        Enforcer::from_policy(policy, now, None)
    }
}

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
    let enforcer = enforcer_of(&state.policy, now, imported);
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

/// Validates a whole policy for `id` and checks the lockout rule (for `things:policy.invalid`
/// and policy creation).
pub fn validate_new_policy(id: &str, v: &Value, now: i64) -> Result<Value, DittoError> {
    let p = model::normalize_policy(id, v, now)?;
    if !model::keeps_policy_writer(&p) {
        return Err(errors::modification_invalid(id));
    }
    Ok(p)
}

#[cfg(test)]
mod tests;
