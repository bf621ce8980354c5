//! The one door into the hub. Every binding (WS, HTTP, SSE, MQTT, cloudevents, the uplink)
//! turns its input into a `Signal` with its resolved `AckRequest` and calls `Hub::call`, which
//! routes it: twin commands to the engine (custom acks or the smart channel through a waiter),
//! live commands, live events and messages to the live channel, policy commands to the policy
//! engine, `checkPermissions` to its check. `Hub::handle_protocol` is the door's front for Ditto
//! Protocol messages (acks and live answers to their pending request, errors per
//! `response-required`). What a binding sends back is made from the `Answer` by `hub::answer`.

use super::live::{LiveOptions, Smart};
use super::Waiter;
use super::{Hub, Reply, Requester};
use crate::error::DittoError;
use crate::policy::PolicyCommand;
use crate::protocol::headers::new_correlation_id;
use crate::protocol::{
    error_envelope, Action, Channel, Criterion, Envelope, Group, Headers, Signal, ThingCommand,
    Topic,
};
use crate::rules::acks::{AckKind, AckRequest, Binding};
use crate::rules::outcome::Plan;
use crate::rules::responses::{
    policy_response_envelope, response_envelope, response_envelope_owned, unsupported,
};

/// What to answer a request with (made into outbound messages by `hub::answer`).
pub enum Answer {
    /// answer now (or once `after` is durable)
    Now(Box<Reply>),
    /// answer when the waiter finishes (live answer, acks, timeout)
    Later(Box<Waiter>),
}

/// What a thing command's route gave: an answer, or a finished twin command (its response
/// made from the command, moved).
// returned once per command and matched at once: boxing the outcome would be an allocation
// per command
#[allow(clippy::large_enum_variant)]
enum ThingAnswer {
    Ready(Option<Answer>),
    Done(super::twin::TwinDone),
}

fn now(envelope: Envelope) -> Answer {
    Answer::Now(Box::new(Reply {
        envelope,
        after: None,
        seq: None,
    }))
}

impl Hub {
    /// A twin command with custom acks: registered before it runs (409 for a correlation-id
    /// already pending), then executed; the waiter collects `twin-persisted` and the acks.
    async fn twin_acked(
        &self,
        who: &Requester,
        cmd: &ThingCommand,
        acks: &AckRequest,
    ) -> Result<Waiter, DittoError> {
        let cid = cmd.headers.correlation_id().unwrap_or_default().to_owned();
        let plan = Plan::new(cmd.topic.clone(), true);
        let mut w = self.register(who, &cid, &acks.labels, None, acks.timeout_ms, plan)?;
        let durability = crate::engine::Durability::waited_if(acks.wants_persisted());
        let done = self.twin_command(who, cmd, durability).await?;
        w.set_twin(response_envelope(cmd, &done.outcome), done.seq);
        Ok(w)
    }

    /// The Ditto Protocol front of the door (WS, MQTT, cloudevents, the uplink): acks and live
    /// answers go to their pending request; anything else becomes a `Signal` for `call`.
    /// `None` = nothing to answer (`response-required: false`, or an ack/answer).
    pub async fn handle_protocol(&self, who: &Requester, mut env: Envelope) -> Option<Answer> {
        if env.headers.correlation_id().is_none() {
            env.headers.insert("correlation-id", new_correlation_id());
        }
        // the error answer, addressed by the request's topic and correlation-id: read from
        // whatever holds them when it fails (no copy of them for a request that succeeds)
        let fail = |topic: &Topic, headers: &Headers, e: &DittoError| {
            let cid = headers.correlation_id().unwrap_or_default();
            Some(now(error_envelope(Some(topic), Some(cid), e)))
        };
        let fail_cid = |topic: &Topic, cid: &str, e: &DittoError| {
            Some(now(error_envelope(Some(topic), Some(cid), e)))
        };
        let live = env.topic.channel == Channel::Live;
        match (&env.topic.criterion, env.status) {
            (Criterion::Acks(_), _) => {
                return self
                    .incoming_ack(who.origin, &env)
                    .err()
                    .and_then(|e| fail(&env.topic, &env.headers, &e));
            }
            (Criterion::Commands(_) | Criterion::Messages(_) | Criterion::Errors, Some(_))
                if live =>
            {
                self.incoming_answer(who.origin, env);
                return None;
            }
            _ => {}
        }
        let kind = AckKind::of(&env.topic, &env.headers);
        let acks = match AckRequest::resolve(&env.headers, kind, Binding::Ws) {
            Ok(a) => a,
            Err(e) => return fail(&env.topic, &env.headers, &e),
        };
        let check = env.topic.criterion == Criterion::Commands(Action::CheckPermissions);
        let signal = match env.status {
            None if check => Ok(Signal::Other(env)),
            _ => Signal::from_envelope_or_back(env),
        };
        // `Err`: the error answer (`None` unless a response is required)
        let failed = |topic: &Topic, cid: &str, e: &DittoError| match acks.response_required {
            true => fail_cid(topic, cid, e),
            false => None,
        };
        let cid_of = |h: &Headers| h.correlation_id().unwrap_or_default().to_owned();
        let result = match signal {
            Ok(Signal::Thing(cmd)) => self.call_thing(who, cmd, &acks).await.map_err(|b| {
                let (e, cmd) = &*b;
                failed(&cmd.topic, &cid_of(&cmd.headers), e)
            }),
            Ok(signal) => {
                let (topic, cid) = match &signal {
                    Signal::Other(env) => (env.topic.clone(), cid_of(&env.headers)),
                    Signal::RetrieveThings(r) => (r.topic.clone(), cid_of(&r.headers)),
                    Signal::Thing(cmd) => (cmd.topic.clone(), cid_of(&cmd.headers)),
                };
                self.call(who, signal, &acks)
                    .await
                    .map_err(|e| failed(&topic, &cid, &e))
            }
            Err(b) => {
                let (e, env) = &*b;
                Err(failed(&env.topic, &cid_of(&env.headers), e))
            }
        };
        match result {
            Ok(a) if acks.response_required || matches!(a, Some(Answer::Later(_))) => a,
            Ok(_) => None,
            Err(answer) => answer,
        }
    }

