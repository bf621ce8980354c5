//! Change notifications over real WebSockets: START/STOP-SEND-EVENTS with namespaces, RQL
//! filters and extraFields; events carry revision and timestamp; the originating session gets
//! no echo; all five control messages are acknowledged; a subscriber that does not read is
//! closed with 1013 while other sessions keep working.

use crate::common;
use common::*;
use serde_json::json;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(600);

#[test]
fn events_reach_other_sessions_with_revision_and_timestamp() {
    let srv = Server::start();
    block_on(async {
        let mut writer = srv.ws().await;
        let mut sub = srv.ws().await;
        sub.control("START-SEND-EVENTS").await;
        writer.control("START-SEND-EVENTS").await;
        let r = writer
            .request(command(
                "ns:e1",
                "create",
                "/",
                Some(json!({"attributes": {"n": 1}})),
            ))
            .await;
        assert_eq!(r["status"], 201);
        let ev = sub.next_event(WAIT).await.expect("created event");
        assert_eq!(ev["topic"], "ns/e1/things/twin/events/created");
        assert_eq!(ev["revision"], 1);
        assert_eq!(ev["value"]["attributes"]["n"], 1);
        assert!(ev["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            ev["headers"]["correlation-id"],
            r["headers"]["correlation-id"]
        );
        writer
            .request(command(
                "ns:e1",
                "merge",
                "/attributes",
                Some(json!({"n": null, "m": 2})),
            ))
            .await;
        let ev = sub.next_event(WAIT).await.expect("merged event");
        assert_eq!(ev["topic"], "ns/e1/things/twin/events/merged");
        assert_eq!(ev["value"], json!({"n": null, "m": 2}));
        assert_eq!(ev["revision"], 2);
        assert_eq!(
            ev["headers"]["content-type"],
            "application/merge-patch+json"
        );
        writer
            .request(command("ns:e1", "delete", "/attributes/m", None))
            .await;
        let ev = sub.next_event(WAIT).await.expect("deleted event");
        assert_eq!(
            (ev["topic"].as_str(), ev.get("value")),
            (Some("ns/e1/things/twin/events/deleted"), None)
        );
        assert_eq!(
            writer.next_event(QUIET).await,
            None,
            "the originating session gets no echo"
        );
        sub.control("STOP-SEND-EVENTS").await;
        writer
            .request(modify("ns:e1", "/attributes/after", json!(1)))
            .await;
        assert_eq!(sub.next_event(QUIET).await, None, "no events after STOP");
    });
}

#[test]
fn namespaces_filter_and_extra_fields() {
    let srv = Server::start();
    block_on(async {
        let mut w = srv.ws().await;
        let mut ns_sub = srv.ws().await;
        let mut filt = srv.ws().await;
        let mut extra = srv.ws().await;
        ns_sub.control("START-SEND-EVENTS?namespaces=a.b,c").await;
        filt.control("START-SEND-EVENTS?filter=gt(attributes%2Fcounter,42)")
            .await;
        extra.control("START-SEND-EVENTS?extraFields=attributes/location,features/temp/properties/unit&filter=eq(attributes/location,%22Kitchen%22)").await;
        w.request(command("a.b:x", "create", "/", Some(json!({"attributes": {"location": "Kitchen"}, "features": {"temp": {"properties": {"unit": "C", "v": 1}}}})))).await;
        w.request(command(
            "other:x",
            "create",
            "/",
            Some(json!({"attributes": {"location": "Hall"}})),
        ))
        .await;
        let ev = ns_sub.next_event(WAIT).await.unwrap();
        assert_eq!(ev["topic"], "a.b/x/things/twin/events/created");
        assert_eq!(
            ns_sub.next_event(QUIET).await,
            None,
            "namespace 'other' filtered out"
        );

        w.request(modify("a.b:x", "/attributes/counter", json!(41)))
            .await;
        w.request(modify("a.b:x", "/attributes/counter", json!(43)))
            .await;
        // the filter subscriber sees only the change that matches
        let ev = filt.next_event(WAIT).await.unwrap();
        assert_eq!(ev["value"], 43, "{ev}");
        assert_eq!(filt.next_event(QUIET).await, None);

        // extra subscriber: created event (location Kitchen) plus the counter updates, all enriched
        w.request(modify("a.b:x", "/features/temp/properties/v", json!(2)))
            .await;
        let mut seen = Vec::new();
        while let Some(ev) = extra.next_event(QUIET).await {
            seen.push(ev);
        }
        let last = seen.last().expect("events for the kitchen thing");
        assert_eq!(last["path"], "/features/temp/properties/v");
        assert_eq!(
            last["extra"],
            json!({"attributes": {"location": "Kitchen"}, "features": {"temp": {"properties": {"unit": "C"}}}})
        );
        assert!(
            seen.iter()
                .all(|e| e["topic"].as_str().unwrap().starts_with("a.b/x/")),
            "Hall thing filtered: {seen:?}"
        );
    });
}

#[test]
fn control_messages_ack_and_bad_filter() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        for kind in [
            "EVENTS",
            "MESSAGES",
            "LIVE-COMMANDS",
            "LIVE-EVENTS",
            "POLICY-ANNOUNCEMENTS",
        ] {
            ws.control(&format!("START-SEND-{kind}")).await;
            ws.control(&format!("STOP-SEND-{kind}")).await;
        }
        ws.send_text("START-SEND-EVENTS?filter=eq(attributes%2Fx")
            .await;
        let r = ws.recv().await;
        assert_eq!(r["topic"], "unknown/unknown/things/twin/errors");
        assert_eq!(
            (r["status"].as_u64(), r["value"]["error"].as_str()),
            (Some(400), Some("rql.expression.invalid"))
        );
        // no ACK followed; the session still works
        let r = ws.request(command("ns:ok", "create", "/", None)).await;
        assert_eq!(r["status"], 201);
    });
}

