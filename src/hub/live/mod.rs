//! The live channel in the hub: live commands (authorized like the twin command, delivered to
//! `START-SEND-LIVE-COMMANDS` sessions with READ, answered by one of them, the answer READ-
//! filtered for the requester), live events (sender needs WRITE; delivered to
//! `START-SEND-LIVE-EVENTS` sessions) and the smart channel selection of retrieves
//! (`live-channel-condition`, `live-channel-timeout-strategy`). Nothing here touches the store.

pub(super) mod correlate;
pub mod messages;
pub mod waiter;

use super::bus::session::{Outbound, SessionHandle, StreamKind};
use super::{Hub, Requester};
use crate::engine::enforce::{self, Access};
use crate::engine::Durability;
use crate::engine::{errors, ThingState};
use crate::error::DittoError;
use crate::policy::{Enforcer, READ, WRITE};
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, ThingCommand, ThingPath};
use crate::rql::Env;
use crate::rules::acks::AckRequest;
use crate::rules::events::{event_shape, event_view};
use crate::rules::fanout::Fanout;
use crate::rules::live::{command_matcher, delivered_headers, on_channel, use_twin};
use crate::rules::live_errors::{condition_not_allowed, event_not_allowed};
use crate::rules::outcome::Plan;
use crate::rules::responses::response_envelope;
use std::sync::Arc;
use waiter::Waiter;

/// The smart-channel parts of a live command: the twin answer used on timeout and the headers
/// added to the live answer.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// answer with this when no live answer arrives (`use-twin`)
    pub fallback: Option<Envelope>,
    /// headers added to the live answer
    pub extra_headers: Headers,
}

/// Result of a smart-channel retrieve.
pub enum Smart {
    /// answered from the twin (condition false)
    Twin(Box<Envelope>),
    /// waiting for the device
    Live(Box<Waiter>),
    /// nothing to answer (`response-required: false`)
    Nothing,
}

impl Hub {
    /// The stored, not deleted thing and its policy's enforcer (404 without a thing).
    pub(crate) fn live_target(
        &self,
        id: &str,
        namespace: &str,
        now: i64,
    ) -> Result<(ThingState, Option<Arc<Enforcer>>), DittoError> {
        let state = self
            .load_thing(id)?
            .filter(|s| !s.deleted)
            .ok_or_else(|| errors::not_found(id, &ThingPath::Root))?;
        let enforcer = self.thing_enforcer(&state, namespace, now)?;
        Ok((state, enforcer))
    }

    /// Delivers a prepared live signal and records who received it (before anyone can
    /// answer); returns the number of receivers.
    pub(crate) fn deliver(&self, f: &Fanout, registered: bool) -> usize {
        let out = self.fan_out_to(f);
        if registered {
            let receivers: Vec<&SessionHandle> = out.iter().map(|(s, _)| &**s).collect();
            self.acks_dispatched(f.env.headers.correlation_id(), &receivers);
        }
        let n = out.len();
        for (s, text) in out {
            s.push(Outbound::Now(text));
        }
        n
    }

    /// A live command: authorized as the twin command would be, delivered to the entitled
    /// live-command subscribers; returns the waiter for the answer / acks (`None`: nothing is
    /// awaited).
    pub(in crate::hub) fn live_command(
        &self,
        who: &Requester,
        cmd: &ThingCommand,
        acks: &AckRequest,
        opts: LiveOptions,
    ) -> Result<Option<Waiter>, DittoError> {
        let id = cmd.thing_id.to_string();
        match cmd.action {
            Action::Create => return Err(errors::live_not_creatable(&id)),
            Action::Migrate => return Err(crate::protocol::unknown_path(&cmd.raw_path)),
            _ => {}
        }
        if cmd.headers.get("live-channel-condition").is_some() && cmd.action != Action::Retrieve {
            return Err(condition_not_allowed());
        }
        let now = self.now();
        let (state, enforcer) = self.live_target(&id, &cmd.thing_id.namespace, now)?;
        let acc = Access {
            subjects: &who.subjects,
            enforcer: enforcer.as_deref(),
        };
        enforce::check(&state, cmd, &acc)?;
        let Some(enforcer) = enforcer else {
            return Err(errors::not_found(&id, &ThingPath::Root));
        };
        let cid = cmd.headers.correlation_id().unwrap_or_default().to_owned();
        let mut env = Envelope::new(
            cmd.topic.clone(),
            delivered_headers(&cmd.headers, acks, who.subject()),
            cmd.raw_path.clone(),
        );
        env.value = cmd.value.clone();
        env.fields = cmd.fields.clone();
        let waiter = if acks.response_required || !acks.labels.is_empty() {
            let mut plan = Plan::new(cmd.topic.clone(), acks.aggregated());
            plan.fallback = opts.fallback;
            plan.extra_headers = opts.extra_headers;
            if cmd.action == Action::Retrieve {
                let (e, subjects, c) = (enforcer.clone(), who.subjects.clone(), cmd.clone());
                plan.filter = Some(Box::new(move |mut answer: Envelope| {
                    if answer.topic.criterion == Criterion::Commands(Action::Retrieve) {
                        if let Some(v) = answer.value.take() {
                            let acc = Access {
                                subjects: &subjects,
                                enforcer: Some(&e),
                            };
                            answer.value = Some(enforce::filter_retrieve(&acc, &c, v));
                        }
                    }
                    answer
                }));
            }
            let matcher = acks.response_required.then(|| command_matcher(cmd));
            Some(self.register(who, &cid, &acks.labels, matcher, acks.timeout_ms, plan)?)
        } else {
            None
        };
        self.deliver(
            &Fanout {
                kind: StreamKind::LiveCommands,
                env: &env,
                thing_id: &id,
                namespace: &cmd.thing_id.namespace,
                state: &state,
                enforcer: &enforcer,
                origin: who.origin,
                now,
                view: &|subjects| event_view(&env, &enforcer, subjects),
                shape: &|e| event_shape(e, &id),
            },
            waiter.is_some(),
        );
        Ok(waiter)
    }

