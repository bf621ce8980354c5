//! The ordered reading side of a session's outbound queue, shared by every streaming binding
//! (WS writer, SSE body): yields texts in queue order, holding a `Durable` reply (and all behind
//! it) until its store sequence is on disk, frees the reply's in-flight slot once it is out,
//! reports idleness for keep-alives, and closes the session when the binding stops reading.

use super::publisher::Gate;
use super::session::{Outbound, OutboundRx, SessionHandle};
use futures_lite::future;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A deadline timer armed lazily: waiting for a later deadline than the armed one leaves the
/// timer alone (when it fires early, it is re-armed to the deadline of that moment). Creating
/// or moving a reactor timer costs a wake-up of the reactor thread (async-io notifies it on
/// every insert); a session's idle deadline moves with every frame, so the timer moves at most
/// once per idle interval instead of once per frame.
#[derive(Debug)]
pub struct Deadline {
    timer: smol::Timer,
    armed: Option<Instant>,
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline {
            timer: smol::Timer::never(),
            armed: None,
        }
    }
}

impl Deadline {
    /// Resolves once `due` has passed (not before, at most one timer move per call).
    pub async fn until(&mut self, due: Instant) {
        loop {
            if Instant::now() >= due {
                return;
            }
            if self.armed.is_none_or(|at| at > due) {
                self.timer.set_at(due);
                self.armed = Some(due);
            }
            (&mut self.timer).await;
            self.armed = None;
        }
    }
}

/// What [`Ordered::next`] produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// the next text to send
    Send(Arc<str>),
    /// nothing was ready for the idle interval (time for a ping / keep-alive)
    Idle,
    /// the queue is closed and everything in it was delivered
    Closed,
    /// the local buffer passed its bound: the client does not read (session marked overflowed)
    Overflow,
}

enum Wake {
    Msg(Option<Outbound>),
    Durable,
    Idle,
}

/// Drains a session queue in order into a local buffer (so the queue keeps room for pushed
/// events while a reply waits for the disk), bounded by `max_buffer` items.
pub struct Ordered {
    rx: OutboundRx,
    gate: Gate,
    session: Arc<SessionHandle>,
    pending: VecDeque<Outbound>,
    max_buffer: usize,
    queue_open: bool,
    idle: Deadline,
}

impl Drop for Ordered {
    /// Whatever way the binding ends, the session stops taking replies and signals (a reader
    /// waiting for an in-flight slot wakes up instead of waiting forever).
    fn drop(&mut self) {
        self.session.close();
    }
}

/// What the front of the buffer allows: send this text, drop the item, or wait (the answer
/// step's `Outbound::ready`, polled once).
async fn front_text(gate: &Gate, item: &Outbound) -> Option<Option<Arc<str>>> {
    future::poll_once(item.ready(gate))
        .await
        .map(|r| r.map_or_else(|failed| failed, Some))
}

impl Ordered {
    /// Reads `rx`, the outbound queue of `session`; durable replies pass `gate`.
    pub fn new(
        rx: OutboundRx,
        session: Arc<SessionHandle>,
        gate: Gate,
        max_buffer: usize,
    ) -> Ordered {
        Ordered {
            rx,
            gate,
            session,
            pending: VecDeque::new(),
            max_buffer: max_buffer.max(1),
            queue_open: true,
            idle: Deadline::default(),
        }
    }

    /// The next text that is deliverable right now, without waiting (for batching writes).
    pub async fn next_ready(&mut self) -> Option<Arc<str>> {
        self.rx.drain_into(&mut self.pending);
        while let Some(front) = self.pending.front() {
            let text = front_text(&self.gate, front).await?;
            if let Some(Outbound::Durable { .. }) = self.pending.pop_front() {
                self.session.reply_sent();
            }
            if text.is_some() {
                return text;
            }
        }
        None
    }

