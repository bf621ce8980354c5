//! Receiving messages over HTTP with Server-Sent Events, as Ditto offers it: `GET
//! /api/2/things/{id}[/features/{f}]/{inbox|outbox}/messages[/{subject}]` with `Accept:
//! text/event-stream` streams one event per message (`event:` = subject, `data:` = payload as
//! text) sent by other clients over HTTP and WebSocket; scoped by thing, direction, feature and
//! subject; READ on `message:` required; bad paths refused before the stream starts.

use crate::common;
use common::http::Http;
use common::*;
use serde_json::json;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(700);

/// POSTs a message with `timeout=0` (no answer awaited: 202).
async fn send_fire_and_forget(c: &Http, path: &str, content_type: &str, body: &[u8]) {
    let r = c
        .send(
            "POST",
            &format!("{path}?timeout=0"),
            &[("Content-Type", content_type)],
            Some(body),
        )
        .await;
    assert_eq!(r.status, 202, "{path}: {}", r.text());
}

/// The next non-comment block of a stream.
async fn next_event(sse: &mut common::http::Sse, wait: Duration) -> Option<String> {
    loop {
        let b = sse.next_block(wait).await?;
        if !b.starts_with(':') {
            return Some(b);
        }
    }
}

#[test]
fn messages_sent_over_http_and_ws_arrive_on_the_stream() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let base = "/api/2/things/org.eclipse.ditto:coffee";
        assert_eq!(
            c.put(base, &json!({"features": {"tank": {}}})).await.status,
            201
        );
        let mut all = c
            .sse(&format!("{base}/inbox/messages"))
            .await
            .expect("stream");
        assert_eq!(all.header("content-type"), Some("text/event-stream"));
        let mut brew = c
            .sse(&format!("{base}/inbox/messages/brew"))
            .await
            .expect("subject stream");
        let mut tank = c
            .sse(&format!("{base}/features/tank/inbox/messages"))
            .await
            .expect("feature stream");

        // text over HTTP, fire and forget
        send_fire_and_forget(
            &c,
            &format!("{base}/inbox/messages/brew"),
            "text/plain",
            b"two cups\nstrong",
        )
        .await;
        for s in [&mut all, &mut brew] {
            assert_eq!(
                next_event(s, WAIT).await.as_deref(),
                Some("event:brew\ndata:two cups\ndata:strong")
            );
        }

        // JSON over WebSocket, another subject: only the unscoped stream gets it
        let mut ws = srv.ws().await;
        ws.send(
            &json!({"topic": "org.eclipse.ditto/coffee/things/live/messages/status",
            "headers": {"content-type": "application/json", "timeout": 0},
            "path": "/inbox/messages/status", "value": {"level": 3}}),
        )
        .await;
        assert_eq!(
            next_event(&mut all, WAIT).await.as_deref(),
            Some("event:status\ndata:{\"level\":3}")
        );
        assert_eq!(next_event(&mut brew, QUIET).await, None, "other subject");

        // a feature message reaches the feature stream only; an outbox message neither
        send_fire_and_forget(
            &c,
            &format!("{base}/features/tank/inbox/messages/refill"),
            "application/json",
            b"{\"litres\":2}",
        )
        .await;
        assert_eq!(
            next_event(&mut tank, WAIT).await.as_deref(),
            Some("event:refill\ndata:{\"litres\":2}")
        );
        send_fire_and_forget(
            &c,
            &format!("{base}/outbox/messages/done"),
            "text/plain",
            b"ready",
        )
        .await;
        assert_eq!(next_event(&mut all, QUIET).await, None, "thing inbox only");
        assert_eq!(next_event(&mut tank, QUIET).await, None);
        let mut outbox = c
            .sse(&format!("{base}/outbox/messages"))
            .await
            .expect("outbox stream");
        send_fire_and_forget(
            &c,
            &format!("{base}/outbox/messages/done"),
            "text/plain",
            b"ready",
        )
        .await;
        assert_eq!(
            next_event(&mut outbox, WAIT).await.as_deref(),
            Some("event:done\ndata:ready")
        );
    });
}

#[test]
fn streams_need_read_on_messages_and_a_valid_path() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let base = "/api/2/things/org.eclipse.ditto:locked";
        // the owner keeps everything but READ on message:/ (revoked)
        let policy = json!({"entries": {"owner": {
            "subjects": {"nginx:ditto": {"type": "dev"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "message:/": {"grant": ["WRITE"], "revoke": ["READ"]}}}}});
        assert_eq!(c.put(base, &json!({"_policy": policy})).await.status, 201);
        let mut sse = c
            .sse(&format!("{base}/inbox/messages"))
            .await
            .expect("stream");
        send_fire_and_forget(
            &c,
            &format!("{base}/inbox/messages/x"),
            "text/plain",
            b"secret",
        )
        .await;
        assert_eq!(
            next_event(&mut sse, QUIET).await,
            None,
            "no READ on message:/"
        );

        for bad in [
            "/api/2/things/org.eclipse.ditto:locked/inbox/claim",
            "/api/2/things/not-an-id/inbox/messages",
        ] {
            let r = c
                .sse(bad)
                .await
                .err()
                .unwrap_or_else(|| panic!("{bad} opened"));
            assert_eq!(r.status, 400, "{bad}: {}", r.text());
        }
    });
}
