//! The awaiting side of a pending request, the same for every binding: waits (a timer of the
//! hub's clock, no thread) until the table completes the entry, the deadline passes, or the
//! requester is gone, then lets its plan (`rules::outcome`) turn the resolved slots into what
//! the requester gets. Dropping a waiter removes its entry, so the table never keeps an entry
//! nobody waits for.

use super::Hub;
use crate::clock::Clock;
use crate::error::DittoError;
use crate::protocol::{Envelope, Topic};
use crate::rules::acks::Ack;
use crate::rules::outcome::{Finished, Plan};
use crate::rules::pending::Slot;
use async_channel::Receiver;
use futures_lite::future;
use std::time::{Duration, Instant};

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

async fn until<T>(
    clock: &dyn Clock,
    deadline: Instant,
    f: impl std::future::Future<Output = T>,
) -> Wake<T> {
    let sleep = clock.sleep_until(deadline);
    let timer = async {
        sleep.await;
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
                match until(self.hub.clock(), self.deadline, gate.wait(seq)).await {
                    Wake::Got(Err(_)) => {
                        let id = self.plan.topic.entity_id().unwrap_or_default();
                        return Finished::Error(DittoError::unavailable(&id));
                    }
                    Wake::Got(Ok(())) | Wake::Timeout => {}
                }
            }
            if self.deadline > self.hub.clock().instant() {
                let ack = Ack::from_envelope(resp);
                self.hub.pending().fill_local(&self.cid, self.token, &ack);
            }
        }
        let (slots, invalid) = match until(self.hub.clock(), self.deadline, self.rx.recv()).await {
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
        self.plan.finish(&self.cid, self.timeout_ms, slots, invalid)
    }
}
