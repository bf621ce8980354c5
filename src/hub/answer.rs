//! The one step from an `Answer` to what a binding sends: `Answer::outbound` for streaming
//! bindings (WS, SSE, MQTT: a message to queue now, a durable reply held by the gate, or a late
//! answer to await) and `Outbound::ready` (when a queued message may go, and as what);
//! `Answer::settle` for request/response bindings (HTTP, cloudevents, the uplink: waits until
//! the write is durable or the waiter finished). No binding waits for durability or correlates
//! a late answer itself.

use super::{Answer, Gate, Hub, Outbound, Waiter};
use crate::error::DittoError;
use crate::protocol::{error_envelope, Envelope, Group, Topic};
use crate::rules::outcome::Finished;
use serde_json::Value;
use std::sync::Arc;

/// What a streaming binding sends for an answer.
pub enum Outgoing {
    /// queue this now (a `Durable` one is sent once its write is durable, else its error)
    Now(Outbound),
    /// await this (a live answer, acks, a timeout) and send what it gives
    Later(Late),
}

/// A late answer: the live answer, aggregated acks or the timeout of a waiter.
pub struct Late(Box<Waiter>);

impl Late {
    /// Waits for the answer; `None` = nothing to send (the requester is gone).
    pub async fn envelope(self) -> Option<Envelope> {
        let (topic, cid) = (self.0.topic().clone(), self.0.correlation_id().to_owned());
        self.0.wait().await.to_envelope(&topic, &cid)
    }

    /// The answer as text.
    pub async fn text(self) -> Option<Arc<str>> {
        self.envelope().await.map(|e| e.to_shared_text())
    }
}

/// What a durable answer sends instead if its write never became durable: the 503 of
/// `not_durable` for the answer's topic and correlation-id, made only then (made for every
/// answer it was ~20 allocations of each default-acks write; issue 21).
#[derive(Debug, Clone)]
pub struct Failure(Arc<(Topic, Option<String>)>);

impl Failure {
    /// The error response as text.
    pub fn text(&self) -> Arc<str> {
        let (topic, cid) = &*self.0;
        error_envelope(Some(topic), cid.as_deref(), &not_durable(topic)).to_shared_text()
    }
}

/// 503 for a write that never became durable (the policy's or the thing's).
pub fn not_durable(topic: &Topic) -> DittoError {
    let id = topic.entity_id().unwrap_or_default();
    match topic.group {
        Group::Policies => crate::policy::errors::unavailable(&id),
        _ => DittoError::unavailable(&id),
    }
}

impl Outbound {
    /// Waits until this message may go: at once for `Now`; a `Durable` one once its write is
    /// durable and every event up to it went out (`Gate`). `Ok(text)`, or `Err(on_failure)` if
    /// the write never became durable (the error to send instead, if any).
    pub async fn ready(&self, gate: &Gate) -> Result<Arc<str>, Option<Arc<str>>> {
        match self {
            Outbound::Now(t) => Ok(t.clone()),
            Outbound::Durable {
                seq,
                text,
                on_failure,
            } => {
                if gate.is_open(*seq) || gate.wait(*seq).await.is_ok() {
                    Ok(text.clone())
                } else {
                    Err(on_failure.as_ref().map(Failure::text))
                }
            }
        }
    }
}

impl Answer {
    /// For streaming bindings: the message to queue now, or the late answer to await.
    pub fn outbound(self) -> Outgoing {
        let reply = match self {
            Answer::Later(w) => return Outgoing::Later(Late(w)),
            Answer::Now(reply) => reply,
        };
        let text: Arc<str> = reply.envelope.to_shared_text();
        Outgoing::Now(match reply.after {
            Some(seq) => {
                let Envelope {
                    topic, mut headers, ..
                } = reply.envelope;
                // the value `Headers::correlation_id` gives (a non-empty string), moved
                let cid = match headers.remove("correlation-id") {
                    Some(Value::String(c)) if !c.is_empty() => Some(c),
                    _ => None,
                };
                Outbound::Durable {
                    seq,
                    text,
                    on_failure: Some(Failure(Arc::new((topic, cid)))),
                }
            }
            None => Outbound::Now(text),
        })
    }

    /// For request/response bindings: the final answer once its write is durable (an error if
    /// it never became durable) or its waiter finished.
    pub async fn settle(self, hub: &Hub) -> Finished {
        match self {
            Answer::Now(reply) => {
                if let Some(seq) = reply.after {
                    if hub.gate().wait(seq).await.is_err() {
                        return Finished::Error(not_durable(&reply.envelope.topic));
                    }
                }
                Finished::Response(Box::new(reply.envelope))
            }
            Answer::Later(w) => w.wait().await,
        }
    }

    /// `settle` as an envelope (`None` = nothing to send).
    pub async fn settle_envelope(self, hub: &Hub) -> Option<Envelope> {
        let (topic, cid) = match &self {
            Answer::Now(r) => (
                r.envelope.topic.clone(),
                r.envelope
                    .headers
                    .correlation_id()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            Answer::Later(w) => (w.topic().clone(), w.correlation_id().to_owned()),
        };
        self.settle(hub).await.to_envelope(&topic, &cid)
    }
}
