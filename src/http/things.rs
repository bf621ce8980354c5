//! `/api/2/things/{thingId}[/sub-path]` and `POST /api/2/things`: each request becomes exactly
//! one twin `ThingCommand` (built as a Ditto Protocol envelope and parsed by `Signal`), runs
//! through `Hub::twin_command` (the write path the WebSocket uses) and is answered with
//! Ditto's status, body, `ETag`, `Location` and `correlation-id`.

use super::params::{self, HttpAcks, Query};
use super::response;
use crate::engine::errors as engine_errors;
use crate::error::DittoError;
use crate::http::body::Body;
use crate::hub::{Answer, Requester};
use crate::model::{parse_thing_id, EntityId};
use crate::protocol::headers::new_correlation_id;
use crate::protocol::{
    Action, Channel, Criterion, Envelope, Headers, Signal, ThingCommand, ThingPath, Topic,
};
use crate::rules::acks::AckKind;
use crate::rules::outcome::Finished;
use crate::state::State;
use futures_lite::future;
use hyper::body::Incoming;
use hyper::header::{HeaderName, ETAG};
use hyper::http::request::Parts;
use hyper::{Method, Response};
use serde_json::Value;
use std::sync::Arc;

/// A failed request: the error and, for 412/304, the current ETag of the resource (boxed:
/// `Result<_, Failure>` stays small on the success path).
pub(super) struct Failure {
    pub error: Box<DittoError>,
    pub etag: Option<String>,
}

impl From<DittoError> for Failure {
    fn from(error: DittoError) -> Self {
        Failure {
            error: Box::new(error),
            etag: None,
        }
    }
}

/// Query parameters and Ditto headers of a request, with a `correlation-id` (generated if absent).
pub(crate) fn request_headers(parts: &Parts) -> Result<(Query, Headers, String), DittoError> {
    let query = Query::parse(parts.uri.query())?;
    let mut headers = params::ditto_headers(&parts.headers, &query)?;
    let cid = match headers.correlation_id() {
        Some(c) => c.to_owned(),
        None => {
            let c = new_correlation_id();
            headers.insert("correlation-id", c.as_str());
            c
        }
    };
    Ok((query, headers, cid))
}

/// Turns the outcome of a handler into the HTTP response, echoing the correlation-id.
pub(super) fn finish(r: Result<Response<Body>, Failure>, cid: &str) -> Response<Body> {
    match r {
        Ok(resp) => response::with_cid(resp, Some(cid)),
        Err(f) => response::error(&f.error, Some(cid), f.etag.as_deref()),
    }
}

/// 400 `signal.unsupported` for API parts a later edgetwin version adds (messages, live, WoT).
pub(super) fn unsupported(what: &str) -> DittoError {
    DittoError::new(
        400,
        "signal.unsupported",
        format!("{what} is not supported by this edgetwin version."),
    )
    .describe("Supported are twin commands on things over HTTP, WebSocket and SSE.")
}

/// The `channel` of a request: `false` = twin, `true` = live (creating via live: 405).
fn check_channel(h: &Headers, id: &str, creating: bool) -> Result<bool, DittoError> {
    match h.get_str("channel").as_deref().map(str::trim) {
        None | Some("twin") => Ok(false),
        Some(c) if c.eq_ignore_ascii_case("live") && creating => {
            Err(engine_errors::live_not_creatable(id))
        }
        Some(c) if c.eq_ignore_ascii_case("live") => Ok(true),
        Some(other) => Err(DittoError::header_invalid(
            "channel",
            other,
            "channel (twin or live)",
        )),
    }
}

