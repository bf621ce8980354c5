//! One open cloud session: a writer task fed by a bounded queue, a reader that never stops
//! reading (Ditto drops what its 200-message outgoing buffer cannot hold,
//! `publisher.backpressure-buffer-size` in gateway.conf) and hands every frame to a handler
//! that must not block, the table of commands waiting for their answer (at most
//! `max_in_flight`, Ditto queues 100 per socket), and a watchdog that pings a quiet socket and
//! ends a session that stays silent (a cloud or proxy that stalls without closing).

use super::client::Socket;
use super::status::{add, Stats};
use super::wire::{classify, Incoming};
use crate::protocol::Envelope;
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use smol::lock::Semaphore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Frames queued for the writer at most (answers to live commands wait for space).
const WRITE_QUEUE: usize = 256;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// no answer within the request timeout
    Timeout,
    /// the session ended first
    Closed,
}

/// Receives everything the cloud sends that is not an answer to a request. Runs on the
/// reader: it must return at once (queue or spawn, never wait).
pub trait Handler: Send + Sync {
    /// One classified frame (`Ack`, `Event`, `Live`, `Error`, `Other`, `Malformed`).
    fn incoming(&self, frame: Incoming);
}

type Waiting = HashMap<String, async_channel::Sender<Envelope>>;

/// The session as the jobs see it: send a command and wait for its answer.
pub struct Link {
    out: async_channel::Sender<Message>,
    out_rx: async_channel::Receiver<Message>,
    waiting: Mutex<Waiting>,
    slots: Semaphore,
    closed: AtomicBool,
    last_heard: AtomicI64,
    timeout: Duration,
    stats: Arc<Stats>,
}

impl Link {
    /// A link allowing `max_in_flight` requests, each answered within `timeout`.
    pub fn new(max_in_flight: usize, timeout: Duration, stats: Arc<Stats>) -> Arc<Link> {
        let (out, out_rx) = async_channel::bounded(WRITE_QUEUE);
        Arc::new(Link {
            out,
            out_rx,
            waiting: Mutex::new(HashMap::new()),
            slots: Semaphore::new(max_in_flight.max(1)),
            closed: AtomicBool::new(false),
            last_heard: AtomicI64::new(crate::clock::now_millis()),
            timeout,
            stats,
        })
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True once the session ended (requests fail with `Closed`).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends the session: the writer stops, every waiting request fails with `Closed`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.out.close();
        self.waiting().clear();
    }

    /// Sends `text` (a command with correlation-id `cid`) and waits for its answer, holding
    /// one of the `max_in_flight` slots meanwhile.
    pub async fn request(&self, text: String, cid: &str) -> Result<Envelope, LinkError> {
        let _slot = self.slots.acquire().await;
        if self.is_closed() {
            return Err(LinkError::Closed);
        }
        let (tx, rx) = async_channel::bounded(1);
        self.waiting().insert(cid.to_owned(), tx);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let answer = async {
            if self.out.send(Message::text(text)).await.is_err() {
                return Err(LinkError::Closed);
            }
            rx.recv().await.map_err(|_| LinkError::Closed)
        };
        let timer = async {
            smol::Timer::after(self.timeout).await;
            Err(LinkError::Timeout)
        };
        let r = futures_lite::future::or(answer, timer).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.waiting().remove(cid);
        if r == Err(LinkError::Timeout) {
            add(&self.stats.c.timeouts, 1);
        }
        r
    }

    /// Queues a frame that expects no answer (an answer to a cloud live command); waits for
    /// queue space, false once the session ended.
    pub async fn send(&self, text: String) -> bool {
        !self.is_closed() && self.out.send(Message::text(text)).await.is_ok()
    }

