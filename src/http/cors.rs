//! CORS for browser apps on other origins (`[cors] allowed_origins`, off by default), as Ditto's
//! gateway (`CorsEnablingDirective`) and its nginx (`deployment/*/nginx-cors.conf`) do it:
//! preflights answered before authentication with the requested headers echoed, and the
//! allowed origin, credentials and exposed headers on every answer, errors included.

use crate::http::body::Body;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, ORIGIN, VARY};
use hyper::{Method, Response};
use serde::Deserialize;

/// Headers a browser script may read (nginx-cors.conf of Ditto's deployments).
const EXPOSE: &str =
    "correlation-id, response-required, dry-run, channel, etag, ditto-originator, \
requested-acks, timeout, location, ditto-metadata, traceparent, tracestate, entity-revision, link";
/// Methods a preflight allows.
const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// Seconds a browser may cache a preflight (browsers cap it lower).
const MAX_AGE: &str = "1728000";

/// `[cors]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// origins (`https://ui.example.com`, `http://localhost:8000`) whose scripts may call the
    /// API; `"*"` allows any origin; empty (the default) = CORS off
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    /// Config problems, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.allowed_origins
            .iter()
            .filter(|o| *o != "*" && !valid_origin(o))
            .map(|o| {
                format!(
                    "cors: '{o}' is not an origin (scheme://host[:port] without a path) or \"*\""
                )
            })
            .collect()
    }

    /// The request's `Origin` if it is allowed (to be echoed), else `None`.
    pub fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }
}

fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' '])
}

/// True for a request list of header names (`a, b-c`): tokens and commas only.
fn header_list(v: &HeaderValue) -> bool {
    v.as_bytes()
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(b))
}

/// The answer to an `OPTIONS` request from an allowed origin (no authentication needed).
pub fn preflight(
    method: &Method,
    headers: &HeaderMap,
    origin: &HeaderValue,
) -> Option<Response<Body>> {
    if method != Method::OPTIONS {
        return None;
    }
    let mut r = super::response::empty(204);
    decorate(&mut r, origin);
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static(METHODS),
    );
    if let Some(req) = headers
        .get("access-control-request-headers")
        .filter(|v| header_list(v))
    {
        h.insert("access-control-allow-headers", req.clone());
    }
    h.insert("access-control-max-age", HeaderValue::from_static(MAX_AGE));
    Some(r)
}

/// Adds the CORS headers of an allowed origin to any answer.
pub fn decorate(r: &mut Response<Body>, origin: &HeaderValue) {
    let h = r.headers_mut();
    h.insert("access-control-allow-origin", origin.clone());
    h.insert(
        "access-control-allow-credentials",
        HeaderValue::from_static("true"),
    );
    h.insert(
        HeaderName::from_static("access-control-expose-headers"),
        HeaderValue::from_static(EXPOSE),
    );
    h.append(VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(o: &[&str]) -> CorsConfig {
        CorsConfig {
            allowed_origins: o.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        h
    }

    #[test]
    fn origins_are_matched_exactly_or_by_star() {
        let c = cfg(&["https://ui.example.com"]);
        assert!(c.allowed(&origin("https://ui.example.com")).is_some());
        assert!(c.allowed(&origin("https://UI.example.com")).is_some());
        assert!(c.allowed(&origin("https://evil.example.com")).is_none());
        assert!(c.allowed(&HeaderMap::new()).is_none());
        assert!(cfg(&[])
            .allowed(&origin("https://ui.example.com"))
            .is_none());
        assert_eq!(
            cfg(&["*"]).allowed(&origin("http://x:1")).unwrap(),
            "http://x:1"
        );
    }

    #[test]
    fn config_entries_must_be_origins() {
        assert!(cfg(&["*", "http://localhost:8000", "https://a.b"])
            .problems()
            .is_empty());
        assert_eq!(
            cfg(&["https://a.b/", "a.b", "https://a.b/ui"])
                .problems()
                .len(),
            3
        );
    }

    #[test]
    fn preflight_echoes_requested_headers_and_only_sane_ones() {
        let o = HeaderValue::from_static("https://ui");
        let mut h = origin("https://ui");
        h.insert(
            "access-control-request-headers",
            HeaderValue::from_static("authorization, content-type, if-match"),
        );
        let r = preflight(&Method::OPTIONS, &h, &o).unwrap();
        assert_eq!(r.status(), 204);
        let rh = r.headers();
        assert_eq!(
            rh["access-control-allow-headers"],
            "authorization, content-type, if-match"
        );
        assert_eq!(rh["access-control-allow-origin"], "https://ui");
        assert_eq!(rh["access-control-allow-credentials"], "true");
        assert!(rh["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("etag"));
        h.insert(
            "access-control-request-headers",
            HeaderValue::from_static("x\"y"),
        );
        let r = preflight(&Method::OPTIONS, &h, &o).unwrap();
        assert!(r.headers().get("access-control-allow-headers").is_none());
        assert!(preflight(&Method::GET, &h, &o).is_none());
    }
}
