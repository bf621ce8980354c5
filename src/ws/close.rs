//! How a WS session ends on the wire (RFC 6455 section 7): a client's Close frame is answered
//! with a Close frame carrying its code; a close we start (1007, 1008, 1009, 1013, 1001) sends
//! our Close frame with that code and flushes it. Then FIN, and the peer's reply and anything
//! else it still sends is read and dropped, so closing the socket never resets it before the
//! peer read our frame; the whole handshake takes at most `limits.close_timeout_secs`. A socket
//! whose writes failed or stalled gets no frame (nothing can be written): it is just dropped.

use super::writer::End;
use crate::tls::Stream;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::WebSocketSender;
use futures_util::SinkExt;
use smol::net::TcpStream;
use std::time::Duration;

/// Close code for a client whose outbound queue overflowed (RFC 6455 "Try Again Later").
pub const CLOSE_OVERFLOW: u16 = 1013;

/// Why the session's read loop ended.
#[derive(Debug)]
pub(super) enum ReadEnd {
    /// the client sent a Close frame
    PeerClose,
    /// the client went away (EOF, reset, protocol error): nobody to answer
    Gone,
    /// we close the session with this code and reason
    Close(CloseCode, &'static str),
    /// the writer ended first (overflow or a failed write)
    Writer,
}

/// The frame we send, or `None` for "answer the peer's Close" (tungstenite queued the echo
/// when it read the peer's frame; a flush sends it), or nothing at all.
fn plan(read: &ReadEnd, write: &End) -> Option<Option<CloseFrame>> {
    match (read, write) {
        (ReadEnd::PeerClose, _) => Some(None),
        (_, End::Failed(_)) | (ReadEnd::Gone, _) => None,
        (_, End::Overflow) => Some(Some(CloseFrame {
            code: CloseCode::from(CLOSE_OVERFLOW),
            reason: "edgetwin: outbound queue overflow, the client does not read fast enough"
                .into(),
        })),
        (ReadEnd::Close(code, reason), _) => Some(Some(CloseFrame {
            code: *code,
            reason: (*reason).into(),
        })),
        (ReadEnd::Writer, End::Drained) => None,
    }
}

/// Runs the closing handshake of a session whose reader and writer both stopped.
pub(super) async fn finish(
    session: u64,
    tcp: &TcpStream,
    mut sender: WebSocketSender<Stream>,
    read: ReadEnd,
    write: End,
    within: Duration,
) {
    let Some(frame) = plan(&read, &write) else {
        let error = match &write {
            End::Failed(e) => Some(e.to_string()),
            _ => None,
        };
        tracing::debug!(
            session,
            ?read,
            ?error,
            "websocket dropped without close frame"
        );
        return;
    };
    if matches!(write, End::Overflow) {
        tracing::warn!(session, "closing slow subscriber (queue overflow)");
    }
    let send = async {
        match frame {
            Some(f) => sender.close(Some(f)).await.is_ok(),
            None => sender.flush().await.is_ok(),
        }
    };
    let timeout = async {
        smol::Timer::after(within).await;
        false
    };
    if futures_lite::future::or(send, timeout).await {
        crate::conn::stream::finish(tcp, within).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::Error as WsError;

    #[test]
    fn which_frame_ends_which_session() {
        let code = |p: Option<Option<CloseFrame>>| p.map(|f| f.map(|f| u16::from(f.code)));
        assert_eq!(code(plan(&ReadEnd::PeerClose, &End::Drained)), Some(None));
        let failed = End::Failed(WsError::ConnectionClosed);
        assert_eq!(code(plan(&ReadEnd::PeerClose, &failed)), Some(None));
        assert_eq!(code(plan(&ReadEnd::Writer, &failed)), None);
        assert_eq!(code(plan(&ReadEnd::Gone, &End::Drained)), None);
        assert_eq!(
            code(plan(&ReadEnd::Writer, &End::Overflow)),
            Some(Some(1013))
        );
        let big = ReadEnd::Close(CloseCode::Size, "message too big");
        assert_eq!(code(plan(&big, &End::Drained)), Some(Some(1009)));
        assert_eq!(code(plan(&big, &failed)), None);
    }
}
