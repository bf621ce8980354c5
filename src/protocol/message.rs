//! Messages in the Ditto Protocol: the message path `[/features/{f}]/{inbox|outbox}/messages/
//! {subject}` (subject may contain `/`), its `message:` policy resource, and the payload
//! encoding by content-type (Ditto's `ContentType` rules: JSON as JSON, text as a JSON
//! string, anything else base64) in both directions between raw bytes and the `value`.

use crate::bounds::{JsonError, MAX_JSON_DEPTH};
use crate::error::DittoError;
use base64::Engine;
use serde_json::Value;

/// Largest message payload (Ditto's default 250 kB).
pub const MAX_PAYLOAD_BYTES: usize = 250 * 1024;

/// Message direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// to the thing / device
    Inbox,
    /// from the thing / device
    Outbox,
}

impl Direction {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbox => "inbox",
            Direction::Outbox => "outbox",
        }
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePath {
    /// feature messages
    pub feature: Option<String>,
    /// inbox / outbox
    pub direction: Direction,
    /// the subject (non-empty, may contain `/`)
    pub subject: String,
}

/// 400 `messages:subject.invalid`.
pub fn subject_invalid(subject: &str) -> DittoError {
    DittoError::new(
        400,
        "messages:subject.invalid",
        format!("The subject <{subject}> is invalid."),
    )
    .describe("The subject of a message must be a non-empty URI path.")
}

/// 413 `messages:payload.toolarge`.
pub fn payload_too_large(actual: usize) -> DittoError {
    let kb = |n: usize| {
        let v = n as f64 / 1024.0;
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        }
    };
    DittoError::new(
        413,
        "messages:payload.toolarge",
        format!(
            "The message payload size of '{}' kB exceeds the maximal allowed size of '{}' kB.",
            kb(actual),
            kb(MAX_PAYLOAD_BYTES)
        ),
    )
    .describe("Reduce the message payload in the bounds of the specified limit")
}

impl MessagePath {
    /// Parses a message path; `None` if it is none.
    pub fn parse(path: &str) -> Option<MessagePath> {
        let rest = path.strip_prefix('/')?;
        let (feature, rest) = match rest.strip_prefix("features/") {
            Some(r) => {
                let (f, r) = r.split_once('/')?;
                if f.is_empty() {
                    return None;
                }
                (Some(f.to_owned()), r)
            }
            None => (None, rest),
        };
        let (dir, rest) = rest.split_once('/')?;
        let direction = match dir {
            "inbox" => Direction::Inbox,
            "outbox" => Direction::Outbox,
            _ => return None,
        };
        let subject = rest.strip_prefix("messages/")?;
        if subject.is_empty() {
            return None;
        }
        Some(MessagePath {
            feature,
            direction,
            subject: subject.to_owned(),
        })
    }

    /// The path string.
    pub fn to_path(&self) -> String {
        let f = self
            .feature
            .as_ref()
            .map(|f| format!("/features/{f}"))
            .unwrap_or_default();
        format!("{f}/{}/messages/{}", self.direction.as_str(), self.subject)
    }

    /// Segments of the `message:` policy resource (empty subject segments skipped).
    pub fn resource(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(f) = &self.feature {
            v.push("features".to_owned());
            v.push(f.clone());
        }
        v.push(self.direction.as_str().to_owned());
        v.push("messages".to_owned());
        v.extend(
            self.subject
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        v
    }

    /// A claim message (subject `claim` to the thing's inbox): needs no permission to send.
    pub fn is_claim(&self) -> bool {
        self.feature.is_none() && self.direction == Direction::Inbox && self.subject == "claim"
    }
}

/// How a payload is carried, by content-type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// the JSON value itself
    Json,
    /// a JSON string with the text
    Text,
    /// a base64 string of the bytes
    Binary,
}

/// The media type of a content-type (lowercased, parameters dropped).
pub fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Ditto's classification of a content-type (absent = binary).
pub fn payload_kind(content_type: Option<&str>) -> PayloadKind {
    let Some(mt) = content_type.map(media_type).filter(|m| !m.is_empty()) else {
        return PayloadKind::Binary;
    };
    if mt == "application/merge-patch+json" {
        return PayloadKind::Json;
    }
    if mt.starts_with("text/") {
        return PayloadKind::Text;
    }
    if let Some(sub) = mt.strip_prefix("application/") {
        let last = sub.rsplit('+').next().unwrap_or(sub);
        if sub == "json" || (sub.contains('+') && last == "json") {
            return PayloadKind::Json;
        }
        if matches!(last, "javascript" | "ecmascript") {
            return PayloadKind::Text;
        }
    }
    PayloadKind::Binary
}

