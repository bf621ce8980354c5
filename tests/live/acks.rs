//! Acknowledgements end to end: `declared-acks` on the WS connect (unique across sessions),
//! custom acks from event subscribers aggregated with `twin-persisted`, 424 when an ack fails
//! or times out, weak acks for declaring subscribers whose filter drops the event, a closing
//! acking subscriber and a label nobody declared (408 `acknowledgement:request.timeout` at the
//! timeout, as Ditto's aggregator answers), acks for live commands and messages, HTTP callers
//! with custom acks, and the WS `response-required` rules.

use crate::common;
use crate::livekit;
use common::http::Http;
use common::{basic, block_on, command, modify, Server, Ws};
use livekit::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "ns.ack:pump";

fn with_acks(mut cmd: Value, cid: &str, labels: Value, timeout: &str) -> Value {
    cmd["headers"] = json!({"correlation-id": cid, "requested-acks": labels, "timeout": timeout});
    cmd
}

#[test]
fn custom_acks_from_subscribers_are_aggregated() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(
            app.request(command(
                T,
                "create",
                "/",
                Some(json!({"attributes": {"rpm": 1}}))
            ))
            .await["status"],
            201
        );
        let mut sub = ws_declaring(&srv, "pump:seen,pump:other").await;
        sub.control("START-SEND-EVENTS").await;

        // success: twin-persisted + a custom ack
        let cmd = with_acks(
            modify(T, "/attributes/rpm", json!(2)),
            "a-1",
            json!(["twin-persisted", "pump:seen"]),
            "10s",
        );
        app.send(&cmd).await;
        let ev = expect_frame(&mut sub, "a-1").await;
        assert_eq!(ev["topic"], "ns.ack/pump/things/twin/events/modified");
        assert_eq!(
            ev["headers"]["requested-acks"],
            json!(["pump:seen"]),
            "custom labels only"
        );
        sub.send(&ack(
            T,
            "twin",
            "pump:seen",
            "a-1",
            200,
            Some(json!({"ok": true})),
        ))
        .await;
        let r = expect_frame(&mut app, "a-1").await;
        assert_eq!(r["topic"], "ns.ack/pump/things/twin/acks");
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert_eq!(r["value"]["twin-persisted"]["status"], 204);
        assert_eq!(r["value"]["pump:seen"]["status"], 200);
        assert_eq!(r["value"]["pump:seen"]["payload"], json!({"ok": true}));

        // one ack fails: 424 with each status
        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(3)),
            "a-2",
            json!(["twin-persisted", "pump:seen"]),
            "10s",
        ))
        .await;
        expect_frame(&mut sub, "a-2").await;
        sub.send(&ack(
            T,
            "twin",
            "pump:seen",
            "a-2",
            400,
            Some(json!("You better try harder")),
        ))
        .await;
        let r = expect_frame(&mut app, "a-2").await;
        assert_eq!(r["status"], 424);
        assert_eq!(r["value"]["pump:seen"]["status"], 400);
        assert_eq!(r["value"]["pump:seen"]["payload"], "You better try harder");

        // one ack times out: 424 with acknowledgement:request.timeout
        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(4)),
            "a-3",
            json!(["twin-persisted", "pump:seen"]),
            "1337ms",
        ))
        .await;
        expect_frame(&mut sub, "a-3").await;
        let r = expect_frame(&mut app, "a-3").await;
        assert_eq!(r["status"], 424);
        let to = &r["value"]["pump:seen"];
        assert_eq!(to["status"], 408);
        assert_eq!(to["payload"]["error"], "acknowledgement:request.timeout");
        assert_eq!(
            to["payload"]["message"],
            "The acknowledgement request reached the specified timeout of 1,337ms."
        );
        assert_eq!(
            r["value"]["twin-persisted"]["status"], 204,
            "the change itself was persisted"
        );

        // a single custom label: the overall status is that ack's
        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(5)),
            "a-4",
            json!(["pump:seen"]),
            "10s",
        ))
        .await;
        expect_frame(&mut sub, "a-4").await;
        sub.send(&ack(T, "twin", "pump:seen", "a-4", 202, None))
            .await;
        let r = expect_frame(&mut app, "a-4").await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (
                json!(202),
                json!({"pump:seen": {"status": 202, "headers": {"correlation-id": "a-4"}}})
            )
        );

        // a label only other sessions may send; an ack for an undeclared label
        let r = app
            .request(ack(T, "twin", "pump:seen", "a-4", 200, None))
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(400), json!("acknowledgement:label.not.declared"))
        );
        assert_eq!(
            r["value"]["message"],
            "Cannot send acknowledgement with label <pump:seen>, which is not declared."
        );

        // the same label twice: 409 and the second socket is closed
        let mut dup = ws_connect_declaring(&srv, "pump:seen").await;
        let e: Value = serde_json::from_str(&dup.recv_text().await).unwrap();
        assert_eq!(
            (e["status"].clone(), e["value"]["error"].clone()),
            (json!(409), json!("acknowledgement:label.not.unique"))
        );
        assert!(
            dup.try_recv_text(Duration::from_secs(5)).await.is_none(),
            "closed"
        );
        // invalid / built-in labels are refused on the upgrade
        for bad in ["x", "twin-persisted"] {
            let r = Ws::connect_with(
                srv.addr,
                &format!("/ws/2?declared-acks={bad}"),
                &[("authorization", basic("ditto", "ditto"))],
            )
            .await;
            assert!(r.is_err(), "{bad} refused");
        }
        assert!(pending_drains(srv.addr).await);
    });
}

