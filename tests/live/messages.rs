//! Messages end to end: HTTP callers answered by a WS device session with the device's status,
//! payload and content-type (JSON, text, binary), fire and forget (202), feature and outbox
//! messages, claim, `START-SEND-MESSAGES` namespaces / filter / extraFields, WS-to-WS messages,
//! the 250 kB payload limit and the message-specific errors.

use crate::common;
use crate::livekit;
use common::http::Http;
use common::{block_on, command, Server};
use livekit::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "ns.msg:coffee";

fn create(id: &str) -> Value {
    command(
        id,
        "create",
        "/",
        Some(json!({"attributes": {"model": "espresso"},
                    "features": {"water-tank": {"properties": {"level": 80}}}})),
    )
}

/// Sends a POST on a spawned task (the test answers as the device meanwhile).
fn post(
    http: &Http,
    path: &str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> smol::Task<common::http::Resp> {
    let (http, path) = (http.clone(), path.to_owned());
    smol::spawn(async move {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http.send("POST", &path, &hs, Some(&body)).await
    })
}

#[test]
fn http_messages_are_answered_over_websocket_with_status_payload_and_content_type() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        let mut dev = srv.ws().await;
        dev.control("START-SEND-MESSAGES").await;
        let http = Http::new(srv.addr);
        let base = "/api/2/things/ns.msg:coffee";

        // text in, text out, the device's status (418)
        let req = post(
            &http,
            &format!("{base}/inbox/messages/ask"),
            vec![
                ("Content-Type", "text/plain".into()),
                ("correlation-id", "m-text".into()),
            ],
            b"Hey, how are you?".to_vec(),
        );
        let got = expect_frame(&mut dev, "m-text").await;
        assert_eq!(got["topic"], "ns.msg/coffee/things/live/messages/ask");
        assert_eq!(got["path"], "/inbox/messages/ask");
        assert_eq!(got["value"], "Hey, how are you?");
        assert_eq!(got["headers"]["content-type"], "text/plain");
        dev.send(&answer(
            &got,
            418,
            Some(json!("I am a teapot")),
            Some("text/plain"),
        ))
        .await;
        let r = req.await;
        assert_eq!((r.status, r.text().as_str()), (418, "I am a teapot"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("correlation-id"), Some("m-text"));

        // JSON in, JSON out
        let req = post(
            &http,
            &format!("{base}/inbox/messages/brew?timeout=5"),
            vec![
                ("Content-Type", "application/json".into()),
                ("correlation-id", "m-json".into()),
            ],
            br#"{"cups":2}"#.to_vec(),
        );
        let got = expect_frame(&mut dev, "m-json").await;
        assert_eq!(got["value"], json!({"cups": 2}));
        dev.send(&answer(
            &got,
            200,
            Some(json!({"eta": 30})),
            Some("application/json"),
        ))
        .await;
        let r = req.await;
        assert_eq!((r.status, r.json()), (200, json!({"eta": 30})));
        assert_eq!(r.header("content-type"), Some("application/json"));

        // a JSON string both ways (issue 16): `application/json` bodies are parsed, so the
        // device gets the string itself; its JSON string answer is JSON text on HTTP
        let req = post(
            &http,
            &format!("{base}/inbox/messages/ping"),
            vec![
                ("Content-Type", "application/json".into()),
                ("correlation-id", "m-jstr".into()),
            ],
            br#""hello""#.to_vec(),
        );
        let got = expect_frame(&mut dev, "m-jstr").await;
        assert_eq!(got["value"], json!("hello"), "not double-encoded: {got}");
        dev.send(&answer(
            &got,
            200,
            Some(json!("hello")),
            Some("application/json"),
        ))
        .await;
        let r = req.await;
        assert_eq!((r.status, r.text().as_str()), (200, r#""hello""#));
        assert_eq!(r.json(), json!("hello"));
        // other JSON types keep a JSON string's raw text (Ditto's interpretAsJsonValue)
        let req = post(
            &http,
            &format!("{base}/inbox/messages/ping"),
            vec![
                ("Content-Type", "application/vnd.acme+json".into()),
                ("correlation-id", "m-vnd".into()),
            ],
            br#""hello""#.to_vec(),
        );
        let got = expect_frame(&mut dev, "m-vnd").await;
        assert_eq!(got["value"], json!("\"hello\""));
        dev.send(&answer(
            &got,
            200,
            Some(json!([1])),
            Some("application/vnd.acme+json"),
        ))
        .await;
        assert_eq!(req.await.text(), "[1]");

        // binary in (base64 in the protocol), binary out
        let raw: Vec<u8> = vec![0, 1, 2, 250, 251, 255];
        let req = post(
            &http,
            &format!("{base}/features/water-tank/inbox/messages/firmware"),
            vec![
                ("Content-Type", "application/octet-stream".into()),
                ("correlation-id", "m-bin".into()),
            ],
            raw.clone(),
        );
        let got = expect_frame(&mut dev, "m-bin").await;
        assert_eq!(got["path"], "/features/water-tank/inbox/messages/firmware");
        assert_eq!(got["value"], "AAEC+vv/", "base64 of the bytes");
        dev.send(&answer(
            &got,
            200,
            Some(json!("/wA=")),
            Some("application/octet-stream"),
        ))
        .await;
        let r = req.await;
        assert_eq!((r.status, r.body.clone()), (200, vec![255u8, 0]));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));

        // 204 has no body; an outbox message and an error answer of the device
        let req = post(
            &http,
            &format!("{base}/outbox/messages/done"),
            vec![("correlation-id", "m-204".into())],
            vec![],
        );
        let got = expect_frame(&mut dev, "m-204").await;
        assert_eq!(got["path"], "/outbox/messages/done");
        assert!(got.get("value").is_none(), "empty body: no value");
        dev.send(&answer(
            &got,
            204,
            Some(json!("ignored")),
            Some("text/plain"),
        ))
        .await;
        let r = req.await;
        assert_eq!((r.status, r.body.len()), (204, 0));

        // claim: subject claim, thing inbox
        let req = post(
            &http,
            &format!("{base}/inbox/claim"),
            vec![
                ("Content-Type", "text/plain".into()),
                ("correlation-id", "m-claim".into()),
            ],
            b"secret".to_vec(),
        );
        let got = expect_frame(&mut dev, "m-claim").await;
        assert_eq!(got["topic"], "ns.msg/coffee/things/live/messages/claim");
        assert_eq!(got["path"], "/inbox/messages/claim");
        dev.send(&answer(&got, 204, None, None)).await;
        assert_eq!(req.await.status, 204);

        // fire and forget: 202 at once, the device still gets it
        let r = http
            .send(
                "POST",
                &format!("{base}/inbox/messages/note?timeout=0"),
                &[("Content-Type", "text/plain"), ("correlation-id", "m-ff")],
                Some(b"fyi"),
            )
            .await;
        assert_eq!((r.status, r.body.len()), (202, 0));
        assert_eq!(expect_frame(&mut dev, "m-ff").await["value"], "fyi");

        // nobody answers within the timeout
        let r = http
            .send(
                "POST",
                &format!("{base}/inbox/messages/ask?timeout=1"),
                &[("Content-Type", "text/plain")],
                Some(b"anyone?"),
            )
            .await;
        assert_eq!((r.status, r.error().as_str()), (408, "command.timeout"));
        assert_eq!(
            r.json()["message"],
            "The Command reached the specified timeout of 1,000ms."
        );

        assert!(pending_drains(srv.addr).await);
    });
}

