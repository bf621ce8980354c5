//! Helpers of the live-channel / messages / acks black-box tests: WS sessions with
//! `declared-acks`, waiting for the frame with a given correlation-id, envelope builders, and
//! the pending-request count from `/status/health`.
#![allow(dead_code)]

use crate::common::{basic, http::Http, Server, Ws, WAIT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A dev-user session declaring `labels` (`?declared-acks=a,b`), once they are declared: the
/// server declares them in the session's task after the handshake, so one answered request
/// (a retrieve of a thing that does not exist) is the proof. Without it a command sent right
/// after the connect could find the labels undeclared (waited for until its timeout, as Ditto
/// does), which a loaded machine showed in ~1 of 30 runs.
pub async fn ws_declaring(srv: &Server, labels: &str) -> Ws {
    let mut ws = ws_connect_declaring(srv, labels).await;
    let r = ws
        .request(json!({
            "topic": "ns.declared/sync/things/twin/commands/retrieve",
            "headers": {"correlation-id": "declared-sync"},
            "path": "/"
        }))
        .await;
    assert_eq!(r["status"], 404, "{r}");
    ws
}

/// The connect of [`ws_declaring`] without waiting for the declaration (for a session whose
/// declaration is refused and closed).
pub async fn ws_connect_declaring(srv: &Server, labels: &str) -> Ws {
    Ws::connect_with(
        srv.addr,
        &format!("/ws/2?declared-acks={labels}"),
        &[("authorization", basic("ditto", "ditto"))],
    )
    .await
    .expect("ws connect")
}

/// The next frame whose correlation-id is `cid` (others skipped); `None` after `wait`.
pub async fn frame_with(ws: &mut Ws, cid: &str, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let t = ws.try_recv_text(left).await?;
        let Ok(v) = serde_json::from_str::<Value>(&t) else {
            continue;
        };
        if v["headers"]["correlation-id"] == cid {
            return Some(v);
        }
    }
}

/// Like [`frame_with`], panicking after `WAIT`.
pub async fn expect_frame(ws: &mut Ws, cid: &str) -> Value {
    frame_with(ws, cid, WAIT)
        .await
        .unwrap_or_else(|| panic!("no frame with correlation-id {cid}"))
}

/// Any text frame within `wait`? (`None` = silence)
pub async fn silence(ws: &mut Ws, wait: Duration) -> Option<String> {
    ws.try_recv_text(wait).await
}

/// `ns/name` of `ns:name`.
pub fn tp(thing: &str) -> String {
    thing.replacen(':', "/", 1)
}

/// A live command envelope.
pub fn live(thing: &str, action: &str, path: &str, cid: &str, value: Option<Value>) -> Value {
    let mut v = json!({"topic": format!("{}/things/live/commands/{action}", tp(thing)),
                       "headers": {"correlation-id": cid}, "path": path});
    if let Some(x) = value {
        v["value"] = x;
    }
    v
}

/// A message envelope (`path` like `/inbox/messages/ask`).
pub fn message(thing: &str, subject: &str, path: &str, cid: &str, ct: &str, value: Value) -> Value {
    json!({"topic": format!("{}/things/live/messages/{subject}", tp(thing)),
           "headers": {"correlation-id": cid, "content-type": ct}, "path": path, "value": value})
}

/// The answer a device sends to a received live signal: same topic, path and correlation-id.
pub fn answer(received: &Value, status: u16, value: Option<Value>, ct: Option<&str>) -> Value {
    let mut v = json!({"topic": received["topic"], "path": received["path"], "status": status,
                       "headers": {"correlation-id": received["headers"]["correlation-id"]}});
    if let Some(x) = value {
        v["value"] = x;
    }
    if let Some(c) = ct {
        v["headers"]["content-type"] = json!(c);
    }
    v
}

/// An acknowledgement for `label` of the signal with correlation-id `cid`.
pub fn ack(
    thing: &str,
    channel: &str,
    label: &str,
    cid: &str,
    status: u16,
    value: Option<Value>,
) -> Value {
    let mut v = json!({"topic": format!("{}/things/{channel}/acks/{label}", tp(thing)),
                       "headers": {"correlation-id": cid}, "path": "/", "status": status});
    if let Some(x) = value {
        v["value"] = x;
    }
    v
}

/// Requests waiting for answers / acks, as `/status/health` reports them (dev user).
pub async fn pending(addr: SocketAddr) -> u64 {
    pending_with(&Http::new(addr)).await
}

/// Like [`pending`] with the credentials of `http`.
pub async fn pending_with(http: &Http) -> u64 {
    let r = http.get("/status/health").await;
    r.json()["pendingRequests"]
        .as_u64()
        .unwrap_or_else(|| panic!("pendingRequests in /status/health: {}", r.text()))
}

/// Waits until `/status/health` reports no pending request (the table does not leak).
pub async fn pending_drains(addr: SocketAddr) -> bool {
    drains(&Http::new(addr)).await
}

/// Like [`pending_drains`] with the credentials of `http`.
pub async fn drains(http: &Http) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if pending_with(http).await == 0 {
            return true;
        }
        smol::Timer::after(Duration::from_millis(20)).await;
    }
    false
}
