//! The SSE search stream: `GET /api/2/search/things` with `Accept: text/event-stream` sends
//! every matching thing (no paging for the client) as `data:<thing>` + `id:<thingId>`, in the
//! requested sort order, then ends the response. `Last-Event-ID: <thingId>` resumes strictly
//! after that thing. The server pages internally (bounded memory) and the body channel is
//! bounded, so a slow reader slows the query down (TCP flow control), and a reader that takes
//! nothing for `limits.send_timeout_secs` is dropped. An error inside the stream is one `data:` error event.

use super::response;
use super::search::{params_of, query_timeout};
use super::things::{finish, request_headers, Failure};
use crate::http::body::Body;
use crate::hub::Requester;
use crate::search::{self, Endpoint};
use crate::state::State;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::Response;
use std::convert::Infallible;
use std::sync::Arc;

/// Things fetched per internal page.
const STREAM_PAGE: usize = 100;
/// Frames buffered between the query task and the connection.
const BODY_FRAMES: usize = 16;

type Tx = async_channel::Sender<Result<Frame<Bytes>, Infallible>>;

/// Sends a frame unless the client is gone (one that stops reading is dropped after
/// `limits.send_timeout_secs` without write progress, `conn::stream`, and this send fails).
async fn send(tx: &Tx, text: String) -> bool {
    tx.send(Ok(Frame::data(Bytes::from(text)))).await.is_ok()
}

/// Opens the stream (errors before the first byte are plain HTTP errors).
pub(super) async fn stream(st: &Arc<State>, parts: &Parts, who: Requester) -> Response<Body> {
    let (query, headers, cid) = match request_headers(parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    let prepared = search::resolve(&params_of(&query), Endpoint::Stream)
        .and_then(|r| query_timeout(st, &headers).map(|t| (r, t)));
    let (r, timeout) = match prepared {
        Ok(x) => x,
        Err(e) => return finish(Err(Failure::from(e)), &cid),
    };
    let last = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let (tx, rx) = async_channel::bounded(BODY_FRAMES);
    let hub = st.hub.clone();
    st.ex
        .spawn(async move {
            let spec = r.spec;
            let mut after = None;
            if let Some(id) = last {
                let (sp, n) = (spec.clone(), spec.sort.len());
                let found = hub.search(&who, None, move |s| {
                    // only its ID if the thing is gone or unreadable
                    Ok(s.position_of(&sp, &id)?.unwrap_or(search::Position {
                        values: vec![serde_json::Value::Null; n],
                        thing_id: id,
                    }))
                });
                match found.await {
                    Ok(p) => after = Some(p),
                    Err(e) => {
                        send(&tx, format!("data:{}\n\n", e.to_json())).await;
                        return;
                    }
                }
            }
            loop {
                let (sp, from) = (spec.clone(), after.take());
                let page = hub
                    .search(&who, Some(timeout), move |s| {
                        s.page(&sp, from.as_ref(), STREAM_PAGE)
                    })
                    .await;
                let page = match page {
                    Ok(p) => p,
                    Err(e) => {
                        send(&tx, format!("data:{}\n\n", e.to_json())).await;
                        return;
                    }
                };
                for (item, id) in page.items.iter().zip(&page.ids) {
                    if !send(&tx, format!("data:{item}\nid:{id}\n\n")).await {
                        return;
                    }
                }
                match page.more {
                    Some(pos) => after = Some(pos),
                    None => return,
                }
            }
        })
        .detach();
    let mut resp = Response::new(StreamBody::new(rx).boxed());
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response::with_cid(resp, Some(&cid))
}
