//! Policy commands as data: a `PolicyCommand` parsed from its envelope, the stored
//! `PolicyState`, the `PolicyOutcome` of applying one (`policy::apply`), and the values, ETags
//! and 404s at each path of policies.md section 6.

use super::model;
use super::{errors, json, PolicyPath};
use crate::error::DittoError;
use crate::model::{parse_policy_id, value_hash};
use crate::protocol::{unknown_path, Action, Criterion, Envelope, Group, Headers, Topic};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
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

    /// The `entries` text of stored bytes (as `to_bytes` writes them) whose policy's enforcer
    /// depends on nothing but these entries and the namespace: no `imports` and no subject
    /// `expiry` anywhere in the bytes (nor an escape that could spell them). Equal texts give
    /// equal enforcers, so a reader of many policies (a search over twins with a policy each)
    /// can share one without decoding each policy. `None`: decode with `from_bytes`.
    pub fn plain_entries(b: &[u8]) -> Option<&str> {
        #[derive(Deserialize)]
        struct Stored<'a> {
            #[serde(borrow)]
            p: &'a RawValue,
            // present in what `from_bytes` accepts in this form
            #[serde(rename = "r")]
            _r: u64,
            #[serde(rename = "c")]
            _c: i64,
            #[serde(rename = "m")]
            _m: i64,
            // the bare form of older versions: decoded by `from_bytes`
            #[serde(rename = "policyId")]
            bare: Option<IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct Policy<'a> {
            #[serde(borrow)]
            entries: Option<&'a RawValue>,
        }
        // one pass: a quote opening `"imports"` / `"expiry"`, or a `\u` escape
        let mentions = (0..b.len()).any(|i| match b[i] {
            b'"' => b[i + 1..].starts_with(b"imports\"") || b[i + 1..].starts_with(b"expiry\""),
            b'\\' => b.get(i + 1) == Some(&b'u'),
            _ => false,
        });
        if mentions {
            return None;
        }
        let stored: Stored = serde_json::from_slice(b).ok()?;
        if stored.bare.is_some() || !stored.p.get().starts_with('{') {
            return None;
        }
        let policy: Policy = serde_json::from_str(stored.p.get()).ok()?;
        policy.entries.map(RawValue::get)
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

pub(super) fn read_outcome(value: Value, etag: Option<String>) -> PolicyOutcome {
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

pub(super) fn etag_of(state: &PolicyState, path: &PolicyPath) -> Option<String> {
    match path {
        PolicyPath::Root => Some(state.etag()),
        p => value_at(&state.policy, p).map(|v| format!("\"hash:{}\"", value_hash(&v))),
    }
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