    /// The next deliverable text; `Idle` after `idle` with nothing queued; `Closed` once the
    /// queue is closed and drained. Durable items whose commit failed are replaced by their
    /// `on_failure` text, or skipped if they have none.
    pub async fn next(&mut self, idle: Duration) -> Next {
        loop {
            self.rx.drain_into(&mut self.pending);
            if self.pending.len() > self.max_buffer {
                self.session.push_overflow();
                return Next::Overflow;
            }
            while let Some(front) = self.pending.front() {
                let Some(text) = front_text(&self.gate, front).await else {
                    break;
                };
                if let Some(Outbound::Durable { .. }) = self.pending.pop_front() {
                    self.session.reply_sent();
                }
                if let Some(t) = text {
                    return Next::Send(t);
                }
            }
            if !self.queue_open && self.pending.is_empty() {
                return Next::Closed;
            }
            let can_recv = self.queue_open;
            let front_seq = match self.pending.front() {
                Some(Outbound::Durable { seq, .. }) => Some(*seq),
                _ => None,
            };
            let idle_now = self.pending.is_empty();
            let idle_due = Instant::now() + idle;
            let (rx, gate, idle_timer) = (&self.rx, &self.gate, &mut self.idle);
            let recv = async {
                if can_recv {
                    Wake::Msg(rx.recv().await.ok())
                } else {
                    future::pending().await
                }
            };
            let durable = async {
                match front_seq {
                    Some(seq) => {
                        let _ = gate.wait(seq).await;
                        Wake::Durable
                    }
                    None => future::pending().await,
                }
            };
            let timer = async {
                if idle_now {
                    idle_timer.until(idle_due).await;
                    Wake::Idle
                } else {
                    future::pending().await
                }
            };
            match future::or(recv, future::or(durable, timer)).await {
                Wake::Msg(Some(m)) => self.pending.push_back(m),
                Wake::Msg(None) => self.queue_open = false,
                Wake::Durable => {}
                Wake::Idle => return Next::Idle,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::store::{BackendKind, Op, Store, Tree};

    fn text(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn delivers_in_order_after_durability_then_closes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let (session, rx) = SessionHandle::new(1, Arc::from(Vec::<String>::new()), 8, 4);
        let seq = store.submit(vec![Op {
            tree: Tree::Meta,
            key: b"k".to_vec(),
            value: Some(b"v".to_vec()),
            fresh: false,
        }]);
        smol::block_on(async {
            assert!(
                session
                    .reply(Outbound::Durable {
                        seq,
                        text: text("a"),
                        on_failure: None,
                    })
                    .await
            );
            assert!(session.reply(Outbound::Now(text("b"))).await);
            let mut o = Ordered::new(rx, session.clone(), Hub::new(store.clone()).gate(), 4);
            session.close();
            let idle = Duration::from_secs(30);
            assert_eq!(o.next(idle).await, Next::Send(text("a")));
            assert!(store.is_durable(seq), "'a' waited for its commit");
            assert_eq!(o.next(idle).await, Next::Send(text("b")));
            assert_eq!(o.next(idle).await, Next::Closed);
        });
        store.close().unwrap();
    }

    #[test]
    fn deadline_waits_until_the_latest_due_time_with_one_timer() {
        let mut d = Deadline::default();
        smol::block_on(async {
            let start = Instant::now();
            // armed for 20 ms, then asked for a later time: it fires early, re-arms, waits on
            let first = start + Duration::from_millis(20);
            let second = start + Duration::from_millis(60);
            let early = futures_lite::future::poll_once(d.until(first)).await;
            assert!(early.is_none(), "not before its due time");
            assert_eq!(d.armed, Some(first));
            d.until(second).await;
            assert!(Instant::now() >= second, "never before the due time");
            // an earlier due time than the armed one moves the timer back
            let later = Instant::now() + Duration::from_secs(60);
            assert!(futures_lite::future::poll_once(d.until(later))
                .await
                .is_none());
            let soon = Instant::now() + Duration::from_millis(5);
            d.until(soon).await;
            assert!(Instant::now() >= soon);
            assert_eq!(d.armed, None, "a fired timer is disarmed");
        });
    }

    #[test]
    fn reports_idle_when_nothing_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let (session, rx) = SessionHandle::new(1, Arc::from(Vec::<String>::new()), 1, 1);
        let mut o = Ordered::new(rx, session, Hub::new(store.clone()).gate(), 1);
        let n = smol::block_on(o.next(Duration::from_millis(10)));
        assert_eq!(n, Next::Idle);
        store.close().unwrap();
    }
}
