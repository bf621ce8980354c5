//! History over the WebSocket: retrieves with `at-historical-revision` /
//! `at-historical-timestamp` headers, answered like plain retrieves (or 404
//! `things:thing.history.notfound`); `streaming/subscribeForPersistedEvents` with its
//! request / next / complete / cancel / failed flow control.

use crate::{later_set_n, modified, put, start, thing};
use serde_json::json;

const T: &str = "ws:one";

fn retrieve(path: &str, headers: serde_json::Value) -> serde_json::Value {
    json!({"topic": "ws/one/things/twin/commands/retrieve", "path": path, "headers": headers})
}

#[test]
fn retrieves_at_a_revision_or_time_over_the_websocket() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        let t1 = modified(h, T).await;
        later_set_n(h, T, 2).await;
        let mut ws = rig.srv.ws().await;
        let r = ws
            .request(retrieve(
                "/attributes/n",
                json!({"at-historical-revision": 1}),
            ))
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(200), json!(1)),
            "{r}"
        );
        let r = ws
            .request(retrieve("/", json!({"at-historical-revision": "2"})))
            .await;
        assert_eq!(r["value"]["attributes"]["n"], 2, "{r}");
        let at = edgetwin::clock::format_millis(t1 + 1);
        let r = ws
            .request(retrieve(
                "/attributes/n",
                json!({"at-historical-timestamp": at}),
            ))
            .await;
        assert_eq!(r["value"], 1, "{r}");
        let r = ws
            .request(retrieve("/", json!({"at-historical-revision": 3})))
            .await;
        assert_eq!(r["status"], 404, "{r}");
        assert_eq!(r["value"]["error"], "things:thing.history.notfound", "{r}");
    });
}

fn streaming(action: &str, value: serde_json::Value) -> serde_json::Value {
    json!({"topic": format!("ws/one/things/twin/streaming/{action}"), "path": "/",
           "headers": {"correlation-id": "s-1"}, "value": value})
}

async fn next_streaming(ws: &mut crate::common::Ws) -> serde_json::Value {
    loop {
        let v = ws.recv().await;
        if v["topic"].as_str().unwrap_or("").contains("/streaming/") {
            return v;
        }
    }
}

fn action(v: &serde_json::Value) -> &str {
    v["topic"]
        .as_str()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
}

#[test]
fn subscribe_for_persisted_events_follows_the_demand() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        for n in 2..=4 {
            put(h, T, "/attributes/n", json!(n)).await;
        }
        let mut ws = rig.srv.ws().await;
        ws.send(&streaming(
            "subscribeForPersistedEvents",
            json!({"fromHistoricalRevision": 2, "toHistoricalRevision": 4}),
        ))
        .await;
        let created = next_streaming(&mut ws).await;
        assert_eq!(action(&created), "created", "{created}");
        assert_eq!(created["headers"]["correlation-id"], "s-1");
        let id = created["value"]["subscriptionId"]
            .as_str()
            .expect("id")
            .to_owned();
        // nothing before the first request
        assert!(ws
            .try_recv_text(std::time::Duration::from_millis(300))
            .await
            .is_none());
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": id, "demand": 2}),
        ))
        .await;
        let mut revs = Vec::new();
        for _ in 0..2 {
            let n = next_streaming(&mut ws).await;
            assert_eq!(action(&n), "next", "{n}");
            let item = &n["value"]["item"];
            assert_eq!(item["topic"], "ws/one/things/twin/events/modified", "{n}");
            assert_eq!(item["path"], "/attributes/n");
            revs.push(item["revision"].as_u64().unwrap());
            assert_eq!(item["value"], item["revision"], "value n = revision here");
        }
        assert_eq!(revs, vec![2, 3]);
        assert!(
            ws.try_recv_text(std::time::Duration::from_millis(300))
                .await
                .is_none(),
            "demand met"
        );
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": id, "demand": 10}),
        ))
        .await;
        let n = next_streaming(&mut ws).await;
        assert_eq!(n["value"]["item"]["revision"], 4);
        let c = next_streaming(&mut ws).await;
        assert_eq!(
            (action(&c), c["value"].clone()),
            ("complete", json!({"subscriptionId": id}))
        );
        // a relative range with a filter, then a cancel after the first item
        ws.send(&streaming(
            "subscribeForPersistedEvents",
            json!({"fromHistoricalRevision": -3, "filter": "gt(attributes/n,2)"}),
        ))
        .await;
        let id2 = next_streaming(&mut ws).await["value"]["subscriptionId"]
            .as_str()
            .unwrap()
            .to_owned();
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": id2, "demand": 1}),
        ))
        .await;
        let n = next_streaming(&mut ws).await;
        assert_eq!(n["value"]["item"]["revision"], 3, "{n}");
        ws.send(&streaming("cancel", json!({"subscriptionId": id2})))
            .await;
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": id2, "demand": 1}),
        ))
        .await;
        let f = next_streaming(&mut ws).await;
        assert_eq!(action(&f), "failed", "requests after a cancel fail: {f}");
        // a thing that does not exist: created, then failed on the first request
        let mut other = streaming("subscribeForPersistedEvents", json!({}));
        other["topic"] = json!("ws/none/things/twin/streaming/subscribeForPersistedEvents");
        ws.send(&other).await;
        let c = next_streaming(&mut ws).await;
        assert_eq!(action(&c), "created");
        let id3 = c["value"]["subscriptionId"].as_str().unwrap().to_owned();
        let mut req = streaming("request", json!({"subscriptionId": id3, "demand": 1}));
        req["topic"] = json!("ws/none/things/twin/streaming/request");
        ws.send(&req).await;
        let f = next_streaming(&mut ws).await;
        assert_eq!(action(&f), "failed", "{f}");
        assert_eq!(f["value"]["error"]["error"], "things:thing.notfound", "{f}");
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": "nope", "demand": 1}),
        ))
        .await;
        let f = next_streaming(&mut ws).await;
        assert_eq!(
            f["value"]["error"]["error"], "streaming.subscription.not.found",
            "{f}"
        );
    });
}