#[test]
fn slow_subscriber_is_closed_others_keep_working() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("edgetwin.toml");
    std::fs::write(
        &cfg,
        "[limits]\noutbound_queue = 16\nmax_pending_per_session = 16\n",
    )
    .unwrap();
    let srv = Server::start_in(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    block_on(async {
        let mut w = srv.ws().await;
        let mut slow = srv.ws().await;
        let mut fast = srv.ws().await;
        slow.control("START-SEND-EVENTS").await;
        fast.control("START-SEND-EVENTS").await;
        // `slow` stops reading; write far more events than its queue and socket buffers hold.
        // Each write waits for durability, so events come one per commit, not in bursts.
        let big = "x".repeat(32 * 1024);
        let n = 1000;
        // Lockstep: each write waits until `fast` got its event, so only `slow` falls behind
        // (a free-running reader on this one test thread could itself fall 16 events behind).
        let mut got = 0;
        for i in 0..n {
            let mut c = modify("ns:flood", "/attributes/blob", json!(format!("{i}{big}")));
            if i == 0 {
                c = command("ns:flood", "create", "/", Some(json!({})));
            }
            c["headers"]["requested-acks"] = json!([]);
            w.request(c).await;
            if fast.next_event(WAIT).await.is_none() {
                break;
            }
            got += 1;
        }
        assert_eq!(got, n, "the fast subscriber received every event");
        // now drain the slow one: it must end with a close frame 1013 after a bounded number of events
        let mut received = 0;
        let code = loop {
            match futures_lite::StreamExt::next(&mut slow.stream).await {
                Some(Ok(async_tungstenite::tungstenite::Message::Text(_))) => received += 1,
                Some(Ok(async_tungstenite::tungstenite::Message::Close(f))) => {
                    break f.map(|f| u16::from(f.code))
                }
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(code, Some(1013));
        assert!(
            received < n,
            "the slow subscriber was cut off ({received} of {n})"
        );
        let r = w
            .request(command("ns:flood", "retrieve", "/attributes/blob", None))
            .await;
        assert_eq!(r["status"], 200, "writer still served");
    });
}
