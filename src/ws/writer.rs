//! The writer half of a WS session. Sends the session's outbound queue in order through the
//! shared `hub::bus::ordered` drain (a durable reply goes out once it passed the hub's gate), writes
//! every ready message with one flush, and pings every `ping_every` whether or not it is busy
//! (the client's pongs keep its session alive: `limits.ws_idle_timeout_secs`). Stops when the
//! queue is drained, the session overflowed, or a write failed; the session loop closes.
//! It runs in the session's task beside the reader (`Beside`), not as a task of its own.

use crate::hub::bus::ordered::{Next, Ordered};
use crate::hub::Gate;
use crate::hub::{OutboundRx, SessionHandle};
use crate::tls::Stream;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketSender;
use futures_util::SinkExt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// How the writer ended (the sender is handed back for the closing handshake).
#[derive(Debug)]
pub(super) enum End {
    /// the queue was closed and everything in it was sent
    Drained,
    /// a pushed signal found the queue full: the client does not read fast enough (1013)
    Overflow,
    /// a write failed: the socket is gone, made no progress for `limits.send_timeout_secs`, or
    /// the client's Close frame arrived (no data frames after it)
    Failed(WsError),
}

/// Runs until the queue is closed and drained, the session overflowed, or a write fails.
pub(super) async fn run(
    mut sender: WebSocketSender<Stream>,
    rx: OutboundRx,
    session: Arc<SessionHandle>,
    gate: Gate,
    max_buffer: usize,
    ping_every: Duration,
) -> (WebSocketSender<Stream>, End) {
    let mut queue = Ordered::new(rx, session.clone(), gate, max_buffer);
    let mut last_ping = Instant::now();
    loop {
        if session.overflowed() {
            return (sender, End::Overflow);
        }
        let until_ping = ping_every.saturating_sub(last_ping.elapsed());
        let first = match queue.next(until_ping.max(Duration::from_millis(1))).await {
            Next::Send(t) => t,
            Next::Idle => {
                last_ping = Instant::now();
                if let Err(e) = sender.send(Message::Ping(Default::default())).await {
                    return (sender, End::Failed(e));
                }
                continue;
            }
            Next::Closed | Next::Overflow if session.overflowed() => continue,
            Next::Closed | Next::Overflow => return (sender, End::Drained),
        };
        // Queue every ready message, then write them all with one flush (one syscall for a
        // burst of pipelined replies or events instead of one per message).
        if let Err(e) = sender.feed(Message::text(first.to_string())).await {
            return (sender, End::Failed(e));
        }
        while let Some(t) = queue.next_ready().await {
            if let Err(e) = sender.feed(Message::text(t.to_string())).await {
                return (sender, End::Failed(e));
            }
        }
        // A busy session pings too: its client may only read, and its pongs prove it is alive.
        if last_ping.elapsed() >= ping_every {
            last_ping = Instant::now();
            if let Err(e) = sender.feed(Message::Ping(Default::default())).await {
                return (sender, End::Failed(e));
            }
        }
        if let Err(e) = sender.flush().await {
            return (sender, End::Failed(e));
        }
    }
}

/// The writer, driven by the session's task beside its reader: polled while the reader waits
/// for a frame (`run`) and while it handles one (`beside`: a reply waiting for queue space or
/// an in-flight slot is freed by the writer, so the writer must go on meanwhile). A reply the
/// reader queues is written in the same poll, without handing it to another executor thread.
pub(super) struct Beside<'a, F: Future<Output = (WebSocketSender<Stream>, End)>> {
    writer: Pin<&'a mut F>,
    done: Option<(WebSocketSender<Stream>, End)>,
}

impl<'a, F: Future<Output = (WebSocketSender<Stream>, End)>> Beside<'a, F> {
    pub(super) fn new(writer: Pin<&'a mut F>) -> Self {
        Beside { writer, done: None }
    }

    /// True once the writer ended (its result is kept for `finish`).
    pub(super) fn ended(&self) -> bool {
        self.done.is_some()
    }

    /// Drives the writer; resolves once it ended (dropping this future keeps its progress).
    pub(super) async fn run(&mut self) {
        if self.done.is_none() {
            let out = self.writer.as_mut().await;
            self.done = Some(out);
        }
    }

    /// Runs `f` to completion, driving the writer meanwhile.
    pub(super) async fn beside<T>(&mut self, f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        poll_fn(|cx| {
            if let Poll::Ready(t) = f.as_mut().poll(cx) {
                return Poll::Ready(t);
            }
            if self.done.is_none() {
                if let Poll::Ready(out) = self.writer.as_mut().poll(cx) {
                    self.done = Some(out);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Lets the writer finish (send what is still queued) and hands back the sender.
    pub(super) async fn finish(mut self) -> (WebSocketSender<Stream>, End) {
        match self.done.take() {
            Some(d) => d,
            None => self.writer.as_mut().await,
        }
    }
}
