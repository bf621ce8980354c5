//! The WebSocket binding `/ws/2`: one reader task parsing frames (control messages or Ditto
//! Protocol JSON) into hub calls, one writer task sending the session's outbound queue in
//! order, holding durable replies and events until their store write is on disk. A session
//! authenticated by JWT ends at the token's `exp` (401 `gateway:websocket.session.expired`)
//! unless `JWT-TOKEN?jwtToken=` brings a valid token for the same subjects; another subject or
//! an invalid token closes the session (Ditto completes the stream without an error frame).
//! Search protocol messages go to the session's search subscriptions (`search`).

mod close;
mod control;
mod persisted;
pub mod search;
mod search_task;
mod writer;

use crate::hub::bus::ordered::Deadline;
use crate::hub::{Outbound, Outgoing, Requester, SessionHandle};
use crate::protocol::{error_envelope, parse_control, Control, Envelope};
use crate::state::State;
use crate::tls::Stream;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use close::ReadEnd;
use futures_lite::{future, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use close::CLOSE_OVERFLOW;

/// 401 `gateway:websocket.session.expired`.
pub fn session_expired() -> crate::error::DittoError {
    crate::error::DittoError::new(
        401,
        "gateway:websocket.session.expired",
        "The websocket session expired because the JWT used for authentication has expired.",
    )
    .describe("You need to periodically refresh your websocket session with a new JWT.")
}

/// What a `JWT-TOKEN` message does to the session: new expiry, or close.
fn refresh(st: &State, subjects: &[String], text: &str) -> Result<Option<i64>, &'static str> {
    let Some(Ok(Control::JwtToken(token))) = parse_control(text) else {
        return Err("invalid JWT-TOKEN message");
    };
    let a = st
        .auth
        .verify_jwt(&token, crate::clock::now_millis())
        .map_err(|_| "The websocket session was closed because the JWT is invalid.")?;
    let same =
        a.subjects.len() == subjects.len() && a.subjects.iter().all(|s| subjects.contains(s));
    if same {
        Ok(a.expires_at)
    } else {
        Err("The websocket session was closed because the authorization context changed.")
    }
}

/// The labels of `declared-acks` (query parameter or header; JSON array or comma list), each
/// valid and not built-in (400 otherwise, refused before the upgrade).
pub fn declared_acks<B>(req: &hyper::Request<B>) -> Result<Vec<String>, crate::error::DittoError> {
    let mut h = crate::protocol::Headers::new();
    if let Some(v) = req
        .headers()
        .get("declared-acks")
        .and_then(|v| v.to_str().ok())
    {
        h.insert("declared-acks", v);
    }
    let query = req
        .uri()
        .query()
        .and_then(crate::protocol::control::parse_query);
    if let Some((_, v)) = query
        .into_iter()
        .flatten()
        .find(|(k, _)| k == "declared-acks")
    {
        h.insert("declared-acks", v);
    }
    let labels = h.list("declared-acks")?.unwrap_or_default();
    for l in &labels {
        crate::rules::acks::validate_label(l)?;
        if crate::rules::acks::is_built_in(l) {
            return Err(crate::rules::acks::built_in_forbidden(l));
        }
    }
    Ok(labels)
}

/// The instant of a JWT expiry (epoch millis).
fn expiry_instant(at: i64) -> Instant {
    let left = (at - crate::clock::now_millis()).max(0) as u64;
    Instant::now() + Duration::from_millis(left)
}

/// Frames a session handles in a row (its client keeps them coming) before it lets the other
/// tasks of its executor thread run: without it a producer's pipelined window held the thread
/// for its whole burst while a subscriber's task, woken by an event, waited behind it.
const FRAMES_PER_TURN: u32 = 16;

/// What woke the session loop (a frame: whether the read waited for it).
enum Wake {
    Frame(Option<Result<Message, WsError>>, bool),
    Writer,
    Deadline,
}

