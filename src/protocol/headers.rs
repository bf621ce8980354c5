//! Ditto headers: case-insensitive lookup, case-preserving storage, JSON values (booleans and
//! lists accepted in their string forms too), and typed accessors for the headers the core
//! interprets (`correlation-id`, `response-required`, `requested-acks`, `timeout`, ...).

use crate::error::DittoError;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Most headers a message may carry; more is answered with 431 `headers.too.large`.
pub const MAX_HEADERS: usize = 64;

/// Ordered header list; names compare ASCII-case-insensitively, the sender's spelling is kept.
/// A name spelled like one of `KNOWN` (and every `&'static str` inserted) is held without a
/// heap copy (issue 21: header names were 5 of a modify's ~80 allocations).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(Cow<'static, str>, Value)>);

/// Header names Ditto's clients and edgetwin's answers use often; a received name spelled
/// exactly like one of these is stored as this static text instead of a copy.
const KNOWN: [&str; 16] = [
    "correlation-id",
    "requested-acks",
    "response-required",
    "timeout",
    "content-type",
    "etag",
    "entity-revision",
    "if-match",
    "if-none-match",
    "ditto-originator",
    "version",
    "channel",
    "ditto-weak-ack",
    "ditto-metadata",
    "live-channel-condition",
    "condition",
];

/// `name` as a known static name if it is spelled exactly like one, else owned.
pub fn header_name(name: &str) -> Cow<'static, str> {
    match KNOWN.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name.to_owned()),
    }
}

impl Headers {
    /// Empty header set.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// From a JSON object (the envelope's `headers`). Later duplicates (by case) win.
    pub fn from_map(map: Map<String, Value>) -> Result<Self, DittoError> {
        if map.len() > MAX_HEADERS {
            return Err(too_large());
        }
        let mut h = Headers(Vec::with_capacity(map.len()));
        for (k, v) in map {
            h.insert(owned_name(k), v);
        }
        Ok(h)
    }

    /// As a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone().into_owned(), v.clone()))
            .collect()
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// Raw JSON value of a header.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// String form of a header (strings as-is, other JSON values serialized).
    pub fn get_str(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.get(name).map(|v| match v {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        })
    }

    /// Sets a header, replacing an existing one with the same name in any case.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self
            .0
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        {
            Some(slot) => *slot = (name, value),
            None => self.0.push((name, value)),
        }
    }

    /// Removes a header, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self
            .0
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(self.0.remove(i).1)
    }

    /// `correlation-id`, if present and a non-empty string.
    pub fn correlation_id(&self) -> Option<&str> {
        match self.get("correlation-id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    /// A boolean header (`true`, `"true"`, `"false"` ...), or 400 `header.invalid`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, DittoError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(DittoError::header_invalid(name, &value_text(v), "boolean")),
        }
    }

    /// A list header: JSON array of strings, a string holding a JSON array, or a comma list.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, DittoError> {
        let bad = |v: &Value| DittoError::header_invalid(name, &value_text(v), "JSON array");
        let from_array = |a: &[Value], whole: &Value| -> Result<Vec<String>, DittoError> {
            a.iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| bad(whole)))
                .collect()
        };
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Array(a)) => from_array(a, v).map(Some),
            Some(v @ Value::String(s)) => {
                let t = s.trim();
                if t.starts_with('[') {
                    match crate::bounds::parse_value(t) {
                        Some(Value::Array(a)) => from_array(&a, v).map(Some),
                        _ => Err(bad(v)),
                    }
                } else {
                    Ok(Some(
                        t.split(',')
                            .map(str::trim)
                            .filter(|x| !x.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    ))
                }
            }
            Some(v) => Err(bad(v)),
        }
    }

    /// `timeout` in milliseconds: `<n>` seconds or `<n>ms|s|m`; must lie in 0..=`max_ms`.
    pub fn timeout_ms(&self, max_ms: u64) -> Result<Option<u64>, DittoError> {
        let Some(v) = self.get("timeout") else {
            return Ok(None);
        };
        let text = value_text(v);
        let ms = parse_duration_ms(&text)
            .ok_or_else(|| DittoError::header_invalid("timeout", &text, "duration"))?;
        if ms > max_ms {
            return Err(DittoError::new(
                400,
                "timeout.invalid",
                format!("The timeout <{ms}ms> is not inside its allowed bounds <0ms - {max_ms}ms>"),
            )
            .describe("Please choose a valid timeout."));
        }
        Ok(Some(ms))
    }
}

