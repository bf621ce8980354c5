//! Black-box tests, one binary: HTTP API v2 and SSE: things, requests, limits, the documented curl
//! examples (Ditto's, and every command in README.md and docs/).
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../common/mod.rs"]
mod common;

mod docs_examples;
mod http_curl;
mod http_fidelity;
mod http_limits;
mod http_requests;
mod http_sse;
mod http_sse_messages;
mod http_things;
