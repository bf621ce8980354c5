//! `merge-thing-patch-conditions` end to end over real sockets against the real binary: Ditto's
//! documentation example (tests/conformance corpus) sent WITH the merge content-type over WS and
//! as HTTP PATCH; asserts the stored thing afterwards and the `merged` event a subscriber gets.

use crate::common;
use common::http::Http;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const HEADER: &str = "merge-thing-patch-conditions";

/// The corpus example's command envelope.
fn example() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/things/merge-with-patch-conditions.json"
    ))
    .expect("corpus file");
    let v: Value = serde_json::from_str(&text).expect("corpus JSON");
    v["command"].clone()
}

/// Current values: temperature 21 (> 20: its part applies), humidity 90 (not < 80: dropped).
fn current() -> Value {
    json!({"features": {
        "temperature": {"properties": {"value": 21}},
        "humidity": {"properties": {"value": 90}}}})
}

/// The thing after the example's merge: conditions were evaluated on the thing BEFORE it.
fn expected_features() -> Value {
    json!({
        "temperature": {"properties": {"value": 25}},
        "humidity": {"properties": {"value": 90}},
        "status": {"properties": {"state": "updated"}}})
}

/// The patch Ditto persists and publishes: the humidity value removed, its parent kept.
fn expected_event_value() -> Value {
    json!({
        "attributes": {"lastMaintenance": "2023-01-20T15:00:00Z"},
        "features": {
            "temperature": {"properties": {"value": 25}},
            "humidity": {"properties": {}},
            "status": {"properties": {"state": "updated"}}}})
}

async fn subscriber(srv: &Server) -> Ws {
    let mut sub = srv.ws().await;
    sub.control("START-SEND-EVENTS").await;
    sub
}

async fn merged_event(sub: &mut Ws) -> Value {
    loop {
        let ev = sub
            .next_event(Duration::from_secs(10))
            .await
            .expect("an event within the wait time");
        if ev["topic"]
            .as_str()
            .unwrap_or("")
            .ends_with("/events/merged")
        {
            return ev;
        }
    }
}

#[test]
fn documentation_example_over_ws() {
    let srv = Server::start();
    block_on(async {
        let mut sub = subscriber(&srv).await;
        let mut ws = srv.ws().await;
        let id = "org.eclipse.ditto:fancy-thing";
        let r = ws
            .request(command(id, "create", "/", Some(current())))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let mut cmd = example();
        cmd["headers"]["content-type"] = "application/merge-patch+json".into();
        let r = ws.request(cmd).await;
        assert_eq!(r["status"], 204, "{r}");
        assert_eq!(
            r["topic"],
            "org.eclipse.ditto/fancy-thing/things/twin/commands/merge"
        );

        let ev = merged_event(&mut sub).await;
        assert_eq!(
            ev["topic"],
            "org.eclipse.ditto/fancy-thing/things/twin/events/merged"
        );
        assert_eq!(ev["path"], "/");
        assert_eq!(ev["value"], expected_event_value());
        assert_eq!(ev["revision"], 2);

        let r = ws.request(command(id, "retrieve", "/", None)).await;
        assert_eq!(r["value"]["features"], expected_features(), "{r}");
        assert_eq!(
            r["value"]["attributes"],
            json!({"lastMaintenance": "2023-01-20T15:00:00Z"})
        );

        // an invalid header is a 400 in Ditto's error shape, nothing is written
        let mut bad = example();
        bad["headers"]["content-type"] = "application/merge-patch+json".into();
        bad["headers"][HEADER] = r#"{"features/temperature": 5}"#.into();
        let r = ws.request(bad).await;
        assert_eq!(r["status"], 400, "{r}");
        assert_eq!(r["value"]["error"], "header.invalid");
        let mut get = command(id, "retrieve", "/", None);
        get["fields"] = "_revision".into();
        let r = ws.request(get).await;
        assert_eq!(r["value"], json!({"_revision": 2}), "{r}");
    });
}

#[test]
fn documentation_example_over_http_patch() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let mut sub = subscriber(&srv).await;
        let t = "/api/2/things/org.eclipse.ditto:fancy-thing";
        assert_eq!(c.put(t, &current()).await.status, 201);
        let cmd = example();
        let conds = cmd["headers"][HEADER].as_str().expect("string header");
        let body = cmd["value"].to_string();
        let hs = [
            ("Content-Type", "application/merge-patch+json"),
            (HEADER, conds),
        ];
        let r = c.send("PATCH", t, &hs, Some(body.as_bytes())).await;
        assert_eq!(r.status, 204, "{}", r.text());

        let ev = merged_event(&mut sub).await;
        assert_eq!(ev["value"], expected_event_value());
        let thing = c.get(t).await.json();
        assert_eq!(thing["features"], expected_features(), "{thing}");

        // at a sub-path the pointers are relative to it; a false condition drops its part
        let conds = r#"{"value": "lt(features/temperature/properties/value,0)"}"#;
        let hs = [
            ("Content-Type", "application/merge-patch+json"),
            (HEADER, conds),
        ];
        let body = json!({"value": -5, "unit": "C"}).to_string();
        let p = format!("{t}/features/temperature/properties");
        let r = c.send("PATCH", &p, &hs, Some(body.as_bytes())).await;
        assert_eq!(r.status, 204, "{}", r.text());
        assert_eq!(merged_event(&mut sub).await["value"], json!({"unit": "C"}));
        assert_eq!(c.get(&p).await.json(), json!({"value": 25, "unit": "C"}));

        // invalid RQL in a condition: 400 things:condition.invalid
        let hs = [
            ("Content-Type", "application/merge-patch+json"),
            (HEADER, r#"{"value": "gt(value"}"#),
        ];
        let r = c.send("PATCH", &p, &hs, Some(body.as_bytes())).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:condition.invalid")
        );
    });
}
