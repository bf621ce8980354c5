//! SSE of persisted events: `GET /api/2/things/{id}[/{pointer}]` with `from-historical-revision`
//! (negative: relative to the current revision) and `to-historical-revision` (0: the current
//! one), or `from-historical-timestamp` / `to-historical-timestamp` (ISO-8601), with `fields`
//! (`_context` included), `filter` and a pointer as the live stream (`SseView`). The stream
//! ends after the last event of the range (Ditto's `ThingsSseRouteBuilder` with
//! `SubscribeForPersistedEvents`).

use super::params::{self, Query};
use super::response;
use super::sse_event::SseView;
use super::things::{finish, Failure};
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::history_stream::PersistedQuery;
use crate::hub::Requester;
use crate::model::parse_thing_id;
use crate::state::State;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use std::convert::Infallible;
use std::sync::Arc;

/// Frames buffered between the reading task and the HTTP connection.
const BODY_FRAMES: usize = 16;
/// A client that does not take a frame for this long is disconnected (as the live stream).
const SEND_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// True if the request asks for persisted events.
pub(super) fn wanted(query: &Query) -> bool {
    ["from-historical-revision", "from-historical-timestamp"]
        .iter()
        .any(|p| query.get(p).is_some())
}

/// 400 `json.format.invalid` for a value that is not a number / timestamp (as Ditto answers
/// its `NumberFormatException` / `DateTimeParseException`).
fn invalid(name: &str, value: &str) -> DittoError {
    DittoError::new(
        400,
        "json.format.invalid",
        format!("The value '{value}' of the parameter '{name}' is not valid."),
    )
}

fn revision(query: &Query, name: &str) -> Result<Option<i64>, DittoError> {
    query
        .get(name)
        .map(|v| v.trim().parse::<i64>().map_err(|_| invalid(name, v)))
        .transpose()
}

fn timestamp(query: &Query, name: &str) -> Result<Option<i64>, DittoError> {
    query
        .get(name)
        .map(|v| crate::clock::parse_iso(v.trim()).ok_or_else(|| invalid(name, v)))
        .transpose()
}

/// The range and filter of a request (validated before the stream starts).
pub(super) fn persisted_query(query: &Query) -> Result<PersistedQuery, DittoError> {
    let by_revision = query.get("from-historical-revision").is_some();
    Ok(PersistedQuery {
        from_revision: revision(query, "from-historical-revision")?,
        to_revision: revision(query, "to-historical-revision")?,
        from_timestamp: if by_revision {
            None
        } else {
            timestamp(query, "from-historical-timestamp")?
        },
        to_timestamp: if by_revision {
            None
        } else {
            timestamp(query, "to-historical-timestamp")?
        },
        filter: query
            .get("filter")
            .map(crate::rql::parse)
            .transpose()
            .map_err(|e| e.to_ditto())?,
    })
}

/// Opens the stream of persisted events of the thing `thing` = (ID segment, rest of the path);
/// `query` and `cid` are the request's, parsed by `sse::stream`.
pub(super) async fn stream(
    st: &Arc<State>,
    query: &Query,
    cid: &str,
    who: &Requester,
    thing: Option<(&str, &str)>,
) -> Response<Body> {
    let opened = (|| {
        let (id, rest) = thing.ok_or_else(|| {
            super::things::unsupported("Streaming historical events of more than one thing")
        })?;
        let id = parse_thing_id(&params::decode(id, false)?)?;
        let pointer = params::decode(rest, false)?;
        let pointer = pointer.trim_end_matches('/');
        let view = SseView::new(
            query.joined("fields").as_deref(),
            (!pointer.is_empty()).then_some(pointer),
        )?;
        let q = persisted_query(query)?;
        let cursor = st.hub.persisted_events(who.subjects.clone(), &id, q)?;
        Ok::<_, DittoError>((view, cursor))
    })();
    let (view, mut cursor) = match opened {
        Ok(x) => x,
        Err(e) => return finish(Err(Failure::from(e)), cid),
    };
    let (tx, body_rx) = async_channel::bounded::<Result<Frame<Bytes>, Infallible>>(BODY_FRAMES);
    st.ex
        .spawn(async move {
            while !cursor.done() {
                let batch = match cursor.next_batch() {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e.message, "historical SSE stream failed");
                        break;
                    }
                };
                for env in batch {
                    let Some(data) = view.render(&env) else {
                        continue;
                    };
                    let frame = Frame::data(Bytes::from(format!("data:{data}\n\n")));
                    let sent = async { tx.send(Ok(frame)).await.is_ok() };
                    let stalled = async {
                        smol::Timer::after(SEND_STALL).await;
                        false
                    };
                    if !futures_lite::future::or(sent, stalled).await {
                        return;
                    }
                }
                // other tasks run between pages of a long history
                futures_lite::future::yield_now().await;
            }
        })
        .detach();
    let mut r = Response::new(StreamBody::new(body_rx).boxed());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response::with_cid(r, Some(cid))
}
