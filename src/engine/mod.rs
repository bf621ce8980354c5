//! The twin engine: plain functions from (current state, command, context) to an `Outcome`
//! (response status/value/ETag, the new state as bytes to persist, the event) or a `DittoError`.
//! No IO, no clock: the caller passes `now` and a policy lookup in `Ctx`.

pub mod conditions;
pub mod enforce;
pub mod errors;
pub mod metadata;
pub mod patch_conditions;
mod policy_source;
pub mod read;
pub mod replay;
pub mod validate;
pub mod wot;
pub mod write;

use crate::error::DittoError;
use crate::protocol::{Action, Channel, EventAction, ThingCommand, ThingPath};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest thing (serialized JSON) the engine accepts, as Ditto's default (100 kB).
pub const MAX_THING_BYTES: usize = 100 * 1024;

/// A thing as persisted: its JSON plus the read-only fields. A deleted thing stays as a tombstone
/// so that its revision keeps counting when it is created again (as in Ditto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThingState {
    /// the thing JSON (`thingId`, `policyId`, `definition`, `attributes`, `features`)
    #[serde(rename = "t")]
    pub thing: Value,
    /// revision of the last change
    #[serde(rename = "r")]
    pub revision: u64,
    /// creation time, epoch millis
    #[serde(rename = "c")]
    pub created: i64,
    /// last modification time, epoch millis
    #[serde(rename = "m")]
    pub modified: i64,
    /// `_metadata`
    #[serde(rename = "md", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// tombstone marker
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ThingState {
    /// Decodes stored bytes.
    pub fn from_bytes(b: &[u8]) -> Result<ThingState, DittoError> {
        serde_json::from_slice(b)
            .map_err(|e| DittoError::internal(format!("corrupt stored thing: {e}")))
    }

    /// Encodes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a Value-based struct cannot fail (no non-string map keys).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The live (not deleted) state, if any.
    pub fn live(state: Option<&ThingState>) -> Option<&ThingState> {
        state.filter(|s| !s.deleted)
    }

    /// The thing JSON with the read-only fields added (`_namespace`, `_revision`, `_created`,
    /// `_modified`, `_metadata`): what `fields` selectors and RQL conditions see.
    pub fn full_view(&self) -> Value {
        let mut m = self.thing.as_object().cloned().unwrap_or_default();
        if let Some(ns) = m
            .get("thingId")
            .and_then(Value::as_str)
            .and_then(|id| id.split_once(':'))
        {
            m.insert("_namespace".into(), Value::String(ns.0.to_owned()));
        }
        m.insert("_revision".into(), self.revision.into());
        m.insert(
            "_created".into(),
            crate::clock::format_millis(self.created).into(),
        );
        m.insert(
            "_modified".into(),
            crate::clock::format_millis(self.modified).into(),
        );
        if let Some(md) = &self.metadata {
            m.insert("_metadata".into(), md.clone());
        }
        Value::Object(m)
    }

    /// `"rev:<n>"`.
    pub fn etag(&self) -> String {
        format!("\"rev:{}\"", self.revision)
    }
}

/// What the engine needs from outside, passed in by the caller.
pub struct Ctx<'a> {
    /// the request time (epoch millis)
    pub now: i64,
    /// the requester's first authorization subject (owner of a default policy)
    pub subject: &'a str,
    /// stored policy by ID (existence checks, `fields=_policy`, `_copyPolicyFrom`)
    pub policy: &'a dyn Fn(&str) -> Option<Value>,
    /// stored thing by ID (`_copyPolicyFrom: {{ ref:things/<id>/policyId }}`)
    pub thing: &'a dyn Fn(&str) -> Option<ThingState>,
    /// the requester's authorization; `None` = trusted internal caller (no policy checks)
    pub access: Option<enforce::Access<'a>>,
}

/// A twin event produced by a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// past-tense action
    pub action: EventAction,
    /// the command's path
    pub path: String,
    /// written value (merge: the patch; delete: none)
    pub value: Option<Value>,
    /// revision after the change
    pub revision: u64,
    /// persistence time (epoch millis)
    pub timestamp: i64,
    /// metadata written with the change (`put-metadata`), relative to `path`
    pub metadata: Option<Value>,
}