/// The thing ID in a request body of PUT/PATCH `/things/{id}` must equal the URL's.
fn check_body_thing_id(v: &Value, id: &str, patch: bool) -> Result<(), DittoError> {
    match v.get("thingId") {
        None => Ok(()),
        Some(Value::Null) if patch => Err(engine_errors::id_not_deletable()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(_) => Err(DittoError::new(
            400,
            "things:id.notsettable",
            "The Thing ID in the request body is not equal to the Thing ID in the request URL.",
        )
        .describe("Either delete the Thing ID from the request body or use the same Thing ID as in the request URL.")),
    }
}

fn command_timeout(acks: &HttpAcks) -> DittoError {
    crate::rules::acks::command_timeout(acks.timeout.as_millis() as u64)
}

/// The current ETag of the resource a failed command addresses (for 412/304 responses), read
/// from the stored state; no second command.
fn current_etag(st: &State, cmd: &ThingCommand) -> Option<String> {
    let state = st.hub.load_thing(&cmd.thing_id.to_string()).ok()??;
    (!state.deleted)
        .then(|| crate::engine::write::etag_at(&state, &cmd.path))
        .flatten()
}

/// Runs one twin command through the hub's door, waits for what its answer waits for
/// (durability as requested, bounded by `timeout`; custom acks through their waiter) and
/// answers with status, body, `ETag` and `entity-revision`; 202 when no response is required.
pub(super) async fn execute(
    st: &State,
    who: &Requester,
    cmd: &ThingCommand,
    acks: &HttpAcks,
) -> Result<Response<Body>, Failure> {
    let work = async {
        match st
            .hub
            .call(who, Signal::Thing(cmd.clone()), &acks.request)
            .await?
        {
            Some(Answer::Now(reply)) => match Answer::Now(reply).settle(&st.hub).await {
                Finished::Response(env) => Ok(Ok(env)),
                Finished::Error(e) => Err(e),
                _ => Err(DittoError::internal(
                    "a twin command ended without an answer",
                )),
            },
            Some(later) => Ok(Err(later)),
            None => Err(DittoError::internal(
                "a twin command ended without an answer",
            )),
        }
    };
    let limit = async {
        if acks.timeout.is_zero() {
            future::pending().await
        } else {
            smol::Timer::after(acks.timeout).await;
            None
        }
    };
    let env = match future::or(async { Some(work.await) }, limit).await {
        None => return Err(command_timeout(acks).into()),
        Some(Ok(Ok(env))) => env,
        // custom acks: the aggregation, when the waiter finished
        Some(Ok(Err(later))) => {
            let f = later.settle(&st.hub).await;
            return Ok(super::live::render_command(f, acks.response_required));
        }
        Some(Err(error)) => {
            let etag = if matches!(error.status, 304 | 412) {
                current_etag(st, cmd)
            } else {
                None
            };
            return Err(Failure {
                error: Box::new(error),
                etag,
            });
        }
    };
    if !acks.response_required {
        return Ok(response::empty(202));
    }
    let mut r = match (&env.value, env.status.unwrap_or(200)) {
        (Some(v), s) if s != 204 => response::json(s, v),
        (_, s) => response::empty(s),
    };
    if let Some(e) = env.headers.get_str("etag") {
        response::set(&mut r, ETAG, &e);
    }
    if let Some(rev) = env.headers.get_str("entity-revision") {
        response::set(&mut r, HeaderName::from_static("entity-revision"), &rev);
    }
    json_headers(&env, &mut r);
    Ok(r)
}

/// Copies `ditto-metadata` and `historical-headers` (JSON) of an answer to its response.
pub(super) fn json_headers(env: &Envelope, r: &mut Response<Body>) {
    for name in ["ditto-metadata", "historical-headers"] {
        let Some(md) = env.headers.get_str(name) else {
            continue;
        };
        // non-ASCII only occurs inside JSON strings: `\uXXXX` keeps it a valid header value
        let mut ascii = String::with_capacity(md.len());
        for c in md.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                for u in c.encode_utf16(&mut [0; 2]) {
                    ascii.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        response::set(r, HeaderName::from_static(name), &ascii);
    }
}

fn build_command(
    id: &EntityId,
    channel: Channel,
    action: Action,
    pointer: &str,
    headers: Headers,
    value: Option<Value>,
    fields: Option<String>,
) -> Result<ThingCommand, DittoError> {
    let topic = Topic::thing(
        &id.namespace,
        &id.name,
        channel,
        Criterion::Commands(action),
    );
    let mut env = Envelope::new(topic, headers, pointer);
    env.value = value;
    env.fields = fields;
    match Signal::from_envelope(env)? {
        Signal::Thing(cmd) => Ok(cmd),
        _ => Err(DittoError::internal(
            "HTTP request did not map to a thing command",
        )),
    }
}

/// Reads and parses the JSON body after the media-type check for `method`.
async fn json_body(
    st: &State,
    parts: &Parts,
    body: Incoming,
    merge: bool,
) -> Result<Value, DittoError> {
    if merge {
        params::require_merge_patch(&parts.headers)?;
    } else {
        params::require_json(&parts.headers)?;
    }
    let limits = &st.cfg.limits;
    let bytes = params::read_body(
        &parts.headers,
        body,
        limits.max_message_kib * 1024,
        std::time::Duration::from_secs(limits.body_timeout_secs),
    )
    .await?;
    params::parse_json(&bytes)
}

/// The pointer a sub-path addresses (`""`/`"/"` = root; one trailing slash is ignored).
pub(crate) fn sub_pointer(rest: &str) -> Result<String, DittoError> {
    let rest = params::decode(rest, false)?;
    let trimmed = rest.strip_suffix('/').unwrap_or(&rest);
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// True for definition-migration and other inbox/outbox sub-paths (not part of this binding).
fn is_unsupported_sub_path(pointer: &str) -> bool {
    let s: Vec<&str> = pointer.split('/').skip(1).collect();
    matches!(
        s.as_slice(),
        ["inbox" | "outbox", ..] | ["features", _, "inbox" | "outbox", ..] | ["migrateDefinition"]
    )
}

/// Handles `/api/2/things/{id}{rest}` (everything but SSE).
pub(super) async fn entry(
    st: &Arc<State>,
    parts: Parts,
    body: Incoming,
    who: Requester,
    id_raw: &str,
    rest: &str,
) -> Response<Body> {
    let (query, headers, cid) = match request_headers(&parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    let r = entry_inner(st, &parts, body, &who, id_raw, rest, query, headers, &cid).await;
    finish(r, &cid)
}

#[allow(clippy::too_many_arguments)]
async fn entry_inner(
    st: &State,
    parts: &Parts,
    body: Incoming,
    who: &Requester,
    id_raw: &str,
    rest: &str,
    query: Query,
    headers: Headers,
    cid: &str,
) -> Result<Response<Body>, Failure> {
    let id = parse_thing_id(&params::decode(id_raw, false)?)?;
    if let Some(target) = super::messages::message_target(rest)? {
        let claim_route = target.is_claim() && !rest.contains("/messages/");
        return super::messages::send(st, parts, body, who, &id, target, claim_route, headers)
            .await;
    }
    let pointer = sub_pointer(rest)?;
    if is_unsupported_sub_path(&pointer) {
        return Err(unsupported(&format!("The resource '{pointer}'")).into());
    }
    let Some(path) = ThingPath::parse(&pointer)? else {
        return Err(response::route_not_found(parts.uri.path()).into());
    };
    let allowed: &[&str] = if path == ThingPath::PolicyId {
        &["GET", "HEAD", "PUT", "PATCH"]
    } else {
        &["GET", "HEAD", "PUT", "PATCH", "DELETE"]
    };
    let action = match parts.method {
        Method::GET | Method::HEAD => Action::Retrieve,
        Method::PUT => Action::Modify,
        Method::PATCH => Action::Merge,
        Method::DELETE if path != ThingPath::PolicyId => Action::Delete,
        ref m => return Ok(response::method_not_allowed(m.as_str(), allowed, Some(cid))),
    };
    let id_text = id.to_string();
    let live = check_channel(&headers, &id_text, false)?;
    let acks = if live {
        None
    } else {
        Some(params::http_acks(&headers)?)
    };
    let value = match action {
        Action::Modify | Action::Merge => {
            let v = json_body(st, parts, body, action == Action::Merge).await?;
            if path == ThingPath::Root {
                check_body_thing_id(&v, &id_text, action == Action::Merge)?;
            }
            Some(v)
        }
        _ => None,
    };
    let fields = (action == Action::Retrieve)
        .then(|| query.joined("fields"))
        .flatten();
    let channel = if live { Channel::Live } else { Channel::Twin };
    let cmd = build_command(&id, channel, action, &pointer, headers, value, fields)?;
    // a smart-channel retrieve follows the live rules (its acks, its rendering)
    let r = match acks {
        Some(acks) if AckKind::of(&cmd.topic, &cmd.headers) == AckKind::Twin => {
            execute(st, who, &cmd, &acks).await?
        }
        _ => super::live::live_command(st, who, cmd).await?,
    };
    Ok(if r.status() == 201 {
        let url = response::absolute(&parts.headers, parts.uri.path());
        response::with_location(r, &url)
    } else {
        r
    })
}

/// `POST /api/2/things[?namespace=ns]`: creates a thing with the ID `<ns>:<uuid>` (namespace
/// empty without the parameter, as Ditto does); the body must not contain `thingId`.
pub(super) async fn create(
    st: &Arc<State>,
    parts: Parts,
    body: Incoming,
    who: Requester,
) -> Response<Body> {
    let (query, headers, cid) = match request_headers(&parts) {
        Ok(x) => x,
        Err(e) => return response::error(&e, None, None),
    };
    let r = async {
        let ns = query.get("namespace").unwrap_or("");
        let id = parse_thing_id(&format!("{ns}:{}", new_correlation_id()))?;
        check_channel(&headers, &id.to_string(), true)?;
        let acks = params::http_acks(&headers)?;
        params::require_json(&parts.headers)?;
        let limits = &st.cfg.limits;
        let bytes = params::read_body(
            &parts.headers,
            body,
            limits.max_message_kib * 1024,
            std::time::Duration::from_secs(limits.body_timeout_secs),
        )
        .await?;
        let value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            params::parse_json(&bytes)?
        };
        if value.get("thingId").is_some() {
            return Err(DittoError::new(
                400,
                "things:id.notsettable",
                "It is not allowed to provide a Thing ID in the request body for method POST. The method POST will generate the Thing ID by itself.",
            )
            .describe("To provide your own Thing ID use a PUT request instead.")
            .into());
        }
        let cmd = build_command(&id, Channel::Twin, Action::Create, "/", headers, Some(value), None)?;
        let r = execute(st, &who, &cmd, &acks).await?;
        let base = parts.uri.path().trim_end_matches('/');
        let url = response::absolute(&parts.headers, &format!("{base}/{id}"));
        Ok::<_, Failure>(if r.status() == 201 {
            response::with_location(r, &url)
        } else {
            r
        })
    }
    .await;
    finish(r, &cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths() {
        assert_eq!(sub_pointer("").unwrap(), "/");
        assert_eq!(sub_pointer("/").unwrap(), "/");
        assert_eq!(sub_pointer("/attributes/").unwrap(), "/attributes");
        assert_eq!(sub_pointer("/attributes/a%2Fb").unwrap(), "/attributes/a/b");
        assert!(is_unsupported_sub_path("/inbox/other"));
        assert!(is_unsupported_sub_path("/features/f/outbox/messages"));
        assert!(is_unsupported_sub_path("/migrateDefinition"));
        assert!(!is_unsupported_sub_path("/attributes/inbox"));
    }

    #[test]
    fn body_thing_id_rules() {
        let v = serde_json::json!({"thingId": "a:b"});
        assert!(check_body_thing_id(&v, "a:b", false).is_ok());
        assert_eq!(
            check_body_thing_id(&v, "a:c", false).unwrap_err().error,
            "things:id.notsettable"
        );
        let v = serde_json::json!({"thingId": null});
        assert_eq!(
            check_body_thing_id(&v, "a:b", true).unwrap_err().error,
            "things:id.notdeletable"
        );
    }
}
