//! Server-Sent Events on `GET /api/2/things[/{id}[/{pointer}]]` with `Accept: text/event-stream`:
//! a hub session subscribed to twin events (`namespaces`, `filter`, `extraFields`, `ids` as an
//! RQL `in(thingId,..)`), or to messages for `.../{inbox|outbox}/messages[/{subject}]`
//! (`sse_messages`), drained in durable order by a task into a streaming body, with keep-alive
//! comments; the session is closed when the client goes away or stops reading.

use super::params::{self, Query};
use super::response;
use super::sse_event::SseView;
use super::sse_messages::MessageScope;
use super::things::{finish, request_headers, unsupported, Failure};
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::bus::ordered::{Next, Ordered};
use crate::hub::{Hub, Requester, SessionHandle, StreamKind};
use crate::model::{parse_thing_id, FieldSelector};
use crate::protocol::Envelope;
use crate::rql::{Literal, Property, Query as Rql};
use crate::rules::fanout::Subscription;
use crate::state::State;
use bytes::Bytes;
use futures_lite::future;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Keep-alive comment after this long without an event (Ditto sends a heartbeat after 1 s).
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Frames buffered between the session task and the HTTP connection.
const BODY_FRAMES: usize = 16;

/// True if the request asks for an event stream (`Accept` names `text/event-stream` or
/// `text/*`; `*/*` alone does not count, as in Ditto).
pub fn wants_sse(headers: &HeaderMap) -> bool {
    headers.get_all(hyper::header::ACCEPT).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|range| {
                let mt = range.split(';').next().unwrap_or("").trim();
                mt.eq_ignore_ascii_case("text/event-stream") || mt.eq_ignore_ascii_case("text/*")
            })
        })
    })
}

/// What an SSE request subscribes to, validated before the stream starts (errors are plain
/// HTTP errors then).
struct Plan {
    kind: StreamKind,
    sub: Subscription,
    render: Render,
}

/// How a stream turns what its session receives into SSE frames.
enum Render {
    Events(SseView),
    Messages(MessageScope),
}

impl Render {
    fn frame(&self, env: &Envelope) -> Option<String> {
        match self {
            Render::Events(view) => view.render(env).map(|data| format!("data:{data}\n\n")),
            Render::Messages(scope) => scope.frame(env),
        }
    }
}

/// `in(thingId,<ids>)`
fn ids_filter(ids: Vec<String>) -> Rql {
    Rql::In {
        prop: Property {
            raw: "thingId".into(),
            segments: vec!["thingId".into()],
            placeholder: None,
        },
        values: ids.into_iter().map(Literal::Str).collect(),
    }
}

