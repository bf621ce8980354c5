//! The answers the hub builds from the core's outcomes: the response envelope of a thing or
//! policy command, 400 `signal.unsupported` and 503 for writes the store refuses.

use crate::engine::Outcome;
use crate::error::DittoError;
use crate::policy::{PolicyCommand, PolicyOutcome};
use crate::protocol::{Action, Envelope, Headers, ThingCommand};

/// The success response to a thing command: same topic and path, `status`, `value` where the
/// action returns one, `correlation-id` and `etag` headers.
pub fn response_envelope(cmd: &ThingCommand, outcome: &Outcome) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = cmd.headers.correlation_id() {
        headers.insert("correlation-id", c);
    }
    if let Some(e) = &outcome.etag {
        headers.insert("etag", e.as_str());
    }
    if let Some(s) = outcome
        .state
        .as_ref()
        .filter(|_| cmd.action != Action::Retrieve)
    {
        headers.insert("entity-revision", s.revision);
    }
    if let Some(md) = &outcome.ditto_metadata {
        headers.insert("ditto-metadata", md.clone());
    }
    if let Some(h) = &outcome.historical_headers {
        headers.insert("historical-headers", h.clone());
    }
    let mut env = Envelope::new(cmd.topic.clone(), headers, cmd.raw_path.clone());
    env.status = Some(outcome.status);
    env.value = outcome.value.clone();
    env
}

/// The response envelope of a policy command.
pub fn policy_response_envelope(cmd: &PolicyCommand, o: &PolicyOutcome) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = cmd.headers.correlation_id() {
        headers.insert("correlation-id", c);
    }
    if let Some(e) = &o.etag {
        headers.insert("etag", e.as_str());
    }
    let mut env = Envelope::new(cmd.topic.clone(), headers, cmd.raw_path.clone());
    env.status = Some(o.status);
    env.value = o.value.clone();
    env
}

/// 400 `signal.unsupported`.
pub fn unsupported(topic: &crate::protocol::Topic) -> DittoError {
    DittoError::new(
        400,
        "signal.unsupported",
        format!("The signal with topic '{topic}' is not supported by this edgetwin version."),
    )
    .describe("Supported are thing commands (twin and live), live events, messages, acknowledgements and policy commands.")
}

/// 503 `<group>:<entity>.unavailable` for a write the store refuses (disk full, read-only or
/// failed store): Ditto's answer when its persistence cannot take a change, with the reason.
pub fn not_writable(group: &str, entity: &str, id: &str, why: &str) -> DittoError {
    let name = if entity == "thing" { "Thing" } else { "Policy" };
    DittoError::new(
        503,
        format!("{group}:{entity}.unavailable"),
        format!("The {name} with ID '{id}' cannot be changed now: the gateway's storage refuses writes."),
    )
    .describe(format!(
        "{why}. Reads keep working; writes resume by themselves once the storage accepts them again."
    ))
}
