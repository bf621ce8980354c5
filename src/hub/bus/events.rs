//! Twin event fan-out: builds the event envelope once, then for each subscribed session checks
//! origin, READ under the thing's policy (the payload and `extra` filtered to what the
//! subscriber may read; nothing readable = not delivered), namespaces and the RQL filter
//! (evaluated on the visible data merged with `extra`; the rule is `rules::fanout`). Events wait in
//! one central queue until their write is durable (`hub::bus::publisher`), so per-session queues only
//! hold ready messages. Events of commands with custom acks carry `requested-acks`.

use super::session::{Outbound, SessionHandle, StreamKind};
use crate::engine::{Event, ThingState};
use crate::hub::{Hub, Requester};
use crate::policy::{Enforcer, READ};
use crate::protocol::{Envelope, ThingCommand};
use crate::rules::acks::custom_labels;
use crate::rules::events::{event_envelope, event_shape, event_view};
use crate::rules::fanout::Fanout;
use std::sync::Arc;

/// A twin event waiting for its write to become durable before it is delivered.
pub(crate) struct PendingEvent {
    /// the event envelope (no `extra`)
    pub env: Envelope,
    /// `ns:name`
    pub thing_id: String,
    /// namespace of the thing
    pub namespace: String,
    /// the thing after the change (source of `extraFields`)
    pub state: Arc<ThingState>,
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
        state: &Arc<ThingState>,
        who: &Requester,
        enforcer: Option<Arc<Enforcer>>,
    ) -> Option<PendingEvent> {
        let custom_acks = !custom_labels(&cmd.headers).is_empty();
        let audience = enforcer
            .as_deref()
            .is_some_and(|e| self.event_audience(&cmd.thing_id.namespace, who.origin, e));
        if !custom_acks && !audience {
            // nobody to deliver to and nobody to answer for: skip building the event
            return None;
        }
        let env = event_envelope(cmd, ev, who.subject());
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
    /// (`hub::bus::fanout`), checked before an event is built and queued.
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
