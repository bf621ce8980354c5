//! The search over HTTP: `GET|POST /api/2/search/things` (`{"items":[..],"cursor":".."}`, or
//! `nextPageOffset` with the deprecated `limit`), `GET|POST /api/2/search/things/count` (a bare
//! integer), the SSE search stream (`Accept: text/event-stream`, see `search_sse`), and the
//! `GET /api/2/things` listing (no `ids`), which is the same search without a filter answered
//! as a JSON array with `Link` headers. POST takes `application/x-www-form-urlencoded` bodies.

use super::params::{self, Query};
use super::response;
use super::things::{finish, request_headers, Failure};
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::Requester;
use crate::protocol::Headers;
use crate::search::{self, Endpoint, Params, Resolved};
use crate::state::State;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LINK};
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The search parameters of a query string or form body.
pub(crate) fn params_of(q: &Query) -> Params {
    Params {
        filters: q.all("filter").into_iter().map(str::to_owned).collect(),
        options: q.joined("option"),
        fields: q.joined("fields"),
        namespaces: q.joined("namespaces").map(|n| {
            n.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
    }
}

/// How long one query may run: the configured bound, lowered by the request's `timeout`.
pub(super) fn query_timeout(st: &State, headers: &Headers) -> Result<Duration, DittoError> {
    let max = Duration::from_secs(st.cfg.search.query_timeout_secs);
    Ok(match headers.timeout_ms(u64::MAX)? {
        Some(ms) if ms > 0 => max.min(Duration::from_millis(ms)),
        _ => max,
    })
}

fn form_only(mt: &str) -> DittoError {
    DittoError::new(
        415,
        "mediatype.unsupported",
        format!("The Media-Type <{mt}> is not supported for this resource."),
    )
    .describe("Allowed Media-Types are: <application/x-www-form-urlencoded>.")
}

/// `/api/2/search/things[/count]`.
pub(super) async fn route(
    st: &Arc<State>,
    parts: Parts,
    body: Incoming,
    who: Requester,
) -> Response<Body> {
    let count = parts.uri.path().trim_end_matches('/').ends_with("/count");
    if parts.method == Method::GET && !count && super::sse::wants_sse(&parts.headers) {
        return super::search_sse::stream(st, &parts, who).await;
    }
    let (query, headers, cid) = match request_headers(&parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    let params = match parts.method {
        Method::GET => params_of(&query),
        Method::POST => {
            let mt = params::media_type(&parts.headers);
            if mt != "application/x-www-form-urlencoded" {
                return finish(Err(Failure::from(form_only(&mt))), &cid);
            }
            let limits = &st.cfg.limits;
            let read = params::read_body(
                &parts.headers,
                body,
                limits.max_message_kib * 1024,
                Duration::from_secs(limits.body_timeout_secs),
            )
            .await;
            let form = read.and_then(|b| {
                let text = String::from_utf8(b.to_vec()).map_err(|_| {
                    DittoError::new(
                        400,
                        "gateway:request.invalid",
                        "The form body is not UTF-8.",
                    )
                    .describe("Send an application/x-www-form-urlencoded UTF-8 body.")
                })?;
                Query::parse(Some(&text))
            });
            match form {
                Ok(f) => params_of(&f),
                Err(e) => return finish(Err(Failure::from(e)), &cid),
            }
        }
        ref m => return response::method_not_allowed(m.as_str(), &["GET", "POST"], Some(&cid)),
    };
    let r = if count {
        count_things(st, &who, &params, &headers).await
    } else {
        search_things(st, &who, &params, &headers).await
    };
    finish(r.map_err(Failure::from), &cid)
}

async fn count_things(
    st: &Arc<State>,
    who: &Requester,
    params: &Params,
    headers: &Headers,
) -> Result<Response<Body>, DittoError> {
    // count takes filter and namespaces only (options, fields: ignored, as in Ditto)
    let p = Params {
        filters: params.filters.clone(),
        namespaces: params.namespaces.clone(),
        ..Default::default()
    };
    let r = search::resolve(&p, Endpoint::Search)?;
    let timeout = query_timeout(st, headers)?;
    let spec = r.spec;
    let n = st
        .hub
        .search(who, Some(timeout), move |s| s.count(&spec))
        .await?;
    Ok(response::json(200, &json!(n)))
}

/// Runs a resolved request: the items, and the cursor (or next offset) if more follow.
async fn run(
    st: &Arc<State>,
    who: &Requester,
    r: &Resolved,
    endpoint: Endpoint,
    timeout: Duration,
) -> Result<(Vec<Value>, Option<String>, Option<i64>), DittoError> {
    let spec = r.spec.clone();
    if let Some((offset, count)) = r.limit {
        let page = st
            .hub
            .search(who, Some(timeout), move |s| {
                s.page_at_offset(&spec, offset, count as usize)
            })
            .await?;
        let next = if page.more.is_some() {
            (offset + count) as i64
        } else {
            -1
        };
        return Ok((page.items, None, Some(next)));
    }
    let (after, size) = (r.after.clone(), r.size);
    let page = st
        .hub
        .search(who, Some(timeout), move |s| {
            s.page(&spec, after.as_ref(), size)
        })
        .await?;
    let cursor = page.more.map(|pos| r.cursor_after(pos, endpoint).encode());
    Ok((page.items, cursor, None))
}

async fn search_things(
    st: &Arc<State>,
    who: &Requester,
    params: &Params,
    headers: &Headers,
) -> Result<Response<Body>, DittoError> {
    let r = search::resolve(params, Endpoint::Search)?;
    let timeout = query_timeout(st, headers)?;
    let (items, cursor, next_offset) = run(st, who, &r, Endpoint::Search, timeout).await?;
    let mut body = json!({ "items": items });
    if let Some(c) = cursor {
        body["cursor"] = json!(c);
    }
    if let Some(n) = next_offset {
        body["nextPageOffset"] = json!(n);
    }
    Ok(response::json(200, &body))
}

/// `GET /api/2/things` without `ids`: the things the caller can read, paged like the search
/// (`option=sort(..),size(n),cursor(c)`, `fields`, `namespaces`), as a JSON array with
/// `Link: <..>; rel="canonical"` and, if more follow, `Link: </api/2/things?option=cursor(c)>;
/// rel="next"` (the cursor keeps size, fields, namespaces and sort). A `filter` is ignored here,
/// as in Ditto; use `/api/2/search/things` to filter.
pub(super) async fn listing(
    st: &Arc<State>,
    who: &Requester,
    parts: &Parts,
    query: &Query,
    headers: &Headers,
) -> Result<Response<Body>, DittoError> {
    let r = search::resolve(&params_of(query), Endpoint::Listing)?;
    let timeout = query_timeout(st, headers)?;
    let (items, cursor, _) = run(st, who, &r, Endpoint::Listing, timeout).await?;
    let mut resp = response::json(200, &Value::Array(items));
    let path = parts.uri.path();
    let canonical = match parts.uri.query() {
        Some(q) => format!("<{path}?{q}>; rel=\"canonical\""),
        None => format!("<{path}>; rel=\"canonical\""),
    };
    if let Ok(v) = HeaderValue::from_str(&canonical) {
        resp.headers_mut().append(LINK, v);
    }
    if let Some(c) = cursor {
        let next = format!("<{path}?option=cursor({c})>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&next) {
            resp.headers_mut().append(LINK, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_from_query_and_form() {
        let q = Query::parse(Some(
            "filter=eq(attributes/a,1)&filter=exists(policyId)&option=sort(%2BthingId)&option=size(2)&namespaces=a,,b&fields=thingId",
        ))
        .unwrap();
        let p = params_of(&q);
        assert_eq!(p.filters, ["eq(attributes/a,1)", "exists(policyId)"]);
        assert_eq!(p.options.as_deref(), Some("sort(+thingId),size(2)"));
        assert_eq!(p.namespaces, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(p.fields.as_deref(), Some("thingId"));
        assert_eq!(params_of(&Query::parse(None).unwrap()), Params::default());
    }
}
