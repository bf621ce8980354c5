//! The session bus: connected sessions (WS, SSE, the MQTT bridge) with their bounded outbound
//! queues and subscriptions, and the delivery of pushed signals to them: twin events once their
//! write is durable (`publisher`, `events`), live signals at once (`fanout`), each in its
//! session's order (`ordered`, read by every streaming binding).

pub mod events;
pub mod fanout;
pub mod ordered;
pub mod publisher;
#[cfg(test)]
mod publisher_tests;
mod queue;
pub mod session;

use super::Hub;
use crate::rules::fanout::Subscription;
use session::{OutboundRx, SessionHandle, StreamKind};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Hub {
    /// Registers a new session and returns its handle and outbound queue.
    pub fn open_session(
        &self,
        subjects: Arc<[String]>,
        queue: usize,
        max_inflight: usize,
    ) -> (Arc<SessionHandle>, OutboundRx) {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let (h, rx) = SessionHandle::new(id, subjects, queue, max_inflight);
        self.inner
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, h.clone());
        (h, rx)
    }

    /// Removes a session and all its subscriptions; its pending requests are dropped and what
    /// it owed (live answers, acks) is answered for it at once.
    pub fn close_session(&self, id: u64) {
        if let Some(h) = self
            .inner
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        {
            h.close();
        }
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for list in subs.values_mut() {
            list.retain(|s| s.id != id);
        }
        drop(subs);
        // after the session is marked closed: a concurrent fan-out either sees it closed or
        // records it before this runs (both under the pending lock, see `acks_dispatched`)
        self.pending().session_closed(id);
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Starts (or replaces) a subscription of a session.
    pub fn subscribe(&self, session: &Arc<SessionHandle>, kind: StreamKind, sub: Subscription) {
        session.subscribe(kind, sub);
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let list = subs.entry(kind).or_default();
        if !list.iter().any(|s| s.id == session.id) {
            list.push(session.clone());
        }
    }

    /// Stops a subscription of a session.
    pub fn unsubscribe(&self, session: &SessionHandle, kind: StreamKind) {
        session.unsubscribe(kind);
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get_mut(&kind) {
            list.retain(|s| s.id != session.id);
        }
    }

    /// True if any session is subscribed to `kind` (lets publishers skip building a signal).
    pub fn has_subscribers(&self, kind: StreamKind) -> bool {
        self.subscriber_count(kind) > 0
    }

    /// Number of sessions subscribed to `kind`.
    pub fn subscriber_count(&self, kind: StreamKind) -> usize {
        self.inner
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kind)
            .map_or(0, Vec::len)
    }

    /// Runs `f` for every session subscribed to `kind` (under a read lock: no awaits inside).
    pub fn for_subscribers(&self, kind: StreamKind, mut f: impl FnMut(&Arc<SessionHandle>)) {
        let subs = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get(&kind) {
            list.iter().for_each(&mut f);
        }
    }
}
