//! HTTP request -> Ditto inputs: query string parsing and percent-decoding, the Ditto headers a
//! request carries (HTTP headers plus the query parameters Ditto accepts as headers), the
//! HTTP ack rules (`response-required`, `requested-acks`, `timeout`), media-type checks and
//! the bounded, time-limited body read.

use crate::error::DittoError;
use crate::protocol::Headers;
use bytes::Bytes;
use futures_lite::future;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE};
use std::time::Duration;

/// Query parameters Ditto turns into headers (gateway `query-params-as-headers`).
const QUERY_AS_HEADERS: &[&str] = &[
    "channel",
    "correlation-id",
    "requested-acks",
    "declared-acks",
    "response-required",
    "timeout",
    "live-channel-timeout-strategy",
    "allow-policy-lockout",
    "condition",
    "live-channel-condition",
    "at-historical-revision",
    "at-historical-timestamp",
    "dry-run",
];

/// HTTP headers that are Ditto headers of the command (besides the query ones above).
const HEADER_ONLY: &[&str] = &[
    "if-match",
    "if-none-match",
    "if-equal",
    "put-metadata",
    "get-metadata",
    "delete-metadata",
    "merge-thing-patch-conditions",
    "policy-view",
    "content-type",
    // `application/td+json` asks for a WoT Thing Description (engine::wot)
    "accept",
];

/// Decoded query parameters in order (`a=1&b=2`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string; `+` is a space, `%XX` a byte (UTF-8 required).
    pub fn parse(raw: Option<&str>) -> Result<Query, DittoError> {
        let mut out = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            out.push((decode(k, true)?, decode(v, true)?));
        }
        Ok(Query(out))
    }

    /// First value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// All values of a parameter joined with `,` (Ditto's `parameterList` for `ids`, `fields`).
    pub fn joined(&self, name: &str) -> Option<String> {
        let vals: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!vals.is_empty()).then(|| vals.join(","))
    }
}

fn invalid_encoding(s: &str) -> DittoError {
    DittoError::new(
        400,
        "gateway:request.invalid",
        format!("The URI part '{s}' is not validly percent-encoded UTF-8."),
    )
    .describe("Percent-encode reserved and non-ASCII characters as UTF-8.")
}

/// Percent-decodes `s` (RFC 3986); with `plus_is_space` a `+` becomes a space (query strings).
pub fn decode(s: &str, plus_is_space: bool) -> Result<String, DittoError> {
    crate::protocol::percent_decode(s, plus_is_space).ok_or_else(|| invalid_encoding(s))
}

fn duplicate(name: &str, message: String) -> DittoError {
    DittoError::new(400, "gateway:duplicate.header.field", message).describe(format!(
        "Send the header '{name}' at most once, either as header or as query parameter."
    ))
}

/// The Ditto headers of a request: the known Ditto headers sent as HTTP headers, plus the
/// query parameters Ditto accepts as headers. A header sent twice, or as header and query
/// parameter with different values, is 400 `gateway:duplicate.header.field`.
pub fn ditto_headers(http: &HeaderMap, query: &Query) -> Result<Headers, DittoError> {
    let mut h = Headers::new();
    for name in QUERY_AS_HEADERS.iter().chain(HEADER_ONLY) {
        let mut values = http.get_all(*name).iter();
        let Some(v) = values.next() else { continue };
        if values.next().is_some() {
            return Err(duplicate(
                name,
                format!("The header '{name}' was provided more than once."),
            ));
        }
        let v = v
            .to_str()
            .map_err(|_| DittoError::header_invalid(name, "<binary>", "text value"))?;
        h.insert(*name, v);
    }
    if h.get("correlation-id").is_none() {
        if let Some(v) = http.get("x-correlation-id").and_then(|v| v.to_str().ok()) {
            h.insert("correlation-id", v);
        }
    }
    for name in QUERY_AS_HEADERS {
        if let Some(v) = query.get(name) {
            if h.get_str(name).is_some_and(|hv| hv != v) {
                return Err(duplicate(
                    name,
                    format!("<{name}> was provided as header as well as query parameter with divergent values!"),
                ));
            }
            h.insert(*name, v);
        }
    }
    Ok(h)
}

