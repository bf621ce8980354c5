//! The Ditto Protocol envelope (`topic`, `headers`, `path`, `value`, `status`, `fields`,
//! `extra`, `revision`, `timestamp`, `metadata`): text <-> struct, plus the error envelope that
//! every binding sends for input it could not process.

use super::envelope_raw::{HeadersField, Raw, Text};
use super::headers::Headers;
use super::topic::{Channel, Criterion, Group, Topic};
use crate::bounds::{self, JsonError};
use crate::error::DittoError;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One Ditto Protocol message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// topic
    pub topic: Topic,
    /// headers
    pub headers: Headers,
    /// JSON pointer into the entity (`/` = whole entity)
    pub path: String,
    /// payload; `Some(Value::Null)` is an explicit JSON null (merge delete)
    pub value: Option<Value>,
    /// status (responses, errors, acks)
    pub status: Option<u16>,
    /// field selector (retrieve)
    pub fields: Option<String>,
    /// enrichment (events delivered with extraFields)
    pub extra: Option<Value>,
    /// entity revision (events)
    pub revision: Option<u64>,
    /// ISO-8601 timestamp (events)
    pub timestamp: Option<String>,
    /// metadata written with the change (events)
    pub metadata: Option<Value>,
}

/// Why an inbound text could not become an envelope, with what is known for routing the error.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseFailure {
    /// the error to answer with
    pub error: DittoError,
    /// the correlation-id, if the headers could be read
    pub correlation_id: Option<String>,
    /// the topic, if it could be parsed (routes the error to `<ns>/<name>/.../errors`)
    pub topic: Option<Topic>,
}

fn wrong_type(field: &str, expected: &str) -> DittoError {
    DittoError::json_format(format!(
        "Value for field </{field}> is not of the expected type {expected}."
    ))
}

impl Envelope {
    /// Parses one text frame. Unknown top-level fields are ignored. The common shape is read
    /// by hand (`envelope_fast`); everything else, every error included, by serde.
    pub fn parse(text: &str) -> Result<Envelope, Box<ParseFailure>> {
        match super::envelope_fast::parse(text) {
            Some(env) => Ok(env),
            None => Envelope::parse_serde(text),
        }
    }

