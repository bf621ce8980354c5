//! The body type of every HTTP answer (full bodies and SSE streams) and the constructor of a
//! full one. A leaf: the shell, the bindings and the CORS hook share it without importing each
//! other.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use std::convert::Infallible;

/// Response body type of every route (full bodies and SSE streams).
pub type Body = BoxBody<Bytes, Infallible>;

/// A full body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}
