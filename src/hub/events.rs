//! Twin event fan-out: builds the event envelope once, then for each subscribed session checks
//! origin, READ under the thing's policy (the payload and `extra` filtered to what the
//! subscriber may read; nothing readable = not delivered), namespaces and the RQL filter
//! (evaluated on the visible data merged with `extra`; the rule is `hub::fanout`). Events wait in
//! one central queue until their write is durable (`hub::publisher`), so per-session queues only
//! hold ready messages. Events of commands with custom acks carry `requested-acks`.

use super::fanout::Fanout;
use super::session::{Outbound, SessionHandle, StreamKind};
use super::{Hub, Requester};
use crate::engine::{Event, ThingState};
use crate::model::pointer;
use crate::policy::{Enforcer, READ, THING_ALLOWLIST};
use crate::protocol::{Channel, Criterion, Envelope, Headers, ThingCommand, Topic};
use serde_json::{json, Value};
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

/// A twin event waiting for its write to become durable before it is delivered.
pub(crate) struct PendingEvent {
    /// the event envelope (no `extra`)
    pub env: Envelope,
    /// `ns:name`
    pub thing_id: String,
    /// namespace of the thing
    pub namespace: String,
    /// the thing after the change (source of `extraFields`)
    pub state: ThingState,
    /// the session that caused it (gets no echo)
    pub origin: Option<u64>,
    /// event time (for `time:now` in filters)
    pub timestamp: i64,
    /// the policy the event is visible under
    pub enforcer: Arc<Enforcer>,
    /// custom acks were requested (the event carries `requested-acks`)
    pub acks: bool,
}

impl Hub {
    /// The pending event of a change, for the subscribers that may READ (part of) it under
    /// `enforcer` (no enforcer: nobody may, and `None` comes back). It goes into the store
    /// submit with its write (`Hub::submit_with_event`) and is delivered once that is durable,
    /// so a subscriber never sees a change that a crash could still take back.
    pub(crate) fn twin_event(
        &self,
        cmd: &ThingCommand,
        ev: &Event,
        state: &ThingState,
        who: &Requester,
        enforcer: Option<Arc<Enforcer>>,
    ) -> Option<PendingEvent> {
        let custom_acks = !super::acks::custom_labels(&cmd.headers).is_empty();
        let audience = enforcer
            .as_deref()
            .is_some_and(|e| self.event_audience(&cmd.thing_id.namespace, who.origin, e));
        if !custom_acks && !audience {
            // nobody to deliver to and nobody to answer for: skip building the event
            return None;
        }
        let env = event_envelope(cmd, ev, who);
        let acks = env.headers.get("requested-acks").is_some();
        let subscribed = self.has_subscribers(StreamKind::Events);
        let (Some(enforcer), true) = (enforcer, subscribed) else {
            // nobody may read it (or nobody subscribed): declared labels are weak-acked, others
            // unanswerable
            if acks {
                self.acks_dispatched(env.headers.correlation_id(), &[]);
            }
            return None;
        };
        Some(PendingEvent {
            env,
            thing_id: cmd.thing_id.to_string(),
            namespace: cmd.thing_id.namespace.clone(),
            state: state.clone(),
            origin: who.origin,
            timestamp: ev.timestamp,
            enforcer,
            acks,
        })
    }

    /// True if some session other than `origin` subscribed to twin events of `namespace` and
    /// may READ something of a thing under `enforcer`: the cheap part of the delivery rule
    /// (`hub::fanout`), checked before an event is built and queued.
    fn event_audience(&self, namespace: &str, origin: Option<u64>, enforcer: &Enforcer) -> bool {
        let mut any = false;
        self.for_subscribers(StreamKind::Events, |s| {
            any = any
                || (Some(s.id) != origin
                    && s.with_subscription(StreamKind::Events, |sub| sub.namespace_ok(namespace))
                        == Some(true)
                    && enforcer.has_partial(&s.subjects, "thing", &[], READ));
        });
        any
    }

    /// Delivers a durable twin event to every matching `START-SEND-EVENTS` subscriber; custom
    /// acks requested for it are then owed by the receivers that declared them (others weak).
    pub(crate) fn fan_out(&self, p: &PendingEvent) {
        let (env, thing_id, enforcer) = (&p.env, p.thing_id.as_str(), &*p.enforcer);
        let out = self.fan_out_to(&Fanout {
            kind: StreamKind::Events,
            env,
            thing_id,
            namespace: &p.namespace,
            state: &p.state,
            enforcer,
            origin: p.origin,
            now: p.timestamp,
            view: &|subjects| event_view(env, enforcer, subjects),
            shape: &|e| event_shape(e, thing_id),
        });
        if p.acks {
            let receivers: Vec<&SessionHandle> = out.iter().map(|(s, _)| &**s).collect();
            self.acks_dispatched(env.headers.correlation_id(), &receivers);
        }
        for (s, text) in out {
            s.push(Outbound::Now(text));
        }
    }
}
