//! A session's outbound queue: one lock around a `VecDeque` (one sender side, the session
//! handle; one receiver, its binding's writer). Replaces async-channel's unbounded queue, which
//! allocated a zeroed 1.5 KiB block every 31 messages (a large-bin `calloc`: glibc consolidated
//! its fast bins on each, 2 % of the server at 4 connections; issue 21). The deque's capacity
//! is kept while in use and freed when a drain empties it beyond `KEEP` items.

use async_channel::{RecvError, TryRecvError};
use event_listener::Event;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Items of capacity a drained queue keeps (more is freed when it empties).
const KEEP: usize = 64;

/// Why an item was not queued (it is handed back).
#[derive(Debug)]
pub(super) enum Refused<T> {
    /// the queue is closed
    Closed(T),
    /// the queue holds `capacity` items already
    Full(T),
}

#[derive(Debug)]
pub(super) struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    /// set under the lock (a push after `close` is refused, every item before it is received)
    closed: AtomicBool,
    /// notified when an item arrives or the queue closes
    ready: Event,
}

impl<T> Queue<T> {
    pub(super) fn new() -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            ready: Event::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `t` unless the queue holds `capacity` items (`Full`, whether or not it is
    /// closed: a pushed signal marks such a session overflowed) or is closed.
    pub(super) fn push_within(&self, t: T, capacity: usize) -> Result<(), Refused<T>> {
        let mut items = self.lock();
        if items.len() >= capacity {
            return Err(Refused::Full(t));
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(Refused::Closed(t));
        }
        items.push_back(t);
        drop(items);
        self.ready.notify(1);
        Ok(())
    }

    /// Stops taking items; the receiver still gets what was queued, then `Closed`.
    pub(super) fn close(&self) {
        let items = self.lock();
        self.closed.store(true, Ordering::Release);
        drop(items);
        self.ready.notify(usize::MAX);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The front item, if one is queued.
    pub(super) fn try_pop(&self) -> Result<T, TryRecvError> {
        let mut items = self.lock();
        match items.pop_front() {
            Some(t) => {
                shrink_if_drained(&mut items);
                Ok(t)
            }
            None if self.closed.load(Ordering::Relaxed) => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Moves every queued item to the back of `out` (one lock); how many.
    pub(super) fn drain_into(&self, out: &mut VecDeque<T>) -> usize {
        let mut items = self.lock();
        let n = items.len();
        out.extend(items.drain(..));
        shrink_if_drained(&mut items);
        n
    }

    /// The front item, waiting for one; `Err` once the queue is closed and empty.
    pub(super) async fn pop(&self) -> Result<T, RecvError> {
        loop {
            match self.try_pop() {
                Ok(t) => return Ok(t),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => {}
            }
            let listener = self.ready.listen();
            match self.try_pop() {
                Ok(t) => return Ok(t),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => listener.await,
            }
        }
    }
}

fn shrink_if_drained<T>(items: &mut VecDeque<T>) {
    if items.is_empty() && items.capacity() > KEEP {
        *items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};
    use std::sync::Arc;

    #[test]
    fn order_capacity_and_close() {
        let q = Queue::new();
        for i in 0..3 {
            q.push_within(i, 3).unwrap();
        }
        assert!(matches!(q.push_within(9, 3), Err(Refused::Full(9))));
        assert_eq!(q.try_pop().unwrap(), 0);
        let mut out = VecDeque::from([7]);
        assert_eq!(q.drain_into(&mut out), 2);
        assert_eq!(out, [7, 1, 2]);
        assert!(matches!(q.try_pop(), Err(TryRecvError::Empty)));
        q.push_within(4, 3).unwrap();
        q.close();
        assert!(matches!(q.push_within(5, 3), Err(Refused::Closed(5))));
        assert!(matches!(q.push_within(5, 1), Err(Refused::Full(5))));
        assert_eq!(
            block_on(q.pop()),
            Ok(4),
            "what was queued before close arrives"
        );
        assert_eq!(block_on(q.pop()), Err(RecvError));
        assert!(matches!(q.try_pop(), Err(TryRecvError::Closed)));
    }

    #[test]
    fn a_waiting_pop_wakes_on_push_and_on_close() {
        let q = Arc::new(Queue::new());
        let mut waiting = Box::pin(q.pop());
        assert!(block_on(poll_once(&mut waiting)).is_none());
        let q2 = q.clone();
        std::thread::spawn(move || q2.push_within(1u32, 8).unwrap())
            .join()
            .unwrap();
        assert_eq!(block_on(waiting), Ok(1));
        let mut waiting = Box::pin(q.pop());
        assert!(block_on(poll_once(&mut waiting)).is_none());
        q.close();
        assert_eq!(block_on(waiting), Err(RecvError));
    }

    #[test]
    fn a_drained_queue_frees_what_it_grew_beyond_keep() {
        let q = Queue::new();
        for i in 0..KEEP * 4 {
            q.push_within(i, usize::MAX).unwrap();
        }
        let mut out = VecDeque::new();
        q.drain_into(&mut out);
        assert_eq!(q.lock().capacity(), 0);
        for i in 0..KEEP / 2 {
            q.push_within(i, usize::MAX).unwrap();
        }
        let cap = q.lock().capacity();
        q.drain_into(&mut out);
        assert_eq!(q.lock().capacity(), cap, "a small queue keeps its room");
    }
}
