//! The HTTP API binding: `/api/2/things` (REST and Server-Sent Events), `/api/2/policies`,
//! `/api/2/checkPermissions`, `/api/2/search/things`, `/api/2/cloudevents`, `/api/2/whoami`,
//! `/status/health`, `/status/mqtt`, and the DevOps routes. Authenticates every request, bounds
//! header sizes, and dispatches by path and method; the handlers turn requests into hub calls.

// CloudEvents HTTP binding carrying Ditto Protocol messages
pub mod backup;
pub mod body;
pub mod cloudevents;
// CORS for browser apps on other origins
pub mod cors;
// DevOps: log levels at run time, the MQTT bridge as a read-only connection
pub mod devops;
pub mod list;
// live channel, messages, acks over HTTP
pub mod live;
pub mod messages;
pub mod params;
pub mod policies;
// Ditto's relaxed query parsing (a reader in front of hyper)
pub mod relaxed;
pub mod response;
pub mod search;
pub mod search_sse;
pub mod sse;
pub mod sse_event;
pub mod sse_history;
pub mod sse_messages;
pub mod things;

use crate::http::body::Body;
use crate::hub::Requester;
use crate::protocol::headers::{too_large, MAX_HEADERS};
use crate::state::{authenticate, State};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::json;
use std::sync::Arc;

/// Largest total size of request header names and values answered normally (Ditto allows
/// 16 kB values); above it 431 `headers.too.large`. hyper's read buffer caps the raw head.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

fn headers_too_large(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    h.len() > MAX_HEADERS
        || h.iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum::<usize>()
            > MAX_HEADER_BYTES
}

/// `/health` (no authentication, Ditto's shape): 200 `{"status":"UP"}`, or 503
/// `{"status":"DOWN"}` while the store refuses writes (disk full, failed).
pub fn health(st: &State) -> Response<Body> {
    match st.hub.store().health().writable {
        true => response::json(200, &json!({"status": "UP"})),
        false => response::json(503, &json!({"status": "DOWN"})),
    }
}

/// The store part of `/status/health`: `UP`, `DEGRADED` (reads work, writes are refused: disk
/// full or opened read-only) or `DOWN` (failed: a restart recovers what was durable).
fn store_status(st: &State) -> (&'static str, serde_json::Value) {
    let store = st.hub.store();
    let h = store.health();
    let status = match (h.writable, store.is_failed()) {
        (true, _) => "UP",
        (false, false) => "DEGRADED",
        (false, true) => "DOWN",
    };
    let detail = json!({"status": status, "backend": store.backend_name(), "writable": h.writable,
        "reason": h.reason, "freeBytes": h.free_bytes});
    (status, detail)
}

/// Serves every path except `/health` and `/ws/2` (which `server::route` owns).
pub async fn route(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    if headers_too_large(&req) {
        return response::error(&too_large(), None, None);
    }
    let path = req.uri().path().to_owned();
    if devops::owns(&path) {
        return devops::route(&st, req, &path).await;
    }
    let is_api = matches!(
        path.as_str(),
        "/status/health" | "/status/mqtt" | "/status/uplink"
    ) || path.starts_with("/api/");
    if !is_api {
        return response::error(&response::route_not_found(&path), None, None);
    }
    let subjects = match authenticate(&st, &req).await {
        Ok(a) => a.subjects,
        Err(e) => return response::error(&e, None, None),
    };
    if path == "/api/2/policies" || path.starts_with("/api/2/policies/") {
        return policies::handle_policies_http(&st, req, subjects, &path).await;
    }
    let who = Requester {
        subjects,
        origin: None,
    };
    let (parts, body) = req.into_parts();
    let cid = parts
        .headers
        .get("correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let read_only = |r: Response<Body>| match parts.method {
        Method::GET | Method::HEAD => r,
        ref m => response::method_not_allowed(m.as_str(), &["GET", "HEAD"], cid.as_deref()),
    };
    match path.as_str() {
        "/status/health" => read_only({
            let (store, detail) = store_status(&st);
            let status = if store == "UP" { "UP" } else { "DOWN" };
            response::json(
                200,
                &json!({"status": status, "sessions": st.hub.session_count(),
                    "pendingRequests": st.hub.pending_count(), "mqtt": st.mqtt.state(),
                    "uplink": st.uplink.state(), "auth": st.auth.stats(), "store": detail,
                    "connections": st.conns.health(),
                    "history": st.hub.history().map_or(json!({"enabled": false}), |h| h.health())}),
            )
        }),
        "/status/mqtt" => read_only(response::json(200, &st.mqtt.status())),
        "/status/uplink" => read_only(response::json(200, &st.uplink.status(parts.uri.query()))),
        "/api/2/whoami" => read_only(response::with_cid(
            response::json(
                200,
                &json!({"defaultSubject": who.subject(), "subjects": &*who.subjects}),
            ),
            cid.as_deref(),
        )),
        "/api/2/things" | "/api/2/things/" => things_root(&st, parts, body, who).await,
        "/api/2/cloudevents" => cloudevents::handle(&st, parts, body, who).await,
        "/api/2/checkPermissions" | "/api/2/checkPermissions/" => {
            policies::check_permissions(&st, parts, body, &who).await
        }
        // search (src/search)
        "/api/2/search/things"
        | "/api/2/search/things/"
        | "/api/2/search/things/count"
        | "/api/2/search/things/count/" => search::route(&st, parts, body, who).await,
        p => match p.strip_prefix("/api/2/things/") {
            Some(rest) => {
                let (id, sub) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let sse_get = parts.method == Method::GET && sse::wants_sse(&parts.headers);
                if sse_get {
                    sse::stream(&st, &parts, &who, Some((id, sub))).await
                } else {
                    things::entry(&st, parts, body, who, id, sub).await
                }
            }
            None => response::error(&response::route_not_found(p), None, None),
        },
    }
}

/// `/api/2/things`: SSE, listing / retrieve by `ids`, or `POST` create.
async fn things_root(
    st: &Arc<State>,
    parts: hyper::http::request::Parts,
    body: Incoming,
    who: Requester,
) -> Response<Body> {
    match parts.method {
        Method::GET if sse::wants_sse(&parts.headers) => sse::stream(st, &parts, &who, None).await,
        Method::GET | Method::HEAD => {
            let (query, headers, cid) = match things::request_headers(&parts) {
                Ok(x) => x,
                Err(e) => return response::error(&e, None, None),
            };
            let r = match query.joined("ids") {
                Some(ids) => list::by_ids(st, &who, &ids, &query, headers).await,
                None => search::listing(st, &who, &parts, &query, &headers).await,
            };
            things::finish(r.map_err(things::Failure::from), &cid)
        }
        Method::POST => things::create(st, parts, body, who).await,
        ref m => {
            let cid = parts
                .headers
                .get("correlation-id")
                .and_then(|v| v.to_str().ok());
            response::method_not_allowed(m.as_str(), &["GET", "HEAD", "POST"], cid)
        }
    }
}