fn namespaces(query: &Query) -> Vec<String> {
    query
        .get("namespaces")
        .map(|n| {
            n.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn plan(query: &Query, thing: Option<(&str, &str)>) -> Result<Plan, DittoError> {
    let (ids, pointer) = match thing {
        Some((id, rest)) => {
            let pointer = params::decode(rest, false)?;
            let p = pointer.trim_end_matches('/');
            let segs: Vec<&str> = p.split('/').skip(1).collect();
            if matches!(
                segs.as_slice(),
                ["inbox" | "outbox", ..] | ["features", _, "inbox" | "outbox", ..]
            ) {
                let id = parse_thing_id(&params::decode(id, false)?)?.to_string();
                let scope = MessageScope::parse(&id, &pointer).ok_or_else(|| {
                    unsupported("Streaming other than messages below inbox/outbox")
                })?;
                return Ok(Plan {
                    kind: StreamKind::Messages,
                    sub: Subscription {
                        namespaces: namespaces(query),
                        filter: Some(ids_filter(vec![id])),
                        extra: None,
                    },
                    render: Render::Messages(scope),
                });
            }
            (Some(params::decode(id, false)?), Some(p.to_owned()))
        }
        None => (query.joined("ids"), None),
    };
    let ids = ids
        .map(|s| {
            s.split(',')
                .map(|i| parse_thing_id(i).map(|x| x.to_string()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let view = SseView::new(query.joined("fields").as_deref(), pointer.as_deref())?;
    let extra = match query.joined("extraFields") {
        Some(x) => {
            let sel = FieldSelector::parse(&x)?;
            sel.validate_thing_roots()?;
            Some(sel)
        }
        None => None,
    };
    let user = query
        .get("filter")
        .map(crate::rql::parse)
        .transpose()
        .map_err(|e| e.to_ditto())?;
    let by_id = ids.map(ids_filter);
    let filter = match (by_id, user) {
        (Some(a), Some(b)) => Some(Rql::And(vec![a, b])),
        (a, b) => a.or(b),
    };
    Ok(Plan {
        kind: StreamKind::Events,
        sub: Subscription {
            namespaces: namespaces(query),
            filter,
            extra,
        },
        render: Render::Events(view),
    })
}

/// Closes the hub session when the stream task ends, however it ends.
struct SessionGuard {
    hub: Hub,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.hub.close_session(self.id);
    }
}

type Tx = async_channel::Sender<Result<Frame<Bytes>, Infallible>>;

/// Sends a frame unless the client is gone or its session overflowed meanwhile (checked every
/// `KEEP_ALIVE` while the send waits). A client that stops reading makes the connection's
/// writes stall: after `limits.send_timeout_secs` the connection ends (`conn::stream`), its
/// body with it, and this send fails.
async fn send(tx: &Tx, session: &SessionHandle, text: String) -> bool {
    let sent = async { tx.send(Ok(Frame::data(Bytes::from(text)))).await.is_ok() };
    let stalled = async {
        loop {
            smol::Timer::after(KEEP_ALIVE).await;
            if session.overflowed() {
                return false;
            }
        }
    };
    future::or(sent, stalled).await
}

/// Opens the stream: `thing` = (thing ID segment, rest of the path) for `/things/{id}...`.
pub(super) async fn stream(
    st: &Arc<State>,
    parts: &Parts,
    who: &Requester,
    thing: Option<(&str, &str)>,
) -> Response<Body> {
    let (query, _headers, cid) = match request_headers(parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    if super::sse_history::wanted(&query) {
        return super::sse_history::stream(st, &query, &cid, who, thing).await;
    }
    let plan = match plan(&query, thing) {
        Ok(p) => p,
        Err(e) => return finish(Err(Failure::from(e)), &cid),
    };
    let limits = &st.cfg.limits;
    let (session, rx) = st.hub.open_session(
        who.subjects.clone(),
        limits.outbound_queue,
        limits.max_pending_per_session,
    );
    st.hub.subscribe(&session, plan.kind, plan.sub);
    let guard = SessionGuard {
        hub: st.hub.clone(),
        id: session.id,
    };
    let (tx, body_rx) = async_channel::bounded(BODY_FRAMES);
    let mut queue = Ordered::new(
        rx,
        session.clone(),
        st.hub.gate(),
        limits.outbound_queue + limits.max_pending_per_session,
    );
    let render = plan.render;
    st.ex
        .spawn(async move {
            let _guard = guard;
            while !session.overflowed() {
                let text = match queue.next(KEEP_ALIVE).await {
                    Next::Send(t) => {
                        match Envelope::parse(&t).ok().and_then(|e| render.frame(&e)) {
                            Some(frame) => frame,
                            None => continue,
                        }
                    }
                    Next::Idle => ":\n\n".to_owned(),
                    Next::Closed | Next::Overflow => break,
                };
                if !send(&tx, &session, text).await {
                    break;
                }
            }
            if session.overflowed() {
                tracing::warn!(
                    session = session.id,
                    "closing slow SSE subscriber (queue overflow)"
                );
            }
        })
        .detach();
    let mut r = Response::new(StreamBody::new(body_rx).boxed());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response::with_cid(r, Some(&cid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!wants_sse(&h));
        h.insert(hyper::header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_sse(&h));
        h.insert(
            hyper::header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(wants_sse(&h));
    }

    #[test]
    fn plans_validate_before_streaming() {
        let q = |s: &str| Query::parse(Some(s)).unwrap();
        let p = plan(
            &q("ids=a:1,b:2&namespaces=a,b&filter=gt(attributes/n,1)"),
            None,
        )
        .unwrap();
        assert_eq!(p.sub.namespaces, vec!["a", "b"]);
        assert!(matches!(p.sub.filter, Some(Rql::And(ref v)) if v.len() == 2));
        let err = |s: &str| plan(&q(s), None).err().map(|e| e.error.to_string());
        assert_eq!(err("filter=eq(a"), Some("rql.expression.invalid".into()));
        assert_eq!(err("ids=nocolon"), Some("things:id.invalid".into()));
        assert_eq!(
            err("fields=bogus"),
            Some("things:field.selection.invalid".into())
        );
        assert_eq!(
            err("extraFields=bogus"),
            Some("things:field.selection.invalid".into())
        );
        let p = plan(&q(""), Some(("ns:t", "/attributes/location"))).unwrap();
        assert!(matches!(p.sub.filter, Some(Rql::In { .. })));
        let m = plan(&q("namespaces=ns"), Some(("ns:t", "/inbox/messages/hi"))).unwrap();
        assert_eq!(m.kind, StreamKind::Messages);
        assert!(matches!(m.render, Render::Messages(_)));
        assert!(plan(&q(""), Some(("ns:t", "/inbox/claim"))).is_err());
        assert!(plan(&q(""), Some(("bad", "/inbox/messages"))).is_err());
    }
}
