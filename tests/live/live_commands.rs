//! The live channel end to end over real sockets with several WS sessions and HTTP callers:
//! live commands answered by a device session (answers routed by correlation-id, the twin never
//! touched), 408 and `use-twin`, `live-channel-condition`, HTTP `channel=live`, live events,
//! nobody who can answer (no subscriber, a responder that disconnects): 408 `command.timeout`
//! only at the timeout, as Ditto's acknowledgement aggregator answers,
//! duplicate correlation-ids, the pending-request bound, and no leaked table entries.

use crate::common;
use crate::livekit;
use common::http::Http;
use common::{block_on, command, Server};
use livekit::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "ns.live:lamp";

fn create(id: &str) -> Value {
    command(
        id,
        "create",
        "/",
        Some(json!({"attributes": {"room": "kitchen", "temp": 19},
                    "features": {"lamp": {"properties": {"on": false}}}})),
    )
}

#[test]
fn live_commands_are_answered_by_a_device_session_and_never_touch_the_twin() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        let mut dev = srv.ws().await;
        let mut bystander = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        dev.control("START-SEND-LIVE-COMMANDS").await;
        bystander
            .control("START-SEND-LIVE-COMMANDS?namespaces=other.ns")
            .await;

        // live retrieve: the device gets it and answers; the requester gets the device's value
        app.send(&live(T, "retrieve", "/attributes", "lr-1", None))
            .await;
        let got = expect_frame(&mut dev, "lr-1").await;
        assert_eq!(got["topic"], "ns.live/lamp/things/live/commands/retrieve");
        assert_eq!(got["path"], "/attributes");
        assert!(
            got.get("status").is_none(),
            "a command, not a response: {got}"
        );
        dev.send(&answer(
            &got,
            200,
            Some(json!({"room": "attic", "temp": 42})),
            None,
        ))
        .await;
        let r = expect_frame(&mut app, "lr-1").await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(
            r["value"],
            json!({"room": "attic", "temp": 42}),
            "the device's answer"
        );
        assert_eq!(r["topic"], "ns.live/lamp/things/live/commands/retrieve");
        assert!(
            silence(&mut bystander, Duration::from_millis(300))
                .await
                .is_none(),
            "namespace filter: the bystander got nothing"
        );

        // live modify: delivered, answered 204; the twin keeps its value
        app.send(&live(
            T,
            "modify",
            "/attributes/temp",
            "lm-1",
            Some(json!(30)),
        ))
        .await;
        let got = expect_frame(&mut dev, "lm-1").await;
        assert_eq!(got["value"], 30);
        dev.send(&answer(&got, 204, None, None)).await;
        assert_eq!(expect_frame(&mut app, "lm-1").await["status"], 204);
        let twin = app
            .request(command(T, "retrieve", "/attributes/temp", None))
            .await;
        assert_eq!(twin["value"], 19, "live signals are never persisted");

        // an answer of the wrong type is ignored; a later valid one wins, a second is dropped
        app.send(&live(T, "retrieve", "/attributes/temp", "lr-2", None))
            .await;
        let got = expect_frame(&mut dev, "lr-2").await;
        let mut wrong = answer(&got, 200, Some(json!(1)), None);
        wrong["path"] = json!("/features");
        dev.send(&wrong).await;
        dev.send(&answer(&got, 200, Some(json!(21)), None)).await;
        dev.send(&answer(&got, 200, Some(json!(99)), None)).await;
        let r = expect_frame(&mut app, "lr-2").await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(200), json!(21))
        );
        assert!(
            frame_with(&mut app, "lr-2", Duration::from_millis(300))
                .await
                .is_none(),
            "only the first valid answer is delivered"
        );

        // creating via live is refused; a missing thing is 404
        let r = app
            .request(live(T, "create", "/", "lc-1", Some(json!({}))))
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(405), json!("things:thing.notcreatable"))
        );
        let r = app
            .request(live("ns.live:nope", "retrieve", "/", "ln-1", None))
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(404), json!("things:thing.notfound"))
        );
        assert_eq!(r["topic"], "ns.live/nope/things/live/errors");

        // live events: from the device to live-event subscribers, not stored
        app.control("START-SEND-LIVE-EVENTS").await;
        dev.send(&json!({"topic": format!("{}/things/live/events/modified", tp(T)),
                          "headers": {"correlation-id": "le-1"}, "path": "/features/lamp/properties/on", "value": true}))
            .await;
        let ev = expect_frame(&mut app, "le-1").await;
        assert_eq!(ev["topic"], "ns.live/lamp/things/live/events/modified");
        assert_eq!(ev["value"], true);
        let twin = app
            .request(command(T, "retrieve", "/features/lamp/properties/on", None))
            .await;
        assert_eq!(twin["value"], false, "live events are not persisted");

        assert!(
            pending_drains(srv.addr).await,
            "no pending request left over"
        );
    });
}

