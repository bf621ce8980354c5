//! What the hub's write paths add to their store unit for history (src/history): the event of
//! a thing change, of a policy change (commands, a policy created with its thing, expired
//! subjects removed) and the snapshot the history log decides. One call per write path, so
//! the history is written in the same commit as the change and obeys its durability class.

use super::{Hub, Requester};
use crate::engine::Ready;
use crate::error::DittoError;
use crate::history::{record::persisted_headers, Change, Kind, Record};
use crate::policy::{command, PolicyCommand, PolicyOutcome, PolicyState};
use crate::protocol::{Action, EventAction, ThingCommand};
use crate::store::{Op, Tree};
use serde_json::{Map, Value};

impl Hub {
    /// The history ops of a twin write as the core built it: the thing's event and, for a
    /// policy created with the thing, that policy's creation.
    pub(crate) fn thing_history_ops(
        &self,
        cmd: &ThingCommand,
        who: &Requester,
        r: &Ready,
        now: i64,
    ) -> Result<Vec<Op>, DittoError> {
        let (Some(h), Some(ev)) = (self.history(), &r.event) else {
            return Ok(Vec::new());
        };
        let id = r.thing_id.as_str();
        let headers =
            persisted_headers(&h.config().headers_to_persist, &cmd.headers, who.subject());
        let record = Record::of_thing_event(ev, r.state.metadata.as_ref(), headers.clone());
        // the thing as the write stores it (its snapshot, when the log keeps one)
        let thing_op = r.ops.iter().find(|o| o.tree == Tree::Things);
        let encoded;
        let stored = match thing_op.and_then(|o| o.value.as_deref()) {
            Some(b) => b,
            None => {
                encoded = r.state.to_bytes();
                &encoded
            }
        };
        let change = Change {
            kind: Kind::Thing,
            id,
            revision: ev.revision,
            record,
            state: stored,
        };
        let mut ops = h.ops(change).map_err(|e| {
            tracing::error!(thing = %id, error = %e, "history read failed");
            DittoError::unavailable(id)
        })?;
        if let Some((pid, policy)) = &r.policy {
            let state = PolicyState::new(policy.clone(), now);
            let value = Some(crate::policy::json::policy(&state.policy));
            let created = EventAction::Created;
            ops.extend(self.policy_history_ops(pid, &state, created, "/", value, headers)?);
        }
        Ok(ops)
    }

    /// The history ops of a policy command's change (`existed`: the policy existed before).
    pub(crate) fn policy_history_of(
        &self,
        who: &Requester,
        cmd: &PolicyCommand,
        existed: bool,
        outcome: &PolicyOutcome,
    ) -> Result<Vec<Op>, DittoError> {
        let (Some(h), Some(state)) = (self.history(), &outcome.state) else {
            return Ok(Vec::new());
        };
        let action = match (outcome.status, existed) {
            (201, _) | (_, false) => EventAction::Created,
            _ if cmd.action == Action::Delete => EventAction::Deleted,
            _ => EventAction::Modified,
        };
        let value = (action != EventAction::Deleted)
            .then(|| command::value_at(&state.policy, &cmd.path))
            .flatten();
        let headers =
            persisted_headers(&h.config().headers_to_persist, &cmd.headers, who.subject());
        let id = cmd.policy_id.as_str();
        self.policy_history_ops(id, state, action, &cmd.raw_path, value, headers)
    }

    /// The history ops of a policy whose expired subjects were removed (`None`: history could
    /// not be read; logged, and the caller writes nothing).
    pub(crate) fn expired_subjects_history(
        &self,
        id: &str,
        state: &PolicyState,
    ) -> Option<Vec<Op>> {
        let value = Some(crate::policy::json::policy(&state.policy));
        let modified = EventAction::Modified;
        self.policy_history_ops(id, state, modified, "/", value, Map::new())
            .inspect_err(
                |e| tracing::error!(policy = id, error = %e.message, "history read failed"),
            )
            .ok()
    }

    fn policy_history_ops(
        &self,
        id: &str,
        state: &PolicyState,
        action: EventAction,
        path: &str,
        value: Option<Value>,
        headers: Map<String, Value>,
    ) -> Result<Vec<Op>, DittoError> {
        let Some(h) = self.history() else {
            return Ok(Vec::new());
        };
        let record = Record {
            action,
            timestamp: state.modified,
            path: path.to_owned(),
            value,
            metadata: None,
            full_metadata: None,
            headers,
        };
        let bytes = state.to_bytes();
        let change = Change {
            kind: Kind::Policy,
            id,
            revision: state.revision,
            record,
            state: &bytes,
        };
        h.ops(change).map_err(|e| {
            tracing::error!(policy = id, error = %e, "history read failed");
            crate::policy::errors::unavailable(id)
        })
    }
}
