//! Twin event fan-out: builds the event envelope once, then for each subscribed session checks
//! origin, namespaces and the RQL filter (evaluated on the changed data merged with the
//! session's `extraFields`), enriches with `extra`, and queues it behind the durable write.

use super::session::{Outbound, StreamKind};
use super::{Hub, Requester};
use crate::engine::{Event, ThingState};
use crate::model::pointer;
use crate::protocol::{Channel, Criterion, Envelope, Headers, ThingCommand, Topic};
use crate::rql::Env;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The event envelope for a change (no `extra`).
pub fn event_envelope(cmd: &ThingCommand, ev: &Event, who: &Requester) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = cmd.headers.correlation_id() {
        headers.insert("correlation-id", c);
    }
    if ev.action == crate::protocol::EventAction::Merged {
        headers.insert("content-type", "application/merge-patch+json");
    }
    headers.insert("ditto-originator", who.subject());
    let topic = Topic::thing(
        &cmd.thing_id.namespace,
        &cmd.thing_id.name,
        Channel::Twin,
        Criterion::Events(ev.action),
    );
    let mut env = Envelope::new(topic, headers, ev.path.clone());
    env.value = ev.value.clone();
    env.revision = Some(ev.revision);
    env.timestamp = Some(crate::clock::format_millis(ev.timestamp));
    env
}

/// The changed data of an event in thing shape, as subscription filters see it.
pub fn event_shape(env: &Envelope, thing_id: &str) -> Value {
    let mut doc = json!({ "thingId": thing_id });
    if let Some(ns) = thing_id.split_once(':').map(|p| p.0) {
        doc["_namespace"] = Value::String(ns.to_owned());
    }
    if let Some(r) = env.revision {
        doc["_revision"] = r.into();
    }
    if let Some(t) = &env.timestamp {
        doc["_modified"] = Value::String(t.clone());
    }
    let path = pointer::parse_pointer(&env.path).unwrap_or_default();
    match &env.value {
        Some(Value::Object(m)) if path.is_empty() => {
            if let Value::Object(d) = &mut doc {
                for (k, v) in m {
                    d.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Some(v) if !path.is_empty() => pointer::set(&mut doc, &path, v.clone()),
        _ => {}
    }
    doc
}

/// Resolves `topic:*`, `resource:*` and `entity:*` placeholders of subscription filters.
pub fn placeholder(env: &Envelope, thing_id: &str, prefix: &str, name: &str) -> Option<Value> {
    let t = &env.topic;
    let s = match (prefix, name) {
        ("topic", "full") => t.to_string(),
        ("topic", "namespace") => t.namespace.clone(),
        ("topic", "entityName") => t.name.clone(),
        ("topic", "group") => "things".into(),
        ("topic", "channel") => t.channel.as_str().into(),
        ("topic", "criterion") => match &t.criterion {
            Criterion::Commands(_) => "commands",
            Criterion::Events(_) => "events",
            Criterion::Messages(_) => "messages",
            _ => "",
        }
        .into(),
        ("topic", "action") => match &t.criterion {
            Criterion::Commands(a) => a.as_str().into(),
            Criterion::Events(a) => a.as_str().into(),
            _ => return None,
        },
        ("topic", "subject") | ("topic", "action-subject") => match &t.criterion {
            Criterion::Messages(s) => s.clone(),
            Criterion::Commands(a) if name == "action-subject" => a.as_str().into(),
            Criterion::Events(a) if name == "action-subject" => a.as_str().into(),
            _ => return None,
        },
        ("resource", "path") => env.path.clone(),
        ("resource", "type") => "thing".into(),
        ("entity", "id") | ("thing", "id") => thing_id.to_owned(),
        ("thing", "namespace") => t.namespace.clone(),
        ("thing", "name") => t.name.clone(),
        _ => return None,
    };
    Some(Value::String(s))
}

impl Hub {
    /// Delivers a twin event to every matching `START-SEND-EVENTS` subscriber.
    pub(crate) fn publish_twin_event(
        &self,
        cmd: &ThingCommand,
        ev: &Event,
        state: &ThingState,
        who: &Requester,
        seq: Option<u64>,
    ) {
        if !self.has_subscribers(StreamKind::Events) {
            return;
        }
        let env = event_envelope(cmd, ev, who);
        let thing_id = cmd.thing_id.to_string();
        let mut plain: Option<Arc<str>> = None;
        let mut shape: Option<Value> = None;
        let mut full: Option<Value> = None;
        let resolve = |p: &str, n: &str| placeholder(&env, &thing_id, p, n);
        let rql_env = Env {
            now_millis: ev.timestamp,
            placeholders: Some(&resolve),
        };
        self.for_subscribers(StreamKind::Events, |s| {
            if Some(s.id) == who.origin {
                return;
            }
            let decision = s.with_subscription(StreamKind::Events, |sub| {
                if !sub.namespace_ok(&cmd.thing_id.namespace) {
                    return None;
                }
                let extra = sub
                    .extra
                    .as_ref()
                    .map(|sel| sel.select(full.get_or_insert_with(|| state.full_view())));
                if let Some(f) = &sub.filter {
                    let base = shape.get_or_insert_with(|| event_shape(&env, &thing_id));
                    let doc = match &extra {
                        Some(Value::Object(x)) => merged(x, base),
                        _ => base.clone(),
                    };
                    if !f.matches(&doc, &rql_env) {
                        return None;
                    }
                }
                Some(extra.filter(|x| x.as_object().is_some_and(|m| !m.is_empty())))
            });
            let Some(Some(extra)) = decision else { return };
            let text = match extra {
                Some(extra) => {
                    let mut e = env.clone();
                    e.extra = Some(extra);
                    Arc::from(e.to_text())
                }
                None => plain
                    .get_or_insert_with(|| Arc::from(env.to_text()))
                    .clone(),
            };
            s.push(match seq {
                Some(seq) => Outbound::Durable {
                    seq,
                    text,
                    on_failure: None,
                },
                None => Outbound::Now(text),
            });
        });
    }
}

/// `extra` with the event data laid over it.
fn merged(extra: &Map<String, Value>, event: &Value) -> Value {
    let mut doc = Value::Object(extra.clone());
    crate::model::merge::merge_patch(&mut doc, event);
    doc
}
