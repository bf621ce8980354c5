//! Twin commands over a real WebSocket against the real binary: every path and action,
//! statuses and error codes, retrieve-multiple, fields, conditional headers, response-required.

use crate::common;
use common::*;
use serde_json::{json, Value};

fn status(v: &Value) -> u64 {
    v["status"].as_u64().unwrap_or(0)
}

#[test]
fn crud_on_every_path() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        let t = "org.eclipse.ditto:fancy-thing";
        let r = ws
            .request(command(
                t,
                "create",
                "/",
                Some(json!({"attributes": {"location": {"latitude": 44.67}}})),
            ))
            .await;
        assert_eq!(status(&r), 201, "{r}");
        assert_eq!(
            r["topic"],
            "org.eclipse.ditto/fancy-thing/things/twin/commands/create"
        );
        assert_eq!(r["value"]["policyId"], t);
        assert_eq!(r["headers"]["etag"], "\"rev:1\"");
        let again = ws.request(command(t, "create", "/", Some(json!({})))).await;
        assert_eq!(
            (status(&again), again["value"]["error"].as_str()),
            (409, Some("things:thing.conflict"))
        );
        assert_eq!(
            again["topic"],
            "org.eclipse.ditto/fancy-thing/things/twin/errors"
        );

        // (path, value written, value for the second write)
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "/definition",
                json!("org.eclipse.ditto:HeatingDevice:2.1.0"),
                json!("org.eclipse.ditto:HeatingDevice:2.2.0"),
            ),
            ("/attributes/manufacturer", json!("ACME"), json!("Bosch")),
            (
                "/features/lamp",
                json!({"properties": {"on": false}}),
                json!({"properties": {"on": true}}),
            ),
            (
                "/features/lamp/definition",
                json!(["org.eclipse.ditto:lamp:1.0.0"]),
                json!(["org.eclipse.ditto:lamp:1.1.0"]),
            ),
            ("/features/lamp/properties/color/r", json!(255), json!(128)),
            (
                "/features/lamp/desiredProperties",
                json!({"on": true}),
                json!({"on": false}),
            ),
            (
                "/features/lamp/desiredProperties/brightness",
                json!(10),
                json!(20),
            ),
        ];
        for (path, v1, v2) in &cases {
            let r = ws.request(modify(t, path, v1.clone())).await;
            assert_eq!(status(&r), 201, "create {path}: {r}");
            assert_eq!(&r["value"], v1, "{path}");
            let r = ws.request(modify(t, path, v2.clone())).await;
            assert_eq!(status(&r), 204, "modify {path}: {r}");
            assert!(r.get("value").is_none());
            let r = ws.request(command(t, "retrieve", path, None)).await;
            assert_eq!((status(&r), &r["value"]), (200, v2), "retrieve {path}");
            assert!(r["headers"]["etag"]
                .as_str()
                .unwrap()
                .starts_with("\"hash:"));
        }
        let r = ws.request(command(t, "retrieve", "/policyId", None)).await;
        assert_eq!(r["value"], t);
        let r = ws.request(command(t, "retrieve", "/", None)).await;
        assert_eq!(
            r["value"]["features"]["lamp"]["properties"]["color"]["r"],
            128
        );
        assert_eq!(
            r["headers"]["etag"],
            format!("\"rev:{}\"", 1 + 2 * cases.len())
        );
        let r = ws
            .request(command(t, "modify", "/attributes", Some(json!({"a": 1}))))
            .await;
        assert_eq!(status(&r), 204);
        let r = ws
            .request(command(t, "modify", "/features", Some(json!({"f": {}}))))
            .await;
        assert_eq!(status(&r), 204);

        // deletes on every deletable path, then 404 with the right code
        let deletes = [
            ("/features/f", "things:feature.notfound"),
            ("/attributes/a", "things:attribute.notfound"),
            ("/attributes", "things:attributes.notfound"),
            ("/definition", "things:definition.notfound"),
            ("/features", "things:features.notfound"),
        ];
        ws.request(modify(
            t,
            "/features/lamp",
            json!({"definition": ["a:b:1"], "properties": {"p": 1}, "desiredProperties": {"d": 1}}),
        ))
        .await;
        for (path, code) in [
            (
                "/features/lamp/properties/p",
                "things:feature.property.notfound",
            ),
            (
                "/features/lamp/desiredProperties/d",
                "things:feature.desiredProperty.notfound",
            ),
            (
                "/features/lamp/properties",
                "things:feature.properties.notfound",
            ),
            (
                "/features/lamp/desiredProperties",
                "things:feature.desiredProperties.notfound",
            ),
            (
                "/features/lamp/definition",
                "things:feature.definition.notfound",
            ),
        ]
        .into_iter()
        .chain(deletes)
        {
            if path == "/features/f" {
                ws.request(modify(t, "/features/f", json!({}))).await;
            }
            let r = ws.request(command(t, "delete", path, None)).await;
            assert_eq!(status(&r), 204, "delete {path}: {r}");
            let r = ws.request(command(t, "retrieve", path, None)).await;
            assert_eq!(
                (status(&r), r["value"]["error"].as_str()),
                (404, Some(code)),
                "after delete {path}: {r}"
            );
        }
        let r = ws.request(command(t, "delete", "/", None)).await;
        assert_eq!(status(&r), 204);
        let r = ws.request(command(t, "retrieve", "/", None)).await;
        assert_eq!(r["value"]["error"], "things:thing.notfound");
    });
}