#[test]
fn weak_acks_for_filtered_subscribers_and_timeouts_for_what_cannot_arrive() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(
            app.request(command(
                T,
                "create",
                "/",
                Some(json!({"attributes": {"rpm": 1}}))
            ))
            .await["status"],
            201
        );
        let mut picky = ws_declaring(&srv, "picky:ack").await;
        picky
            .control("START-SEND-EVENTS?namespaces=elsewhere")
            .await;
        let mut idle = ws_declaring(&srv, "idle:ack").await; // declared, not subscribed

        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(2)),
            "w-1",
            json!(["picky:ack", "idle:ack"]),
            "60s",
        ))
        .await;
        let r = expect_frame(&mut app, "w-1").await;
        assert_eq!(r["status"], 200, "{r}");
        for l in ["picky:ack", "idle:ack"] {
            assert_eq!(r["value"][l]["status"], 200);
            assert_eq!(r["value"][l]["headers"]["ditto-weak-ack"], true, "{l}: {r}");
        }
        assert!(silence(&mut picky, Duration::from_millis(200))
            .await
            .is_none());
        assert!(silence(&mut idle, Duration::from_millis(200))
            .await
            .is_none());

        // the acking subscriber gets the event and disconnects: answered at the timeout, not
        // before (a lower bound only)
        let mut flaky = ws_declaring(&srv, "flaky:ack").await;
        flaky.control("START-SEND-EVENTS").await;
        let sent = std::time::Instant::now();
        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(3)),
            "w-2",
            json!(["twin-persisted", "flaky:ack"]),
            "1s",
        ))
        .await;
        expect_frame(&mut flaky, "w-2").await;
        drop(flaky);
        let r = expect_frame(&mut app, "w-2").await;
        assert!(sent.elapsed() >= Duration::from_secs(1), "{r}");
        assert_eq!(r["status"], 424, "{r}");
        assert_eq!(r["value"]["flaky:ack"]["status"], 408);
        assert_eq!(
            r["value"]["flaky:ack"]["payload"]["message"],
            "The acknowledgement request reached the specified timeout of 1,000ms."
        );
        assert_eq!(r["value"]["twin-persisted"]["status"], 204);

        // a label nobody declared: Ditto waits for the timeout too (WS and HTTP at once)
        let sent = std::time::Instant::now();
        let http = Http::new(srv.addr);
        let put = smol::spawn(async move {
            http.put_with(
                "/api/2/things/ns.ack:pump/attributes/rpm?requested-acks=nobody:ack&timeout=1",
                &json!(5),
                &[("correlation-id", "w-3h")],
            )
            .await
        });
        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(4)),
            "w-3",
            json!(["nobody:ack"]),
            "1s",
        ))
        .await;
        let r = expect_frame(&mut app, "w-3").await;
        assert!(sent.elapsed() >= Duration::from_secs(1), "{r}");
        assert_eq!(
            (
                r["status"].clone(),
                r["value"]["nobody:ack"]["payload"]["error"].clone()
            ),
            (json!(408), json!("acknowledgement:request.timeout"))
        );
        let r = put.await;
        assert!(sent.elapsed() >= Duration::from_secs(1), "{}", r.text());
        assert_eq!(
            (r.status, r.json()["nobody:ack"]["payload"]["error"].clone()),
            (408, json!("acknowledgement:request.timeout"))
        );

        // WS rules: acks with response-required=false; a correlation-id still pending
        let mut bad = modify(T, "/attributes/rpm", json!(5));
        bad["headers"] = json!({"correlation-id": "w-4", "response-required": false, "requested-acks": ["idle:ack"]});
        let r = app.request(bad).await;
        assert_eq!(r["value"]["error"], "header.invalid");
        let mut slow = ws_declaring(&srv, "slow:ack").await;
        slow.control("START-SEND-EVENTS").await;
        app.send(&with_acks(
            modify(T, "/attributes/rpm", json!(6)),
            "w-5",
            json!(["slow:ack"]),
            "60s",
        ))
        .await;
        expect_frame(&mut slow, "w-5").await;
        let r = app
            .request(with_acks(
                modify(T, "/attributes/rpm", json!(7)),
                "w-5",
                json!(["slow:ack"]),
                "60s",
            ))
            .await;
        assert_eq!(
            r["value"]["error"],
            "acknowledgement:request.duplicate.correlation-id"
        );
        assert_eq!(
            app.request(command(T, "retrieve", "/attributes/rpm", None))
                .await["value"],
            6,
            "the duplicate was not executed"
        );
        slow.send(&ack(T, "twin", "slow:ack", "w-5", 200, None))
            .await;
        assert_eq!(expect_frame(&mut app, "w-5").await["status"], 200);
        assert!(pending_drains(srv.addr).await);
    });
}