#[test]
fn message_errors_and_limits() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        let http = Http::new(srv.addr);
        let base = "/api/2/things/ns.msg:coffee";
        let big = vec![b'x'; 250 * 1024 + 1];
        let r = http
            .send(
                "POST",
                &format!("{base}/inbox/messages/big"),
                &[("Content-Type", "text/plain")],
                Some(&big),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (413, "messages:payload.toolarge")
        );
        let r = http
            .send(
                "POST",
                "/api/2/things/ns.msg:missing/inbox/messages/x",
                &[],
                Some(b"x"),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (404, "things:thing.notfound")
        );
        let r = http
            .send(
                "POST",
                &format!("{base}/inbox/messages/x?timeout=700"),
                &[],
                Some(b"x"),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "gateway:timeout.invalid")
        );
        let r = http
            .send("POST", &format!("{base}/inbox/messages/"), &[], Some(b"x"))
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "messages:subject.invalid")
        );
        let r = http
            .send(
                "POST",
                &format!("{base}/inbox/messages/j"),
                &[("Content-Type", "application/json")],
                Some(b"{nope"),
            )
            .await;
        assert_eq!((r.status, r.error().as_str()), (400, "json.invalid"));

        // over WS: twin channel is not allowed for messages; the path must match the subject
        let mut m = message(
            T,
            "ask",
            "/inbox/messages/ask",
            "w-1",
            "text/plain",
            json!("hi"),
        );
        m["topic"] = json!("ns.msg/coffee/things/twin/messages/ask");
        let r = app.request(m).await;
        assert_eq!(
            r["value"]["error"], "protocoladapter:unknown.channel",
            "{r}"
        );
        let r = app
            .request(message(
                T,
                "ask",
                "/inbox/messages/other",
                "w-2",
                "text/plain",
                json!("hi"),
            ))
            .await;
        assert_eq!(r["value"]["error"], "protocoladapter:unknown.path", "{r}");
        let r = app
            .request(message(
                T,
                "big",
                "/inbox/messages/big",
                "w-3",
                "text/plain",
                json!("x".repeat(250 * 1024 + 1)),
            ))
            .await;
        assert_eq!(r["value"]["error"], "messages:payload.toolarge", "{r}");
    });
}

