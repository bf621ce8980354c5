//! Thing metadata headers end to end over real sockets against the real binary: `put-metadata`
//! on WS modify/merge and HTTP PUT, the event's `metadata` field, `fields=_metadata`,
//! `get-metadata` answered in `ditto-metadata`, `delete-metadata`, and the 400 conflicts.

use crate::common;
use common::http::Http;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const ID: &str = "org.eclipse.ditto:my-lamp-1";
const T: &str = "/api/2/things/org.eclipse.ditto:my-lamp-1";

fn lamp() -> Value {
    json!({"features": {"lamp": {"properties": {
        "color": {"r": 100, "g": 0, "b": 255}, "status": {"on": "true"}}}}})
}

async fn event(sub: &mut Ws, action: &str) -> Value {
    loop {
        let ev = sub
            .next_event(Duration::from_secs(10))
            .await
            .expect("an event within the wait time");
        if ev["topic"].as_str().unwrap_or("").ends_with(action) {
            return ev;
        }
    }
}

#[test]
fn put_metadata_over_ws_is_stored_published_and_readable() {
    let srv = Server::start();
    block_on(async {
        let mut sub = srv.ws().await;
        sub.control("START-SEND-EVENTS").await;
        let mut ws = srv.ws().await;
        let r = ws.request(command(ID, "create", "/", Some(lamp()))).await;
        assert_eq!(r["status"], 201, "{r}");

        let mut m = modify(
            ID,
            "/features/lamp/properties/color",
            json!({"r": 1, "g": 2}),
        );
        m["headers"]["put-metadata"] = json!([{"key": "/description", "value": "RGB"}]);
        let r = ws.request(m).await;
        assert_eq!(r["status"], 204, "{r}");
        let ev = event(&mut sub, "/events/modified").await;
        assert_eq!(ev["metadata"], json!({"description": "RGB"}), "{ev}");

        // `*/leaf` on a merge of several leaves: each written leaf gets the key
        let mut mg = command(
            ID,
            "merge",
            "/features/lamp/properties",
            Some(json!({"color": {"b": 3}, "status": {"on": "false"}})),
        );
        mg["headers"]["put-metadata"] = r#"[{"key":"*/changedBy","value":"ditto"}]"#.into();
        let r = ws.request(mg).await;
        assert_eq!(r["status"], 204, "{r}");
        let ev = event(&mut sub, "/events/merged").await;
        assert_eq!(
            ev["metadata"],
            json!({"color": {"b": {"changedBy": "ditto"}}, "status": {"on": {"changedBy": "ditto"}}})
        );

        let mut get = command(ID, "retrieve", "/", None);
        get["fields"] = "_metadata".into();
        let r = ws.request(get.clone()).await;
        assert_eq!(
            r["value"]["_metadata"],
            json!({"features": {"lamp": {"properties": {
                "color": {"description": "RGB", "b": {"changedBy": "ditto"}},
                "status": {"on": {"changedBy": "ditto"}}}}}}),
            "{r}"
        );

        // get-metadata over WS: the response header `ditto-metadata`
        let mut g = command(ID, "retrieve", "/features/lamp/properties/color", None);
        g["headers"]["get-metadata"] = "description".into();
        let r = ws.request(g).await;
        assert_eq!(
            r["headers"]["ditto-metadata"],
            json!({"description": "RGB"}),
            "{r}"
        );

        // deleting the status property deletes its metadata
        let r = ws
            .request(command(
                ID,
                "delete",
                "/features/lamp/properties/status",
                None,
            ))
            .await;
        assert_eq!(r["status"], 204, "{r}");
        let r = ws.request(get).await;
        assert_eq!(
            r["value"]["_metadata"]["features"]["lamp"]["properties"],
            json!({"color": {"description": "RGB", "b": {"changedBy": "ditto"}}}),
            "{r}"
        );

        // two metadata headers in one command: 400 in Ditto's error shape
        let mut bad = modify(ID, "/attributes/x", json!(1));
        bad["headers"]["put-metadata"] = json!([{"key": "a", "value": 1}]);
        bad["headers"]["delete-metadata"] = "b".into();
        let r = ws.request(bad).await;
        assert_eq!(r["status"], 400, "{r}");
        assert_eq!(r["value"]["error"], "things:metadata.headersconflict");
    });
}

#[test]
fn metadata_headers_over_http() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let put = json!([
            {"key": "/features/lamp/properties/color/description", "value": "RGB"},
            {"key": "/features/lamp/properties/status/description", "value": "Zustand °"},
            {"key": "*/unit", "value": "u"}])
        .to_string()
        .replace('°', "\\u00b0"); // HTTP header values are ASCII
        let r = c
            .put_with(T, &lamp(), &[("put-metadata", put.as_str())])
            .await;
        assert_eq!(r.status, 201, "{}", r.text());

        let r = c
            .get_with(
                T,
                &[(
                    "get-metadata",
                    "features/lamp/properties/color/r,features/lamp/properties/color/description",
                )],
            )
            .await;
        assert_eq!(r.status, 200);
        let md: Value = serde_json::from_str(r.header("ditto-metadata").expect("ditto-metadata"))
            .expect("JSON header");
        assert_eq!(
            md,
            json!({"features": {"lamp": {"properties": {"color": {
                "r": {"unit": "u"}, "description": "RGB"}}}}})
        );
        assert!(c.get(T).await.header("ditto-metadata").is_none());
        // non-ASCII metadata arrives as JSON `\u` escapes in the header
        let p = format!("{T}/features/lamp/properties/status");
        let r = c.get_with(&p, &[("get-metadata", "description")]).await;
        let md: Value = serde_json::from_str(r.header("ditto-metadata").expect("ditto-metadata"))
            .expect("JSON header");
        assert_eq!(md, json!({"description": "Zustand °"}));

        // delete-metadata on a PUT of one property
        let p = format!("{T}/features/lamp/properties/color/r");
        let r = c
            .put_with(&p, &json!(7), &[("delete-metadata", "unit")])
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        let all = c.get(&format!("{T}?fields=_metadata")).await.json();
        let color = &all["_metadata"]["features"]["lamp"]["properties"]["color"];
        assert!(color.get("r").is_none(), "{all}");
        assert_eq!(color["g"], json!({"unit": "u"}));

        // conflicts and inline `_metadata` together with the header
        let r = c
            .get_with(T, &[("get-metadata", "a"), ("delete-metadata", "b")])
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:metadata.headersconflict")
        );
        let body = json!({"_metadata": {"attributes": {"x": {"u": 1}}}, "attributes": {"x": 1}});
        let r = c
            .put_with(
                "/api/2/things/org.eclipse.ditto:other",
                &body,
                &[("put-metadata", r#"[{"key":"/attributes/x/v","value":2}]"#)],
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:metadata.notmodifiable")
        );
        let r = c
            .put_with(T, &lamp(), &[("put-metadata", "not json")])
            .await;
        assert_eq!((r.status, r.error().as_str()), (400, "header.invalid"));
    });
}
