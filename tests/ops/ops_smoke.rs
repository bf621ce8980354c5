//! End-to-end smoke test of a built binary — the crate's own, or a cross-built one under
//! qemu-user (`EDGETWIN_BIN` + `EDGETWIN_RUNNER`, see cross/test.sh): it starts, serves `/ws/2`
//! and the HTTP checks below, exits 0 on SIGTERM without losing answered writes, and restarts
//! with its data.

use crate::common;
use common::*;
use serde_json::{json, Value};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::net::SocketAddr;

/// HTTP checks run against the server before and after the restart, once the twin
/// `smoke:twin-1` holds `{"attributes": {"n": 50}}`: (method, path, expected status, text the
/// body must contain). Add a check with one line.
const HTTP_CHECKS: &[(&str, &str, u16, &str)] = &[
    ("GET", "/health", 200, "\"UP\""),
    ("GET", "/no/such/route", 404, "gateway:route.notfound"),
    ("GET", "/api/2/things/smoke:twin-1/attributes/n", 200, "50"),
    (
        "GET",
        "/api/2/search/things/count?filter=eq(attributes/n,50)",
        200,
        "1",
    ),
    ("GET", "/api/2/whoami", 200, "nginx:ditto"),
];

/// Writes answered without waiting for the disk (`requested-acks: []`) right before SIGTERM.
const WRITES: u64 = 50;

/// A minimal HTTP/1.1 exchange with the dev user: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut tcp = smol::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        basic("ditto", "ditto")
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_owned())
}

async fn http_checks(addr: SocketAddr, when: &str) {
    for (method, path, status, contains) in HTTP_CHECKS {
        let (s, body) = http(addr, method, path).await;
        assert_eq!(s, *status, "{when}: {method} {path} -> {s} {body}");
        assert!(
            body.contains(contains),
            "{when}: {method} {path}: body lacks {contains:?}: {body}"
        );
    }
}

async fn retrieve(ws: &mut Ws) -> Value {
    let mut g = command("smoke:twin-1", "retrieve", "/", None);
    g["fields"] = json!("thingId,attributes,_revision");
    let r = ws.request(g).await;
    assert_eq!(r["status"], 200, "{r}");
    r["value"].clone()
}

#[test]
fn serves_ws_and_http_survives_sigterm_and_restarts_with_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    eprintln!("smoke test of {:?}", edgetwin_command());
    let mut srv = Server::start_in(&data, &[]);
    block_on(async {
        let mut ws = srv.ws().await;
        let r = ws
            .request(command(
                "smoke:twin-1",
                "create",
                "/",
                Some(json!({"attributes": {"n": 0}})),
            ))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        assert_eq!(
            retrieve(&mut ws).await,
            json!({"thingId": "smoke:twin-1", "attributes": {"n": 0}, "_revision": 1})
        );
        // Pipelined writes answered before they are on disk; SIGTERM follows the last answer.
        for i in 1..=WRITES {
            let mut m = modify("smoke:twin-1", "/attributes/n", json!(i));
            m["headers"] = json!({"correlation-id": format!("w{i}"), "requested-acks": []});
            ws.send(&m).await;
        }
        let mut answered = 0;
        while answered < WRITES {
            let v = ws.recv().await;
            if v["headers"]["correlation-id"]
                .as_str()
                .is_some_and(|c| c.starts_with('w'))
            {
                assert_eq!(v["status"], 204, "{v}");
                answered += 1;
            }
        }
        http_checks(srv.addr, "before restart").await;
    });
    let status = srv.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must end with exit 0: {status:?}"
    );

    let mut srv = Server::start_in(&data, &[]);
    block_on(async {
        let mut ws = srv.ws().await;
        assert_eq!(
            retrieve(&mut ws).await,
            json!({"thingId": "smoke:twin-1", "attributes": {"n": WRITES}, "_revision": WRITES + 1}),
            "every write answered before SIGTERM is there after the restart"
        );
        http_checks(srv.addr, "after restart").await;
    });
    assert_eq!(srv.terminate().code(), Some(0));
}
