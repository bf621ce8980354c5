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

/// `response_envelope` for a command and outcome that are done with: the topic, path,
/// correlation-id, etag and value move into the answer instead of being copied (issue 21).
pub fn response_envelope_owned(mut cmd: ThingCommand, outcome: Outcome) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = cmd
        .headers
        .remove("correlation-id")
        .filter(is_correlation_id)
    {
        headers.insert("correlation-id", c);
    }
    if let Some(e) = outcome.etag {
        headers.insert("etag", e);
    }
    if let Some(s) = outcome.state.filter(|_| cmd.action != Action::Retrieve) {
        headers.insert("entity-revision", s.revision);
    }
    if let Some(md) = outcome.ditto_metadata {
        headers.insert("ditto-metadata", md);
    }
    if let Some(h) = outcome.historical_headers {
        headers.insert("historical-headers", h);
    }
    let mut env = Envelope::new(cmd.topic, headers, cmd.raw_path);
    env.status = Some(outcome.status);
    env.value = outcome.value;
    env
}

/// The values `Headers::correlation_id` answers (a non-empty string).
fn is_correlation_id(v: &serde_json::Value) -> bool {
    matches!(v, serde_json::Value::String(s) if !s.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::ThingState;
    use crate::protocol::{Envelope, Signal};
    use serde_json::json;

    fn command(text: &str) -> ThingCommand {
        match Signal::from_envelope(Envelope::parse(text).unwrap()).unwrap() {
            Signal::Thing(c) => c,
            _ => unreachable!("a thing command"),
        }
    }

    /// The owned response is the borrowed one, whatever the command's correlation-id and the
    /// outcome's optional parts are.
    #[test]
    fn owned_response_equals_the_borrowed_one() {
        let heads = [
            r#"{"correlation-id":"c1","requested-acks":[]}"#,
            r#"{"Correlation-ID":"c2","x":1}"#,
            r#"{"correlation-id":""}"#,
            r#"{"correlation-id":7}"#,
            r#"{}"#,
        ];
        let actions = [
            ("modify", "/attributes/a", ",\"value\":1"),
            ("retrieve", "/", ""),
        ];
        let state = ThingState {
            thing: json!({"thingId": "n:t"}),
            revision: 9,
            created: 1,
            modified: 2,
            metadata: None,
            deleted: false,
        };
        for h in heads {
            for (action, path, value) in actions {
                let text = format!(
                    r#"{{"topic":"n/t/things/twin/commands/{action}","headers":{h},"path":"{path}"{value}}}"#
                );
                let cmd = command(&text);
                for full in [false, true] {
                    let o = Outcome {
                        status: if full { 200 } else { 204 },
                        value: full.then(|| json!({"a": [1, "x"]})),
                        etag: full.then(|| "\"rev:9\"".to_owned()),
                        state: full.then(|| state.clone()),
                        bytes: None,
                        event: None,
                        policy: None,
                        ditto_metadata: full.then(|| json!({"m": 1})),
                        historical_headers: full.then(|| json!({"h": "v"})),
                    };
                    let borrowed = response_envelope(&cmd, &o);
                    assert_eq!(
                        borrowed.to_text(),
                        response_envelope_owned(cmd.clone(), o).to_text(),
                        "{text} {full}"
                    );
                }
            }
        }
    }
}
