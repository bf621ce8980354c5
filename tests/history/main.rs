//! Black-box tests, one binary: history (Ditto's `basic-history`) over real sockets: retrieves
//! at a revision or time over HTTP and WS, persisted-event streams over SSE and WS, retention
//! edges, deletion and re-creation, policies, READ filtering, restarts.
//! Each module starts the real edgetwin binary on free ports with a temp data dir.

#[path = "../authkit/mod.rs"]
mod authkit;
#[path = "../common/mod.rs"]
mod common;

mod history_deferred;
mod history_http;
mod history_policy;
mod history_read;
mod history_retention;
mod history_sse;
mod history_ws;

use common::http::Http;
use common::Server;
use serde_json::{json, Value};

/// A server with the dev user and `toml` as its config file.
pub struct Rig {
    pub srv: Server,
    pub http: Http,
    _tmp: tempfile::TempDir,
}

pub fn start(toml: &str) -> Rig {
    let tmp = tempfile::tempdir().expect("tempdir");
    let conf = tmp.path().join("edgetwin.toml");
    std::fs::write(&conf, toml).expect("config");
    let srv = Server::start_in(
        &tmp.path().join("data"),
        &["--config", conf.to_str().expect("utf-8")],
    );
    let http = Http::new(srv.addr);
    Rig {
        srv,
        http,
        _tmp: tmp,
    }
}

/// PUTs `value` at `path` of `thing`, asserting success.
pub async fn put(http: &Http, thing: &str, path: &str, value: Value) {
    let r = http
        .put(&format!("/api/2/things/{thing}{path}"), &value)
        .await;
    assert!(
        matches!(r.status, 201 | 204),
        "PUT {path}: {} {}",
        r.status,
        r.text()
    );
}

/// GET of `thing` + `path` with extra headers: (status, body as JSON or the error code).
pub async fn get_at(
    http: &Http,
    thing: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let r = http
        .get_with(&format!("/api/2/things/{thing}{path}"), headers)
        .await;
    let body = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, body)
}

/// `_modified` (epoch millis) of the thing now.
pub async fn modified(http: &Http, thing: &str) -> i64 {
    let r = http
        .get(&format!("/api/2/things/{thing}?fields=_modified"))
        .await;
    let t = r.json()["_modified"]
        .as_str()
        .expect("_modified")
        .to_owned();
    edgetwin::clock::parse_iso(&t).expect("iso")
}

/// Waits 30 ms, so that the next revision is stamped later than the last, sets attribute `n` and
/// returns the thing's `_modified` after it.
pub async fn later_set_n(http: &Http, thing: &str, n: i64) -> i64 {
    smol::Timer::after(std::time::Duration::from_millis(30)).await;
    put(http, thing, "/attributes/n", json!(n)).await;
    modified(http, thing).await
}

/// A thing body with attribute `n` and a lamp feature.
pub fn thing(n: i64) -> Value {
    json!({"attributes": {"n": n, "name": "sensor"}, "features": {"lamp": {"properties": {"on": false}}}})
}

/// `/status/health` once history finished counting what it keeps (at start).
pub async fn counted_health(http: &Http) -> Value {
    let until = std::time::Instant::now() + common::WAIT;
    loop {
        let h = http.get("/status/health").await.json();
        if h["history"]["counted"] == true || std::time::Instant::now() > until {
            return h;
        }
        smol::Timer::after(std::time::Duration::from_millis(20)).await;
    }
}
