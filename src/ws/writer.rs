//! The writer half of a WS session. Sends the session's outbound queue in order through the
//! shared `hub::bus::ordered` drain (a durable reply goes out once it passed the hub's gate), writes
//! every ready message with one flush, pings after 30 s idle, and closes with 1013 when the
//! session overflowed.

use super::CLOSE_OVERFLOW;
use crate::hub::bus::ordered::{Next, Ordered};
use crate::hub::Gate;
use crate::hub::{OutboundRx, SessionHandle};
use crate::tls::Stream;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketSender;
use futures_util::SinkExt;
use std::sync::Arc;
use std::time::Duration;

const IDLE_PING: Duration = Duration::from_secs(30);

/// Runs until the queue is closed and drained (returns the sender for a final close frame),
/// or the socket fails / the session overflowed (returns `None`).
pub(super) async fn run(
    mut sender: WebSocketSender<Stream>,
    rx: OutboundRx,
    session: Arc<SessionHandle>,
    gate: Gate,
    max_buffer: usize,
) -> Option<WebSocketSender<Stream>> {
    let mut queue = Ordered::new(rx, session.clone(), gate, max_buffer);
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
        let first = match queue.next(IDLE_PING).await {
            Next::Send(t) => t,
            Next::Idle => {
                if sender
                    .send(Message::Ping(Default::default()))
                    .await
                    .is_err()
                {
                    return None;
                }
                continue;
            }
            Next::Closed | Next::Overflow if session.overflowed() => continue,
            Next::Closed | Next::Overflow => return Some(sender),
        };
        // Queue every ready message, then write them all with one flush (one syscall for a
        // burst of pipelined replies or events instead of one per message).
        if sender.feed(Message::text(first.to_string())).await.is_err() {
            return None;
        }
        while let Some(t) = queue.next_ready().await {
            if sender.feed(Message::text(t.to_string())).await.is_err() {
                return None;
            }
        }
        if sender.flush().await.is_err() {
            return None;
        }
    }
}
