//! Depth bounds over real sockets (issue 14, findings 1 and 2): a JSON pointer of 100,000
//! segments or a value nested deeper than the bound gets Ditto's 400 (`json.pointer.invalid`,
//! `json.invalid`), nothing is stored, the session stays open and the process alive; everything
//! that was accepted can be read, changed and deleted, also after a restart.

use crate::common;
use common::http::Http;
use common::*;
use serde_json::{json, Value};

/// The bound (src/bounds.rs `MAX_JSON_DEPTH`), as documented in docs/limits.md.
const MAX_DEPTH: usize = 100;

fn arrays(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

fn frame(thing: &str, action: &str, path: &str, value: &str, cid: &str) -> String {
    let (ns, name) = thing.split_once(':').unwrap();
    let ct = if action == "merge" {
        r#","content-type":"application/merge-patch+json""#
    } else {
        ""
    };
    format!(
        r#"{{"topic":"{ns}/{name}/things/twin/commands/{action}","headers":{{"correlation-id":"{cid}"{ct}}},"path":"{path}","value":{value}}}"#
    )
}

fn code(r: &Value) -> (u64, String) {
    (
        r["status"].as_u64().unwrap_or(0),
        r["value"]["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn alive(srv: &mut Server) {
    assert!(
        srv.child.try_wait().expect("try_wait").is_none(),
        "the gateway process died"
    );
}

/// Finding 1: deep pointers crashed the process (stack overflow) or stored a thing that
/// crashed the next retrieve.
#[test]
fn deep_pointers_are_refused_over_websocket_and_the_session_stays_open() {
    let mut srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        let r = ws
            .request(command(
                "ns:deep",
                "create",
                "/",
                Some(json!({"attributes": {"k": 1}})),
            ))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let huge = format!("/attributes{}", "/a".repeat(100_000));
        let cases = [
            ("modify", huge.clone(), "1"),
            ("merge", huge.clone(), "null"),
            ("merge", huge, r#"{"x":1}"#),
            ("modify", format!("/attributes{}", "/a".repeat(3_000)), "1"),
            (
                "modify",
                format!("/features/f/properties{}", "/a".repeat(MAX_DEPTH)),
                "1",
            ),
        ];
        for (i, (action, path, value)) in cases.iter().enumerate() {
            let cid = format!("deep-{i}");
            ws.send_text(&frame("ns:deep", action, path, value, &cid))
                .await;
            let r = ws.recv().await;
            assert_eq!(r["headers"]["correlation-id"], cid.as_str(), "{r}");
            assert_eq!(
                code(&r),
                (400, "json.pointer.invalid".to_owned()),
                "{action} at {} segments: {r}",
                path.matches('/').count()
            );
        }
        // the same pointers in a retrieve and a delete
        for action in ["retrieve", "delete"] {
            let path = format!("/attributes{}", "/a".repeat(100_000));
            let text = frame("ns:deep", action, &path, "null", action);
            ws.send_text(&text).await;
            let r = ws.recv().await;
            assert_eq!(code(&r), (400, "json.pointer.invalid".to_owned()), "{r}");
        }
        // nothing was stored, the session still works
        let r = ws.request(command("ns:deep", "retrieve", "/", None)).await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["value"]["attributes"], json!({"k": 1}));
    });
    alive(&mut srv);
}

/// Finding 1 over HTTP: the pointer is the URL.
#[test]
fn deep_pointers_are_refused_over_http() {
    let mut srv = Server::start();
    block_on(async {
        let http = Http::new(srv.addr);
        let base = "/api/2/things/ns:deeph";
        assert_eq!(
            http.put(base, &json!({"attributes": {"k": 1}}))
                .await
                .status,
            201
        );
        let url = format!("{base}/attributes{}", "/a".repeat(20_000));
        let hs = [("Content-Type", "application/json")];
        let r = http.send("PUT", &url, &hs, Some(b"1")).await;
        assert_eq!((r.status, r.error()), (400, "json.pointer.invalid".into()));
        let hs = [("Content-Type", "application/merge-patch+json")];
        let r = http.send("PATCH", &url, &hs, Some(b"null")).await;
        assert_eq!((r.status, r.error()), (400, "json.pointer.invalid".into()));
        let r = http.get(&url).await;
        assert_eq!((r.status, r.error()), (400, "json.pointer.invalid".into()));
        let r = http.get(base).await;
        assert_eq!(
            (r.status, r.json()["attributes"].clone()),
            (200, json!({"k": 1}))
        );
    });
    alive(&mut srv);
}

/// Finding 2: a value nested deeper than serde_json reads back (127 levels with the stored
/// wrapper) was acknowledged and the thing was stuck forever after a restart (500 `corrupt
/// stored thing: recursion limit exceeded` on GET, PUT and DELETE).
#[test]
fn deep_values_are_refused_and_what_was_accepted_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut srv = Server::start_in(&data, &[]);
    let base = "/api/2/things/ns:nest";
    let hs = [("Content-Type", "application/json")];
    block_on(async {
        let http = Http::new(srv.addr);
        assert_eq!(
            http.put(base, &json!({"attributes": {"k": 1}}))
                .await
                .status,
            201
        );
        // the issue's case: 125 nested arrays at /attributes/v
        let r = http
            .send(
                "PUT",
                &format!("{base}/attributes/v"),
                &hs,
                Some(arrays(125).as_bytes()),
            )
            .await;
        assert_eq!(
            (r.status, r.error()),
            (400, "json.invalid".into()),
            "{}",
            r.text()
        );
        // a body deeper than the bound alone
        let body = arrays(MAX_DEPTH + 1);
        let r = http
            .send(
                "PUT",
                &format!("{base}/attributes/w"),
                &hs,
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!((r.status, r.error()), (400, "json.invalid".into()));
        // exactly at the bound: thing (1) + attributes (2) + v's arrays
        let fits = arrays(MAX_DEPTH - 2);
        let r = http
            .send(
                "PUT",
                &format!("{base}/attributes/v"),
                &hs,
                Some(fits.as_bytes()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        // one level more at the same place
        let r = http
            .send(
                "PUT",
                &format!("{base}/attributes/v"),
                &hs,
                Some(arrays(MAX_DEPTH - 1).as_bytes()),
            )
            .await;
        assert_eq!((r.status, r.error()), (400, "json.invalid".into()));
        // a merge that would nest too deeply through the path
        let patch = format!(r#"{{"x":{}}}"#, arrays(MAX_DEPTH - 1));
        let mh = [("Content-Type", "application/merge-patch+json")];
        let r = http
            .send(
                "PATCH",
                &format!("{base}/attributes"),
                &mh,
                Some(patch.as_bytes()),
            )
            .await;
        assert_eq!((r.status, r.error()), (400, "json.invalid".into()));
    });
    block_on(async {
        // the issue's WS case: /attributes + 126 segments; and a shorter path with a value
        // that is too deep only together with it
        let mut ws = srv.ws().await;
        let long = format!("/attributes{}", "/a".repeat(126));
        ws.send_text(&frame("ns:nest", "modify", &long, "1", "w1"))
            .await;
        assert_eq!(code(&ws.recv().await), (400, "json.pointer.invalid".into()));
        let mid = format!("/attributes{}", "/a".repeat(60));
        let value = arrays(MAX_DEPTH - 60);
        ws.send_text(&frame("ns:nest", "modify", &mid, &value, "w2"))
            .await;
        assert_eq!(code(&ws.recv().await), (400, "json.invalid".into()));
        let ok = arrays(MAX_DEPTH - 61);
        ws.send_text(&frame("ns:nest", "modify", &mid, &ok, "w3"))
            .await;
        let r = ws.recv().await;
        assert_eq!(r["status"], 201, "{r}");
    });
    alive(&mut srv);
    assert!(srv.terminate().success());
    let mut srv = Server::start_in(&data, &[]);
    block_on(async {
        let http = Http::new(srv.addr);
        let r = http.get(base).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["attributes"]["v"].to_string(), arrays(MAX_DEPTH - 2));
        assert_eq!(
            r.text().matches('[').count(),
            MAX_DEPTH - 2 + MAX_DEPTH - 61,
            "both deep values read back"
        );
        let r = http
            .send("PUT", &format!("{base}/attributes/v"), &hs, Some(b"2"))
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(http.delete(base).await.status, 204);
        assert_eq!(http.get(base).await.status, 404);
    });
    alive(&mut srv);
}