/// How an HTTP twin command is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAcks {
    /// answer with the command's response (false: 202 Accepted)
    pub response_required: bool,
    /// wait until the change is durable (`twin-persisted` requested, the default)
    pub persisted: bool,
    /// how long to wait for that
    pub timeout: Duration,
    /// the resolved request (labels: custom acks make the answer an aggregation)
    pub request: crate::rules::acks::AckRequest,
}

/// Resolves `timeout`, `response-required` and `requested-acks` with Ditto's HTTP rules (the
/// hub's `AckRequest`, HTTP binding): timeout 0..60 s (400 `gateway:timeout.invalid`
/// outside), `timeout=0` implies no response, `requested-acks` defaults to `twin-persisted`
/// when a response is required.
pub fn http_acks(h: &Headers) -> Result<HttpAcks, DittoError> {
    use crate::rules::acks::{AckKind, AckRequest, Binding};
    let request = AckRequest::resolve(h, AckKind::Twin, Binding::Http)?;
    Ok(HttpAcks {
        response_required: request.response_required,
        persisted: request.wants_persisted(),
        timeout: Duration::from_millis(request.timeout_ms),
        request,
    })
}

/// The media type of the request (`application/json` of `application/json; charset=utf-8`);
/// absent counts as `application/octet-stream`, as in Ditto's HTTP layer.
pub fn media_type(http: &HeaderMap) -> String {
    http.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// 415 unless the body is JSON (`application/json`, or the fallback `application/octet-stream`).
pub fn require_json(http: &HeaderMap) -> Result<(), DittoError> {
    let mt = media_type(http);
    if mt == "application/json" || mt == "application/octet-stream" {
        return Ok(());
    }
    Err(DittoError::new(
        415,
        "mediatype.unsupported",
        format!("The Media-Type <{mt}> is not supported for this resource."),
    )
    .describe("Allowed Media-Types are: <application/json, application/octet-stream>."))
}

/// 415 unless the body is `application/merge-patch+json`.
pub fn require_merge_patch(http: &HeaderMap) -> Result<(), DittoError> {
    let mt = media_type(http);
    if mt == "application/merge-patch+json" {
        return Ok(());
    }
    Err(crate::engine::errors::merge_media_type(Some(&mt)))
}

/// 413 for a body above `max` bytes.
pub fn body_too_large(max: usize) -> DittoError {
    DittoError::new(
        413,
        "things:thing.toolarge",
        format!(
            "The size of the request body exceeds the maximal allowed size of '{}' kB.",
            max / 1024
        ),
    )
    .describe("Reduce the size of the request body in the bounds of the specified limit.")
}

/// 408 for a body that did not arrive in time.
pub fn body_timeout(secs: u64) -> DittoError {
    DittoError::new(
        408,
        "gateway:request.timeout",
        format!("The request body was not received completely within {secs} seconds."),
    )
    .describe("Send the request body without pauses.")
}

/// Reads the whole body: at most `max` bytes (413 otherwise, checked against `Content-Length`
/// first) within `timeout` (408 otherwise), so a slow or endless sender cannot pin the task.
pub async fn read_body(
    http: &HeaderMap,
    body: Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, DittoError> {
    let declared = http
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(body_too_large(max));
    }
    let read = async {
        Limited::new(body, max)
            .collect()
            .await
            .map(|c| Some(c.to_bytes()))
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    body_too_large(max)
                } else {
                    DittoError::new(
                        400,
                        "gateway:request.invalid",
                        format!("The request body could not be read: {e}"),
                    )
                    .describe("Send a complete request body.")
                }
            })
    };
    let timer = async {
        smol::Timer::after(timeout).await;
        Ok(None)
    };
    future::or(read, timer)
        .await?
        .ok_or_else(|| body_timeout(timeout.as_secs()))
}

