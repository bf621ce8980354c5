//! HTTP binding of policies (`/api/2/policies/{policyId}[/entries/...|/imports/...]` with GET,
//! PUT, DELETE). A thin shell: each request becomes a `PolicyCommand` for the hub, answered
//! after its write is durable.

use crate::auth::Subjects;
use crate::error::DittoError;
use crate::hub::Requester;
use crate::model::parse_policy_id;
use crate::policy::PolicyCommand;
use crate::protocol::{Action, Channel, Criterion, Envelope, Group, Headers, Topic};
use crate::server::{error_response, full, json_response, Body, State};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;

/// Request headers that carry over into the policy command.
const PASSED_HEADERS: [&str; 5] = [
    "correlation-id",
    "if-match",
    "if-none-match",
    "allow-policy-lockout",
    "response-required",
];

/// Percent-decodes a URL path (`+` stays `+`); `None` if malformed.
fn path_decode(s: &str) -> Option<String> {
    crate::protocol::url_decode(&s.replace('+', "%2B"))
}

fn method_not_allowed(method: &Method, path: &str) -> DittoError {
    DittoError::new(
        405,
        "gateway:method.notallowed",
        format!("The provided HTTP method '{method}' is not allowed on this resource '{path}'."),
    )
    .describe("Use GET, PUT or DELETE on policy resources.")
}

/// Handles every request below `/api/2/policies` of an authenticated requester.
pub async fn handle_policies_http(
    st: &Arc<State>,
    req: Request<Incoming>,
    subjects: Subjects,
    path: &str,
) -> Response<Body> {
    match policy_request(st, req, subjects, path).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn policy_request(
    st: &Arc<State>,
    req: Request<Incoming>,
    subjects: Subjects,
    path: &str,
) -> Result<Response<Body>, DittoError> {
    let rest = path.strip_prefix("/api/2/policies/").unwrap_or("");
    let (raw_id, sub) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if raw_id.is_empty() {
        return Err(method_not_allowed(req.method(), path));
    }
    let id = path_decode(raw_id).unwrap_or_else(|| raw_id.to_owned());
    let eid = parse_policy_id(&id)?;
    let sub = path_decode(sub).ok_or_else(|| crate::protocol::unknown_path(sub))?;
    let action = match *req.method() {
        Method::GET => Action::Retrieve,
        Method::PUT => Action::Modify,
        Method::DELETE => Action::Delete,
        ref m => return Err(method_not_allowed(m, path)),
    };
    let mut headers = Headers::new();
    for name in PASSED_HEADERS {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            headers.insert(name, v);
        }
    }
    if headers.correlation_id().is_none() {
        headers.insert("correlation-id", crate::hub::twin::new_correlation_id());
    }
    let query = req
        .uri()
        .query()
        .and_then(crate::protocol::control::parse_query);
    let fields = query
        .iter()
        .flatten()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.clone());
    let value = if action == Action::Modify {
        let max = st.cfg.limits.max_message_kib * 1024;
        let body = Limited::new(req.into_body(), max)
            .collect()
            .await
            .map_err(|_| {
                DittoError::new(
                    413,
                    "policies:policy.toolarge",
                    format!("The request body exceeds {max} bytes."),
                )
                .describe("Reduce the size of the policy.")
            })?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        Some(serde_json::from_str::<Value>(&text).map_err(|_| DittoError::json_invalid(&text))?)
    } else {
        None
    };
    let topic = Topic {
        namespace: eid.namespace.clone(),
        name: eid.name.clone(),
        group: Group::Policies,
        channel: Channel::None,
        criterion: Criterion::Commands(action),
    };
    let mut env = Envelope::new(topic, headers, sub);
    env.value = value;
    env.fields = fields;
    let cmd = PolicyCommand::from_envelope(&env)
        .unwrap_or_else(|| Err(crate::protocol::unknown_path(&env.path)))?;
    let who = Requester {
        subjects,
        origin: None,
    };
    let done = st.hub.policy_command(&who, &cmd).await?;
    if let Some(seq) = done.seq {
        st.hub
            .store()
            .durable(seq)
            .await
            .map_err(|_| crate::policy::errors::unavailable(&id))?;
    }
    let o = done.outcome;
    let mut r = match &o.value {
        Some(v) if o.status != 204 => json_response(o.status, v),
        _ => {
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::from_u16(o.status).unwrap_or(StatusCode::NO_CONTENT);
            r
        }
    };
    let h = r.headers_mut();
    if let Some(e) = o
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        h.insert("etag", e);
    }
    if let Some(c) = cmd
        .headers
        .correlation_id()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("correlation-id", c);
    }
    if o.status == 201 {
        if let Ok(l) = HeaderValue::from_str(path) {
            h.insert("location", l);
        }
    }
    if o.value.is_none() {
        h.remove(CONTENT_TYPE);
    }
    Ok(r)
}