#[test]
fn no_answer_gives_408_or_the_twin_and_the_live_channel_condition_selects() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        let mut dev = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        dev.control("START-SEND-LIVE-COMMANDS").await;

        // the device stays silent: 408 command.timeout after `timeout`
        let mut cmd = live(T, "retrieve", "/attributes/temp", "to-1", None);
        cmd["headers"]["timeout"] = json!("1s");
        let r = app.request(cmd).await;
        assert_eq!(r["status"], 408, "{r}");
        assert_eq!(r["value"]["error"], "command.timeout");
        assert_eq!(
            r["value"]["message"],
            "The Command reached the specified timeout of 1,000ms."
        );
        assert_eq!(r["topic"], "ns.live/lamp/things/live/errors");

        // use-twin: the twin answers instead
        let mut cmd = live(T, "retrieve", "/attributes/temp", "to-2", None);
        cmd["headers"]["timeout"] = json!("1s");
        cmd["headers"]["live-channel-timeout-strategy"] = json!("use-twin");
        let r = app.request(cmd).await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(200), json!(19)),
            "{r}"
        );
        assert_eq!(r["headers"]["channel"], "twin");

        // live-channel-condition on a twin retrieve: matches -> live (device answers)
        let mut cmd = command(T, "retrieve", "/attributes/temp", None);
        cmd["headers"] = json!({"correlation-id": "cond-1", "live-channel-condition": "eq(attributes/room,\"kitchen\")"});
        app.send(&cmd).await;
        let got = expect_frame(&mut dev, "cond-1").await;
        assert_eq!(got["topic"], "ns.live/lamp/things/live/commands/retrieve");
        dev.send(&answer(&got, 200, Some(json!(23)), None)).await;
        let r = expect_frame(&mut app, "cond-1").await;
        assert_eq!(r["value"], 23);
        assert_eq!(r["headers"]["live-channel-condition-matched"], "true");
        assert_eq!(r["headers"]["channel"], "live");
        // ... does not match -> the twin answers
        cmd["headers"] = json!({"correlation-id": "cond-2", "live-channel-condition": "eq(attributes/room,\"cellar\")"});
        let r = app.request(cmd.clone()).await;
        assert_eq!(r["value"], 19);
        assert_eq!(r["headers"]["live-channel-condition-matched"], "false");
        assert_eq!(r["headers"]["channel"], "twin");
        // on a modify it is not allowed
        let mut m = command(T, "modify", "/attributes/temp", Some(json!(1)));
        m["headers"] = json!({"live-channel-condition": "exists(thingId)"});
        let r = app.request(m).await;
        assert_eq!(
            r["value"]["error"],
            "things:live.channelcondition.notallowed"
        );

        // HTTP channel=live: answered by the device session
        let http = Http::new(srv.addr);
        let get = {
            let http = http.clone();
            smol::spawn(async move {
                http.get_with(
                    "/api/2/things/ns.live:lamp/attributes/room?channel=live",
                    &[("correlation-id", "http-live-1")],
                )
                .await
            })
        };
        let got = expect_frame(&mut dev, "http-live-1").await;
        dev.send(&answer(&got, 200, Some(json!("garden")), None))
            .await;
        let r = get.await;
        assert_eq!((r.status, r.json()), (200, json!("garden")));
        let r = http
            .get("/api/2/things/ns.live:lamp/attributes/room?channel=live&timeout=1")
            .await;
        assert_eq!((r.status, r.error().as_str()), (408, "command.timeout"));
        let r = http
            .get("/api/2/things/ns.live:lamp/attributes/room?channel=live&timeout=1&live-channel-timeout-strategy=use-twin")
            .await;
        assert_eq!((r.status, r.json()), (200, json!("kitchen")));
        assert_eq!(r.header("channel"), Some("twin"));

        assert!(pending_drains(srv.addr).await);
    });
}

/// Ditto's text for a command timeout of `ms` milliseconds (`MessageFormat` groups thousands).
fn timeout_text(ms: &str) -> String {
    format!("The Command reached the specified timeout of {ms}ms.")
}