    /// `parse` through serde (`envelope_raw`): every shape, every answer to bad input.
    pub(super) fn parse_serde(text: &str) -> Result<Envelope, Box<ParseFailure>> {
        let fail = |error, correlation_id, topic| {
            Box::new(ParseFailure {
                error,
                correlation_id,
                topic,
            })
        };
        if text.trim().is_empty() {
            return Err(fail(DittoError::json_format("Empty json."), None, None));
        }
        let raw: Raw = match bounds::from_slice(text.as_bytes(), bounds::MAX_FRAME_DEPTH) {
            Ok(r) => r,
            Err(JsonError::TooDeep(found, max)) => {
                return Err(fail(bounds::too_deep_json(text, found, max), None, None))
            }
            Err(e) if e.is_data() => {
                return Err(fail(
                    DittoError::json_format("The JSON message must be a JSON object."),
                    None,
                    None,
                ))
            }
            Err(_) => return Err(fail(DittoError::json_invalid(text), None, None)),
        };
        let headers = match raw.headers {
            None => Headers::new(),
            Some(HeadersField::Read(h)) => h.map_err(|e| fail(e, None, None))?,
            Some(HeadersField::NotObject) => {
                return Err(fail(wrong_type("headers", "JsonObject"), None, None))
            }
        };
        // copied only for an error (this runs for every frame)
        let cid = || headers.correlation_id().map(str::to_owned);
        let topic = match raw.topic {
            None => return Err(fail(DittoError::field_missing("/topic"), cid(), None)),
            Some(Text::Str(t)) => Topic::parse(&t).map_err(|e| fail(e, cid(), None))?,
            Some(Text::Other) => return Err(fail(wrong_type("topic", "String"), cid(), None)),
        };
        let with_topic = |e: DittoError| fail(e, cid(), Some(topic.clone()));
        let path = match raw.path {
            None => return Err(with_topic(DittoError::field_missing("/path"))),
            Some(Value::String(p)) => p,
            Some(_) => return Err(with_topic(wrong_type("path", "String"))),
        };
        let status = match raw.status {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..600).contains(s))
                    .ok_or_else(|| with_topic(wrong_type("status", "int (HTTP status)")))?,
            ),
        };
        let fields = match raw.fields {
            None | Some(Value::Null) => None,
            Some(Value::String(f)) => Some(f),
            Some(_) => return Err(with_topic(wrong_type("fields", "String"))),
        };
        let revision = match raw.revision {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| with_topic(wrong_type("revision", "long")))?,
            ),
        };
        let timestamp = match raw.timestamp {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(with_topic(wrong_type("timestamp", "String"))),
        };
        Ok(Envelope {
            topic,
            headers,
            path,
            value: raw.value,
            status,
            fields,
            extra: raw.extra.filter(|v| !v.is_null()),
            revision,
            timestamp,
            metadata: raw.metadata.filter(|v| !v.is_null()),
        })
    }

    /// A bare envelope.
    pub fn new(topic: Topic, headers: Headers, path: impl Into<String>) -> Envelope {
        Envelope {
            topic,
            headers,
            path: path.into(),
            value: None,
            status: None,
            fields: None,
            extra: None,
            revision: None,
            timestamp: None,
            metadata: None,
        }
    }

    /// As a JSON object.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("topic".into(), Value::String(self.topic.to_string()));
        m.insert("headers".into(), Value::Object(self.headers.to_map()));
        m.insert("path".into(), Value::String(self.path.clone()));
        if let Some(v) = &self.value {
            m.insert("value".into(), v.clone());
        }
        if let Some(f) = &self.fields {
            m.insert("fields".into(), Value::String(f.clone()));
        }
        if let Some(e) = &self.extra {
            m.insert("extra".into(), e.clone());
        }
        if let Some(s) = self.status {
            m.insert("status".into(), s.into());
        }
        if let Some(r) = self.revision {
            m.insert("revision".into(), r.into());
        }
        if let Some(t) = &self.timestamp {
            m.insert("timestamp".into(), Value::String(t.clone()));
        }
        if let Some(md) = &self.metadata {
            m.insert("metadata".into(), md.clone());
        }
        Value::Object(m)
    }

    /// Serialized as one JSON text (one WS frame): the same text as `to_value().to_string()`,
    /// written straight from the fields (no intermediate `Value` copy of the payload).
    pub fn to_text(&self) -> String {
        // room for a typical message at once (growing from empty reallocated ~6 times)
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the bytes of `to_text` to `out`: field order and presence exactly as
    /// `to_value`, each value as `engine::json_write` writes it (serde_json's compact bytes
    /// without a `Serializer` call per token; issue 21).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use crate::engine::json_write::{write_str, write_u64, write_value};
        out.extend_from_slice(b"{\"topic\":");
        write_topic(out, &self.topic);
        out.extend_from_slice(b",\"headers\":{");
        for (i, (k, v)) in self.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            write_value(out, v);
        }
        out.extend_from_slice(b"},\"path\":");
        write_str(out, &self.path);
        if let Some(v) = &self.value {
            out.extend_from_slice(b",\"value\":");
            write_value(out, v);
        }
        if let Some(f) = &self.fields {
            out.extend_from_slice(b",\"fields\":");
            write_str(out, f);
        }
        if let Some(e) = &self.extra {
            out.extend_from_slice(b",\"extra\":");
            write_value(out, e);
        }
        if let Some(st) = self.status {
            out.extend_from_slice(b",\"status\":");
            write_u64(out, u64::from(st));
        }
        if let Some(r) = self.revision {
            out.extend_from_slice(b",\"revision\":");
            write_u64(out, r);
        }
        if let Some(t) = &self.timestamp {
            out.extend_from_slice(b",\"timestamp\":");
            write_str(out, t);
        }
        if let Some(md) = &self.metadata {
            out.extend_from_slice(b",\"metadata\":");
            write_value(out, md);
        }
        out.push(b'}');
    }
}

/// Largest serialization buffer a thread keeps between messages (a bigger one is dropped).
const KEPT_BUFFER: usize = 64 * 1024;

thread_local! {
    /// The buffer `to_shared_text` serializes into, reused by the next message of this thread.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Envelope {
    /// `to_text` as the shared text a binding queues, written into a per-thread buffer that
    /// is reused (at most `KEPT_BUFFER` bytes kept per thread): one allocation for the text
    /// instead of a growing `Vec` and its copy into the `Arc` (issue 21).
    pub fn to_shared_text(&self) -> Arc<str> {
        let shared = BUFFER.with(|b| {
            let mut buf = b.try_borrow_mut().ok()?;
            buf.clear();
            self.write_json(&mut buf);
            let text = std::str::from_utf8(&buf).ok().map(Arc::from);
            if buf.capacity() > KEPT_BUFFER {
                *buf = Vec::new();
            }
            text
        });
        shared.unwrap_or_else(|| Arc::from(self.to_text()))
    }
}

