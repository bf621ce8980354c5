//! HTTP responses of every route: Ditto error bodies (401 with `WWW-Authenticate`, with
//! `correlation-id`, and `ETag` on 412/304), JSON and empty responses, 404 route-not-found, 405
//! `gateway:method.notallowed` with `Allow`, and the absolute `Location` of created resources.

use crate::error::DittoError;
use crate::http::body::{full, Body};
use bytes::Bytes;
use hyper::header::{
    HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, ETAG, HOST, LOCATION, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::Value;

/// Sets a header if the value is a valid header value (others are dropped, never a panic).
pub fn set(r: &mut Response<Body>, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// Adds `correlation-id` to a response.
pub fn with_cid(mut r: Response<Body>, cid: Option<&str>) -> Response<Body> {
    if let Some(c) = cid {
        set(&mut r, HeaderName::from_static("correlation-id"), c);
    }
    r
}

fn with_status(body: Body, status: u16) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

/// A body-less response.
pub fn empty(status: u16) -> Response<Body> {
    with_status(full(Bytes::new()), status)
}

/// A JSON response.
pub fn json(status: u16, v: &Value) -> Response<Body> {
    let mut r = with_status(full(v.to_string()), status);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The error as Ditto answers it over HTTP (401 also names the Basic realm); 304 has no body.
/// `etag` is the current entity tag of the addressed resource (sent with 304 and 412).
pub fn error(e: &DittoError, cid: Option<&str>, etag: Option<&str>) -> Response<Body> {
    let mut r = if e.status == 304 {
        empty(304)
    } else {
        json(e.status, &e.to_json())
    };
    if e.status == 401 {
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"edgetwin\""),
        );
    }
    if let Some(secs) = e.retry_after {
        set(&mut r, RETRY_AFTER, &secs.to_string());
    }
    if let Some(t) = etag.filter(|_| matches!(e.status, 304 | 412)) {
        set(&mut r, ETAG, t);
    }
    with_cid(r, cid)
}

/// 404 for a path no route serves.
pub fn route_not_found(path: &str) -> DittoError {
    DittoError::new(
        404,
        "gateway:route.notfound",
        format!("The requested resource '{path}' could not be found."),
    )
    .describe("Check the URL and the HTTP method.")
}

/// 405 `gateway:method.notallowed` with the `Allow` header listing `allowed`.
pub fn method_not_allowed(method: &str, allowed: &[&str], cid: Option<&str>) -> Response<Body> {
    let e = DittoError::new(
        405,
        "gateway:method.notallowed",
        format!("The provided HTTP method '{method}' is not allowed on this resource."),
    )
    .describe("Check if you used the correct resource and method combination.");
    let mut r = error(&e, cid, None);
    set(&mut r, ALLOW, &allowed.join(", "));
    r
}

/// The absolute URL of `path` on this server, from the request's `Host` header.
pub fn absolute(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{path}")
}

/// Sets `Location`.
pub fn with_location(mut r: Response<Body>, url: &str) -> Response<Body> {
    set(&mut r, LOCATION, url);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_modified_has_etag_and_no_body() {
        let e = DittoError::new(304, "things:precondition.notmodified", "x");
        let r = error(&e, Some("c"), Some("\"rev:3\""));
        assert_eq!(r.status(), 304);
        assert_eq!(r.headers()[ETAG], "\"rev:3\"");
        assert_eq!(r.headers()["correlation-id"], "c");
        let e = DittoError::new(404, "things:thing.notfound", "x");
        assert!(error(&e, None, Some("\"rev:3\""))
            .headers()
            .get(ETAG)
            .is_none());
    }

    #[test]
    fn method_not_allowed_lists_methods() {
        let r = method_not_allowed("DELETE", &["GET", "PUT", "PATCH"], None);
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "GET, PUT, PATCH");
    }
}
