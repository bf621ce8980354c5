//! The writer half of a WS session. Drains the session's outbound queue into a local ordered
//! buffer, sends the ready prefix — a durable reply is ready once its store sequence is on
//! disk — pings after 30 s idle, and closes with 1013 when the session overflowed (its queue,
//! or this buffer beyond `max_buffer`, filled up because the client does not read).

use super::CLOSE_OVERFLOW;
use crate::hub::{Outbound, SessionHandle};
use crate::store::Store;
use async_channel::Receiver;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketSender;
use futures_lite::future;
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
    rx: Receiver<Outbound>,
    session: Arc<SessionHandle>,
    store: Store,
    max_buffer: usize,
) -> Option<WebSocketSender<TcpStream>> {
    // Whatever way the writer ends, the session stops taking replies (a reader waiting for an
    // in-flight slot wakes up instead of waiting forever).
    struct CloseOnExit(Arc<SessionHandle>);
    impl Drop for CloseOnExit {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close = CloseOnExit(session.clone());
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
        while let Ok(m) = rx.try_recv() {
            pending.push_back(m);
        }
        if pending.len() > max_buffer {
            session.push_overflow();
            continue;
        }
        while let Some(front) = pending.front() {
            let Some(text) = front_text(&store, front).await else {
                break;
            };
            if let Some(Outbound::Durable { .. }) = pending.pop_front() {
                session.reply_sent();
            }
            if let Some(t) = text {
                if sender.send(Message::text(t.to_string())).await.is_err() {
                    return None;
                }
            }
        }
        if !queue_open && pending.is_empty() {
            return Some(sender);
        }
        let can_recv = queue_open;
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