    /// The one entry: routes a signal of `who` with its resolved acks and answers it; `None`
    /// = nothing will answer (a live command, live event or message with no response due).
    pub async fn call(
        &self,
        who: &Requester,
        signal: Signal,
        acks: &AckRequest,
    ) -> Result<Option<Answer>, DittoError> {
        let cmd = match signal {
            Signal::Thing(cmd) => cmd,
            Signal::RetrieveThings(r) => {
                let v = self.retrieve_things(who, &r)?;
                let mut h = Headers::new();
                if let Some(cid) = r.headers.correlation_id() {
                    h.insert("correlation-id", cid);
                }
                let mut e = Envelope::new(r.topic.clone(), h, "/");
                e.status = Some(200);
                e.value = Some(v);
                return Ok(Some(now(e)));
            }
            Signal::Other(env) => return self.call_other(who, env, acks).await,
        };
        self.call_thing(who, cmd, acks).await.map_err(|b| b.0)
    }

    /// `call` for a thing command; an error gives the command back (its topic and
    /// correlation-id address the error answer).
    async fn call_thing(
        &self,
        who: &Requester,
        cmd: ThingCommand,
        acks: &AckRequest,
    ) -> Result<Option<Answer>, Box<(DittoError, ThingCommand)>> {
        match self.call_thing_ref(who, &cmd, acks).await {
            Ok(ThingAnswer::Ready(a)) => Ok(a),
            Ok(ThingAnswer::Done(done)) => Ok(Some(Answer::Now(Box::new(Reply {
                after: done.seq.filter(|_| acks.wants_persisted()),
                seq: done.seq,
                envelope: response_envelope_owned(cmd, done.outcome),
            })))),
            Err(e) => Err(Box::new((e, cmd))),
        }
    }

    /// The routes of a thing command (smart channel, live, custom acks, twin).
    async fn call_thing_ref(
        &self,
        who: &Requester,
        cmd: &ThingCommand,
        acks: &AckRequest,
    ) -> Result<ThingAnswer, DittoError> {
        let later = |w: Option<Waiter>| w.map(|w| Answer::Later(Box::new(w)));
        if Hub::is_smart(cmd) {
            return Ok(ThingAnswer::Ready(
                match self.smart_retrieve(who, cmd, acks).await? {
                    Smart::Twin(e) => Some(now(*e)),
                    Smart::Live(w) => Some(Answer::Later(w)),
                    Smart::Nothing => None,
                },
            ));
        }
        if cmd.channel == Channel::Live {
            let w = self.live_command(who, cmd, acks, LiveOptions::default())?;
            return Ok(ThingAnswer::Ready(later(w)));
        }
        if acks.aggregated() && cmd.action != Action::Retrieve {
            let w = self.twin_acked(who, cmd, acks).await?;
            return Ok(ThingAnswer::Ready(Some(Answer::Later(Box::new(w)))));
        }
        let durability = crate::engine::Durability::waited_if(acks.wants_persisted());
        Ok(ThingAnswer::Done(
            self.twin_command(who, cmd, durability).await?,
        ))
    }

    /// Messages, live events, `checkPermissions` and policy commands.
    async fn call_other(
        &self,
        who: &Requester,
        env: Envelope,
        acks: &AckRequest,
    ) -> Result<Option<Answer>, DittoError> {
        let topic = env.topic.clone();
        let later = |w: Option<Waiter>| w.map(|w| Answer::Later(Box::new(w)));
        match (&topic.criterion, topic.channel) {
            (Criterion::Messages(_), _) => {
                let path = crate::rules::live::message_path(&env)?;
                return Ok(later(self.message(who, &env, &path, acks)?));
            }
            (Criterion::Events(_), Channel::Live) if env.status.is_none() => {
                return Ok(later(self.live_event(who, &env, acks)?));
            }
            (Criterion::Commands(Action::CheckPermissions), _) if env.status.is_none() => {
                let cid = env.headers.correlation_id().unwrap_or_default().to_owned();
                return Ok(Some(now(self.check_permissions_envelope(who, env, &cid)?)));
            }
            _ => {}
        }
        if topic.group != Group::Policies {
            return Err(unsupported(&topic));
        }
        match PolicyCommand::from_envelope(&env) {
            Some(Ok(cmd)) => {
                let done = self.policy_command(who, &cmd).await?;
                let mut envelope = policy_response_envelope(&cmd, &done.outcome);
                if let Some(h) = done.historical_headers {
                    envelope.headers.insert("historical-headers", h);
                }
                Ok(Some(Answer::Now(Box::new(Reply {
                    envelope,
                    after: done.seq.filter(|_| acks.wants_persisted()),
                    seq: done.seq,
                }))))
            }
            Some(Err(e)) => Err(e),
            None => Err(unsupported(&topic)),
        }
    }
}