/// Result of applying a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// response status (200, 201, 204)
    pub status: u16,
    /// response payload
    pub value: Option<Value>,
    /// ETag of the addressed resource after the command
    pub etag: Option<String>,
    /// new state to persist (`None` for reads)
    pub state: Option<ThingState>,
    /// the encoded new state, exactly what goes to the store
    pub bytes: Option<Vec<u8>>,
    /// the event to publish
    pub event: Option<Event>,
    /// a policy to create together with the thing: (policy ID, policy JSON)
    pub policy: Option<(String, Value)>,
    /// the `ditto-metadata` answer to `get-metadata` on a read
    pub ditto_metadata: Option<Value>,
    /// a retrieve of a past state: the headers kept with the event that made it
    /// (`historical-headers`, src/history)
    pub historical_headers: Option<Value>,
}

impl Outcome {
    pub(crate) fn read(value: Value, etag: Option<String>) -> Outcome {
        Outcome {
            status: 200,
            value: Some(value),
            etag,
            state: None,
            bytes: None,
            event: None,
            policy: None,
            ditto_metadata: None,
            historical_headers: None,
        }
    }
}

/// Applies a twin command to the current state of its thing (`None` = never existed).
pub fn apply(
    current: Option<&ThingState>,
    cmd: &ThingCommand,
    ctx: &Ctx,
) -> Result<Outcome, DittoError> {
    let id = cmd.thing_id.to_string();
    if cmd.channel == Channel::Live && cmd.action == Action::Create {
        return Err(errors::live_not_creatable(&id));
    }
    if cmd.headers.get("live-channel-condition").is_some() && cmd.action != Action::Retrieve {
        return Err(DittoError::new(
            405,
            "things:live.channelcondition.notallowed",
            "The specified 'live-channel-condition' is only allowed to be used for retrieving API calls.",
        )
        .describe("For modifying API calls the 'live-channel-condition' cannot be used, please remove the condition."));
    }
    metadata::check_headers(&cmd.headers, cmd.action)?;
    let condition = conditions::parse_condition(&cmd.headers)?;
    let if_equal = conditions::IfEqual::from_headers(&cmd.headers)?;
    // The header must be a JSON object on any command (Ditto's header validation); its
    // members are parsed for merges after the content-type check (Ditto's enforcement).
    patch_conditions::validate(&cmd.headers)?;
    let patch_conditions = if cmd.action == Action::Merge {
        conditions::check_merge_content_type(&cmd.headers)?;
        patch_conditions::parse(&cmd.headers)?
    } else {
        None
    };
    let live = ThingState::live(current);
    let creates = live.is_none()
        && cmd.path == ThingPath::Root
        && matches!(cmd.action, Action::Create | Action::Modify | Action::Merge);
    if creates {
        // `if-match` (any tag, `*` included) requires an existing thing: 412 before creating.
        conditions::check_etags(&cmd.headers, None, false)?;
        return write::create(current, cmd, ctx);
    }
    let state = match (cmd.action, live) {
        (Action::Create, Some(_)) => return Err(errors::conflict(&id)),
        (_, None) => return Err(errors::not_found(&id, &ThingPath::Root)),
        (_, Some(s)) => s,
    };
    if let Some(acc) = &ctx.access {
        enforce::check(state, cmd, acc)?;
    }
    let checks = conditions::Checks {
        condition: condition.as_ref(),
        if_equal,
        now: ctx.now,
        patch_conditions: patch_conditions.as_deref(),
    };
    match cmd.action {
        Action::Retrieve => read::retrieve(state, cmd, &checks, ctx),
        Action::Modify => write::modify(state, cmd, &checks, ctx),
        Action::Merge => write::merge(state, cmd, &checks, ctx),
        Action::Delete => write::delete(state, cmd, &checks, ctx),
        Action::Create | Action::Migrate | Action::CheckPermissions => {
            Err(crate::protocol::unknown_path(&cmd.raw_path))
        }
    }
}

/// Ditto's default policy for a thing created by `subject`.
pub fn default_policy(policy_id: &str, subject: &str) -> Value {
    let grant = || serde_json::json!({"grant": ["READ", "WRITE"], "revoke": []});
    let mut subjects = Map::new();
    subjects.insert(subject.to_owned(), serde_json::json!({"type": "generated"}));
    serde_json::json!({
        "policyId": policy_id,
        "entries": {"DEFAULT": {
            "subjects": subjects,
            "resources": {"thing:/": grant(), "policy:/": grant(), "message:/": grant()}
        }}
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_metadata;
#[cfg(test)]
mod tests_patch_conditions;
