//! Black-box tests, one binary: search over HTTP, SSE and WS, with policies and across restarts.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../authkit/mod.rs"]
mod authkit;
#[path = "../common/mod.rs"]
mod common;

mod search_count;
mod search_http;
mod search_persistence;
mod search_policy;
mod search_ws;
