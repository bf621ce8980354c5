//! HTTP binding of policies (`/api/2/policies/{policyId}[/entries/...|/imports/...]` with GET,
//! PUT, DELETE) and `POST /api/2/checkPermissions`. A thin shell over the shared HTTP helpers:
//! each request becomes a `PolicyCommand` for the hub, answered after its write is durable.

use super::params;
use super::response;
use super::things::{finish, request_headers, Failure};
use crate::auth::Subjects;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::Requester;
use crate::model::parse_policy_id;
use crate::protocol::{Action, Channel, Criterion, Envelope, Group, Headers, Signal, Topic};
use crate::rules::acks::AckRequest;
use crate::rules::outcome::Finished;
use crate::state::State;
use hyper::body::Incoming;
use hyper::header::ETAG;
use hyper::http::request::Parts;
use hyper::{Method, Request, Response};
use std::sync::Arc;
use std::time::Duration;

/// Handles every request below `/api/2/policies` of an authenticated requester.
pub async fn handle_policies_http(
    st: &Arc<State>,
    req: Request<Incoming>,
    subjects: Subjects,
    path: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let (query, headers, cid) = match request_headers(&parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    let who = Requester {
        subjects,
        origin: None,
    };
    let r = policy_request(st, &parts, body, &who, path, &query, headers, &cid).await;
    finish(r.map_err(Failure::from), &cid)
}

#[allow(clippy::too_many_arguments)]
async fn policy_request(
    st: &State,
    parts: &Parts,
    body: Incoming,
    who: &Requester,
    path: &str,
    query: &params::Query,
    headers: Headers,
    cid: &str,
) -> Result<Response<Body>, DittoError> {
    let mut headers = headers;
    if let Some(v) = query.get("policy-view") {
        // `GET /api/2/policies/{id}?policy-view=resolved` (Ditto takes it as query or header)
        headers.insert("policy-view", v);
    }
    let rest = path.strip_prefix("/api/2/policies/").unwrap_or("");
    let (raw_id, sub) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let allowed: &[&str] = if raw_id.is_empty() {
        &[]
    } else {
        &["GET", "PUT", "DELETE"]
    };
    let action = match parts.method {
        Method::GET if !raw_id.is_empty() => Action::Retrieve,
        Method::PUT if !raw_id.is_empty() => Action::Modify,
        Method::DELETE if !raw_id.is_empty() => Action::Delete,
        ref m => return Ok(response::method_not_allowed(m.as_str(), allowed, Some(cid))),
    };
    let id = params::decode(raw_id, false)?;
    let eid = parse_policy_id(&id)?;
    let sub = match params::decode(sub, false)? {
        s if s.is_empty() => "/".to_owned(),
        s => s,
    };
    let value = if action == Action::Modify {
        let limits = &st.cfg.limits;
        let bytes = params::read_body(
            &parts.headers,
            body,
            limits.max_message_kib * 1024,
            Duration::from_secs(limits.body_timeout_secs),
        )
        .await
        .map_err(|e| match e.status {
            413 => DittoError {
                error: "policies:policy.toolarge".into(),
                ..e
            },
            _ => e,
        })?;
        Some(params::parse_json(&bytes)?)
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
    env.fields = query.joined("fields");
    let acks = AckRequest::durable();
    let env = match st.hub.call(who, Signal::Other(env), &acks).await? {
        Some(a) => match a.settle(&st.hub).await {
            Finished::Response(env) => env,
            Finished::Error(e) => return Err(e),
            _ => {
                return Err(DittoError::internal(
                    "a policy command ended without an answer",
                ))
            }
        },
        None => {
            return Err(DittoError::internal(
                "a policy command ended without an answer",
            ))
        }
    };
    let status = env.status.unwrap_or(200);
    let mut r = match &env.value {
        Some(v) if status != 204 => response::json(status, v),
        _ => response::empty(status),
    };
    if let Some(e) = env.headers.get_str("etag") {
        response::set(&mut r, ETAG, &e);
    }
    super::things::json_headers(&env, &mut r);
    if status == 201 {
        r = response::with_location(r, &response::absolute(&parts.headers, path));
    }
    Ok(r)
}

/// `POST /api/2/checkPermissions` (Ditto's `CheckPermissionsRoute`): a JSON object of named
/// checks in, `{name: true|false}` out (200); through the door as the protocol's
/// `_/_/policies/commands/checkPermissions`.
pub async fn check_permissions(
    st: &State,
    parts: Parts,
    body: Incoming,
    who: &Requester,
) -> Response<Body> {
    let (_, _, cid) = match request_headers(&parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    if parts.method != Method::POST {
        return response::method_not_allowed(parts.method.as_str(), &["POST"], Some(&cid));
    }
    let r = async {
        params::require_json(&parts.headers)?;
        let limits = &st.cfg.limits;
        let bytes = params::read_body(
            &parts.headers,
            body,
            limits.max_message_kib * 1024,
            Duration::from_secs(limits.body_timeout_secs),
        )
        .await?;
        let value = params::parse_json(&bytes)?;
        // over HTTP a body that is no JSON object is refused (the protocol takes it as no checks)
        crate::policy::check::request_object(&value)?;
        let mut env = Envelope::new(Topic::check_permissions(), Headers::new(), "/");
        env.value = Some(value);
        let acks = AckRequest::durable();
        match st.hub.call(who, Signal::Other(env), &acks).await? {
            Some(a) => match a.settle(&st.hub).await {
                Finished::Response(env) => Ok(response::json(200, &env.value.unwrap_or_default())),
                Finished::Error(e) => Err(e),
                _ => Err(DittoError::internal(
                    "checkPermissions ended without an answer",
                )),
            },
            None => Err(DittoError::internal(
                "checkPermissions ended without an answer",
            )),
        }
    };
    finish(r.await.map_err(|e: DittoError| Failure::from(e)), &cid)
}
