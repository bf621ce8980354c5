//! How the outcome of a pending request (live command, message, custom acks) is presented,
//! the same for every binding: the plan made when it was registered (aggregated or plain, the
//! twin response, the `use-twin` fallback, READ filtering of the live answer) and what the
//! requester finally gets (`Finished`), from the resolved slots or at the timeout.

use super::acks::{
    ack_timeout, aggregate_status, aggregate_value, command_timeout, Ack, LIVE_RESPONSE,
};
use super::pending::{Resolution, Slot, SlotState};
use crate::error::DittoError;
use crate::protocol::{error_envelope, Criterion, Envelope, Headers, Topic};

/// Turns a live answer into what the requester may see (READ filtering of retrieve results).
pub type AnswerFilter = Box<dyn Fn(Envelope) -> Envelope + Send>;

/// How the outcome of a pending request is presented.
pub struct Plan {
    /// the request's topic (error and acks topics derive from it)
    pub topic: Topic,
    /// aggregated acks (else the plain live answer)
    pub aggregated: bool,
    /// the twin response and the store sequence `twin-persisted` waits for
    pub twin: Option<(Envelope, Option<u64>)>,
    /// the answer when no live answer arrives (`live-channel-timeout-strategy: use-twin`)
    pub fallback: Option<Envelope>,
    /// headers added to the plain answer (smart channel: `channel`, `live-channel-condition-matched`)
    pub extra_headers: Headers,
    /// READ filter for the live answer
    pub filter: Option<AnswerFilter>,
}

impl Plan {
    /// A plan with defaults for `topic`.
    pub fn new(topic: Topic, aggregated: bool) -> Plan {
        Plan {
            topic,
            aggregated,
            twin: None,
            fallback: None,
            extra_headers: Headers::new(),
            filter: None,
        }
    }
}

/// What the requester gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// a response envelope (the device's answer, or the twin's)
    Response(Box<Envelope>),
    /// an error
    Error(DittoError),
    /// aggregated acks, in request order
    Acks {
        /// overall status
        status: u16,
        /// label -> ack
        acks: Vec<(String, Ack)>,
    },
    /// the requester is gone: nothing to send
    Nothing,
}

impl Plan {
    fn answer(&self, cid: &str, env: &Envelope) -> Envelope {
        let mut env = match &self.filter {
            Some(f) => f(env.clone()),
            None => env.clone(),
        };
        env.headers.insert("correlation-id", cid);
        for (k, v) in self.extra_headers.iter() {
            env.headers.insert(k.to_owned(), v.clone());
        }
        env
    }

    fn no_answer(&self, timeout_ms: u64, invalid: Option<String>) -> Finished {
        if let Some(f) = &self.fallback {
            return Finished::Response(Box::new(f.clone()));
        }
        let mut e = command_timeout(timeout_ms);
        if let Some(why) = invalid {
            e = e.describe(format!("Received no appropriate live response within the specified timeout. An invalid response was received, though: {why}"));
        }
        Finished::Error(e)
    }

    /// What the requester gets once the slots of request `cid` are resolved, or at the timeout
    /// (`invalid`: the last invalid live answer): the plain live answer, the timeout error (or
    /// the `use-twin` fallback), or the aggregated acks.
    pub fn finish(
        &self,
        cid: &str,
        timeout_ms: u64,
        slots: Vec<Slot>,
        invalid: Option<String>,
    ) -> Finished {
        if !self.aggregated {
            let live = slots.into_iter().find(|s| s.label == LIVE_RESPONSE);
            return match live.map(|s| s.state) {
                Some(SlotState::Done(Resolution::Answer(env))) => {
                    Finished::Response(Box::new(self.answer(cid, &env)))
                }
                _ => self.no_answer(timeout_ms, invalid),
            };
        }
        let acks: Vec<(String, Ack)> = slots
            .into_iter()
            .map(|s| {
                let ack = match s.state {
                    SlotState::Done(Resolution::Ack(a)) => a,
                    SlotState::Done(Resolution::Answer(env)) => {
                        Ack::from_envelope(&self.answer(cid, &env))
                    }
                    // every label that did not arrive, `live-response` included, as Ditto's
                    // AcknowledgementAggregator fills it in
                    _ => Ack::error(cid, &ack_timeout(timeout_ms)),
                };
                (s.label, ack)
            })
            .collect();
        Finished::Acks {
            status: aggregate_status(&acks),
            acks,
        }
    }
}

impl Finished {
    /// The Ditto Protocol message for a WS requester (`None`: nothing to send).
    pub fn to_envelope(&self, topic: &Topic, cid: &str) -> Option<Envelope> {
        match self {
            Finished::Response(env) => Some((**env).clone()),
            Finished::Error(e) => Some(error_envelope(Some(topic), Some(cid), e)),
            Finished::Acks { status, acks } => {
                let mut h = Headers::new();
                h.insert("correlation-id", cid);
                h.insert("content-type", "application/json");
                let mut env = Envelope::new(topic.with_criterion(Criterion::Acks(None)), h, "/");
                env.value = Some(aggregate_value(acks, false));
                env.status = Some(*status);
                Some(env)
            }
            Finished::Nothing => None,
        }
    }
}
