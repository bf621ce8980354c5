//! Twin events as data: the event envelope of a change, the document subscription filters see
//! (`event_shape`), the placeholders they may use (`topic:*`, `resource:*`, `entity:*`) and the
//! event as one subscriber may READ it (`event_view`). Used by the hub's fan-out and by SSE.

use crate::engine::Event;
use crate::model::pointer;
use crate::policy::{Enforcer, READ, THING_ALLOWLIST};
use crate::protocol::{Channel, Criterion, Envelope, Headers, ThingCommand, Topic};
use serde_json::{json, Value};

/// The event envelope for a change (no `extra`).
pub fn event_envelope(cmd: &ThingCommand, ev: &Event, originator: &str) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = cmd.headers.correlation_id() {
        headers.insert("correlation-id", c);
    }
    if ev.action == crate::protocol::EventAction::Merged {
        headers.insert("content-type", "application/merge-patch+json");
    }
    headers.insert("ditto-originator", originator);
    let custom = super::acks::custom_labels(&cmd.headers);
    if !custom.is_empty() && cmd.action != crate::protocol::Action::Retrieve {
        headers.insert("requested-acks", custom);
    }
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
    env.metadata = ev.metadata.clone();
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

/// The event as one subscriber may see it under READ: `Some(None)` = deliver unchanged,
/// `Some(Some(env))` = deliver this filtered copy, `None` = nothing readable, do not deliver.
pub fn event_view(env: &Envelope, e: &Enforcer, subjects: &[String]) -> Option<Option<Envelope>> {
    let res = pointer::parse_pointer(&env.path).unwrap_or_default();
    if e.has_unrestricted(subjects, "thing", &res, READ) {
        return Some(None);
    }
    let value = match &env.value {
        None if e.has_partial(subjects, "thing", &res, READ) => None,
        None => return None,
        Some(v) if res.is_empty() => Some(e.root_view(subjects, "thing", v, &THING_ALLOWLIST)?),
        Some(v) => Some(e.view(subjects, "thing", &res, v)?),
    };
    let mut out = env.clone();
    out.value = value;
    // metadata is not filtered per path: a partially readable event goes without it
    out.metadata = None;
    Some(Some(out))
}
