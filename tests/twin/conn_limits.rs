//! Connections over real sockets against the real binary (issue 14, findings 8, 9 and 11): a
//! client that stops reading is dropped after `limits.send_timeout_secs` (WS and SSE) and its
//! session and socket are freed; Close frames are answered and our own close codes arrive as
//! sent; a partial frame or a silent client is closed after `limits.ws_idle_timeout_secs`
//! while a live idle client is kept by its pongs; the connection caps answer 429 / 503.

use crate::common;
use async_tungstenite::tungstenite::Message;
use common::http::Http;
use common::raw_ws::{
    close_code, close_code_within, ends, ends_cleanly, frame, raw_session, read_frame, send_close,
    send_frame,
};
use common::*;
use futures_lite::StreamExt;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Starts edgetwin with `toml` as its config file.
fn start_with(toml: &str) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("edgetwin.toml");
    std::fs::write(&cfg, toml).unwrap();
    let srv = Server::start_in(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    (tmp, srv)
}

async fn health(addr: std::net::SocketAddr) -> Value {
    Http::new(addr).get("/status/health").await.json()
}

/// Polls `/status/health` until `pred` holds; panics with the last answer after `wait`.
async fn wait_health(addr: std::net::SocketAddr, wait: Duration, pred: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + wait;
    loop {
        let h = health(addr).await;
        if pred(&h) {
            return;
        }
        assert!(Instant::now() < deadline, "still not reached: {h}");
        smol::Timer::after(Duration::from_millis(200)).await;
    }
}

/// Writes `n` events of about 60 kB each on `thing` (far more than the socket buffers hold).
async fn flood(w: &mut Ws, thing: &str, n: usize) {
    let blob = "x".repeat(60_000);
    for i in 0..n {
        let r = w
            .request(modify(
                thing,
                "/attributes/blob",
                json!(format!("{i}{blob}")),
            ))
            .await;
        let status = r["status"].as_u64();
        assert!(matches!(status, Some(201 | 204)), "modify {i}: {status:?}");
    }
}

/// Finding 8: a WS subscriber that sent START-SEND-EVENTS and stopped reading is closed within
/// `send_timeout_secs` of its socket filling up, even though it never reads again (the queue is
/// made too large to overflow first, the idle timeout too long to matter).
#[test]
fn stalled_ws_subscriber_is_closed_and_its_session_and_socket_freed() {
    let (_tmp, srv) = start_with(
        "[limits]\nsend_timeout_secs = 2\noutbound_queue = 100000\nws_idle_timeout_secs = 3600\n",
    );
    let mut stalled = raw_session(srv.addr);
    send_frame(&mut stalled, 0x1, b"START-SEND-EVENTS");
    loop {
        let (op, p) = read_frame(&mut stalled).expect("START-SEND-EVENTS:ACK");
        if op == 0x1 && p == b"START-SEND-EVENTS:ACK" {
            break;
        }
    }
    block_on(async {
        let mut w = srv.ws().await;
        let r = w
            .request(command("ns:stall", "create", "/", Some(json!({}))))
            .await;
        assert_eq!(r["status"], 201);
        assert_eq!(health(srv.addr).await["sessions"], 2);
        flood(&mut w, "ns:stall", 400).await;
        wait_health(srv.addr, Duration::from_secs(60), |h| h["sessions"] == 1).await;
        let h = health(srv.addr).await;
        assert!(h["connections"]["sendTimeouts"].as_u64() >= Some(1), "{h}");
        // the writer's WS connection and this health request
        wait_health(srv.addr, WAIT, |h| h["connections"]["open"] == 2).await;
    });
    assert!(ends(&mut stalled), "the stalled socket was closed");
}

/// Finding 8 for SSE: the stream of a client that stopped reading ends and frees its socket.
#[test]
fn stalled_sse_client_is_dropped_and_its_socket_freed() {
    let (_tmp, srv) = start_with("[limits]\nsend_timeout_secs = 2\noutbound_queue = 100000\n");
    block_on(async {
        let http = Http::new(srv.addr);
        let mut w = srv.ws().await;
        let r = w
            .request(command("ns:sse", "create", "/", Some(json!({}))))
            .await;
        assert_eq!(r["status"], 201);
        let mut sse = http.sse("/api/2/things?ids=ns:sse").await.ok().unwrap();
        wait_health(srv.addr, WAIT, |h| h["sessions"] == 2).await;
        flood(&mut w, "ns:sse", 400).await;
        wait_health(srv.addr, Duration::from_secs(60), |h| {
            h["sessions"] == 1 && h["connections"]["open"] == 2
        })
        .await;
        let h = health(srv.addr).await;
        assert!(h["connections"]["sendTimeouts"].as_u64() >= Some(1), "{h}");
        assert!(
            sse.conn.closed_within(WAIT).await,
            "the SSE socket was closed"
        );
    });
}

/// Finding 9: a client's Close frame is answered with a Close frame carrying its code, then
/// the server ends the connection cleanly (FIN, no reset; no 1006 on the client).
#[test]
fn client_close_frames_are_answered_with_their_code() {
    let srv = Server::start();
    for code in [1000u16, 1001, 4000] {
        let mut s = raw_session(srv.addr);
        send_close(&mut s, code, "bye");
        let (op, p) = read_frame(&mut s).expect("a Close frame in reply");
        assert_eq!(op, 0x8, "Close frame");
        assert_eq!(u16::from_be_bytes([p[0], p[1]]), code, "the echoed code");
        assert!(
            ends_cleanly(&mut s),
            "the server closes the connection after the handshake"
        );
    }
    // a real client library sees a completed closing handshake, not a reset
    block_on(async {
        let mut ws = srv.ws().await;
        ws.stream.close(None).await.unwrap();
        match ws.stream.next().await {
            Some(Ok(Message::Close(_))) => {}
            other => panic!("expected the server's Close frame, got {other:?}"),
        }
        assert!(ws.stream.next().await.is_none(), "then the stream ends");
    });
}

