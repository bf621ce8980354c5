//! The ordered reading side of a session's outbound queue, shared by every streaming binding
//! (WS writer, SSE body): yields texts in queue order, holding a `Durable` item (and all behind
//! it) until its store sequence is on disk, and reports idleness so the caller can keep alive.

use super::Outbound;
use crate::store::Store;
use async_channel::Receiver;
use futures_lite::future;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// What [`Ordered::next`] produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// the next text to send
    Send(Arc<str>),
    /// nothing was ready for the idle interval (time for a ping / keep-alive)
    Idle,
    /// the queue is closed and everything in it was delivered
    Closed,
}

enum Wake {
    Msg(Option<Outbound>),
    Durable,
    Idle,
}

/// Drains a session queue in order, with a local look-ahead buffer of at most `max_pending`
/// items waiting for durability (the queue itself stays bounded by its capacity).
pub struct Ordered {
    rx: Receiver<Outbound>,
    store: Store,
    pending: VecDeque<Outbound>,
    max_pending: usize,
    queue_open: bool,
}

/// What the front of the buffer allows: send this text, drop the item, or wait.
async fn front_text(store: &Store, item: &Outbound) -> Option<Option<Arc<str>>> {
    match item {
        Outbound::Now(t) => Some(Some(t.clone())),
        Outbound::Durable {
            seq,
            text,
            on_failure,
        } => {
            if store.is_durable(*seq) {
                return Some(Some(text.clone()));
            }
            match future::poll_once(store.durable(*seq)).await {
                None => None,
                Some(Ok(())) => Some(Some(text.clone())),
                Some(Err(_)) => Some(on_failure.clone()),
            }
        }
    }
}

impl Ordered {
    /// Reads `rx` (a session's outbound queue) against `store`.
    pub fn new(rx: Receiver<Outbound>, store: Store, max_pending: usize) -> Ordered {
        Ordered {
            rx,
            store,
            pending: VecDeque::new(),
            max_pending: max_pending.max(1),
            queue_open: true,
        }
    }

    /// The next deliverable text; `Idle` after `idle` with nothing queued; `Closed` once the
    /// queue is closed and drained. Durable items whose commit failed are replaced by their
    /// `on_failure` text, or skipped if they have none.
    pub async fn next(&mut self, idle: Duration) -> Next {
        loop {
            while self.pending.len() < self.max_pending {
                match self.rx.try_recv() {
                    Ok(m) => self.pending.push_back(m),
                    Err(_) => break,
                }
            }
            while let Some(front) = self.pending.front() {
                let Some(text) = front_text(&self.store, front).await else {
                    break;
                };
                self.pending.pop_front();
                if let Some(t) = text {
                    return Next::Send(t);
                }
            }
            if !self.queue_open && self.pending.is_empty() {
                return Next::Closed;
            }
            let can_recv = self.queue_open && self.pending.len() < self.max_pending;
            let front_seq = match self.pending.front() {
                Some(Outbound::Durable { seq, .. }) => Some(*seq),
                _ => None,
            };
            let idle_now = self.pending.is_empty();
            let (rx, store) = (&self.rx, &self.store);
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
                        let _ = store.durable(seq).await;
                        Wake::Durable
                    }
                    None => future::pending().await,
                }
            };
            let timer = async {
                if idle_now {
                    smol::Timer::after(idle).await;
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
    use crate::store::{BackendKind, Op, Tree};

    fn text(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn delivers_in_order_after_durability_then_closes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let (tx, rx) = async_channel::bounded(8);
        let seq = store.submit(vec![Op {
            tree: Tree::Meta,
            key: b"k".to_vec(),
            value: Some(b"v".to_vec()),
        }]);
        smol::block_on(async {
            tx.send(Outbound::Durable {
                seq,
                text: text("a"),
                on_failure: None,
            })
            .await
            .unwrap();
            tx.send(Outbound::Now(text("b"))).await.unwrap();
            tx.close();
            let mut o = Ordered::new(rx, store.clone(), 4);
            let idle = Duration::from_secs(30);
            assert_eq!(o.next(idle).await, Next::Send(text("a")));
            assert!(store.is_durable(seq), "'a' waited for its commit");
            assert_eq!(o.next(idle).await, Next::Send(text("b")));
            assert_eq!(o.next(idle).await, Next::Closed);
        });
        store.close().unwrap();
    }

    #[test]
    fn reports_idle_when_nothing_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let (_tx, rx) = async_channel::bounded::<Outbound>(1);
        let mut o = Ordered::new(rx, store.clone(), 1);
        let n = smol::block_on(o.next(Duration::from_millis(10)));
        assert_eq!(n, Next::Idle);
        store.close().unwrap();
    }
}
