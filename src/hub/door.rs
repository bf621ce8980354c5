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
        let cid = env.headers.correlation_id().unwrap_or_default().to_owned();
        let topic = env.topic.clone();
        let fail = |e: &DittoError| Some(now(error_envelope(Some(&topic), Some(&cid), e)));
        let live = topic.channel == Channel::Live;
        match (&topic.criterion, env.status) {
            (Criterion::Acks(_), _) => {
                return self
                    .incoming_ack(who.origin, &env)
                    .err()
                    .and_then(|e| fail(&e));
            }
            (Criterion::Commands(_) | Criterion::Messages(_) | Criterion::Errors, Some(_))
                if live =>
            {
                self.incoming_answer(who.origin, env);
                return None;
            }
            _ => {}
        }
        let acks =
            match AckRequest::resolve(&env.headers, AckKind::of(&topic, &env.headers), Binding::Ws)
            {
                Ok(a) => a,
                Err(e) => return fail(&e),
            };
        let check = topic.criterion == Criterion::Commands(Action::CheckPermissions);
        let signal = match env.status {
            None if check => Ok(Signal::Other(env)),
            _ => Signal::from_envelope(env),
        };
        let result = match signal {
            Ok(signal) => self.call(who, signal, &acks).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(a) if acks.response_required || matches!(a, Some(Answer::Later(_))) => a,
            Ok(_) => None,
            Err(e) if acks.response_required => fail(&e),
            Err(_) => None,
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
        let later = |w: Option<Waiter>| w.map(|w| Answer::Later(Box::new(w)));
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
        if Hub::is_smart(&cmd) {
            return Ok(match self.smart_retrieve(who, &cmd, acks).await? {
                Smart::Twin(e) => Some(now(*e)),
                Smart::Live(w) => Some(Answer::Later(w)),
                Smart::Nothing => None,
            });
        }
        if cmd.channel == Channel::Live {
            let w = self.live_command(who, &cmd, acks, LiveOptions::default())?;
            return Ok(later(w));
        }
        if acks.aggregated() && cmd.action != Action::Retrieve {
            let w = self.twin_acked(who, &cmd, acks).await?;
            return Ok(Some(Answer::Later(Box::new(w))));
        }
        let durability = crate::engine::Durability::waited_if(acks.wants_persisted());
        let done = self.twin_command(who, &cmd, durability).await?;
        Ok(Some(Answer::Now(Box::new(Reply {
            after: done.seq.filter(|_| acks.wants_persisted()),
            seq: done.seq,
            envelope: response_envelope_owned(cmd, done.outcome),
        }))))
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
