//! Message endpoints: `POST /api/2/things/{id}[/features/{f}]/{inbox|outbox}/messages/{subject}`
//! and `POST /api/2/things/{id}/inbox/claim`. The body (any bytes, at most 250 kB) becomes the
//! message `value` by its `Content-Type`; `timeout` (seconds or with unit; default 10 s, claim
//! 60 s; `0` = fire and forget, 202); the responder's answer is returned as it was given.

use super::live::render_message;
use super::params;
use super::response;
use super::things::Failure;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::Requester;
use crate::model::EntityId;
use crate::protocol::message::{
    payload_too_large, subject_invalid, value_from_bytes, Direction, MessagePath, MAX_PAYLOAD_BYTES,
};
use crate::protocol::{Channel, Criterion, Envelope, Headers, Signal, Topic};
use crate::rules::acks::{AckKind, AckRequest, Binding};
use crate::state::State;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::http::request::Parts;
use hyper::{Method, Response};

/// The message a sub-path addresses: `Ok(None)` = not a message path; `Err` = a message path
/// with an invalid subject.
pub(crate) fn message_target(rest: &str) -> Result<Option<MessagePath>, DittoError> {
    let (feature, tail) = match rest.strip_prefix("/features/") {
        Some(r) => match r.split_once('/') {
            Some((f, t)) => (Some(params::decode(f, false)?), format!("/{t}")),
            None => return Ok(None),
        },
        None => (None, rest.to_owned()),
    };
    let (direction, after) = if let Some(a) = tail.strip_prefix("/inbox") {
        (Direction::Inbox, a)
    } else if let Some(a) = tail.strip_prefix("/outbox") {
        (Direction::Outbox, a)
    } else {
        return Ok(None);
    };
    if feature.is_none() && direction == Direction::Inbox {
        if let Some(c) = after.strip_prefix("/claim") {
            if c.is_empty() || c == "/" {
                return Ok(Some(MessagePath {
                    feature,
                    direction,
                    subject: "claim".into(),
                }));
            }
        }
    }
    let Some(subject) = after.strip_prefix("/messages/") else {
        return Ok(None);
    };
    let subject = params::decode(subject, false)?;
    let subject = subject.strip_prefix('/').unwrap_or(&subject).to_owned();
    if subject.is_empty() {
        return Err(subject_invalid(&subject));
    }
    Ok(Some(MessagePath {
        feature,
        direction,
        subject,
    }))
}

/// 413 for a message body above 250 kB (instead of the generic body limit error).
fn as_payload_error(e: DittoError, declared: Option<usize>) -> DittoError {
    if e.status == 413 {
        payload_too_large(declared.unwrap_or(MAX_PAYLOAD_BYTES + 1))
    } else {
        e
    }
}

/// Sends one message from an HTTP request and answers with the responder's answer.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    st: &State,
    parts: &Parts,
    body: Incoming,
    who: &Requester,
    id: &EntityId,
    path: MessagePath,
    claim_route: bool,
    mut headers: Headers,
) -> Result<Response<Body>, Failure> {
    if parts.method != Method::POST {
        let cid = headers.correlation_id().map(str::to_owned);
        return Ok(response::method_not_allowed(
            parts.method.as_str(),
            &["POST"],
            cid.as_deref(),
        ));
    }
    let kind = if claim_route {
        AckKind::Claim
    } else {
        AckKind::Message
    };
    let acks = AckRequest::resolve(&headers, kind, Binding::Http)?;
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let bytes = params::read_body(
        &parts.headers,
        body,
        MAX_PAYLOAD_BYTES,
        std::time::Duration::from_secs(st.cfg.limits.body_timeout_secs),
    )
    .await
    .map_err(|e| as_payload_error(e, declared))?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let value = value_from_bytes(&bytes, content_type.as_deref())?;
    if let Some(ct) = &content_type {
        headers.insert("content-type", ct.as_str());
    }
    headers.remove("channel");
    if let Some(c) = headers.get_str("condition").map(|c| c.into_owned()) {
        if !st.hub.condition_holds(who, id, &c)? {
            return Err(crate::engine::errors::condition_failed().into());
        }
    }
    let topic = Topic::thing(
        &id.namespace,
        &id.name,
        Channel::Live,
        Criterion::Messages(path.subject.clone()),
    );
    let mut env = Envelope::new(topic, headers, path.to_path());
    env.value = value;
    match st.hub.call(who, Signal::Other(env), &acks).await? {
        None => Ok(response::empty(202)),
        Some(a) => Ok(render_message(
            a.settle(&st.hub).await,
            acks.response_required,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sub_paths() {
        let t = |s: &str| message_target(s).unwrap();
        let p = t("/inbox/messages/ask").unwrap();
        assert_eq!((p.direction, p.subject.as_str()), (Direction::Inbox, "ask"));
        let p = t("/features/lamp/outbox/messages/a%2Fb/c").unwrap();
        assert_eq!(
            (p.feature.as_deref(), p.direction, p.subject.as_str()),
            (Some("lamp"), Direction::Outbox, "a/b/c")
        );
        assert!(t("/inbox/claim").unwrap().is_claim());
        assert!(t("/inbox/claim/").unwrap().is_claim());
        assert_eq!(t("/attributes/inbox"), None);
        assert_eq!(t("/inbox/other"), None);
        assert_eq!(t("/features/f/inbox/claim"), None);
        assert_eq!(
            message_target("/inbox/messages/").unwrap_err().error,
            "messages:subject.invalid"
        );
    }
}
