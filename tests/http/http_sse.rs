//! Server-Sent Events and the shared hub over real sockets: an SSE client streaming while other
//! clients change things over HTTP and WebSocket; WebSocket subscribers seeing HTTP changes;
//! Ditto's SSE format and parameters (`ids`, `fields` with `_context`, `namespaces`, `filter`,
//! `extraFields`, sub-path streams); keep-alive comments; 400/401 before the stream; and the
//! hub session closed when the client disconnects.

use crate::common;
use common::http::Http;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(700);

#[test]
fn sse_streams_changes_made_over_http_and_websocket() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let mut sse = c.sse("/api/2/things").await.expect("stream opens");
        assert_eq!(sse.header("content-type"), Some("text/event-stream"));
        assert_eq!(sse.header("transfer-encoding"), Some("chunked"));

        let r = c
            .put(
                "/api/2/things/org.eclipse.ditto:fancy-thing",
                &json!({"features": {"lamp": {"properties": {"on": false}}}}),
            )
            .await;
        assert_eq!(r.status, 201);
        let block = loop {
            let b = sse.next_block(WAIT).await.expect("an event block");
            if !b.starts_with(':') {
                break b;
            }
        };
        assert!(
            block.starts_with("data:"),
            "one data line, no event:/id: fields: {block:?}"
        );
        assert_eq!(block.lines().count(), 1);
        let created: serde_json::Value = serde_json::from_str(&block["data:".len()..]).unwrap();
        assert_eq!(
            created,
            json!({"thingId": "org.eclipse.ditto:fancy-thing", "policyId": "org.eclipse.ditto:fancy-thing",
                   "features": {"lamp": {"properties": {"on": false}}}})
        );

        let mut ws = srv.ws().await;
        let r = ws
            .request(modify(
                "org.eclipse.ditto:fancy-thing",
                "/features/lamp/properties/on",
                json!(true),
            ))
            .await;
        assert_eq!(r["status"], 204);
        let ev = sse
            .next_json(WAIT)
            .await
            .expect("event caused over WebSocket");
        assert_eq!(
            ev,
            json!({"thingId": "org.eclipse.ditto:fancy-thing", "features": {"lamp": {"properties": {"on": true}}}})
        );
        let r = c
            .get("/api/2/things/org.eclipse.ditto:fancy-thing/features/lamp/properties/on")
            .await;
        assert_eq!(
            (r.status, r.json()),
            (200, json!(true)),
            "HTTP reads the WS write"
        );

        c.patch(
            "/api/2/things/org.eclipse.ditto:fancy-thing/features/lamp/properties",
            &json!({"on": null, "color": "blue"}),
        )
        .await;
        let ev = sse.next_json(WAIT).await.expect("merged event");
        assert_eq!(
            ev["features"]["lamp"]["properties"],
            json!({"color": "blue"}),
            "merge patches arrive without nulls"
        );
        c.delete("/api/2/things/org.eclipse.ditto:fancy-thing/features/lamp/properties/color")
            .await;
        let ev = sse.next_json(WAIT).await.expect("deleted event");
        assert_eq!(ev, json!({"thingId": "org.eclipse.ditto:fancy-thing"}));
    });
}

#[test]
fn websocket_subscribers_see_http_changes_with_their_correlation_id() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let mut ws = srv.ws().await;
        ws.control("START-SEND-EVENTS").await;
        let r = c
            .put_with(
                "/api/2/things/ns:w1",
                &json!({"attributes": {"a": 1}}),
                &[("correlation-id", "http-1")],
            )
            .await;
        assert_eq!(r.status, 201);
        let ev = ws.next_event(WAIT).await.expect("created event over WS");
        assert_eq!(ev["topic"], "ns/w1/things/twin/events/created");
        assert_eq!(ev["headers"]["correlation-id"], "http-1");
        assert_eq!(ev["revision"], 1);
        c.patch("/api/2/things/ns:w1/attributes", &json!({"b": 2}))
            .await;
        let ev = ws.next_event(WAIT).await.expect("merged event over WS");
        assert_eq!(ev["topic"], "ns/w1/things/twin/events/merged");
        assert_eq!(ev["value"], json!({"b": 2}));
        c.delete("/api/2/things/ns:w1").await;
        let ev = ws.next_event(WAIT).await.expect("deleted event over WS");
        assert_eq!(ev["topic"], "ns/w1/things/twin/events/deleted");
    });
}

