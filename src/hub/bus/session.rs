//! A connected session as the hub sees it: its subjects, its bounded outbound queue and its
//! subscriptions. Replies to the session's own commands wait for queue space and, when they
//! wait on the disk, for a free in-flight slot (backpressure on that client); pushed signals
//! for a subscriber that let its queue fill up close the session. The queue's memory grows with
//! use (an idle session holds none of its capacity).

use super::queue::{Queue, Refused};
pub use crate::protocol::StreamKind;
use crate::rules::fanout::Subscription;
use async_channel::{RecvError, TryRecvError};
use event_listener::Event;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One message for a session's writer.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// send as soon as possible
    Now(Arc<str>),
    /// send once store sequence `seq` is durable; if that commit failed send `on_failure` instead
    Durable {
        /// store sequence number to wait for
        seq: u64,
        /// the message
        text: Arc<str>,
        /// replacement (an error response) if the write could not be made durable
        on_failure: Option<crate::hub::answer::Failure>,
    },
}

/// At most one subscription per stream kind (a second START replaces the first).
pub type Subscriptions = heapless::Vec<(StreamKind, Subscription), 5>;

/// The capacity bound shared by both ends of a session queue.
#[derive(Debug)]
struct Bound {
    capacity: usize,
    /// notified whenever the receiver took messages (or the queue closed)
    space: Event,
}

/// The hub's view of a session.
#[derive(Debug)]
pub struct SessionHandle {
    /// unique per process
    pub id: u64,
    /// authorization subjects, the first is the default subject
    pub subjects: Arc<[String]>,
    // A growing queue + explicit capacity: a bounded async-channel allocates (and touches)
    // all its slots up front, ~28 KiB per session at the default 512 — most of an idle
    // connection's memory.
    tx: Arc<Queue<Outbound>>,
    bound: Arc<Bound>,
    overflowed: AtomicBool,
    subs: Mutex<Subscriptions>,
    inflight: AtomicUsize,
    max_inflight: usize,
    slot_freed: Event,
}

/// The receiving end of a session's outbound queue (the session's writer).
#[derive(Debug)]
pub struct OutboundRx {
    rx: Arc<Queue<Outbound>>,
    bound: Arc<Bound>,
}

impl Drop for OutboundRx {
    /// Nobody reads any more: the session stops taking messages (as a dropped channel did).
    fn drop(&mut self) {
        self.rx.close();
        self.bound.space.notify(usize::MAX);
    }
}

impl OutboundRx {
    /// Next message; `Err` once the queue is closed and empty.
    pub async fn recv(&self) -> Result<Outbound, RecvError> {
        let m = self.rx.pop().await;
        self.bound.space.notify(usize::MAX);
        m
    }

    /// Next message if one is queued.
    pub fn try_recv(&self) -> Result<Outbound, TryRecvError> {
        let m = self.rx.try_pop();
        if m.is_ok() {
            self.bound.space.notify(usize::MAX);
        }
        m
    }

    /// Moves every queued message to the back of `out` (one lock); how many.
    pub fn drain_into(&self, out: &mut std::collections::VecDeque<Outbound>) -> usize {
        let n = self.rx.drain_into(out);
        if n > 0 {
            self.bound.space.notify(usize::MAX);
        }
        n
    }

    /// True once the session's queue is closed.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.len() == 0
    }
}

impl Drop for SessionHandle {
    /// The last handle is gone: the reader gets what was queued, then the end.
    fn drop(&mut self) {
        self.tx.close();
    }
}

impl SessionHandle {
    /// A handle and the receiving end of its outbound queue of `capacity` messages; at most
    /// `max_inflight` replies may wait for durability at once.
    pub fn new(
        id: u64,
        subjects: Arc<[String]>,
        capacity: usize,
        max_inflight: usize,
    ) -> (Arc<SessionHandle>, OutboundRx) {
        let tx = Arc::new(Queue::new());
        let rx = tx.clone();
        let bound = Arc::new(Bound {
            capacity: capacity.max(1),
            space: Event::new(),
        });
        let h = SessionHandle {
            id,
            subjects,
            tx,
            bound: bound.clone(),
            overflowed: AtomicBool::new(false),
            subs: Mutex::new(Subscriptions::new()),
            inflight: AtomicUsize::new(0),
            max_inflight: max_inflight.max(1),
            slot_freed: Event::new(),
        };
        (Arc::new(h), OutboundRx { rx, bound })
    }

    /// Queues a reply to the session's own request, waiting for space (backpressure) and, for
    /// a reply that waits on the disk, for an in-flight slot (the writer frees it with
    /// `reply_sent`). False if the session is closed.
    pub async fn reply(&self, mut msg: Outbound) -> bool {
        if matches!(msg, Outbound::Durable { .. }) && !self.take_slot().await {
            return false;
        }
        loop {
            if self.tx.is_closed() {
                return false;
            }
            let back = match self.tx.push_within(msg, self.bound.capacity) {
                Ok(()) => return true,
                Err(Refused::Closed(_)) => return false,
                Err(Refused::Full(back)) => back,
            };
            msg = back;
            let space = self.bound.space.listen();
            if self.tx.is_closed() || self.tx.len() < self.bound.capacity {
                continue;
            }
            space.await;
        }
    }

