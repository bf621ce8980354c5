//! The live channel over HTTP: thing commands with `channel=live` (and the smart channel of
//! retrieves), twin commands with custom acks, and how a waited-for outcome becomes the HTTP
//! response: the device's status and body (messages: its payload and content-type, binary
//! base64-decoded), 408 on timeout, or the aggregated acks object (202 without a required
//! response when all acks succeeded).

use super::response;
use super::things::Failure;
use crate::error::DittoError;
use crate::http::body::{full, Body};
use crate::hub::Requester;
use crate::protocol::message::value_to_bytes;
use crate::protocol::{Criterion, Envelope, Signal};
use crate::rules::acks::{aggregate_value, AckKind, AckRequest, Binding};
use crate::rules::outcome::Finished;
use crate::state::State;
use hyper::header::{HeaderName, CONTENT_TYPE, ETAG};
use hyper::{Response, StatusCode};

/// Headers of a live / smart answer passed on to the HTTP caller.
const PASSED: [&str; 3] = ["etag", "channel", "live-channel-condition-matched"];

fn with_status(mut r: Response<Body>, status: u16) -> Response<Body> {
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r
}

/// An error answer of the device (`.../errors` envelope) as a Ditto error.
fn device_error(env: &Envelope) -> Option<DittoError> {
    (env.topic.criterion == Criterion::Errors)
        .then(|| env.value.as_ref().and_then(DittoError::from_json))
        .flatten()
}

fn pass_headers(mut r: Response<Body>, env: &Envelope) -> Response<Body> {
    for name in PASSED {
        if let Some(v) = env.headers.get_str(name) {
            let n = if name == "etag" {
                ETAG
            } else {
                HeaderName::from_static(name)
            };
            response::set(&mut r, n, &v);
        }
    }
    r
}

/// The aggregated acks: status + object (only statuses and 202 for success when no response
/// is required, as Ditto's HTTP layer does).
fn acks_response(
    status: u16,
    acks: &[(String, crate::rules::acks::Ack)],
    response_required: bool,
) -> Response<Body> {
    if !response_required {
        if acks.iter().all(|(_, a)| a.success()) {
            return response::empty(202);
        }
        return response::json(status, &aggregate_value(acks, true));
    }
    response::json(status, &aggregate_value(acks, false))
}

/// A finished live command / twin-with-acks request as HTTP response.
pub(super) fn render_command(f: Finished, response_required: bool) -> Response<Body> {
    match f {
        Finished::Response(env) => {
            if let Some(e) = device_error(&env) {
                return pass_headers(response::error(&e, None, None), &env);
            }
            let status = env.status.unwrap_or(200);
            let r = match &env.value {
                Some(v) if status != 204 => response::json(status, v),
                _ => response::empty(status),
            };
            pass_headers(r, &env)
        }
        Finished::Error(e) => response::error(&e, None, None),
        Finished::Acks { status, acks } => acks_response(status, &acks, response_required),
        Finished::Nothing => response::error(
            &DittoError::internal("request ended without an answer"),
            None,
            None,
        ),
    }
}

/// A finished message request: the responder's status (502 is never passed through), its
/// payload with its content-type; 204 has no body.
pub(super) fn render_message(f: Finished, response_required: bool) -> Response<Body> {
    let env = match f {
        Finished::Response(env) => env,
        other => return render_command(other, response_required),
    };
    if let Some(e) = device_error(&env) {
        return response::error(&e, None, None);
    }
    let status = env.status.filter(|s| *s != 502).unwrap_or(200);
    if status == 204 {
        return response::empty(204);
    }
    let ct = env.headers.get_str("content-type").map(|c| c.into_owned());
    let mut r = match &env.value {
        Some(v) => with_status(
            Response::new(full(value_to_bytes(v, ct.as_deref()))),
            status,
        ),
        None => response::empty(status),
    };
    if let (Some(ct), Some(_)) = (&ct, &env.value) {
        response::set(&mut r, CONTENT_TYPE, ct);
    }
    r
}

/// A thing command on the live channel (or a smart-channel retrieve) over HTTP: through the
/// hub's door, answered when the device (or the twin) answered, 202 if nothing will.
pub(super) async fn live_command(
    st: &State,
    who: &Requester,
    cmd: crate::protocol::ThingCommand,
) -> Result<Response<Body>, Failure> {
    let acks = AckRequest::resolve(&cmd.headers, AckKind::Live, Binding::Http)?;
    match st.hub.call(who, Signal::Thing(cmd), &acks).await? {
        None => Ok(response::empty(202)),
        Some(answer) => Ok(render_command(
            answer.settle(&st.hub).await,
            acks.response_required,
        )),
    }
}
