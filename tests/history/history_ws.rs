//! History over the WebSocket: retrieves with `at-historical-revision` /
//! `at-historical-timestamp` headers, answered like plain retrieves (or 404
//! `things:thing.history.notfound`).

use crate::{modified, put, start, thing};
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
        smol::Timer::after(std::time::Duration::from_millis(30)).await;
        put(h, T, "/attributes/n", json!(2)).await;
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
