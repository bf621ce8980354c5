//! The event publisher and the visibility gate. Twin events wait in one queue (in store sequence
//! order) and are fanned out one at a time, in that order — one copy per event however many
//! subscribers — once their write is durable (`Durability::Waited`) or at once
//! (`Durability::Interval`: nobody waits for that write, it becomes durable within the flush
//! interval). Whoever publishes holds the queue's `busy` token: the `edgetwin-events` thread, or
//! the producer itself when the queue was idle and its event needs no wait (no hand-off to
//! another thread on the way to the subscribers). A reply waits at the gate: its write is
//! durable AND every event up to it has been handed to the subscribers, so a client that got
//! its answer and then subscribes never receives that change's event. The backlog is bounded
//! by `Store::ready`.

use super::events::PendingEvent;
use super::session::StreamKind;
use crate::engine::Durability;
use crate::hub::{Hub, Inner};
use crate::store::{Op, Store, StoreError};
use event_listener::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// A producer publishes inline only while at most this many sessions subscribed to twin
/// events (a fan-out's cost grows with them; beyond, the thread takes it off the request path).
const INLINE_SUBSCRIBERS: usize = 8;
/// Most events a producer publishes inline (its own and those queued meanwhile) before it
/// hands the rest to the thread.
const INLINE_EVENTS: usize = 64;

#[derive(Default)]
struct Queue {
    events: VecDeque<(u64, Durability, PendingEvent)>,
    /// the event being fanned out right now
    in_flight: Option<u64>,
    /// someone publishes (the thread or a producer): one at a time, so events go out in order
    busy: bool,
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

    /// Publishes queued events in order (the caller took `busy`), at most `max` of them; a
    /// `Waited` event whose write is not durable yet ends the run unless `block` (only the
    /// thread may block). `publish` false = the hub is gone. Returns with `busy` released.
    fn drain<'a>(
        &'a self,
        store: &Store,
        mut q: MutexGuard<'a, Queue>,
        max: usize,
        block: bool,
        publish: &mut dyn FnMut(&PendingEvent) -> bool,
    ) -> MutexGuard<'a, Queue> {
        let mut n = 0;
        loop {
            let next = match q.events.front() {
                Some(_) if n == max => None,
                Some((seq, Durability::Waited, _)) if !block && !store.is_durable(*seq) => None,
                Some(_) => q.events.pop_front(),
                None => None,
            };
            let Some((seq, durability, event)) = next else {
                q.in_flight = None;
                q.busy = false;
                return q;
            };
            // in seq order: every event before this one is settled now
            q.in_flight = Some(seq);
            drop(q);
            self.published.notify(usize::MAX);
            // A failed write never happened (the store is fail-stop): drop its event.
            let ok = match durability {
                Durability::Interval => !store.is_failed(),
                Durability::Waited => {
                    store.is_durable(seq) || smol::block_on(store.durable(seq)).is_ok()
                }
            };
            let alive = !ok || publish(&event);
            drop(event);
            q = self.lock();
            n += 1;
            if !alive {
                q.in_flight = None;
                q.busy = false;
                return q;
            }
        }
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
            let mut q = shared.lock();
            loop {
                if !q.busy && !q.events.is_empty() {
                    q.busy = true;
                    let mut publish = |event: &PendingEvent| match inner.upgrade() {
                        Some(inner) => {
                            Hub { inner }.fan_out(event);
                            true
                        }
                        None => false,
                    };
                    q = shared.drain(&store, q, usize::MAX, true, &mut publish);
                    drop(q);
                    shared.published.notify(usize::MAX);
                    q = shared.lock();
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
    /// under one lock, so events stay in store-sequence order. An event that needs no wait is
    /// published here when nobody else publishes (and few sessions subscribed); otherwise the
    /// thread is woken if it sleeps.
    pub(crate) fn submit_with_event(
        &self,
        ops: Vec<Op>,
        durability: Durability,
        event: impl FnOnce() -> Option<PendingEvent>,
    ) -> u64 {
        let shared = &self.inner.publisher;
        let mut q = shared.lock();
        let seq = self.store().submit(ops);
        let Some(ev) = event() else {
            return seq;
        };
        q.events.push_back((seq, durability, ev));
        if q.busy {
            return seq;
        }
        let inline = durability == Durability::Interval
            && self.subscriber_count(StreamKind::Events) <= INLINE_SUBSCRIBERS;
        if inline {
            q.busy = true;
            let mut publish = |event: &PendingEvent| {
                self.fan_out(event);
                true
            };
            q = shared.drain(self.store(), q, INLINE_EVENTS, false, &mut publish);
        }
        // what is left (a `Waited` event, more than this producer's share) is the thread's
        let wake = !q.events.is_empty() && q.idle;
        drop(q);
        if inline {
            shared.published.notify(usize::MAX);
        }
        if wake {
            shared.work.notify_one();
        }
        seq
    }
}
