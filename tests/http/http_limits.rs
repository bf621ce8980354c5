//! HTTP bounds and connection handling with a raw TCP client: 413 for large bodies (declared
//! or streamed), 431 for large headers, 408 and a closed connection for a body that trickles
//! in (slowloris), a cut-off for a head that never completes, pipelined and keep-alive
//! requests on one connection.

use crate::common;
use common::http::{request_bytes, Conn, Http};
use common::*;
use serde_json::json;
use std::time::Duration;

const AUTH: (&str, &str) = ("Authorization", "Basic ZGl0dG86ZGl0dG8=");

/// A server whose request bodies must arrive within 1 s.
fn server_with_short_body_timeout() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("edgetwin.toml");
    std::fs::write(
        &cfg,
        "[limits]\nbody_timeout_secs = 1\nmax_message_kib = 4\n",
    )
    .expect("config");
    let data = tmp.path().join("data");
    let srv = Server::start_in(&data, &["--config", cfg.to_str().expect("utf-8 path")]);
    (srv, tmp)
}

#[test]
fn large_bodies_get_413_and_large_headers_431() {
    let (srv, _tmp) = server_with_short_body_timeout();
    let c = Http::new(srv.addr);
    block_on(async {
        let big = json!({"attributes": {"blob": "x".repeat(5000)}});
        let r = c.put("/api/2/things/ns:big", &big).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (413, "things:thing.toolarge")
        );
        assert_eq!(c.get("/api/2/things/ns:big").await.status, 404);

        // Chunked, without Content-Length: the limit applies while reading.
        let mut conn = Conn::connect(srv.addr).await;
        let head = "PUT /api/2/things/ns:big HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGl0dG86ZGl0dG8=\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = big.to_string();
        let mut req = head.as_bytes().to_vec();
        req.extend(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes());
        assert!(conn.send(&req).await);
        let r = conn.read_response(false).await.expect("response");
        assert_eq!(r.status, 413);
        assert_eq!(r.error(), "things:thing.toolarge");

        let big_header = "a".repeat(20 * 1024);
        let r = c.get_with("/api/2/whoami", &[("X-Big", &big_header)]).await;
        assert_eq!((r.status, r.error().as_str()), (431, "headers.too.large"));
        let many: Vec<(String, String)> =
            (0..70).map(|i| (format!("x-h{i}"), "v".into())).collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = c.get_with("/api/2/whoami", &refs).await;
        assert_eq!(r.status, 431);
        let huge = "a".repeat(300 * 1024);
        let mut conn = Conn::connect(srv.addr).await;
        let _ = conn
            .send(&request_bytes(
                "GET",
                "/api/2/whoami",
                &[("X-Huge", &huge)],
                None,
            ))
            .await;
        let r = conn.read_response(false).await.expect("response");
        assert_eq!(
            r.status, 431,
            "beyond the read buffer hyper answers 431 itself"
        );
    });
}

#[test]
fn trickling_body_is_cut_off_with_408() {
    let (srv, _tmp) = server_with_short_body_timeout();
    block_on(async {
        let mut conn = Conn::connect(srv.addr).await;
        let head = request_bytes(
            "PUT",
            "/api/2/things/ns:slow/attributes/a",
            &[
                AUTH,
                ("Content-Type", "application/json"),
                ("Content-Length", "1000"),
            ],
            None,
        );
        assert!(conn.send(&head).await);
        // One byte every 200 ms would take 200 s for the declared 1000 bytes.
        let trickle = async {
            for _ in 0..1000 {
                if !conn.send(b"1").await {
                    break;
                }
                smol::Timer::after(Duration::from_millis(200)).await;
            }
        };
        let give_up = async {
            smol::Timer::after(WAIT).await;
        };
        futures_lite::future::or(trickle, give_up).await;
        let r = conn
            .read_response(false)
            .await
            .expect("a response before the wait ends");
        assert_eq!(
            (r.status, r.error().as_str()),
            (408, "gateway:request.timeout")
        );
        assert!(
            conn.closed_within(WAIT).await,
            "the connection is closed after the 408"
        );
        let c = Http::new(srv.addr);
        assert_eq!(
            c.get("/api/2/things/ns:slow").await.status,
            404,
            "nothing was written"
        );
    });
}

#[test]
fn incomplete_request_head_is_cut_off() {
    let srv = Server::start();
    block_on(async {
        let mut conn = Conn::connect(srv.addr).await;
        assert!(
            conn.send(b"GET /api/2/whoami HTTP/1.1\r\nHost: x\r\n")
                .await
        );
        // The server's header read timeout is 10 s; allow for a slow machine.
        assert!(
            conn.closed_within(Duration::from_secs(30)).await,
            "a client that never finishes its head does not keep the connection"
        );
    });
}

#[test]
fn pipelined_and_keep_alive_requests_share_a_connection() {
    let srv = Server::start();
    block_on(async {
        let mut conn = Conn::connect(srv.addr).await;
        let mut two = request_bytes(
            "PUT",
            "/api/2/things/ns:pipe",
            &[AUTH, ("Content-Type", "application/json")],
            Some(br#"{"attributes":{"n":1}}"#),
        );
        two.extend(request_bytes(
            "GET",
            "/api/2/things/ns:pipe/attributes/n",
            &[AUTH],
            None,
        ));
        assert!(conn.send(&two).await, "both requests in one write");
        let first = conn.read_response(false).await.expect("first response");
        assert_eq!(first.status, 201);
        let second = conn.read_response(false).await.expect("second response");
        assert_eq!(
            (second.status, second.json()),
            (200, json!(1)),
            "answered in order"
        );

        for i in 2..5 {
            let put = request_bytes(
                "PUT",
                "/api/2/things/ns:pipe/attributes/n",
                &[AUTH, ("Content-Type", "application/json")],
                Some(i.to_string().as_bytes()),
            );
            assert!(conn.send(&put).await, "connection kept alive");
            assert_eq!(
                conn.read_response(false).await.expect("response").status,
                204
            );
        }
        assert!(conn.send(&request_bytes("GET", "/health", &[], None)).await);
        assert_eq!(conn.read_response(false).await.expect("health").status, 200);
        let get = request_bytes("GET", "/api/2/things/ns:pipe/attributes/n", &[AUTH], None);
        assert!(conn.send(&get).await);
        let r = conn.read_response(false).await.expect("last");
        assert_eq!(r.json(), json!(4));
    });
}