/// Runs one session until the client disconnects or closes, the session is closed (bad frame,
/// overflow, JWT expiry, no frame for `limits.ws_idle_timeout_secs`), or a write fails.
/// Labels in `declared` must not be declared by another session (else 409
/// `acknowledgement:label.not.unique` and the socket closes).
pub async fn run_session(
    st: Arc<State>,
    ws: WebSocketStream<Stream>,
    auth: crate::auth::Authenticated,
    declared: Vec<String>,
) {
    let subjects = auth.subjects;
    let mut expires_at = auth.expires_at;
    let limits = &st.cfg.limits;
    let idle = Duration::from_secs(limits.ws_idle_timeout_secs);
    let tcp = ws.get_ref().conn().tcp().clone();
    let tracker = ws.get_ref().conn().slot().tracker().clone();
    let (session, rx) = st.hub.open_session(
        subjects.clone(),
        limits.outbound_queue,
        limits.max_pending_per_session,
    );
    let (sender, mut receiver) = ws.split();
    // The writer runs in this task, beside the reader (not a task of its own): a reply queued
    // by the reader goes out in the same poll, without waking another executor thread.
    let writer = std::pin::pin!(writer::run(
        sender,
        rx,
        session.clone(),
        st.hub.gate(),
        limits.outbound_queue + limits.max_pending_per_session,
        idle / 3,
    ));
    let mut writer = writer::Beside::new(writer);
    let who = Requester {
        subjects: subjects.clone(),
        origin: Some(session.id),
    };
    tracing::debug!(
        session = session.id,
        subject = who.subject(),
        "websocket session opened"
    );
    let mut end: Option<ReadEnd> = None;
    // search subscriptions of this session (ws/search.rs); dropped (cancelled) with the session
    let mut searches = search::Searches::default();
    if let Err(e) = st.hub.declare_acks(session.id, &declared) {
        writer.beside(reply_error(&session, None, &e)).await;
        end = Some(ReadEnd::Close(
            CloseCode::Policy,
            "declared acknowledgement label not unique",
        ));
    }
    let mut last_frame = Instant::now();
    // one timer for the session's deadlines, moved only when it fires early (not per frame)
    let mut deadline = Deadline::default();
    let mut expiry = expires_at.map(expiry_instant);
    // frames handled since the read last waited or the session last yielded
    let mut in_turn = 0u32;
    while end.is_none() && !writer.ended() {
        // the next deadline: the JWT's expiry or the idle timeout, whichever comes first
        let idle_due = last_frame + idle;
        let due = expiry.map_or(idle_due, |at| at.min(idle_due));
        let frame = async {
            let mut waited = false;
            let m = std::future::poll_fn(|cx| {
                let p = StreamExt::poll_next(&mut receiver, cx);
                waited |= p.is_pending();
                p
            })
            .await;
            Wake::Frame(m, waited)
        };
        let wrote = async {
            writer.run().await;
            Wake::Writer
        };
        let timer = async {
            deadline.until(due).await;
            Wake::Deadline
        };
        // Frames first: the replies to every frame already read go out together, with one
        // flush, once no further frame is ready (as the echo baseline does).
        let msg = match future::or(frame, future::or(wrote, timer)).await {
            Wake::Frame(m, waited) => {
                in_turn = if waited { 1 } else { in_turn + 1 };
                if in_turn > FRAMES_PER_TURN {
                    // the replies so far go out (one flush), then the task queues behind the rest
                    writer.beside(future::yield_now()).await;
                    in_turn = 1;
                }
                m
            }
            Wake::Writer => break,
            Wake::Deadline => {
                if expires_at.is_some_and(|at| at <= crate::clock::now_millis()) {
                    writer
                        .beside(reply_error(&session, None, &session_expired()))
                        .await;
                    end = Some(ReadEnd::Close(CloseCode::Policy, "JWT expired"));
                } else if last_frame.elapsed() >= idle {
                    tracker.count_idle_timeout();
                    end = Some(ReadEnd::Close(
                        CloseCode::Away,
                        "no complete frame within limits.ws_idle_timeout_secs",
                    ));
                }
                // the expiry is wall-clock time: re-read it against the clock that judges it
                expiry = expires_at.map(expiry_instant);
                continue;
            }
        };
        let Some(msg) = msg else {
            end = Some(ReadEnd::Gone);
            break;
        };
        last_frame = Instant::now();
        if let Ok(Message::Text(t)) = &msg {
            if t.as_str().starts_with("JWT-TOKEN") {
                if expires_at.is_none() {
                    continue; // Basic / pre-authenticated sessions never expire
                }
                match refresh(&st, &subjects, t.as_str()) {
                    Ok(exp) => {
                        expires_at = exp;
                        expiry = exp.map(expiry_instant);
                    }
                    Err(reason) => {
                        tracing::debug!(
                            session = session.id,
                            reason,
                            "closing session on JWT-TOKEN"
                        );
                        end = Some(ReadEnd::Close(CloseCode::Normal, "JWT-TOKEN refused"));
                    }
                }
                continue;
            }
        }
        match msg {
            Ok(Message::Text(t)) => {
                // pinned where it is made: `beside` takes a pointer, not a copy of the future
                // (a twin command's is large; moving it cost a memcpy per frame)
                let text = std::pin::pin!(on_text(&st, &session, &who, &mut searches, t.as_str()));
                writer.beside(text).await
            }
            Ok(Message::Binary(b)) => match std::str::from_utf8(&b) {
                Ok(t) => {
                    let text = std::pin::pin!(on_text(&st, &session, &who, &mut searches, t));
                    writer.beside(text).await
                }
                Err(_) => {
                    let e = crate::error::DittoError::json_invalid("<binary frame>");
                    writer.beside(reply_error(&session, None, &e)).await
                }
            },
            Ok(Message::Close(_)) => end = Some(ReadEnd::PeerClose),
            Ok(_) => {}
            Err(WsError::Capacity(_)) => {
                end = Some(ReadEnd::Close(CloseCode::Size, "message too big"))
            }
            Err(WsError::Utf8(_)) => {
                end = Some(ReadEnd::Close(
                    CloseCode::Invalid,
                    "text frame is not valid UTF-8",
                ))
            }
            Err(e) => {
                tracing::debug!(session = session.id, error = %e, "websocket read ended");
                end = Some(ReadEnd::Gone);
            }
        }
    }
    if end.is_none() && writer.ended() {
        end = Some(ReadEnd::Writer);
    }
    st.hub.close_session(session.id);
    let read = end.unwrap_or(ReadEnd::Gone);
    tracing::debug!(
        session = session.id,
        subject = who.subject(),
        ?read,
        "websocket session closed"
    );
    // the writer sends what is still queued (bounded by the send timeout), then hands back
    let (sender, write) = writer.finish().await;
    drop(receiver);
    let within = Duration::from_secs(limits.close_timeout_secs);
    close::finish(session.id, &tcp, sender, read, write, within).await;
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

async fn on_text(
    st: &Arc<State>,
    session: &Arc<SessionHandle>,
    who: &Requester,
    searches: &mut search::Searches,
    text: &str,
) {
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
            let text = error_envelope(f.topic.as_ref(), f.correlation_id.as_deref(), &f.error)
                .to_shared_text();
            session.reply(Outbound::Now(text)).await;
            return;
        }
    };
    if matches!(env.topic.criterion, crate::protocol::Criterion::Search(_)) {
        return searches.handle(st, session, who, env).await;
    }
    if matches!(
        env.topic.criterion,
        crate::protocol::Criterion::Streaming(_)
    ) {
        return searches.persisted.handle(st, session, who, env).await;
    }
    let Some(answer) = st.hub.handle_protocol(who, env).await else {
        return;
    };
    match answer.outbound() {
        Outgoing::Now(out) => session.reply(out).await,
        Outgoing::Later(late) => {
            // answered when the live answer / acks arrive or the timeout passes (smol timer)
            let session = session.clone();
            st.ex
                .spawn(async move {
                    if let Some(text) = late.text().await {
                        session.reply(Outbound::Now(text)).await;
                    }
                })
                .detach();
            true
        }
    };
}