#[test]
fn websocket_messages_reach_matching_subscribers_only() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        assert_eq!(app.request(create("other.ns:x")).await["status"], 201);
        let mut dev = srv.ws().await;
        dev.control("START-SEND-MESSAGES?namespaces=ns.msg&extraFields=attributes/model")
            .await;
        let mut filtered = srv.ws().await;
        filtered
            .control("START-SEND-MESSAGES?filter=eq(topic:subject,%22only-this%22)")
            .await;

        app.send(&message(
            T,
            "ask",
            "/inbox/messages/ask",
            "ws-1",
            "text/plain",
            json!("hello"),
        ))
        .await;
        let got = expect_frame(&mut dev, "ws-1").await;
        assert_eq!(got["extra"], json!({"attributes": {"model": "espresso"}}));
        assert_eq!(got["value"], "hello");
        dev.send(&answer(&got, 200, Some(json!("fine")), Some("text/plain")))
            .await;
        let r = expect_frame(&mut app, "ws-1").await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(200), json!("fine"))
        );
        assert_eq!(r["headers"]["content-type"], "text/plain");
        assert!(
            frame_with(&mut filtered, "ws-1", Duration::from_millis(300))
                .await
                .is_none(),
            "filter on topic:subject drops it"
        );
        app.send(&message(
            T,
            "only-this",
            "/inbox/messages/only-this",
            "ws-2",
            "text/plain",
            json!(1),
        ))
        .await;
        assert_eq!(expect_frame(&mut filtered, "ws-2").await["value"], 1);

        // other namespace: not for `dev`
        app.send(&message(
            "other.ns:x",
            "ask",
            "/inbox/messages/ask",
            "ws-3",
            "text/plain",
            json!("?"),
        ))
        .await;
        assert!(frame_with(&mut dev, "ws-3", Duration::from_millis(300))
            .await
            .is_none());
    });
}

/// The two curl examples of docs/live.md ("Live commands, messages and acknowledgements"),
/// run verbatim (address substituted) with `bash`, a WS device session answering as shown there.
#[test]
fn readme_live_and_message_examples_run_verbatim() {
    const LIVE: &str = "curl -u ditto:ditto 'http://localhost:8080/api/2/things/org.eclipse.ditto:lamp-1/features/lamp/properties/on?channel=live&timeout=5'";
    const MESSAGE: &str = "curl -u ditto:ditto -X POST -H 'Content-Type: text/plain' -d 'Hey, how are you?' \\\n  'http://localhost:8080/api/2/things/org.eclipse.ditto:lamp-1/inbox/messages/ask?timeout=10'";
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/live.md"))
        .expect("docs/live.md");
    assert!(
        readme.contains(LIVE) && readme.contains(MESSAGE),
        "docs/live.md examples changed"
    );
    let srv = Server::start();
    let port = srv.addr.port();
    let curl = move |cmd: &'static str| {
        std::thread::spawn(move || {
            let cmd = cmd.replace("http://localhost:8080", &format!("http://127.0.0.1:{port}"));
            let full = format!("{cmd} -s -w '\\n%{{http_code}} %{{content_type}}'");
            let o = std::process::Command::new("bash")
                .arg("-c")
                .arg(&full)
                .output()
                .expect("bash runs (is curl installed? scripts/test.sh installs it)");
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
    };
    block_on(async {
        let mut app = srv.ws().await;
        let lamp = json!({"features": {"lamp": {"properties": {"on": false}}}});
        let r = app
            .request(command(
                "org.eclipse.ditto:lamp-1",
                "create",
                "/",
                Some(lamp),
            ))
            .await;
        assert_eq!(r["status"], 201);
        let mut dev = srv.ws().await;
        dev.control("START-SEND-LIVE-COMMANDS").await;
        dev.control("START-SEND-MESSAGES?namespaces=org.eclipse.ditto")
            .await;

        let out = curl(LIVE);
        let got: Value = serde_json::from_str(&dev.recv_text().await).unwrap();
        assert_eq!(
            got["topic"],
            "org.eclipse.ditto/lamp-1/things/live/commands/retrieve"
        );
        assert_eq!(got["headers"]["channel"], "live");
        assert_eq!(got["headers"]["timeout"], "5");
        dev.send(&answer(&got, 200, Some(json!(true)), None)).await;
        let text = smol::unblock(move || out.join().unwrap()).await;
        assert_eq!(text, "true\n200 application/json");

        let out = curl(MESSAGE);
        let got: Value = serde_json::from_str(&dev.recv_text().await).unwrap();
        assert_eq!(
            got["topic"],
            "org.eclipse.ditto/lamp-1/things/live/messages/ask"
        );
        assert_eq!(got["path"], "/inbox/messages/ask");
        assert_eq!(got["value"], "Hey, how are you?");
        assert_eq!(
            (
                got["headers"]["content-type"].clone(),
                got["headers"]["timeout"].clone()
            ),
            (json!("text/plain"), json!("10"))
        );
        let reply = answer(
            &got,
            418,
            Some(json!("I am a lamp, not a teapot")),
            Some("text/plain"),
        );
        dev.send(&reply).await;
        let text = smol::unblock(move || out.join().unwrap()).await;
        assert_eq!(text, "I am a lamp, not a teapot\n418 text/plain");
    });
}