#[test]
fn nobody_can_answer_waits_for_the_timeout() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        let mut dev = srv.ws().await;
        dev.control("START-SEND-LIVE-COMMANDS").await;
        let timeout = Duration::from_secs(2);

        // the device takes the command and disconnects without answering: the requester is
        // answered at its timeout, not before (a lower bound only: never flaky when slow)
        let mut cmd = live(T, "retrieve", "/", "gone-1", None);
        cmd["headers"]["timeout"] = json!("2s");
        let sent = std::time::Instant::now();
        app.send(&cmd).await;
        expect_frame(&mut dev, "gone-1").await;
        drop(dev);
        let r = expect_frame(&mut app, "gone-1").await;
        assert!(
            sent.elapsed() >= timeout,
            "answered before the timeout: {r}"
        );
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(408), json!("command.timeout"))
        );
        assert_eq!(r["value"]["message"], timeout_text("2,000"), "{r}");

        // nobody subscribed at all: the same for a live command over WS and HTTP and for a
        // message over HTTP (the three at once, timeout 1 s)
        let timeout = Duration::from_secs(1);
        let sent = std::time::Instant::now();
        let http = Http::new(srv.addr);
        let live_http = {
            let http = http.clone();
            smol::spawn(async move {
                http.get("/api/2/things/ns.live:lamp?channel=live&timeout=1")
                    .await
            })
        };
        let message_http = smol::spawn(async move {
            http.send(
                "POST",
                "/api/2/things/ns.live:lamp/inbox/messages/hello?timeout=1000ms",
                &[("Content-Type", "text/plain")],
                Some(b"anyone?"),
            )
            .await
        });
        let mut cmd = live(T, "retrieve", "/", "gone-2", None);
        cmd["headers"]["timeout"] = json!("1s");
        let r = app.request(cmd).await;
        assert!(sent.elapsed() >= timeout, "{r}");
        assert_eq!(r["status"], 408);
        assert_eq!(r["value"]["message"], timeout_text("1,000"), "{r}");
        for r in [live_http.await, message_http.await] {
            assert!(sent.elapsed() >= timeout, "{}", r.text());
            assert_eq!((r.status, r.error().as_str()), (408, "command.timeout"));
            assert_eq!(r.json()["message"], timeout_text("1,000"));
        }

        // a requester that disconnects leaves nothing behind
        let mut dev = srv.ws().await;
        dev.control("START-SEND-LIVE-COMMANDS").await;
        let mut quitter = srv.ws().await;
        let mut cmd = live(T, "retrieve", "/", "quit-1", None);
        cmd["headers"]["timeout"] = json!("60s");
        quitter.send(&cmd).await;
        expect_frame(&mut dev, "quit-1").await;
        assert_eq!(
            pending(srv.addr).await,
            1,
            "one request waits for the device"
        );
        drop(quitter);
        assert!(
            pending_drains(srv.addr).await,
            "closed requester: its entry is gone"
        );
        dev.send(&answer(
            &json!({"topic": format!("{}/things/live/commands/retrieve", tp(T)),
                                 "path": "/", "headers": {"correlation-id": "quit-1"}}),
            200,
            Some(json!({})),
            None,
        ))
        .await;
        assert!(
            silence(&mut dev, Duration::from_millis(300))
                .await
                .is_none(),
            "a late answer is dropped silently"
        );
    });
}

#[test]
fn duplicate_correlation_ids_and_the_pending_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("edgetwin.toml");
    std::fs::write(&cfg, "[limits]\nmax_pending_requests = 2\n").unwrap();
    let srv = Server::start_in(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    block_on(async {
        let mut app = srv.ws().await;
        let mut dev = srv.ws().await;
        assert_eq!(app.request(create(T)).await["status"], 201);
        dev.control("START-SEND-LIVE-COMMANDS").await;
        let slow = |cid: &str| {
            let mut c = live(T, "retrieve", "/", cid, None);
            c["headers"]["timeout"] = json!("60s");
            c
        };
        app.send(&slow("dup")).await;
        expect_frame(&mut dev, "dup").await;
        let r = app.request(slow("dup")).await;
        assert_eq!(r["status"], 409, "{r}");
        assert_eq!(
            r["value"]["error"],
            "acknowledgement:request.duplicate.correlation-id"
        );
        app.send(&slow("second")).await;
        expect_frame(&mut dev, "second").await;
        let r = app.request(slow("third")).await;
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(429), json!("too.many.requests")),
            "{r}"
        );
        assert_eq!(pending(srv.addr).await, 2);
        let got = json!({"topic": format!("{}/things/live/commands/retrieve", tp(T)), "path": "/",
                         "headers": {"correlation-id": "dup"}});
        dev.send(&answer(&got, 200, Some(json!({"a": 1})), None))
            .await;
        assert_eq!(
            expect_frame(&mut app, "dup").await["value"],
            json!({"a": 1})
        );
        let mut got2 = got.clone();
        got2["headers"]["correlation-id"] = json!("second");
        dev.send(&answer(&got2, 200, Some(json!({})), None)).await;
        expect_frame(&mut app, "second").await;
        assert!(pending_drains(srv.addr).await);
    });
}
