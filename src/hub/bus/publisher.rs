//! The event publisher and the visibility gate. Twin events wait in one queue (in store sequence
//! order); one thread fans them out — one copy per event however many subscribers — once their
//! write is durable (`Durability::Waited`) or at once (`Durability::Interval`: nobody waits for
//! that write, it becomes durable within the flush interval). A reply waits at the gate: its
//! write is durable AND every event up to it has been handed to the subscribers, so a client
//! that got its answer and then subscribes never receives that change's event. The backlog is
//! bounded by `Store::ready`.

use super::events::PendingEvent;
use crate::engine::Durability;
use crate::hub::{Hub, Inner};
use crate::store::{Op, Store, StoreError};
use event_listener::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

#[derive(Default)]
struct Queue {
    events: VecDeque<(u64, Durability, PendingEvent)>,
    /// the event being fanned out right now
    in_flight: Option<u64>,
    /// the publisher thread sleeps on `work` (else a producer's wake-up would be a wasted
    /// futex syscall: std's `notify_one` makes one whether anybody waits or not)
    idle: bool,
}

/// State shared by the hub (producers), the publisher thread and the gates.
#[derive(Default)]
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    published: Event,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if no event with a sequence up to `seq` is still waiting or being fanned out.
    fn settled(&self, seq: u64) -> bool {
        let q = self.lock();
        q.in_flight.is_none_or(|s| s > seq) && q.events.front().is_none_or(|(s, _, _)| *s > seq)
    }
}

/// Waits for a write to be durable and its events published; cheap to clone.
#[derive(Clone)]
pub struct Gate {
    store: Store,
    shared: Arc<Shared>,
}

impl Gate {
    /// True if `seq` is durable and every event up to it has been published.
    pub fn is_open(&self, seq: u64) -> bool {
        self.store.is_durable(seq) && self.shared.settled(seq)
    }

    /// Resolves once `seq` is durable and every event up to it has been published, or with the
    /// store's error if the write failed.
    pub async fn wait(&self, seq: u64) -> Result<(), StoreError> {
        self.store.durable(seq).await?;
        loop {
            if self.shared.settled(seq) {
                return Ok(());
            }
            let listener = self.shared.published.listen();
            if self.shared.settled(seq) {
                return Ok(());
            }
            listener.await;
        }
    }
}

/// Starts the publisher thread; it ends once the hub is dropped.
pub(crate) fn start(inner: Weak<Inner>, store: Store, shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("edgetwin-events".into())
        .stack_size(crate::bounds::THREAD_STACK_BYTES)
        .spawn(move || {
            // One lock per event: taking the next event off the queue settles the one before.
            let mut q = shared.lock();
            loop {
                let Some((seq, durability, event)) = q.events.pop_front() else {
                    q.in_flight = None;
                    drop(q);
                    shared.published.notify(usize::MAX);
                    q = shared.lock();
                    if !q.events.is_empty() {
                        continue;
                    }
                    if inner.strong_count() == 0 {
                        return;
                    }
                    q.idle = true;
                    let (mut g, _) = shared
                        .work
                        .wait_timeout(q, Duration::from_secs(1))
                        .unwrap_or_else(|e| e.into_inner());
                    g.idle = false;
                    q = g;
                    continue;
                };
                // in seq order: every event before this one is settled now
                q.in_flight = Some(seq);
                drop(q);
                shared.published.notify(usize::MAX);
                // A failed write never happened (the store is fail-stop): drop its event.
                let publish = match durability {
                    Durability::Interval => !store.is_failed(),
                    Durability::Waited => {
                        store.is_durable(seq) || smol::block_on(store.durable(seq)).is_ok()
                    }
                };
                if publish {
                    match inner.upgrade() {
                        Some(inner) => Hub { inner }.fan_out(&event),
                        None => return,
                    }
                }
                q = shared.lock();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the event publisher thread");
    }
}

impl Hub {
    /// The gate replies wait at.
    pub fn gate(&self) -> Gate {
        Gate {
            store: self.store().clone(),
            shared: self.inner.publisher.clone(),
        }
    }

    /// Submits a write and, with it, the event it causes (`event` runs right after the submit,
    /// so it sees the write, e.g. a policy created with the thing): both enter their queues
    /// under one lock, so events stay in store-sequence order.
    pub(crate) fn submit_with_event(
        &self,
        ops: Vec<Op>,
        durability: Durability,
        event: impl FnOnce() -> Option<PendingEvent>,
    ) -> u64 {
        let shared = &self.inner.publisher;
        let (seq, wake) = {
            let mut q = shared.lock();
            let seq = self.store().submit(ops);
            let ev = event();
            let wake = ev.is_some() && q.idle;
            if let Some(ev) = ev {
                q.events.push_back((seq, durability, ev));
            }
            (seq, wake)
        };
        if wake {
            shared.work.notify_one();
        }
        seq
    }
}