/// An owned name, as its static twin if it is a known one (its copy is dropped).
pub fn owned_name(name: String) -> Cow<'static, str> {
    match KNOWN.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses `<n>` (seconds), `<n>ms`, `<n>s`, `<n>m`, `<n>h` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let n: u64 = s[..digits].parse().ok()?;
    let factor = match &s[digits..] {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// 431 `headers.too.large`.
pub fn too_large() -> DittoError {
    DittoError::new(431, "headers.too.large", "The headers are too large.").describe(format!(
        "Reduce the number of headers to at most {MAX_HEADERS} and their size."
    ))
}

/// A fresh random correlation-id (UUID v4 format).
pub fn new_correlation_id() -> String {
    let a = fastrand::u128(..);
    let b = (a & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn correlation_ids_look_like_uuids() {
        let c = new_correlation_id();
        assert_eq!(c.len(), 36);
        assert_eq!(&c[14..15], "4");
        assert_ne!(c, new_correlation_id());
    }

    use super::*;
    use serde_json::json;

    fn h(v: Value) -> Headers {
        match v {
            Value::Object(m) => Headers::from_map(m).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn case_insensitive_and_case_preserving() {
        let mut hs = h(json!({"Correlation-ID": "x", "My-Header": 1}));
        assert_eq!(hs.correlation_id(), Some("x"));
        assert_eq!(hs.get("my-header"), Some(&json!(1)));
        hs.insert("my-HEADER", 2);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs.to_map().get("my-HEADER"), Some(&json!(2)));
        assert_eq!(hs.remove("CORRELATION-id"), Some(json!("x")));
        assert!(hs.correlation_id().is_none());
    }

    #[test]
    fn typed_accessors() {
        let hs = h(json!({
            "response-required": "false", "a": true, "bad": "maybe",
            "requested-acks": "[\"twin-persisted\",\"my:ack\"]", "l2": "x, y", "l3": ["p"],
            "timeout": "10s"
        }));
        assert_eq!(hs.bool("response-required").unwrap(), Some(false));
        assert_eq!(hs.bool("a").unwrap(), Some(true));
        assert_eq!(hs.bool("bad").unwrap_err().error, "header.invalid");
        assert_eq!(
            hs.list("requested-acks").unwrap().unwrap(),
            vec!["twin-persisted", "my:ack"]
        );
        assert_eq!(hs.list("l2").unwrap().unwrap(), vec!["x", "y"]);
        assert_eq!(hs.list("l3").unwrap().unwrap(), vec!["p"]);
        assert_eq!(hs.timeout_ms(60_000).unwrap(), Some(10_000));
    }

    #[test]
    fn timeout_forms_and_bounds() {
        assert_eq!(parse_duration_ms("42"), Some(42_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("1m"), Some(60_000));
        assert_eq!(parse_duration_ms("abc"), None);
        assert_eq!(parse_duration_ms("-1"), None);
        let e = h(json!({"timeout": "abc"})).timeout_ms(60_000).unwrap_err();
        assert_eq!(e.error, "header.invalid");
        assert_eq!(
            e.message,
            "The value 'abc' of the header 'timeout' is not a valid duration."
        );
        let e = h(json!({"timeout": "61s"})).timeout_ms(60_000).unwrap_err();
        assert_eq!((e.status, &*e.error), (400, "timeout.invalid"));
    }

    #[test]
    fn too_many_headers() {
        let m: Map<String, Value> = (0..=MAX_HEADERS)
            .map(|i| (format!("h{i}"), json!(i)))
            .collect();
        assert_eq!(Headers::from_map(m).unwrap_err().status, 431);
    }
}