#[test]
fn sse_parameters_select_and_shape_events() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        for id in ["a:1", "a:2", "b:1"] {
            c.put(
                &format!("/api/2/things/{id}"),
                &json!({"attributes": {"location": "kitchen", "counter": 0}}),
            )
            .await;
        }
        let mut by_ids = c
            .sse("/api/2/things?ids=a:2,b:1&fields=thingId,attributes/counter")
            .await
            .unwrap();
        let mut by_ns = c
            .sse("/api/2/things?namespaces=b&fields=thingId,_context")
            .await
            .unwrap();
        let mut filtered = c
            .sse("/api/2/things?filter=gt(attributes/counter,42)")
            .await
            .unwrap();
        let mut extra = c
            .sse("/api/2/things?extraFields=attributes/location&filter=eq(attributes/location,%22hall%22)&fields=thingId,attributes")
            .await
            .unwrap();
        let mut one = c.sse("/api/2/things/a:1").await.unwrap();
        let mut pointer = c
            .sse("/api/2/things/a:1/attributes/location")
            .await
            .unwrap();

        c.put("/api/2/things/a:1/attributes/counter", &json!(1))
            .await;
        c.put("/api/2/things/a:2/attributes/counter", &json!(43))
            .await;
        c.put("/api/2/things/b:1/attributes/location", &json!("hall"))
            .await;
        c.put("/api/2/things/b:1/attributes/counter", &json!(2))
            .await;
        c.put("/api/2/things/a:1/attributes/location", &json!("cellar"))
            .await;

        let ev = by_ids.next_json(WAIT).await.unwrap();
        assert_eq!(ev, json!({"thingId": "a:2", "attributes": {"counter": 43}}));
        let ev = by_ids.next_json(WAIT).await.unwrap();
        assert_eq!(
            ev,
            json!({"thingId": "b:1"}),
            "a change outside the selection still carries the selected thingId (as in Ditto)"
        );
        let ev = by_ids.next_json(WAIT).await.unwrap();
        assert_eq!(ev, json!({"thingId": "b:1", "attributes": {"counter": 2}}));
        assert_eq!(by_ids.next_data(QUIET).await, None);

        let ev = by_ns.next_json(WAIT).await.unwrap();
        assert_eq!(ev["thingId"], "b:1");
        assert_eq!(ev["_context"]["topic"], "b/1/things/twin/events/modified");
        assert_eq!(ev["_context"]["path"], "/attributes/location");
        assert_eq!(ev["_context"]["value"], "hall");
        assert!(ev["_context"]["headers"]["correlation-id"].is_string());
        assert_eq!(by_ns.next_json(WAIT).await.unwrap()["_context"]["value"], 2);
        assert_eq!(by_ns.next_data(QUIET).await, None);

        let ev = filtered.next_json(WAIT).await.unwrap();
        assert_eq!(ev, json!({"thingId": "a:2", "attributes": {"counter": 43}}));
        assert_eq!(filtered.next_data(QUIET).await, None);

        let ev = extra.next_json(WAIT).await.unwrap();
        assert_eq!(
            ev,
            json!({"thingId": "b:1", "attributes": {"location": "hall"}})
        );
        let ev = extra.next_json(WAIT).await.unwrap();
        assert_eq!(
            ev,
            json!({"thingId": "b:1", "attributes": {"location": "hall", "counter": 2}}),
            "enriched from the current twin"
        );
        assert_eq!(extra.next_data(QUIET).await, None);

        assert_eq!(
            one.next_json(WAIT).await.unwrap(),
            json!({"thingId": "a:1", "attributes": {"counter": 1}})
        );
        assert_eq!(
            one.next_json(WAIT).await.unwrap()["attributes"]["location"],
            "cellar"
        );
        assert_eq!(one.next_data(QUIET).await, None);

        assert_eq!(
            pointer.next_data(WAIT).await.as_deref(),
            Some("\"cellar\""),
            "raw value at the pointer"
        );
        assert_eq!(pointer.next_data(QUIET).await, None);
    });
}

