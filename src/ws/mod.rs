//! The WebSocket binding `/ws/2`: one reader task parsing frames (control messages or Ditto
//! Protocol JSON) into hub calls, one writer task sending the session's outbound queue in
//! order, holding durable replies and events until their store write is on disk.

mod control;
mod writer;

use crate::hub::{Outbound, Requester, SessionHandle};
use crate::protocol::{error_envelope, parse_control, Envelope};
use crate::server::State;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::StreamExt;
use smol::net::TcpStream;
use std::sync::Arc;

/// Close code sent to a subscriber whose outbound queue overflowed (RFC 6455 "Try Again Later").
pub const CLOSE_OVERFLOW: u16 = 1013;

/// Runs one session until the client disconnects or the session is closed.
pub async fn run_session(st: Arc<State>, ws: WebSocketStream<TcpStream>, subjects: Arc<[String]>) {
    let (session, rx) = st
        .hub
        .open_session(subjects.clone(), st.cfg.limits.outbound_queue);
    let (sender, mut receiver) = ws.split();
    let writer = st.ex.spawn(writer::run(
        sender,
        rx,
        session.clone(),
        st.hub.store().clone(),
        st.cfg.limits.max_pending_per_session,
    ));
    let who = Requester {
        subjects,
        origin: Some(session.id),
    };
    tracing::debug!(
        session = session.id,
        subject = who.subject(),
        "websocket session opened"
    );
    let mut close: Option<(CloseCode, &'static str)> = None;
    while let Some(msg) = receiver.next().await {
        match msg {
            Ok(Message::Text(t)) => on_text(&st, &session, &who, t.as_str()).await,
            Ok(Message::Binary(b)) => match std::str::from_utf8(&b) {
                Ok(t) => on_text(&st, &session, &who, t).await,
                Err(_) => {
                    reply_error(
                        &session,
                        None,
                        &crate::error::DittoError::json_invalid("<binary frame>"),
                    )
                    .await
                }
            },
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(WsError::Capacity(_)) => {
                close = Some((CloseCode::Size, "message too big"));
                break;
            }
            Err(WsError::Utf8(_)) => {
                close = Some((CloseCode::Invalid, "text frame is not valid UTF-8"));
                break;
            }
            Err(e) => {
                tracing::debug!(session = session.id, error = %e, "websocket read ended");
                break;
            }
        }
        if session.overflowed() {
            break;
        }
    }
    st.hub.close_session(session.id);
    let reason = close.map(|c| c.1);
    tracing::debug!(
        session = session.id,
        subject = who.subject(),
        ?reason,
        "websocket session closed"
    );
    let mut sender = writer.await;
    if let (Some(s), Some((code, reason))) = (sender.as_mut(), close) {
        let _ = s
            .close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
            .await;
    }
}

async fn reply_error(
    session: &SessionHandle,
    env: Option<&Envelope>,
    e: &crate::error::DittoError,
) {
    let cid = env.and_then(|e| e.headers.correlation_id());
    let text = error_envelope(env.map(|e| &e.topic), cid, e).to_text();
    session.reply(Outbound::Now(Arc::from(text))).await;
}

async fn on_text(st: &Arc<State>, session: &Arc<SessionHandle>, who: &Requester, text: &str) {
    let max = st.cfg.limits.max_message_kib * 1024;
    if text.len() > max {
        let e = crate::error::DittoError::new(
            413,
            "messages:payload.toolarge",
            format!("The size of the message ({} bytes) exceeds the maximum allowed size of {max} bytes.", text.len()),
        )
        .describe("Reduce the size of the message or raise limits.max_message_kib in the configuration.");
        return reply_error(session, None, &e).await;
    }
    if let Some(ctrl) = parse_control(text) {
        return control::handle(st, session, ctrl).await;
    }
    let env = match Envelope::parse(text) {
        Ok(env) => env,
        Err(f) => {
            let text =
                error_envelope(f.topic.as_ref(), f.correlation_id.as_deref(), &f.error).to_text();
            session.reply(Outbound::Now(Arc::from(text))).await;
            return;
        }
    };
    if let Some(reply) = st.hub.handle_protocol(who, env).await {
        let text: Arc<str> = Arc::from(reply.envelope.to_text());
        let msg = match reply.after {
            Some(seq) => {
                let cid = reply.envelope.headers.correlation_id();
                let err = error_envelope(
                    Some(&reply.envelope.topic),
                    cid,
                    &crate::error::DittoError::unavailable(
                        &reply.envelope.topic.entity_id().unwrap_or_default(),
                    ),
                );
                Outbound::Durable {
                    seq,
                    text,
                    on_failure: Some(Arc::from(err.to_text())),
                }
            }
            None => Outbound::Now(text),
        };
        session.reply(msg).await;
    }
}