#[test]
fn merge_retrieve_multiple_and_fields() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        for i in 1..=3 {
            let id = format!("ns:m{i}");
            let r = ws
                .request(command(
                    &id,
                    "merge",
                    "/",
                    Some(json!({"attributes": {"i": i, "drop": null}})),
                ))
                .await;
            assert_eq!(status(&r), 201, "merge creates: {r}");
        }
        let r = ws
            .request(command(
                "ns:m1",
                "merge",
                "/attributes",
                Some(json!({"i": null, "j": {"k": 1}})),
            ))
            .await;
        assert_eq!(status(&r), 204);
        let r = ws
            .request(command("ns:m1", "retrieve", "/attributes", None))
            .await;
        assert_eq!(r["value"], json!({"j": {"k": 1}}));
        let mut no_ct = command("ns:m1", "merge", "/attributes", Some(json!({})));
        no_ct["headers"] = json!({});
        let r = ws.request(no_ct).await;
        assert_eq!(
            (status(&r), r["value"]["error"].as_str()),
            (415, Some("mediatype.unsupported"))
        );

        let multi = json!({"topic": "_/_/things/twin/commands/retrieve", "headers": {}, "path": "/",
            "value": {"thingIds": ["ns:m3", "ns:missing", "ns:m2"]}, "fields": "thingId,attributes/i"});
        let r = ws.request(multi).await;
        assert_eq!(status(&r), 200);
        assert_eq!(
            r["value"],
            json!([{"thingId": "ns:m3", "attributes": {"i": 3}}, {"thingId": "ns:m2", "attributes": {"i": 2}}])
        );
        let r = ws.request(json!({"topic": "_/_/things/twin/commands/retrieve", "headers": {}, "path": "/", "value": {}})).await;
        assert_eq!(r["value"]["error"], "things:things.ids.missing");

        let mut get = command("ns:m2", "retrieve", "/", None);
        get["fields"] = json!("thingId,_revision,_modified,_created,_namespace");
        let r = ws.request(get).await;
        assert_eq!(r["value"]["_revision"], 1);
        assert_eq!(r["value"]["_namespace"], "ns");
        assert!(r["value"]["_modified"].as_str().unwrap().ends_with('Z'));
    });
}

#[test]
fn conditional_headers_and_response_required() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        let t = "ns:c";
        ws.request(command(
            t,
            "create",
            "/",
            Some(json!({"attributes": {"n": 1}})),
        ))
        .await;
        let mut c = modify(t, "/attributes/n", json!(2));
        c["headers"]["if-match"] = json!("\"rev:9\"");
        let r = ws.request(c.clone()).await;
        assert_eq!(
            (status(&r), r["value"]["error"].as_str()),
            (412, Some("things:precondition.failed"))
        );
        // sub-resources carry hash ETags: use the one a retrieve returned
        let etag = ws
            .request(command(t, "retrieve", "/attributes/n", None))
            .await["headers"]["etag"]
            .clone();
        assert!(etag.as_str().unwrap().starts_with("\"hash:"));
        c["headers"]["if-match"] = json!("\"rev:1\"");
        assert_eq!(
            status(&ws.request(c.clone()).await),
            412,
            "a rev tag never matches a sub-resource"
        );
        c["headers"]["if-match"] = etag;
        assert_eq!(status(&ws.request(c).await), 204);
        let mut g = command(t, "retrieve", "/", None);
        g["headers"]["if-none-match"] = json!("\"rev:2\"");
        let r = ws.request(g).await;
        assert_eq!(
            (status(&r), r["value"]["error"].as_str()),
            (304, Some("things:precondition.notmodified"))
        );
        let mut c = modify(t, "/attributes/n", json!(2));
        c["headers"]["if-equal"] = json!("skip");
        assert_eq!(status(&ws.request(c).await), 412);
        let mut c = modify(t, "/attributes/n", json!(3));
        c["headers"]["condition"] = json!("gt(attributes/n,5)");
        assert_eq!(
            ws.request(c.clone()).await["value"]["error"],
            "things:condition.failed"
        );
        c["headers"]["condition"] = json!("lt(attributes/n,5)");
        assert_eq!(status(&ws.request(c.clone()).await), 204);
        c["headers"]["condition"] = json!("lt(attributes/n,");
        assert_eq!(
            ws.request(c).await["value"]["error"],
            "things:condition.invalid"
        );

        // response-required false: no answer, but the change happens
        let mut c = modify(t, "/attributes/quiet", json!(true));
        c["headers"] = json!({"correlation-id": "quiet-1", "response-required": false});
        ws.send(&c).await;
        let mut g = command(t, "retrieve", "/attributes/quiet", None);
        g["headers"]["correlation-id"] = json!("after-quiet");
        ws.send(&g).await;
        let r = ws.recv().await;
        assert_eq!(
            r["headers"]["correlation-id"], "after-quiet",
            "nothing may answer quiet-1: {r}"
        );
        assert_eq!(r["value"], true);
        let mut bad = modify(t, "/attributes/x", json!(1));
        bad["headers"] = json!({"correlation-id": "quiet-2", "response-required": false, "requested-acks": ["twin-persisted"]});
        let r = ws.request(bad).await;
        assert_eq!(
            (status(&r), r["value"]["error"].as_str()),
            (400, Some("header.invalid"))
        );
    });
}

#[test]
fn correlation_id_generated_when_missing() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        ws.send(&json!({"topic": "ns/g/things/twin/commands/create", "path": "/", "value": {}}))
            .await;
        let r = ws.recv().await;
        assert_eq!(status(&r), 201);
        assert_eq!(
            r["headers"]["correlation-id"].as_str().map(str::len),
            Some(36)
        );
    });
}