#[test]
fn keep_alive_comments_and_errors_before_the_stream() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let mut sse = c.sse("/api/2/things").await.unwrap();
        let block = sse.next_block(WAIT).await.expect("keep-alive while idle");
        assert!(block.starts_with(':'), "a comment line: {block:?}");

        let r = c
            .sse("/api/2/things?filter=eq(attributes/x")
            .await
            .err()
            .expect("400");
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "rql.expression.invalid")
        );
        let r = c
            .sse("/api/2/things?fields=nonsense")
            .await
            .err()
            .expect("400");
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:field.selection.invalid")
        );
        let r = c.sse("/api/2/things?ids=invalid").await.err().expect("400");
        assert_eq!((r.status, r.error().as_str()), (400, "things:id.invalid"));
        let r = Http::anonymous(srv.addr)
            .sse("/api/2/things")
            .await
            .err()
            .expect("401");
        assert_eq!(r.status, 401);
        assert!(r.header("www-authenticate").is_some());
        let plain = c
            .get_with("/api/2/things?ids=a:1", &[("Accept", "application/json")])
            .await;
        assert_eq!(
            (plain.status, plain.json()),
            (200, json!([])),
            "without text/event-stream the REST endpoint answers"
        );
    });
}

#[test]
fn disconnected_sse_client_leaves_no_session() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let base = c.sessions().await;
        let sse1 = c.sse("/api/2/things").await.unwrap();
        let mut sse2 = c.sse("/api/2/things/ns:x").await.unwrap();
        assert_eq!(c.sessions().await, base + 2, "one hub session per stream");
        drop(sse1);
        c.put("/api/2/things/ns:x", &json!({})).await;
        assert!(
            sse2.next_json(WAIT).await.is_some(),
            "the other stream keeps working"
        );
        drop(sse2);
        let deadline = Instant::now() + WAIT;
        let mut n = c.sessions().await;
        while n != base && Instant::now() < deadline {
            smol::Timer::after(Duration::from_millis(100)).await;
            n = c.sessions().await;
        }
        assert_eq!(n, base, "sessions of disconnected SSE clients are closed");
        for i in 0..3 {
            let r = c.put("/api/2/things/ns:x/attributes/n", &json!(i)).await;
            assert!(
                r.status == 201 || r.status == 204,
                "writes go on with no subscribers"
            );
        }
    });
}

#[test]
fn sse_client_that_stops_reading_is_cut_off_others_keep_streaming() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("edgetwin.toml");
    std::fs::write(
        &cfg,
        "[limits]\noutbound_queue = 4\nmax_pending_per_session = 4\n",
    )
    .unwrap();
    let srv = Server::start_in(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = Http::new(srv.addr);
    block_on(async {
        let base = c.sessions().await;
        let mut slow = c.sse("/api/2/things").await.unwrap();
        let mut fast = c
            .sse("/api/2/things?fields=thingId,_revision")
            .await
            .unwrap();
        c.put("/api/2/things/ns:flood", &json!({})).await;
        assert!(fast.next_json(WAIT).await.is_some());
        // `slow` reads nothing; far more data than its queue and socket buffers hold.
        let big = "x".repeat(32 * 1024);
        let n = 1000;
        for i in 0..n {
            let r = c
                .put(
                    "/api/2/things/ns:flood/attributes/blob?requested-acks=",
                    &json!(format!("{i}{big}")),
                )
                .await;
            assert!(r.status == 201 || r.status == 204, "{}", r.status);
            let ev = fast
                .next_json(WAIT)
                .await
                .expect("the reading stream keeps up");
            assert_eq!(ev["_revision"], i + 2);
        }
        let deadline = Instant::now() + WAIT;
        let mut sessions = c.sessions().await;
        while sessions != base + 1 && Instant::now() < deadline {
            smol::Timer::after(Duration::from_millis(100)).await;
            sessions = c.sessions().await;
        }
        assert_eq!(
            sessions,
            base + 1,
            "the overflowed stream's session was closed"
        );
        let mut received = 0;
        while slow.next_data(WAIT).await.is_some() {
            received += 1;
        }
        assert!(
            received < n,
            "the slow stream ended early ({received} of {n} events)"
        );
    });
}