    /// A live event sent by a device session: the sender needs WRITE on the path (403
    /// `things:event.notallowed` without it); delivered to entitled live-event subscribers; never stored.
    /// Only custom acks are awaited (an event has no response).
    pub(in crate::hub) fn live_event(
        &self,
        who: &Requester,
        env: &Envelope,
        acks: &AckRequest,
    ) -> Result<Option<Waiter>, DittoError> {
        let id = format!("{}:{}", env.topic.namespace, env.topic.name);
        let thing_id = crate::model::parse_thing_id(&id)?;
        let path =
            ThingPath::parse(&env.path)?.ok_or_else(|| crate::protocol::unknown_path(&env.path))?;
        let now = self.now();
        let (state, enforcer) = self.live_target(&id, &thing_id.namespace, now)?;
        let Some(enforcer) = enforcer else {
            return Err(errors::not_found(&id, &ThingPath::Root));
        };
        // Ditto's LiveSignalEnforcement.enforceLiveEvent: 403 whatever READ says
        if !enforcer.has_unrestricted(&who.subjects, "thing", &path.pointer(), WRITE) {
            return Err(event_not_allowed(&id));
        }
        let custom = acks.custom();
        let mut out = env.clone();
        out.headers = delivered_headers(&env.headers, acks, who.subject());
        let waiter = if custom.is_empty() {
            None
        } else {
            let cid = env.headers.correlation_id().unwrap_or_default();
            let plan = Plan::new(env.topic.clone(), true);
            Some(self.register(who, cid, &custom, None, acks.timeout_ms, plan)?)
        };
        self.deliver(
            &Fanout {
                kind: StreamKind::LiveEvents,
                env: &out,
                thing_id: &id,
                namespace: &thing_id.namespace,
                state: &state,
                enforcer: &enforcer,
                origin: who.origin,
                now,
                view: &|subjects| event_view(&out, &enforcer, subjects),
                shape: &|e| event_shape(e, &id),
            },
            waiter.is_some(),
        );
        Ok(waiter)
    }

    /// True if a retrieve goes through the smart channel selection.
    pub(in crate::hub) fn is_smart(cmd: &ThingCommand) -> bool {
        cmd.action == Action::Retrieve
            && match cmd.channel {
                Channel::Live => cmd.headers.get("live-channel-timeout-strategy").is_some(),
                _ => cmd.headers.get("live-channel-condition").is_some(),
            }
    }

    /// Smart channel selection of a retrieve: the twin is read first (authorization, fallback);
    /// with `live-channel-condition` the live retrieve is sent only if the RQL matches the twin
    /// (else the twin answer, `live-channel-condition-matched: false`); on no live answer
    /// `use-twin` answers from the twin, `fail` with 408.
    pub(in crate::hub) async fn smart_retrieve(
        &self,
        who: &Requester,
        cmd: &ThingCommand,
        acks: &AckRequest,
    ) -> Result<Smart, DittoError> {
        let use_twin = use_twin(&cmd.headers)?;
        let condition = cmd
            .headers
            .get_str("live-channel-condition")
            .map(|c| c.into_owned());
        let twin_cmd = on_channel(cmd, Channel::Twin);
        // a retrieve: writes nothing
        let done = self
            .twin_command(who, &twin_cmd, Durability::Interval)
            .await?;
        let mut twin = response_envelope(&twin_cmd, &done.outcome);
        twin.headers.insert("channel", "twin");
        if let Some(c) = &condition {
            let matched = self.condition_holds(who, &cmd.thing_id, c)?;
            twin.headers
                .insert("live-channel-condition-matched", matched.to_string());
            if !matched {
                return Ok(Smart::Twin(Box::new(twin)));
            }
        }
        let mut extra = Headers::new();
        extra.insert("channel", "live");
        if condition.is_some() {
            extra.insert("live-channel-condition-matched", "true");
        }
        let opts = LiveOptions {
            fallback: (use_twin == Some(true)).then_some(twin),
            extra_headers: extra,
        };
        let live = on_channel(cmd, Channel::Live);
        Ok(match self.live_command(who, &live, acks, opts)? {
            Some(w) => Smart::Live(Box::new(w)),
            None => Smart::Nothing,
        })
    }

    /// Evaluates an RQL condition (`live-channel-condition`, a message's `condition`) on the
    /// stored twin (READ needed on every field it names, else 412 `things:condition.failed`).
    pub fn condition_holds(
        &self,
        who: &Requester,
        thing_id: &crate::model::EntityId,
        rql: &str,
    ) -> Result<bool, DittoError> {
        let q = crate::rql::parse(rql).map_err(|e| e.to_condition_error())?;
        let now = self.now();
        let id = thing_id.to_string();
        let (state, enforcer) = self.live_target(&id, &thing_id.namespace, now)?;
        let readable = enforcer.is_some_and(|e| {
            q.properties()
                .iter()
                .filter(|p| p.placeholder.is_none())
                .all(|p| e.has_unrestricted(&who.subjects, "thing", &p.segments, READ))
        });
        if !readable {
            return Err(errors::condition_failed());
        }
        let env = Env {
            now_millis: now,
            placeholders: None,
        };
        Ok(q.matches(&state.full_view(), &env))
    }
}