/// Raw bytes (an HTTP body) as the protocol `value`; empty = no value. A JSON content-type
/// with an unparsable body is 400 `json.invalid`. `application/json` bodies are parsed as they
/// are (Ditto's `MessagesRoute` sets the parsed payload); for the other `*+json` types a JSON
/// string stays its raw JSON text (`MessagePayloadSerializer.interpretAsJsonValue`), so that it
/// differs from a text payload.
pub fn value_from_bytes(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<Option<Value>, DittoError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(payload_too_large(bytes.len()));
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    Ok(Some(match payload_kind(content_type) {
        PayloadKind::Json => {
            let text = String::from_utf8_lossy(bytes);
            let plain_json = content_type.is_some_and(|c| media_type(c) == "application/json");
            match crate::bounds::from_slice::<Value>(text.as_bytes(), MAX_JSON_DEPTH) {
                Ok(Value::String(_)) if !plain_json => Value::String(text.into_owned()),
                Ok(v) => v,
                Err(JsonError::TooDeep(found, max)) => {
                    return Err(crate::bounds::too_deep_json(&text, found, max))
                }
                Err(_) => return Err(DittoError::json_invalid(&text)),
            }
        }
        PayloadKind::Text => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        PayloadKind::Binary => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }))
}

/// The protocol `value` as raw bytes (an HTTP response body): under a JSON content-type the
/// JSON text of the value (a JSON string `"hello"` stays `"hello"`, as Ditto's HTTP answer is
/// the payload's `toString()`), text as-is, binary base64-decoded (bytes of the text if it is
/// no base64).
pub fn value_to_bytes(value: &Value, content_type: Option<&str>) -> Vec<u8> {
    match (payload_kind(content_type), value) {
        (PayloadKind::Json, v) => v.to_string().into_bytes(),
        (PayloadKind::Text, Value::String(s)) => s.clone().into_bytes(),
        (PayloadKind::Binary, Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .unwrap_or_else(|_| s.clone().into_bytes()),
        (_, v) => v.to_string().into_bytes(),
    }
}

/// Size of a protocol `value` as Ditto counts it (its serialized form).
pub fn value_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        v => v.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_resources() {
        let p = MessagePath::parse("/inbox/messages/a/s/k///slashes//").unwrap();
        assert_eq!(
            (p.feature.as_deref(), p.direction, p.subject.as_str()),
            (None, Direction::Inbox, "a/s/k///slashes//")
        );
        assert_eq!(p.to_path(), "/inbox/messages/a/s/k///slashes//");
        assert_eq!(
            p.resource(),
            vec!["inbox", "messages", "a", "s", "k", "slashes"]
        );
        let f = MessagePath::parse("/features/water-tank/outbox/messages/heatUp").unwrap();
        assert_eq!(f.feature.as_deref(), Some("water-tank"));
        assert_eq!(
            f.resource(),
            vec!["features", "water-tank", "outbox", "messages", "heatUp"]
        );
        assert!(MessagePath::parse("/inbox/messages/claim")
            .unwrap()
            .is_claim());
        assert!(!MessagePath::parse("/features/f/inbox/messages/claim")
            .unwrap()
            .is_claim());
        for bad in [
            "/inbox/messages/",
            "/inbox/x/y",
            "/sideways/messages/x",
            "inbox/messages/x",
            "/features//inbox/messages/x",
        ] {
            assert_eq!(MessagePath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_type_rules() {
        use PayloadKind::*;
        for (ct, k) in [
            (Some("application/json"), Json),
            (
                Some("application/vnd.eclipse.ditto+json; charset=utf-8"),
                Json,
            ),
            (Some("application/merge-patch+json"), Json),
            (Some("text/plain"), Text),
            (Some("application/javascript"), Text),
            (Some("application/octet-stream"), Binary),
            (Some("image/png"), Binary),
            (None, Binary),
        ] {
            assert_eq!(payload_kind(ct), k, "{ct:?}");
        }
    }

    #[test]
    fn bytes_round_trip_by_kind() {
        let v = value_from_bytes(br#"{"a":1}"#, Some("application/json")).unwrap();
        assert_eq!(v, Some(json!({"a": 1})));
        assert_eq!(
            value_to_bytes(&json!({"a": 1}), Some("application/json")),
            br#"{"a":1}"#
        );
        let s = value_from_bytes(br#""quoted""#, Some("application/json")).unwrap();
        assert_eq!(s, Some(json!("quoted")), "application/json is parsed");
        let s = value_from_bytes(br#""quoted""#, Some("application/vnd.x+json")).unwrap();
        assert_eq!(
            s,
            Some(json!("\"quoted\"")),
            "another JSON type: a JSON string keeps its raw text"
        );
        assert_eq!(
            value_to_bytes(&json!("quoted"), Some("application/json")),
            br#""quoted""#,
            "a JSON string answer is JSON text"
        );
        let t = value_from_bytes(b"hello", Some("text/plain")).unwrap();
        assert_eq!(t, Some(json!("hello")));
        let raw = [0u8, 159, 146, 150, 255];
        let b = value_from_bytes(&raw, Some("application/octet-stream"))
            .unwrap()
            .unwrap();
        assert_eq!(b, json!("AJ+Slv8="));
        assert_eq!(value_to_bytes(&b, Some("application/octet-stream")), raw);
        assert_eq!(value_from_bytes(b"", Some("text/plain")).unwrap(), None);
        assert_eq!(
            value_from_bytes(b"{nope", Some("application/json"))
                .unwrap_err()
                .error,
            "json.invalid"
        );
        let big = vec![b'x'; MAX_PAYLOAD_BYTES + 1];
        let e = value_from_bytes(&big, Some("text/plain")).unwrap_err();
        assert_eq!((e.status, &*e.error), (413, "messages:payload.toolarge"));
    }
}