    /// Hands an answer to its waiting request; gives it back if nobody waits for it (late,
    /// or not an answer to the uplink's own request).
    fn answer(&self, cid: &str, env: Envelope) -> Option<Envelope> {
        match self.waiting().remove(cid) {
            Some(tx) => tx.try_send(env).err().map(|e| e.into_inner()),
            None => Some(env),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// the cloud closed it (close frame or end of stream)
    Closed(String),
    /// reading or writing failed
    Failed(String),
    /// nothing was heard for the request timeout (pings unanswered)
    Stalled,
    /// the link was closed on purpose (shutdown, new credentials)
    Local,
}

/// Runs the session until it ends: the writer drains the link's queue, the reader classifies
/// every frame (answers to their requests, the rest to `handler`), the watchdog pings after a
/// third of the timeout of silence and gives up after the whole timeout.
pub async fn run(socket: Socket, link: Arc<Link>, handler: Arc<dyn Handler>) -> End {
    let (mut tx, mut rx) = socket.split();
    let writer = {
        let link = link.clone();
        async move {
            while let Ok(msg) = link.out_rx.recv().await {
                let n = msg.len() as u64;
                let send = async { Some(tx.send(msg).await) };
                let timer = async {
                    smol::Timer::after(link.timeout).await;
                    None
                };
                // a socket that takes no bytes for the whole timeout is stalled
                match futures_lite::future::or(send, timer).await {
                    Some(Ok(())) => add(&link.stats.c.sent_bytes, n),
                    Some(Err(e)) => return End::Failed(format!("write: {e}")),
                    None => return End::Stalled,
                }
            }
            let _ = tx.close(None).await;
            End::Local
        }
    };
    let reader = {
        let link = link.clone();
        async move {
            while let Some(msg) = rx.next().await {
                link.last_heard
                    .store(crate::clock::now_millis(), Ordering::Relaxed);
                let text = match msg {
                    Ok(Message::Text(t)) => t.as_str().to_owned(),
                    Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
                    Ok(Message::Close(f)) => {
                        return End::Closed(
                            f.map(|f| format!("{} {}", f.code, f.reason))
                                .unwrap_or_default(),
                        )
                    }
                    Ok(_) => continue,
                    Err(e) => return End::Failed(format!("read: {e}")),
                };
                add(&link.stats.c.received_bytes, text.len() as u64);
                match classify(&text) {
                    Incoming::Answer(cid, env) => {
                        if let Some(env) = link.answer(&cid, *env) {
                            handler.incoming(Incoming::Answer(cid, Box::new(env)));
                        }
                    }
                    other => handler.incoming(other),
                }
            }
            End::Closed("end of stream".into())
        }
    };
    let watchdog = {
        let link = link.clone();
        async move {
            let quiet = link.timeout / 3;
            loop {
                smol::Timer::after(quiet.max(Duration::from_millis(100))).await;
                if link.is_closed() {
                    return End::Local;
                }
                let silent = crate::clock::now_millis() - link.last_heard.load(Ordering::Relaxed);
                if silent >= link.timeout.as_millis() as i64 {
                    return End::Stalled;
                }
                if silent >= quiet.as_millis() as i64 {
                    // the cloud answers a ping with a pong, which counts as heard
                    let _ = link.out.try_send(Message::Ping(Default::default()));
                }
            }
        }
    };
    let end = futures_lite::future::or(writer, futures_lite::future::or(reader, watchdog)).await;
    link.close();
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fail_when_the_link_closes_and_time_out_otherwise() {
        let stats = Arc::new(Stats::default());
        let link = Link::new(2, Duration::from_millis(50), stats.clone());
        let r = smol::block_on(link.request("x".into(), "c1"));
        assert_eq!(r, Err(LinkError::Timeout));
        assert_eq!(stats.c.timeouts.load(Ordering::Relaxed), 1);
        assert_eq!(stats.in_flight.load(Ordering::Relaxed), 0);
        let env = Envelope::parse(
            r#"{"topic":"a/b/things/twin/commands/retrieve","headers":{},"path":"/","status":200}"#,
        )
        .unwrap();
        assert!(link.answer("c1", env).is_some(), "nobody waits any more");
        link.close();
        assert_eq!(
            smol::block_on(link.request("y".into(), "c2")),
            Err(LinkError::Closed)
        );
        assert!(!smol::block_on(link.send("z".into())));
    }
}