#[test]
fn acks_on_live_commands_messages_and_over_http() {
    let srv = Server::start();
    block_on(async {
        let mut app = srv.ws().await;
        assert_eq!(
            app.request(command(
                T,
                "create",
                "/",
                Some(json!({"attributes": {"rpm": 1}}))
            ))
            .await["status"],
            201
        );
        let mut dev = ws_declaring(&srv, "dev:logged").await;
        dev.control("START-SEND-LIVE-COMMANDS").await;
        dev.control("START-SEND-MESSAGES").await;

        // live command with a custom ack: live-response + the ack aggregated
        let mut cmd = live(T, "modify", "/attributes/rpm", "l-1", Some(json!(9)));
        cmd["headers"]["requested-acks"] = json!(["dev:logged"]);
        app.send(&cmd).await;
        let got = expect_frame(&mut dev, "l-1").await;
        assert_eq!(got["headers"]["requested-acks"], json!(["dev:logged"]));
        dev.send(&answer(&got, 204, None, None)).await;
        dev.send(&ack(T, "live", "dev:logged", "l-1", 200, None))
            .await;
        let r = expect_frame(&mut app, "l-1").await;
        assert_eq!(r["topic"], "ns.ack/pump/things/live/acks");
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["value"]["live-response"]["status"], 204);
        assert_eq!(r["value"]["dev:logged"]["status"], 200);

        // HTTP message with a custom ack: the aggregation is the body
        let http = Http::new(srv.addr);
        let req = {
            let http = http.clone();
            smol::spawn(async move {
                http.send(
                    "POST",
                    "/api/2/things/ns.ack:pump/inbox/messages/start?requested-acks=dev:logged&timeout=10",
                    &[("Content-Type", "text/plain"), ("correlation-id", "h-1")],
                    Some(b"go"),
                )
                .await
            })
        };
        let got = expect_frame(&mut dev, "h-1").await;
        dev.send(&answer(
            &got,
            200,
            Some(json!("started")),
            Some("text/plain"),
        ))
        .await;
        dev.send(&ack(T, "live", "dev:logged", "h-1", 500, None))
            .await;
        let r = req.await;
        assert_eq!(r.status, 424, "{}", r.text());
        let v = r.json();
        assert_eq!(
            (
                v["live-response"]["status"].clone(),
                v["live-response"]["payload"].clone()
            ),
            (json!(200), json!("started"))
        );
        assert_eq!(v["dev:logged"]["status"], 500);

        // HTTP twin write with a custom ack (event subscriber) and response-required=false
        let mut sub = ws_declaring(&srv, "sub:seen").await;
        sub.control("START-SEND-EVENTS").await;
        let put = {
            let http = http.clone();
            smol::spawn(async move {
                http.put_with(
                    "/api/2/things/ns.ack:pump/attributes/rpm?requested-acks=twin-persisted,sub:seen",
                    &json!(11),
                    &[("correlation-id", "h-2")],
                )
                .await
            })
        };
        expect_frame(&mut sub, "h-2").await;
        sub.send(&ack(T, "twin", "sub:seen", "h-2", 200, Some(json!("ok"))))
            .await;
        let r = put.await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["twin-persisted"]["status"], 204);
        assert_eq!(r.json()["sub:seen"]["payload"], "ok");
        let quiet = {
            let http = http.clone();
            smol::spawn(async move {
                http.put_with(
                    "/api/2/things/ns.ack:pump/attributes/rpm?requested-acks=sub:seen&response-required=false",
                    &json!(12),
                    &[("correlation-id", "h-3")],
                )
                .await
            })
        };
        expect_frame(&mut sub, "h-3").await;
        sub.send(&ack(T, "twin", "sub:seen", "h-3", 201, None))
            .await;
        let r = quiet.await;
        assert_eq!(
            (r.status, r.body.len()),
            (202, 0),
            "all acks fine, no response required"
        );
        assert!(pending_drains(srv.addr).await);
    });
}