/// The topic's text as a JSON string, written piece by piece (no `fmt`).
fn write_topic(out: &mut Vec<u8>, topic: &Topic) {
    out.push(b'"');
    for piece in topic.pieces() {
        crate::engine::json_write::write_escaped(out, piece);
    }
    out.push(b'"');
}

/// The error topic for a failed signal: `<ns>/<name>/things/<channel>/errors`,
/// `<ns>/<name>/policies/errors`, `_/_/things/search/errors` for search, and
/// `unknown/unknown/things/twin/errors` when nothing could be attributed.
pub fn error_topic(about: Option<&Topic>) -> Topic {
    match about {
        Some(t) if matches!(t.criterion, Criterion::Search(_)) => Topic {
            namespace: "_".into(),
            name: "_".into(),
            group: Group::Things,
            channel: Channel::None,
            criterion: Criterion::Search("errors".into()),
        },
        Some(t) => t.with_criterion(Criterion::Errors),
        None => Topic::thing("unknown", "unknown", Channel::Twin, Criterion::Errors),
    }
}

/// The error envelope answering a signal (`path` `/`, `value` = error object, `status`).
pub fn error_envelope(
    about: Option<&Topic>,
    correlation_id: Option<&str>,
    error: &DittoError,
) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = correlation_id {
        headers.insert("correlation-id", c);
    }
    let mut e = Envelope::new(error_topic(about), headers, "/");
    e.value = Some(error.to_json());
    e.status = Some(error.status);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_command_and_distinguishes_null_from_absent() {
        let e = Envelope::parse(
            r#"{"topic":"a/b/things/twin/commands/merge","headers":{"correlation-id":"c"},"path":"/attributes/x","value":null,"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(e.value, Some(Value::Null));
        assert_eq!(e.headers.correlation_id(), Some("c"));
        let e =
            Envelope::parse(r#"{"topic":"a/b/things/twin/commands/retrieve","path":"/"}"#).unwrap();
        assert_eq!(e.value, None);
        assert!(e.headers.is_empty());
    }

    #[test]
    fn input_errors_have_ditto_codes() {
        let code = |t: &str| Envelope::parse(t).unwrap_err().error.error.to_string();
        assert_eq!(code(""), "json.format.invalid");
        assert_eq!(code("FOO"), "json.invalid");
        assert_eq!(code("[1,2]"), "json.format.invalid");
        assert_eq!(code(r#"{"path":"/"}"#), "json.field.missing");
        assert_eq!(
            code(r#"{"topic":"x/y/things/twin/commands/nope","path":"/"}"#),
            "protocoladapter:unknown.topicpath"
        );
        let f = Envelope::parse(
            r#"{"topic":"a/b/things/twin/commands/modify","headers":{"correlation-id":"k"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            f.error.message,
            "JSON did not include required </path> field!"
        );
        assert_eq!(f.correlation_id.as_deref(), Some("k"));
        assert_eq!(
            error_topic(f.topic.as_ref()).to_string(),
            "a/b/things/twin/errors"
        );
        let f = Envelope::parse("FOO").unwrap_err();
        assert_eq!(f.error.message, "Failed to parse JSON string 'FOO'!");
    }

    #[test]
    fn error_envelope_shape() {
        let err = DittoError::new(404, "things:thing.notfound", "nope");
        let t = Topic::parse("a/b/things/live/commands/retrieve").unwrap();
        let v = error_envelope(Some(&t), Some("c1"), &err).to_value();
        assert_eq!(
            v,
            json!({"topic":"a/b/things/live/errors","headers":{"correlation-id":"c1"},"path":"/",
                   "value":{"status":404,"error":"things:thing.notfound","message":"nope"},"status":404})
        );
        assert_eq!(
            error_topic(None).to_string(),
            "unknown/unknown/things/twin/errors"
        );
        let s = Topic::parse("_/_/things/twin/search/subscribe").unwrap();
        assert_eq!(
            error_topic(Some(&s)).to_string(),
            "_/_/things/search/errors"
        );
    }

    #[test]
    fn to_text_is_the_text_of_to_value() {
        let texts = [
            r#"{"topic":"a/b/things/twin/events/modified","headers":{"correlation-id":"c\"1","X-Case":true,"n":[1,2.5]},"path":"/attributes/x","value":{"z":1,"a":"\u00e9\n"},"extra":{"a":1},"revision":3,"timestamp":"2021-01-18T09:42:12Z","metadata":{"m":null}}"#,
            r#"{"topic":"a/b/things/twin/commands/retrieve","path":"/","fields":"thingId,_revision","status":200,"value":null}"#,
            r#"{"topic":"_/_/things/twin/search/subscribe","headers":{},"path":"/"}"#,
        ];
        for t in texts {
            let e = Envelope::parse(t).unwrap();
            assert_eq!(e.to_text(), e.to_value().to_string(), "{t}");
        }
        let err = DittoError::new(404, "things:thing.notfound", "nope").describe("d");
        let e = error_envelope(None, Some("c"), &err);
        assert_eq!(e.to_text(), e.to_value().to_string());
    }

    /// `write_json` (what every answer and event is sent as) writes the bytes serde_json
    /// writes for `to_value`, on random envelopes: every field present or absent, random
    /// header names and values, strings with control bytes, quotes and multi-byte UTF-8, and
    /// topics whose text needs escaping (a message subject).
    #[test]
    fn write_json_is_serde_json_of_to_value() {
        use crate::engine::json_write::tests::{random_str, random_value};
        use crate::protocol::topic::Action;
        let mut rng = fastrand::Rng::with_seed(21);
        for _ in 0..5_000 {
            let criterion = match rng.u8(0..3) {
                0 => Criterion::Commands(Action::Modify),
                1 => Criterion::Messages(random_str(&mut rng)),
                _ => Criterion::Errors,
            };
            let topic = Topic {
                namespace: random_str(&mut rng),
                name: random_str(&mut rng),
                group: Group::Things,
                channel: Channel::Twin,
                criterion,
            };
            let mut headers = Headers::new();
            for _ in 0..rng.usize(0..5) {
                headers.insert(random_str(&mut rng), random_value(&mut rng, 2));
            }
            let mut e = Envelope::new(topic, headers, random_str(&mut rng));
            let some = |rng: &mut fastrand::Rng| rng.bool();
            e.value = some(&mut rng).then(|| random_value(&mut rng, 0));
            e.status = some(&mut rng).then(|| rng.u16(..));
            e.fields = some(&mut rng).then(|| random_str(&mut rng));
            e.extra = some(&mut rng).then(|| random_value(&mut rng, 0));
            e.revision = some(&mut rng).then(|| rng.u64(..));
            e.timestamp = some(&mut rng).then(|| random_str(&mut rng));
            e.metadata = some(&mut rng).then(|| random_value(&mut rng, 0));
            let mut out = b"kept".to_vec();
            e.write_json(&mut out);
            let want = e.to_value().to_string();
            assert_eq!(std::str::from_utf8(&out[4..]).unwrap(), want);
            assert_eq!(e.to_text(), want);
            assert_eq!(&*e.to_shared_text(), want);
        }
    }

    /// The shared text is `to_text`, for a message after a bigger one (the buffer is reused)
    /// and for one beyond the kept buffer size (that buffer is dropped afterwards).
    #[test]
    fn shared_text_is_to_text() {
        let big = format!(
            r#"{{"topic":"a/b/things/twin/commands/modify","headers":{{"correlation-id":"c"}},"path":"/attributes/x","value":"{}"}}"#,
            "y".repeat(KEPT_BUFFER + 10)
        );
        let texts = [
            big.as_str(),
            r#"{"topic":"a/b/things/twin/events/modified","headers":{"correlation-id":"c\"1"},"path":"/attributes/x","value":{"z":1}}"#,
            big.as_str(),
            r#"{"topic":"a/b/things/twin/commands/retrieve","path":"/","status":200,"value":null}"#,
        ];
        for t in texts {
            let e = Envelope::parse(t).unwrap();
            assert_eq!(&*e.to_shared_text(), e.to_text().as_str());
            assert!(BUFFER.with(|b| b.borrow().capacity()) <= KEPT_BUFFER);
        }
    }

    #[test]
    fn round_trips_event() {
        let text = r#"{"topic":"a/b/things/twin/events/modified","headers":{},"path":"/attributes/x","value":1,"extra":{"a":1},"revision":3,"timestamp":"2021-01-18T09:42:12Z"}"#;
        let e = Envelope::parse(text).unwrap();
        assert_eq!(Envelope::parse(&e.to_text()).unwrap(), e);
        assert_eq!(e.revision, Some(3));
    }
}