/// Parses a JSON body (400 `json.invalid` with Ditto's message otherwise).
/// A body nested deeper than [`crate::bounds::MAX_JSON_DEPTH`] is `json.invalid` too.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, DittoError> {
    use crate::bounds::{from_slice, too_deep_json, JsonError, MAX_JSON_DEPTH};
    from_slice(body, MAX_JSON_DEPTH).map_err(|e| {
        let text = String::from_utf8_lossy(body);
        match e {
            JsonError::TooDeep(found, max) => too_deep_json(&text, found, max),
            JsonError::Parse(_) => DittoError::json_invalid(&text),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "fields=thingId,attributes%2Fa&ids=a:1&ids=b:2&option=sort(+thingId)&x",
        ))
        .unwrap();
        assert_eq!(q.get("fields"), Some("thingId,attributes/a"));
        assert_eq!(q.joined("ids").as_deref(), Some("a:1,b:2"));
        assert_eq!(q.get("option"), Some("sort( thingId)"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(decode("a%2Bb+c", false).unwrap(), "a+b+c");
        assert_eq!(decode("%C3%A4", false).unwrap(), "ä");
        assert!(decode("%zz", false).is_err());
        assert!(decode("%FF", false).is_err());
    }

    #[test]
    fn headers_from_http_and_query() {
        let mut m = HeaderMap::new();
        m.insert("If-Match", HeaderValue::from_static("\"rev:1\""));
        m.insert("x-correlation-id", HeaderValue::from_static("c1"));
        m.insert("authorization", HeaderValue::from_static("Basic x"));
        let q = Query::parse(Some("timeout=5s&fields=a")).unwrap();
        let h = ditto_headers(&m, &q).unwrap();
        assert_eq!(h.get_str("if-match").as_deref(), Some("\"rev:1\""));
        assert_eq!(h.correlation_id(), Some("c1"));
        assert_eq!(h.get_str("timeout").as_deref(), Some("5s"));
        assert!(h.get("authorization").is_none() && h.get("fields").is_none());
        m.insert("timeout", HeaderValue::from_static("6s"));
        let e = ditto_headers(&m, &q).unwrap_err();
        assert_eq!(e.error, "gateway:duplicate.header.field");
        m.append("if-match", HeaderValue::from_static("*"));
        assert_eq!(
            ditto_headers(&m, &Query::default()).unwrap_err().status,
            400
        );
    }

    #[test]
    fn ack_rules() {
        let h = |pairs: &[(&str, &str)]| {
            let mut h = Headers::new();
            for (k, v) in pairs {
                h.insert(k.to_string(), *v);
            }
            h
        };
        let a = http_acks(&h(&[])).unwrap();
        assert!(a.response_required && a.persisted);
        assert_eq!(a.timeout, Duration::from_secs(60));
        let a = http_acks(&h(&[("timeout", "0")])).unwrap();
        assert!(!a.response_required && !a.persisted);
        let a = http_acks(&h(&[("response-required", "false")])).unwrap();
        assert!(!a.response_required && !a.persisted);
        let a = http_acks(&h(&[
            ("response-required", "false"),
            ("requested-acks", "twin-persisted"),
        ]))
        .unwrap();
        assert!(!a.response_required && a.persisted);
        let a = http_acks(&h(&[("requested-acks", "")])).unwrap();
        assert!(a.response_required && !a.persisted);
        let e = http_acks(&h(&[("timeout", "61")])).unwrap_err();
        assert_eq!(e.error, "gateway:timeout.invalid");
        assert_eq!(
            e.message,
            "The timeout <61000ms> is not inside its allowed bounds <0ms - 60000ms>"
        );
        assert_eq!(
            http_acks(&h(&[("timeout", "x")])).unwrap_err().error,
            "header.invalid"
        );
        assert_eq!(
            http_acks(&h(&[("timeout", "0"), ("response-required", "true")]))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn media_types() {
        let mut m = HeaderMap::new();
        assert!(require_json(&m).is_ok(), "absent = octet-stream fallback");
        m.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        assert!(require_json(&m).is_ok());
        assert_eq!(require_merge_patch(&m).unwrap_err().status, 415);
        m.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let e = require_json(&m).unwrap_err();
        assert_eq!((e.status, &*e.error), (415, "mediatype.unsupported"));
        m.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(require_merge_patch(&m).is_ok());
    }
}
