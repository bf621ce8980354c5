//! The one delivery rule for every pushed signal (twin events, live commands, live events,
//! messages): per subscriber of the stream kind, no echo to the originating session, READ
//! (the signal as the subscriber may see it, or not at all), `namespaces`, `extraFields` from
//! the thing's current state (READ-filtered) and the RQL `filter` on the visible data merged
//! with `extra`. Decides only; the caller records the receivers (acks) and then pushes.

use super::events::placeholder;
use super::session::{SessionHandle, StreamKind};
use super::Hub;
use crate::engine::ThingState;
use crate::policy::{Enforcer, READ, THING_ALLOWLIST};
use crate::protocol::Envelope;
use crate::rql::Env;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What to deliver and how subscribers see it.
pub(crate) struct Fanout<'a> {
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

/// `extra` with the signal data laid over it.
fn merged(extra: &Map<String, Value>, data: &Value) -> Value {
    let mut doc = Value::Object(extra.clone());
    crate::model::merge::merge_patch(&mut doc, data);
    doc
}

impl Hub {
    /// The subscribers that get the signal and the text each gets (one shared text for all
    /// that see it unfiltered and without `extra`).
    pub(crate) fn fan_out_to(&self, f: &Fanout) -> Vec<(Arc<SessionHandle>, Arc<str>)> {
        let mut out = Vec::new();
        let mut plain: Option<Arc<str>> = None;
        let mut shape: Option<Value> = None;
        let mut full: Option<Value> = None;
        let resolve = |pre: &str, n: &str| placeholder(f.env, f.thing_id, pre, n);
        let rql_env = Env {
            now_millis: f.now,
            placeholders: Some(&resolve),
        };
        self.for_subscribers(f.kind, |s| {
            if Some(s.id) == f.origin {
                return;
            }
            let Some(filtered) = (f.view)(&s.subjects) else {
                return;
            };
            let seen = filtered.as_ref().unwrap_or(f.env);
            let decision = s.with_subscription(f.kind, |sub| {
                if !sub.namespace_ok(f.namespace) {
                    return None;
                }
                let extra = sub.extra.as_ref().and_then(|sel| {
                    let x = sel.select(full.get_or_insert_with(|| f.state.full_view()));
                    if f.enforcer.has_unrestricted(&s.subjects, "thing", &[], READ) {
                        Some(x)
                    } else {
                        f.enforcer
                            .root_view(&s.subjects, "thing", &x, &THING_ALLOWLIST)
                    }
                });
                if let Some(q) = &sub.filter {
                    let own;
                    let base = match &filtered {
                        Some(fe) => {
                            own = (f.shape)(fe);
                            &own
                        }
                        None => &*shape.get_or_insert_with(|| (f.shape)(f.env)),
                    };
                    let doc = match &extra {
                        Some(Value::Object(x)) => merged(x, base),
                        _ => base.clone(),
                    };
                    if !q.matches(&doc, &rql_env) {
                        return None;
                    }
                }
                Some(extra.filter(|x| x.as_object().is_some_and(|m| !m.is_empty())))
            });
            let Some(Some(extra)) = decision else { return };
            let text = match (extra, &filtered) {
                (None, None) => plain
                    .get_or_insert_with(|| Arc::from(f.env.to_text()))
                    .clone(),
                (extra, _) => {
                    let mut e = seen.clone();
                    e.extra = extra;
                    Arc::from(e.to_text())
                }
            };
            out.push((s.clone(), text));
        });
        out
    }
}
