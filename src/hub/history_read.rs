//! Retrieves at a past revision or time (`at-historical-revision`, `at-historical-timestamp`,
//! Ditto's `basic-history`): the thing or policy rebuilt from history replaces the current
//! state of the retrieve, which is then answered (and READ-filtered under the policy that
//! applies *now*) exactly like a plain retrieve. What is not kept is 404
//! `things:thing.history.notfound` / `policies:policy.history.notfound`, never today's state.

use super::Hub;
use crate::engine::ThingState;
use crate::error::DittoError;
use crate::history::{At, Found, Record};
use crate::policy::PolicyState;
use crate::protocol::Headers;
use serde_json::Value;

/// The historical point a retrieve asks for (`None`: the current state). Both headers: the
/// revision wins, as in Ditto's `ThingPersistenceActor`.
pub fn asked_at(headers: &Headers) -> Result<Option<At>, DittoError> {
    if let Some(v) = headers.get_str("at-historical-revision") {
        let rev = v
            .trim()
            .parse::<u64>()
            .map_err(|_| DittoError::header_invalid("at-historical-revision", &v, "long"))?;
        return Ok(Some(At::Revision(rev)));
    }
    if let Some(v) = headers.get_str("at-historical-timestamp") {
        let t = crate::clock::parse_iso(v.trim()).ok_or_else(|| {
            DittoError::header_invalid("at-historical-timestamp", &v, "ISO-8601 timestamp")
        })?;
        return Ok(Some(At::Timestamp(t)));
    }
    Ok(None)
}

fn at_text(at: At) -> String {
    match at {
        At::Revision(r) => r.to_string(),
        At::Timestamp(t) => crate::clock::format_millis(t),
    }
}

/// 404 `<group>:<entity>.history.notfound` (Ditto's `ThingHistoryNotAccessibleException`,
/// `PolicyHistoryNotAccessibleException`).
pub fn history_not_found(entity: &str, id: &str, at: At) -> DittoError {
    let (what, name) = match entity {
        "policy" => ("policies:policy.history.notfound", "Policy"),
        _ => ("things:thing.history.notfound", "Thing"),
    };
    let kind = match at {
        At::Revision(_) => "revision",
        At::Timestamp(_) => "timestamp",
    };
    DittoError::new(
        404,
        what,
        format!(
            "The {name} with ID '{id}' at {kind} '{}' could not be found or requester had insufficient permissions to access it.",
            at_text(at)
        ),
    )
    .describe(format!(
        "Check if the ID of your requested {name} was correct, you have sufficient permissions and ensure that the asked for revision/timestamp does not exceed the history retention or is from the future."
    ))
}

/// What history answers without a `History` (history off): only the current state is kept.
fn current_only(at: At, revision: u64, modified: i64, now: i64) -> bool {
    match at {
        At::Revision(r) => r == revision,
        At::Timestamp(t) => t > modified && t <= now,
    }
}

/// The `historical-headers` of a past state (when headers are kept at all).
pub(crate) fn historical_headers(hub: &Hub, record: &Record) -> Option<Value> {
    let keep = hub
        .history()
        .is_some_and(|h| !h.config().headers_to_persist.is_empty());
    keep.then(|| Value::Object(record.headers.clone()))
}

impl Hub {
    /// For a thing retrieve with `at-historical-*` headers on the live thing `cur`: the past
    /// state to answer from and its `historical-headers` (`None`: answer from `cur`).
    pub(crate) fn retrieve_in_past(
        &self,
        cmd: &crate::protocol::ThingCommand,
        cur: Option<&ThingState>,
        now: i64,
    ) -> Result<Option<(ThingState, Option<Value>)>, DittoError> {
        if cmd.action != crate::protocol::Action::Retrieve {
            return Ok(None);
        }
        match (cur, asked_at(&cmd.headers)?) {
            (Some(cur), Some(at)) => self.thing_in_past(&cmd.thing_id.to_string(), at, cur, now),
            _ => Ok(None),
        }
    }

    /// The thing at `at` for a retrieve of the live thing `cur`: `None` = the current state
    /// answers; `Some((past, headers))` = answer from `past` (a tombstone if the thing was
    /// deleted then); 404 history.notfound when it is not kept.
    pub(crate) fn thing_in_past(
        &self,
        id: &str,
        at: At,
        cur: &ThingState,
        now: i64,
    ) -> Result<Option<(ThingState, Option<Value>)>, DittoError> {
        let Some(h) = self.history() else {
            return match current_only(at, cur.revision, cur.modified, now) {
                true => Ok(None),
                false => Err(history_not_found("thing", id, at)),
            };
        };
        let found = h.thing_at(id, at, cur, now).map_err(|e| {
            tracing::error!(thing = id, error = %e, "history read failed");
            DittoError::unavailable(id)
        })?;
        match found {
            Found::Current => Ok(None),
            Found::NotKept => Err(history_not_found("thing", id, at)),
            Found::Past(state, record) => {
                let headers = historical_headers(self, &record);
                Ok(Some((state, headers)))
            }
        }
    }

    /// For a policy retrieve with `at-historical-*` headers: the past policy to answer from
    /// and its `historical-headers`, once the requester may READ the addressed part of the
    /// policy as it is now (the past one then applies its own READ too: only what both grant
    /// is shown).
    pub(crate) fn policy_retrieve_in_past(
        &self,
        who: &super::Requester,
        cmd: &crate::policy::PolicyCommand,
        cur: Option<&PolicyState>,
        now: i64,
    ) -> Result<Option<(PolicyState, Option<Value>)>, DittoError> {
        if cmd.action != crate::protocol::Action::Retrieve {
            return Ok(None);
        }
        let (Some(cur), Some(at)) = (cur, asked_at(&cmd.headers)?) else {
            return Ok(None);
        };
        let load = |i: &str| self.load_policy(i);
        crate::policy::apply::apply(Some(cur), cmd, now, Some(&who.subjects), &load)?;
        let id = cmd.policy_id.as_str();
        self.policy_in_past(id, at, cur, now)
    }

    /// The policy at `at` (as `thing_in_past`).
    pub(crate) fn policy_in_past(
        &self,
        id: &str,
        at: At,
        cur: &PolicyState,
        now: i64,
    ) -> Result<Option<(PolicyState, Option<Value>)>, DittoError> {
        let Some(h) = self.history() else {
            return match current_only(at, cur.revision, cur.modified, now) {
                true => Ok(None),
                false => Err(history_not_found("policy", id, at)),
            };
        };
        let found = h.policy_at(id, at, cur, now).map_err(|e| {
            tracing::error!(policy = id, error = %e, "history read failed");
            crate::policy::errors::unavailable(id)
        })?;
        match found {
            Found::Current => Ok(None),
            Found::NotKept => Err(history_not_found("policy", id, at)),
            Found::Past(state, record) => {
                let headers = historical_headers(self, &record);
                Ok(Some((state, headers)))
            }
        }
    }
}
