//! One Ditto Protocol message from a client (WS, later MQTT) through the hub: acks and live
//! answers are routed to their pending request; twin commands go to the engine (with custom
//! acks or the smart channel through a waiter); live commands, live events and messages to the
//! live channel; policy commands to the policy engine, `checkPermissions` to its check.
//! Errors follow `response-required`.

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
use crate::rules::responses::{policy_response_envelope, response_envelope, unsupported};

/// What to answer a protocol message with.
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
    }))
}

impl Hub {
    /// A twin command with custom acks: registered before it runs (409 for a correlation-id
    /// already pending), then executed; the waiter collects `twin-persisted` and the acks.
    pub async fn twin_acked(
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

    /// Handles one Ditto Protocol message from a client; `None` = nothing to answer.
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
        let smart = topic.criterion == Criterion::Commands(Action::Retrieve)
            && env.headers.get("live-channel-condition").is_some();
        let kind = match &topic.criterion {
            Criterion::Messages(_) => AckKind::Message,
            _ if live || smart => AckKind::Live,
            _ => AckKind::Twin,
        };
        let acks = match AckRequest::resolve(&env.headers, kind, Binding::Ws) {
            Ok(a) => a,
            Err(e) => return fail(&e),
        };
        let result = self.route(who, env, &acks, &cid).await;
        match result {
            Ok(a) if acks.response_required || matches!(a, Some(Answer::Later(_))) => a,
            Ok(_) => None,
            Err(e) if acks.response_required => fail(&e),
            Err(_) => None,
        }
    }

    async fn route(
        &self,
        who: &Requester,
        env: Envelope,
        acks: &AckRequest,
        cid: &str,
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
                return Ok(Some(now(self.check_permissions_envelope(who, env, cid)?)));
            }
            _ => {}
        }
        match Signal::from_envelope(env)? {
            Signal::Thing(cmd) if Hub::is_smart(&cmd) => {
                Ok(match self.smart_retrieve(who, &cmd, acks).await? {
                    Smart::Twin(e) => Some(now(*e)),
                    Smart::Live(w) => Some(Answer::Later(w)),
                    Smart::Nothing => None,
                })
            }
            Signal::Thing(cmd) if cmd.channel == Channel::Live => Ok(later(self.live_command(
                who,
                &cmd,
                acks,
                LiveOptions::default(),
            )?)),
            Signal::Thing(cmd) if acks.aggregated() && cmd.action != Action::Retrieve => Ok(Some(
                Answer::Later(Box::new(self.twin_acked(who, &cmd, acks).await?)),
            )),
            Signal::Thing(cmd) => {
                let durability = crate::engine::Durability::waited_if(acks.wants_persisted());
                let done = self.twin_command(who, &cmd, durability).await?;
                Ok(Some(Answer::Now(Box::new(Reply {
                    envelope: response_envelope(&cmd, &done.outcome),
                    after: done.seq.filter(|_| acks.wants_persisted()),
                }))))
            }
            Signal::RetrieveThings(r) => {
                let v = self.retrieve_things(who, &r)?;
                let mut h = Headers::new();
                h.insert("correlation-id", cid);
                let mut e = Envelope::new(r.topic.clone(), h, "/");
                e.status = Some(200);
                e.value = Some(v);
                Ok(Some(now(e)))
            }
            Signal::Other(env) if env.topic.group == Group::Policies => {
                match PolicyCommand::from_envelope(&env) {
                    Some(Ok(cmd)) => {
                        let done = self.policy_command(who, &cmd).await?;
                        Ok(Some(Answer::Now(Box::new(Reply {
                            envelope: policy_response_envelope(&cmd, &done.outcome),
                            after: done.seq.filter(|_| acks.wants_persisted()),
                        }))))
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(unsupported(&topic)),
                }
            }
            _ => Err(unsupported(&topic)),
        }
    }
}
