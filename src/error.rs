//! `DittoError`: the one error type of edgetwin. Every failure that reaches a client is one of
//! these (status + Ditto error code + message + description) and every binding renders it the
//! same way: WS error envelope, HTTP status + JSON body, MQTT reply.

use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A Ditto error: HTTP-semantics status, Ditto's error code (`things:thing.notfound`), and texts.
#[derive(Debug, Clone, PartialEq)]
pub struct DittoError {
    /// HTTP status (400, 404, 412, ...).
    pub status: u16,
    /// Ditto error code, e.g. `things:attribute.notfound`.
    pub error: Cow<'static, str>,
    /// Short human text.
    pub message: String,
    /// Hint how to fix it.
    pub description: Option<Cow<'static, str>>,
    /// Link to documentation.
    pub href: Option<Cow<'static, str>>,
    /// Seconds after which a retry may succeed (429; HTTP `retry-after`, as Ditto's
    /// `TooManyRequestsException` sets it).
    pub retry_after: Option<u64>,
}

impl DittoError {
    /// A new error without description.
    pub fn new(
        status: u16,
        error: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        DittoError {
            status,
            error: error.into(),
            message: message.into(),
            description: None,
            href: None,
            retry_after: None,
        }
    }

    /// Adds a description.
    pub fn describe(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a `retry-after` (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds an href.
    pub fn href(mut self, href: impl Into<Cow<'static, str>>) -> Self {
        self.href = Some(href.into());
        self
    }

    /// The error object as Ditto renders it (`status`, `error`, `message`, `description`, `href`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), json!(self.status));
        m.insert("error".into(), json!(self.error));
        m.insert("message".into(), json!(self.message));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(h) = &self.href {
            m.insert("href".into(), json!(h));
        }
        Value::Object(m)
    }

    /// Parses an error object back (used by clients of edgetwin's own protocol, e.g. tests).
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(DittoError {
            status: u16::try_from(v.get("status")?.as_u64()?).ok()?,
            error: Cow::Owned(v.get("error")?.as_str()?.to_owned()),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            description: v
                .get("description")
                .and_then(Value::as_str)
                .map(|s| Cow::Owned(s.to_owned())),
            href: v
                .get("href")
                .and_then(Value::as_str)
                .map(|s| Cow::Owned(s.to_owned())),
            retry_after: None,
        })
    }

    // ---- general codes used across layers ----

    /// 400 `json.invalid`: text that is not JSON.
    pub fn json_invalid(text: &str) -> Self {
        let shown: String = text.chars().take(200).collect();
        DittoError::new(400, "json.invalid", format!("Failed to parse JSON string '{shown}'!"))
            .describe("Check if the JSON was valid (e.g. on https://jsonlint.com) and if it was in required format.")
    }

    /// 400 `json.format.invalid`.
    pub fn json_format(message: impl Into<String>) -> Self {
        DittoError::new(400, "json.format.invalid", message)
    }

    /// 400 `json.field.missing`.
    pub fn field_missing(pointer: &str) -> Self {
        DittoError::new(
            400,
            "json.field.missing",
            format!("JSON did not include required <{pointer}> field!"),
        )
        .describe("Check if all required JSON fields were set.")
    }

    /// 400 `header.invalid`.
    pub fn header_invalid(name: &str, value: &str, expected: &str) -> Self {
        DittoError::new(
            400,
            "header.invalid",
            format!("The value '{value}' of the header '{name}' is not a valid {expected}."),
        )
        .describe(format!(
            "Verify that the value of the header '{name}' is a valid '{expected}'."
        ))
    }

    /// 500 `internalerror`.
    pub fn internal(message: impl Into<String>) -> Self {
        DittoError::new(500, "internalerror", message)
            .describe("An unexpected error occurred. Please try again later.")
    }

    /// 503 `things:thing.unavailable` (store failure, shutting down).
    pub fn unavailable(thing_id: &str) -> Self {
        DittoError::new(
            503,
            "things:thing.unavailable",
            format!("The Thing with ID '{thing_id}' is not available, please try again later."),
        )
        .describe("The requested Thing is temporarily not available.")
    }
}

impl fmt::Display for DittoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.message)
    }
}

impl std::error::Error for DittoError {}

/// Result alias used by the core.
pub type Result<T, E = DittoError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ditto_shape_and_parses_back() {
        let e = DittoError::new(404, "things:thing.notfound", "gone").describe("check it");
        let v = e.to_json();
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"], "things:thing.notfound");
        assert_eq!(v["description"], "check it");
        assert!(v.get("href").is_none());
        assert_eq!(DittoError::from_json(&v), Some(e));
    }

    #[test]
    fn json_invalid_quotes_the_input() {
        let e = DittoError::json_invalid("FOO");
        assert_eq!(e.message, "Failed to parse JSON string 'FOO'!");
        assert_eq!(e.status, 400);
    }
}
