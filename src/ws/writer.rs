//! The writer half of a WS session. Drains the session's outbound queue into a local ordered
//! buffer (bounded by `max_pending`), sends the ready prefix — a durable reply or event is
//! ready once its store sequence is on disk — in one flush, pings after 30 s idle, and closes
//! with 1013 when the session overflowed.

use super::CLOSE_OVERFLOW;
use crate::hub::{Outbound, OutboundRx, SessionHandle};
use crate::store::Store;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketSender;
use futures_lite::future;
use futures_util::SinkExt;
use smol::net::TcpStream;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

const IDLE_PING: Duration = Duration::from_secs(30);

enum Wake {
    Msg(Option<Outbound>),
    Durable,
    Idle,
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

/// Runs until the queue is closed and drained (returns the sender for a final close frame),
/// or the socket fails / the session overflowed (returns `None`).
pub(super) async fn run(
    mut sender: WebSocketSender<TcpStream>,
    rx: OutboundRx,
    session: Arc<SessionHandle>,
    store: Store,
    max_pending: usize,
) -> Option<WebSocketSender<TcpStream>> {
    let mut pending: VecDeque<Outbound> = VecDeque::new();
    let mut queue_open = true;
    loop {
        if session.overflowed() {
            let reason = "edgetwin: outbound queue overflow, the client does not read fast enough";
            let frame = CloseFrame {
                code: CloseCode::from(CLOSE_OVERFLOW),
                reason: reason.into(),
            };
            tracing::warn!(
                session = session.id,
                "closing slow subscriber (queue overflow)"
            );
            let _ = sender.close(Some(frame)).await;
            return None;
        }
        while pending.len() < max_pending {
            match rx.try_recv() {
                Ok(m) => pending.push_back(m),
                Err(_) => break,
            }
        }
        // Queue every ready message, then write them all with one flush (one syscall for a
        // burst of pipelined replies instead of one per message).
        let mut fed = false;
        while let Some(front) = pending.front() {
            let Some(text) = front_text(&store, front).await else {
                break;
            };
            pending.pop_front();
            if let Some(t) = text {
                if sender.feed(Message::text(t.to_string())).await.is_err() {
                    return None;
                }
                fed = true;
            }
            if pending.is_empty() {
                // Pick up what arrived meanwhile so it shares this flush.
                while let Ok(m) = rx.try_recv() {
                    pending.push_back(m);
                    if pending.len() >= max_pending {
                        break;
                    }
                }
            }
        }
        if fed && sender.flush().await.is_err() {
            return None;
        }
        if !queue_open && pending.is_empty() {
            return Some(sender);
        }
        let can_recv = queue_open && pending.len() < max_pending;
        let front_seq = match pending.front() {
            Some(Outbound::Durable { seq, .. }) => Some(*seq),
            _ => None,
        };
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
        let idle = async {
            if pending.is_empty() {
                smol::Timer::after(IDLE_PING).await;
                Wake::Idle
            } else {
                future::pending().await
            }
        };
        match future::or(recv, future::or(durable, idle)).await {
            Wake::Msg(Some(m)) => pending.push_back(m),
            Wake::Msg(None) => queue_open = false,
            Wake::Durable => {}
            Wake::Idle => {
                if sender
                    .send(Message::Ping(Default::default()))
                    .await
                    .is_err()
                {
                    return None;
                }
            }
        }
    }
}
