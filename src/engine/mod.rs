//! The twin engine: plain functions from (current state, command, context) to an `Outcome`
//! (response status/value/ETag, the new state as bytes to persist, the event) or a `DittoError`.
//! No IO, no clock: the caller passes `now` and a policy lookup in `Ctx`.

pub mod conditions;
mod depth;
pub mod enforce;
pub mod errors;
pub(crate) mod json_write;
pub mod metadata;
pub mod patch_conditions;
mod policy_source;
pub mod read;
pub mod ready;
pub mod replay;
pub mod state;
pub mod validate;
pub mod wot;
pub mod write;

pub use ready::{ready, Before, Durability, Ready};
pub use state::ThingState;

use crate::error::DittoError;
use crate::protocol::{Action, Channel, EventAction, ThingCommand, ThingPath};
use serde_json::{Map, Value};

/// Largest thing (serialized JSON) the engine accepts, as Ditto's default (100 kB).
pub const MAX_THING_BYTES: usize = 100 * 1024;

/// Reads of other stored entities the core needs: policies by ID (existence checks, `fields=
/// _policy`, `_copyPolicyFrom`, imports) and things by ID (`_copyPolicyFrom: {{ ref:things/<id>/
/// policyId }}`). A failed read is an error (503), never "not found" (raft-rs's `Storage`).
pub trait Lookup {
    /// The stored state of a thing (tombstones included).
    fn thing(&self, id: &str) -> Result<Option<ThingState>, DittoError>;
    /// The stored JSON of a policy.
    fn policy(&self, id: &str) -> Result<Option<Value>, DittoError>;
}

/// A `Lookup` over two plain functions that cannot fail (tests, benchmarks, fuzzing).
pub struct FnLookup<T, P>(pub T, pub P);

impl<T, P> Lookup for FnLookup<T, P>
where
    T: Fn(&str) -> Option<ThingState>,
    P: Fn(&str) -> Option<Value>,
{
    fn thing(&self, id: &str) -> Result<Option<ThingState>, DittoError> {
        Ok((self.0)(id))
    }
    fn policy(&self, id: &str) -> Result<Option<Value>, DittoError> {
        Ok((self.1)(id))
    }
}

/// What the engine needs from outside, passed in by the caller.
pub struct Ctx<'a> {
    /// the request time (epoch millis)
    pub now: i64,
    /// the requester's first authorization subject (owner of a default policy)
    pub subject: &'a str,
    /// reads of other stored entities
    pub lookup: &'a dyn Lookup,
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

/// The command's header checks, parsed (shared by `apply` and `apply_in_place`).
struct Pre {
    condition: Option<crate::rql::Query>,
    if_equal: conditions::IfEqual,
    patch_conditions: Option<Vec<patch_conditions::PatchCondition>>,
}

impl Pre {
    fn of(cmd: &ThingCommand) -> Result<Pre, DittoError> {
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
        Ok(Pre {
            condition,
            if_equal,
            patch_conditions,
        })
    }

    fn checks(&self, now: i64) -> conditions::Checks<'_> {
        conditions::Checks {
            condition: self.condition.as_ref(),
            if_equal: self.if_equal,
            now,
            patch_conditions: self.patch_conditions.as_deref(),
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
    let pre = Pre::of(cmd)?;
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
    let checks = pre.checks(ctx.now);
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

/// `apply` of a twin modify below the root (`/attributes/..`, `/features/<id>/<part>..`) whose
/// parent object exists, done by writing into `current` instead of a copy of it: the outcome
/// (its state is `current` changed) and what the write replaced, for the index delta. Any
/// other command, and any command `apply` would refuse, gives `current` back unchanged
/// (`Err`): the caller then runs `apply`, which answers it. When this succeeds, `apply` on
/// the same state succeeds with the same outcome (tested on the conformance corpus and on
/// random writes).
// the `Err` is the caller's own state handed back (moved): see `write::modify_in_place`
#[allow(clippy::result_large_err)]
pub fn apply_in_place(
    current: ThingState,
    cmd: &ThingCommand,
    ctx: &Ctx,
) -> Result<(Outcome, state::Replaced), ThingState> {
    if cmd.channel != Channel::Twin || cmd.action != Action::Modify || current.deleted {
        return Err(current);
    }
    let Ok(pre) = Pre::of(cmd) else {
        return Err(current);
    };
    if let Some(acc) = &ctx.access {
        if enforce::check(&current, cmd, acc).is_err() {
            return Err(current);
        }
    }
    write::modify_in_place(current, cmd, &pre.checks(ctx.now), ctx)
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
mod tests_depth;
#[cfg(test)]
mod tests_in_place;
#[cfg(test)]
mod tests_metadata;
#[cfg(test)]
mod tests_patch_conditions;