/// Finding 9: server-initiated closes (1007 bad UTF-8, 1009 frame too big) arrive with their
/// code and the connection then ends cleanly, also when the client sent more after the bad
/// frame (bytes the server never parses): closing a socket with unread bytes resets it, and a
/// reset makes clients report 1006 (and throws away our Close frame if it was not out yet).
#[test]
fn server_close_codes_arrive_as_sent_not_as_1006() {
    let srv = Server::start();
    for i in 0..5 {
        let mut s = raw_session(srv.addr);
        let mut bytes = frame(0x1, &[b'{', 0xff, 0xfe, b'}']);
        bytes.extend(frame(0x1, &vec![b' '; 64 * 1024]));
        let _ = s.write_all(&bytes);
        assert_eq!(close_code(&mut s), Some(1007), "bad UTF-8, round {i}");
        assert!(ends_cleanly(&mut s), "no reset after 1007, round {i}");
        let mut s = raw_session(srv.addr);
        send_frame(&mut s, 0x1, &vec![b'x'; 2 * 1024 * 1024]);
        assert_eq!(close_code(&mut s), Some(1009), "giant frame, round {i}");
        assert!(ends_cleanly(&mut s), "no reset after 1009, round {i}");
    }
    // what a client library sees: its send completes, then our Close frame, then the end
    block_on(async {
        let mut ws = srv.ws().await;
        let sent = ws.stream.send(Message::text("x".repeat(2 << 20))).await;
        assert!(sent.is_ok(), "the giant message was taken: {sent:?}");
        match ws.stream.next().await {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1009),
            other => panic!("expected Close 1009, got {other:?}"),
        }
        let end = ws.stream.next().await;
        assert!(end.is_none(), "a clean end, not {end:?}");
    });
}

/// Finding 11: a partial frame after the upgrade is closed with 1001 after
/// `ws_idle_timeout_secs`; a live client that sends nothing but answers the server's pings
/// stays connected far beyond it.
#[test]
fn partial_frames_time_out_but_live_idle_clients_stay() {
    let (_tmp, srv) = start_with("[limits]\nws_idle_timeout_secs = 2\n");
    let mut s = raw_session(srv.addr);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let f = frame(0x1, &[b'x'; 100]);
    s.write_all(&f[..20]).unwrap();
    let mut silent = raw_session(srv.addr);
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // a silent connection that never answers pings goes the same way
    let wait = Duration::from_secs(60);
    assert_eq!(close_code_within(&mut s, wait), Some(1001), "partial frame");
    assert_eq!(
        close_code_within(&mut silent, wait),
        Some(1001),
        "silent, no pongs"
    );
    block_on(async {
        let mut ws = srv.ws().await;
        // idle for three timeouts while reading (the library answers pings)
        assert!(ws.try_recv_text(Duration::from_secs(6)).await.is_none());
        let r = ws
            .request(command("ns:idle", "create", "/", Some(json!({}))))
            .await;
        assert_eq!(r["status"], 201, "the idle client is still connected");
        let h = health(srv.addr).await;
        assert!(h["connections"]["idleTimeouts"].as_u64() >= Some(2), "{h}");
    });
}

/// A request on a fresh connection; the whole answer (the server closes a refused one).
fn refused_answer(addr: std::net::SocketAddr) -> String {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn check_refusal(answer: &str, status: &str, error: &str) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{answer}"
    );
    assert!(answer.contains("retry-after: 5\r\n"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(v["error"], error, "{answer}");
}

/// Finding 11: connections over the per-address cap get 429 `too.many.requests`, over the
/// total cap 503 `gateway:service.unavailable` (Ditto's error JSON, `Retry-After`); a freed
/// slot is usable again and `/status/health` counts the refusals.
#[test]
fn connection_caps_answer_with_ditto_errors() {
    for (toml, status, error) in [
        (
            "[limits]\nmax_connections_per_address = 2\n",
            "429",
            "too.many.requests",
        ),
        (
            "[limits]\nmax_connections = 2\n",
            "503",
            "gateway:service.unavailable",
        ),
    ] {
        let (_tmp, srv) = start_with(toml);
        let a = raw_session(srv.addr);
        let _b = raw_session(srv.addr);
        check_refusal(&refused_answer(srv.addr), status, error);
        // a WebSocket upgrade over the cap is refused the same way
        let e = block_on(Ws::connect(srv.addr, Some(("ditto", "ditto"))))
            .err()
            .expect("refused upgrade");
        assert!(e.contains(status), "{e}");
        drop(a);
        block_on(async {
            let deadline = Instant::now() + WAIT;
            loop {
                let r = Http::new(srv.addr).get("/status/health").await;
                if r.status == 200 {
                    let h = r.json();
                    assert!(h["connections"]["rejected"].as_u64() >= Some(2), "{h}");
                    break;
                }
                assert_eq!(r.status, status.parse::<u16>().unwrap(), "{}", r.text());
                assert!(Instant::now() < deadline, "slot not freed: {}", r.text());
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        });
    }
}