    async fn take_slot(&self) -> bool {
        loop {
            if self.tx.is_closed() {
                return false;
            }
            let n = self.inflight.load(Ordering::Acquire);
            if n < self.max_inflight {
                if self
                    .inflight
                    .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            let listener = self.slot_freed.listen();
            if self.inflight.load(Ordering::Acquire) < self.max_inflight || self.tx.is_closed() {
                continue;
            }
            listener.await;
        }
    }

    /// The writer sent (or dropped) a durable reply: frees its in-flight slot.
    pub fn reply_sent(&self) {
        self.inflight.fetch_sub(1, Ordering::AcqRel);
        self.slot_freed.notify(1);
    }

    /// Queues a pushed signal (event, live command, ...). If the queue is full the session is
    /// marked overflowed and its queue closed: the writer then closes the connection.
    pub fn push(&self, msg: Outbound) {
        if let Err(Refused::Full(_)) = self.tx.push_within(msg, self.bound.capacity) {
            self.push_overflow();
        }
    }

    /// Marks the session overflowed and stops its queue (the writer closes the connection).
    pub fn push_overflow(&self) {
        self.overflowed.store(true, Ordering::SeqCst);
        self.close();
    }

    /// True once the session stopped taking messages (closed or overflowed).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True once a pushed signal found the queue full.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::SeqCst)
    }

    /// Stops delivery (session ending); wakes a `reply` waiting for space or a slot.
    pub fn close(&self) {
        self.tx.close();
        self.bound.space.notify(usize::MAX);
        self.slot_freed.notify(usize::MAX);
    }

    /// Sets (or replaces) the subscription of a kind.
    pub fn subscribe(&self, kind: StreamKind, sub: Subscription) {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|(k, _)| *k != kind);
        // Capacity 5 = number of kinds, and the kind was just removed: push cannot fail.
        let _ = subs.push((kind, sub));
    }

    /// Removes the subscription of a kind; true if there was one.
    pub fn unsubscribe(&self, kind: StreamKind) -> bool {
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        let before = subs.len();
        subs.retain(|(k, _)| *k != kind);
        subs.len() != before
    }

    /// Runs `f` on the subscription of a kind, if any (no await while the lock is held).
    pub fn with_subscription<R>(
        &self,
        kind: StreamKind,
        f: impl FnOnce(&Subscription) -> R,
    ) -> Option<R> {
        let subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.iter().find(|(k, _)| *k == kind).map(|(_, s)| f(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_overflow_closes_queue() {
        let (h, rx) = SessionHandle::new(1, Arc::from(vec!["nginx:a".to_owned()]), 2, 4);
        for i in 0..3 {
            h.push(Outbound::Now(Arc::from(format!("m{i}"))));
        }
        assert!(h.overflowed());
        assert!(rx.is_closed());
        assert_eq!(rx.len(), 2, "queued messages are bounded by the capacity");
    }

    #[test]
    fn reply_waits_for_space_and_close_releases_it() {
        let (h, rx) = SessionHandle::new(1, Arc::from(Vec::<String>::new()), 1, 4);
        assert!(futures_lite::future::block_on(
            h.reply(Outbound::Now(Arc::from("a")))
        ));
        let mut second = Box::pin(h.reply(Outbound::Now(Arc::from("b"))));
        assert!(
            futures_lite::future::block_on(futures_lite::future::poll_once(&mut second)).is_none()
        );
        assert!(rx.try_recv().is_ok(), "taking a message frees space");
        assert!(futures_lite::future::block_on(second));
        assert_eq!(rx.len(), 1);
        let mut third = Box::pin(h.reply(Outbound::Now(Arc::from("c"))));
        assert!(
            futures_lite::future::block_on(futures_lite::future::poll_once(&mut third)).is_none()
        );
        h.close();
        assert!(
            !futures_lite::future::block_on(third),
            "a closed session refuses the reply"
        );
    }

    #[test]
    fn subscriptions_replace_per_kind() {
        let (h, _rx) = SessionHandle::new(1, Arc::from(Vec::<String>::new()), 2, 4);
        h.subscribe(
            StreamKind::Events,
            Subscription {
                namespaces: vec!["a".into()],
                ..Default::default()
            },
        );
        h.subscribe(
            StreamKind::Events,
            Subscription {
                namespaces: vec!["b".into()],
                ..Default::default()
            },
        );
        assert_eq!(
            h.with_subscription(StreamKind::Events, |s| s.namespaces.clone()),
            Some(vec!["b".to_owned()])
        );
        assert!(h.unsubscribe(StreamKind::Events));
        assert!(!h.unsubscribe(StreamKind::Events));
    }
}
