//! Bad input over a real WebSocket: each case gets Ditto's error envelope (status, error code,
//! correlation-id echoed when present) or a defined close code, and the session, the other
//! sessions and the stored data stay intact.

use crate::common;
use common::raw_ws::{close_code, raw_session, send_frame};
use common::*;
use serde_json::{json, Value};

fn err(v: &Value) -> (u64, String, String) {
    (
        v["status"].as_u64().unwrap_or(0),
        v["value"]["error"].as_str().unwrap_or("").to_owned(),
        v["topic"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn each_bad_frame_gets_its_ditto_error() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        ws.request(command(
            "ns:keep",
            "create",
            "/",
            Some(json!({"attributes": {"v": 1}})),
        ))
        .await;
        let mut other = srv.ws().await;
        other.control("START-SEND-EVENTS").await;

        let unknown = "unknown/unknown/things/twin/errors";
        let cases: Vec<(String, u64, &str, &str)> = vec![
            ("".into(), 400, "json.format.invalid", unknown),
            ("FOO".into(), 400, "json.invalid", unknown),
            ("{\"topic\": ".into(), 400, "json.invalid", unknown),
            ("START-SEND-FOO".into(), 400, "json.invalid", unknown),
            ("[1,2,3]".into(), 400, "json.format.invalid", unknown),
            (json!({"path": "/"}).to_string(), 400, "json.field.missing", unknown),
            (json!({"topic": "ns/x/things/twin/commands/frobnicate", "path": "/"}).to_string(), 400, "protocoladapter:unknown.topicpath", unknown),
            (json!({"topic": "ns/x/gadgets/twin/commands/modify", "path": "/"}).to_string(), 400, "protocoladapter:unknown.topicpath", unknown),
            (json!({"topic": "1bad/x/things/twin/commands/modify", "path": "/", "value": {}}).to_string(), 400, "things:id.invalid", "1bad/x/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "path": "/attributes/a//b", "value": 1}).to_string(), 400, "json.pointer.invalid", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "path": "/nonsense", "value": 1}).to_string(), 400, "protocoladapter:unknown.path", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "path": "/attributes", "value": 42}).to_string(), 400, "json.format.invalid", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "path": "/features/f/definition", "value": "x"}).to_string(), 400, "json.format.invalid", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "path": "/attributes/x"}).to_string(), 400, "json.field.missing", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "headers": {"timeout": "abc"}, "path": "/attributes/x", "value": 1}).to_string(), 400, "header.invalid", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/modify", "headers": {"condition": "and("}, "path": "/attributes/x", "value": 1}).to_string(), 400, "things:condition.invalid", "ns/keep/things/twin/errors"),
            (json!({"topic": "ns/keep/things/twin/commands/retrieve", "path": "/", "fields": "attributes(a"}).to_string(), 400, "json.fieldselector.invalid", "ns/keep/things/twin/errors"),
            ("x".repeat(300 * 1024), 413, "messages:payload.toolarge", unknown),
        ];
        for (text, status, code, topic) in &cases {
            ws.send_text(text).await;
            let r = ws.recv().await;
            let shown: String = text.chars().take(80).collect();
            assert_eq!(
                err(&r),
                (*status, code.to_string(), topic.to_string()),
                "input {shown:?} -> {r}"
            );
            assert_eq!(r["path"], "/");
        }
        // correlation-id is echoed on errors
        ws.send(&json!({"topic": "ns/x/things/twin/commands/nope", "headers": {"correlation-id": "bad-1"}, "path": "/"})).await;
        assert_eq!(ws.recv().await["headers"]["correlation-id"], "bad-1");
        // a binary frame with JSON is processed like text; non-UTF-8 binary is json.invalid
        ws.stream.send(async_tungstenite::tungstenite::Message::binary(json!({"topic": "ns/keep/things/twin/commands/retrieve", "path": "/attributes/v", "headers": {"correlation-id": "bin"}}).to_string().into_bytes())).await.unwrap();
        assert_eq!(ws.recv().await["value"], 1);
        ws.stream
            .send(async_tungstenite::tungstenite::Message::binary(vec![
                0xff, 0xfe, 0x00,
            ]))
            .await
            .unwrap();
        assert_eq!(err(&ws.recv().await).1, "json.invalid");

        // the session, other sessions and the data are intact
        let r = ws.request(command("ns:keep", "retrieve", "/", None)).await;
        assert_eq!(r["value"]["attributes"], json!({"v": 1}));
        assert_eq!(
            r["headers"]["etag"], "\"rev:1\"",
            "no bad input changed anything"
        );
        let mut w2 = srv.ws().await;
        w2.request(modify("ns:keep", "/attributes/v", json!(2)))
            .await;
        // (the create event may arrive too: events are published asynchronously once durable)
        let mut ev = other
            .next_event(WAIT)
            .await
            .expect("other session still gets events");
        if ev["path"] == "/" {
            ev = other.next_event(WAIT).await.expect("the modify event");
        }
        assert_eq!(
            (ev["path"].as_str(), &ev["value"]),
            (Some("/attributes/v"), &json!(2))
        );
    });
}

#[test]
fn invalid_utf8_text_and_giant_frames_close_with_defined_codes() {
    let srv = Server::start();
    let mut s = raw_session(srv.addr);
    send_frame(&mut s, 0x1, &[b'{', 0xff, 0xfe, b'}']);
    assert_eq!(
        close_code(&mut s),
        Some(1007),
        "invalid UTF-8 in a text frame"
    );
    let mut s = raw_session(srv.addr);
    send_frame(&mut s, 0x1, &vec![b'x'; 2 * 1024 * 1024]);
    assert_eq!(
        close_code(&mut s),
        Some(1009),
        "frame beyond 4x the message limit"
    );
    // the server is fine afterwards
    block_on(async {
        let mut ws = srv.ws().await;
        assert_eq!(
            ws.request(command("ns:after", "create", "/", None)).await["status"],
            201
        );
    });
}

#[test]
fn upgrade_without_credentials_is_refused() {
    let srv = Server::start();
    block_on(async {
        let e = Ws::connect(srv.addr, None).await.err().expect("refused");
        assert!(e.contains("401"), "{e}");
        let e = Ws::connect(srv.addr, Some(("ditto", "wrong")))
            .await
            .err()
            .expect("refused");
        assert!(e.contains("401"), "{e}");
    });
}
