//! The one delivery rule for every pushed signal (twin events, live commands, live events,
//! messages), per subscriber: READ (the signal as the subscriber may see it, or not at all),
//! `namespaces`, `extraFields` from the thing's current state (READ-filtered) and the RQL
//! `filter` on the visible data merged with `extra`. Decides only: the hub walks its subscribers,
//! skips the originating session, records the receivers (acks) and pushes.

use super::events::placeholder;
use crate::engine::ThingState;
use crate::model::FieldSelector;
use crate::policy::{Enforcer, READ, THING_ALLOWLIST};
use crate::protocol::{Envelope, StreamKind};
use crate::rql::{Env, Query};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Parameters of one subscription.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    /// exact namespaces; empty = all
    pub namespaces: Vec<String>,
    /// RQL filter
    pub filter: Option<Query>,
    /// `extraFields` selector
    pub extra: Option<FieldSelector>,
}

impl Subscription {
    /// True if the namespace passes the namespace list.
    pub fn namespace_ok(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }
}

/// What to deliver and how subscribers see it.
pub struct Fanout<'a> {
    /// the stream subscribers must have started
    pub kind: StreamKind,
    /// the signal as sent (no `extra`)
    pub env: &'a Envelope,
    /// `ns:name`
    pub thing_id: &'a str,
    /// namespace of the thing
    pub namespace: &'a str,
    /// the thing's current state (source of `extraFields`)
    pub state: &'a ThingState,
    /// the thing's policy
    pub enforcer: &'a Enforcer,
    /// the session that sent / caused the signal (gets no copy)
    pub origin: Option<u64>,
    /// signal time (for `time:now` in filters)
    pub now: i64,
    /// READ for one subscriber: `None` = not delivered, `Some(None)` = as is,
    /// `Some(Some(e))` = this filtered copy
    pub view: &'a dyn Fn(&[String]) -> Option<Option<Envelope>>,
    /// the document a subscription filter sees for a (possibly filtered) signal
    pub shape: &'a dyn Fn(&Envelope) -> Value,
}

/// What one signal's delivery builds once and shares between its subscribers.
#[derive(Default)]
pub struct Memo {
    /// the unfiltered text without `extra`
    plain: Option<Arc<str>>,
    /// the filter document of the unfiltered signal
    shape: Option<Value>,
    /// the thing's full view (source of `extraFields`)
    full: Option<Value>,
}

/// `extra` with the signal data laid over it.
fn merged(extra: &Map<String, Value>, data: &Value) -> Value {
    let mut doc = Value::Object(extra.clone());
    crate::model::merge::merge_patch(&mut doc, data);
    doc
}

impl Fanout<'_> {
    /// The subscription part of the rule for one subscriber that may see `filtered` (from
    /// `view`): `None` = not delivered, `Some(extra)` = delivered with this `extra`.
    pub fn decide(
        &self,
        subjects: &[String],
        filtered: &Option<Envelope>,
        sub: &Subscription,
        memo: &mut Memo,
    ) -> Option<Option<Value>> {
        if !sub.namespace_ok(self.namespace) {
            return None;
        }
        let extra = sub.extra.as_ref().and_then(|sel| {
            let x = sel.select(memo.full.get_or_insert_with(|| self.state.full_view()));
            if self.enforcer.has_unrestricted(subjects, "thing", &[], READ) {
                Some(x)
            } else {
                self.enforcer
                    .root_view(subjects, "thing", &x, &THING_ALLOWLIST)
            }
        });
        if let Some(q) = &sub.filter {
            let own;
            let base = match filtered {
                Some(fe) => {
                    own = (self.shape)(fe);
                    &own
                }
                None => &*memo.shape.get_or_insert_with(|| (self.shape)(self.env)),
            };
            let doc = match &extra {
                Some(Value::Object(x)) => merged(x, base),
                _ => base.clone(),
            };
            let resolve = |pre: &str, n: &str| placeholder(self.env, self.thing_id, pre, n);
            let rql_env = Env {
                now_millis: self.now,
                placeholders: Some(&resolve),
            };
            if !q.matches(&doc, &rql_env) {
                return None;
            }
        }
        Some(extra.filter(|x| x.as_object().is_some_and(|m| !m.is_empty())))
    }

    /// The text a subscriber gets (one shared text for all that see the signal unfiltered and
    /// without `extra`).
    pub fn text(
        &self,
        extra: Option<Value>,
        filtered: &Option<Envelope>,
        memo: &mut Memo,
    ) -> Arc<str> {
        match (extra, filtered) {
            (None, None) => memo
                .plain
                .get_or_insert_with(|| self.env.to_shared_text())
                .clone(),
            (extra, _) => {
                let mut e = filtered.as_ref().unwrap_or(self.env).clone();
                e.extra = extra;
                e.to_shared_text()
            }
        }
    }
}
