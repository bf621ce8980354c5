//! The awaiting side of a pending request, the same for every binding: waits (smol timer, no
//! thread) until the table completes the entry, the deadline passes, or the requester is gone,
//! then turns the resolved slots into what the requester gets: the plain live answer (READ-
//! filtered; `use-twin` fallback), a timeout error, or the aggregated acks. Dropping a waiter
//! removes its entry, so the table never keeps an entry nobody waits for.

use super::acks::{
    ack_timeout, aggregate_status, aggregate_value, command_timeout, Ack, LIVE_RESPONSE,
};
use super::pending::{Resolution, Slot, SlotState};
use super::Hub;
use crate::error::DittoError;
use crate::protocol::{error_envelope, Criterion, Envelope, Headers, Topic};
use async_channel::Receiver;
use futures_lite::future;
use std::time::{Duration, Instant};

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
        acks: Vec<(String, super::acks::Ack)>,
    },
    /// the requester is gone: nothing to send
    Nothing,
}

/// Waits for one pending request.
pub struct Waiter {
    pub(crate) hub: Hub,
    pub(crate) cid: String,
    pub(crate) token: u64,
    pub(crate) rx: Receiver<Vec<Slot>>,
    pub(crate) deadline: Instant,
    pub(crate) timeout_ms: u64,
    pub(crate) plan: Plan,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.hub.pending().take(&self.cid, self.token);
    }
}

enum Wake<T> {
    Got(T),
    Timeout,
}

async fn until<T>(deadline: Instant, f: impl std::future::Future<Output = T>) -> Wake<T> {
    let timer = async {
        smol::Timer::at(deadline).await;
        Wake::Timeout
    };
    future::or(async { Wake::Got(f.await) }, timer).await
}

impl Waiter {
    /// The correlation-id.
    pub fn correlation_id(&self) -> &str {
        &self.cid
    }

    /// The request's topic.
    pub fn topic(&self) -> &Topic {
        &self.plan.topic
    }

    /// Sets the twin response (and the sequence `twin-persisted` waits for).
    pub fn set_twin(&mut self, response: Envelope, seq: Option<u64>) {
        self.plan.twin = Some((response, seq));
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Waits for the outcome.
    pub async fn wait(self) -> Finished {
        if let Some((resp, seq)) = &self.plan.twin {
            if let Some(seq) = *seq {
                let gate = self.hub.gate();
                match until(self.deadline, gate.wait(seq)).await {
                    Wake::Got(Err(_)) => {
                        let id = self.plan.topic.entity_id().unwrap_or_default();
                        return Finished::Error(DittoError::unavailable(&id));
                    }
                    Wake::Got(Ok(())) | Wake::Timeout => {}
                }
            }
            if self.deadline > Instant::now() {
                let ack = Ack::from_envelope(resp);
                self.hub.pending().fill_local(&self.cid, self.token, &ack);
            }
        }
        let (slots, invalid) = match until(self.deadline, self.rx.recv()).await {
            Wake::Got(Ok(slots)) => (slots, None),
            Wake::Got(Err(_)) => return Finished::Nothing,
            Wake::Timeout => {
                let taken = self.hub.pending().take(&self.cid, self.token);
                match taken {
                    Some(e) => (e.slots, e.invalid),
                    // completed meanwhile: the slots are in the channel
                    None => match self.rx.try_recv() {
                        Ok(slots) => (slots, None),
                        Err(_) => return Finished::Nothing,
                    },
                }
            }
        };
        self.finish(slots, invalid)
    }

    fn answer(&self, env: &Envelope) -> Envelope {
        let mut env = match &self.plan.filter {
            Some(f) => f(env.clone()),
            None => env.clone(),
        };
        env.headers.insert("correlation-id", self.cid.as_str());
        for (k, v) in self.plan.extra_headers.iter() {
            env.headers.insert(k, v.clone());
        }
        env
    }

    fn no_answer(&self, invalid: Option<String>) -> Finished {
        if let Some(f) = &self.plan.fallback {
            return Finished::Response(Box::new(f.clone()));
        }
        let mut e = command_timeout(self.timeout_ms);
        if let Some(why) = invalid {
            e = e.describe(format!("Received no appropriate live response within the specified timeout. An invalid response was received, though: {why}"));
        }
        Finished::Error(e)
    }

    fn finish(&self, slots: Vec<Slot>, invalid: Option<String>) -> Finished {
        if !self.plan.aggregated {
            let live = slots.into_iter().find(|s| s.label == LIVE_RESPONSE);
            return match live.map(|s| s.state) {
                Some(SlotState::Done(Resolution::Answer(env))) => {
                    Finished::Response(Box::new(self.answer(&env)))
                }
                _ => self.no_answer(invalid),
            };
        }
        let acks: Vec<(String, Ack)> = slots
            .into_iter()
            .map(|s| {
                let ack = match s.state {
                    SlotState::Done(Resolution::Ack(a)) => a,
                    SlotState::Done(Resolution::Answer(env)) => {
                        Ack::from_envelope(&self.answer(&env))
                    }
                    // every label that did not arrive, `live-response` included, as Ditto's
                    // AcknowledgementAggregator fills it in
                    _ => Ack::error(&self.cid, &ack_timeout(self.timeout_ms)),
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
