//! Mirror up: things created, changed (modify, merge) and deleted locally over WS and HTTP
//! appear, change and disappear in the cloud under the same ID, confirmed (pending 0, the
//! record's cloud revision equals the cloud's); the configured cloud policy; the gateway twin
//! with its ConnectionStatus; `/status/uplink` answers as documented.

use crate::common::{block_on, command, Ws};
use crate::uplinkkit::{revision, uplink_toml, wait_thing, Cloud, Edge, CONVERGE};
use serde_json::json;

#[test]
fn things_created_changed_and_deleted_locally_are_mirrored_up() {
    let cloud = Cloud::start();
    let edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        let mut ws = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        // create over WS
        let r = ws
            .request(command(
                "edge:t1",
                "create",
                "/",
                Some(json!({"attributes": {"a": 1, "b": {"c": 2}}})),
            ))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let t = wait_thing(cloud.addr(), "edge:t1", CONVERGE, |t| {
            t["attributes"]["a"] == 1
        })
        .await;
        assert_eq!(t["attributes"]["b"], json!({"c": 2}));
        // modify over WS, merge over HTTP
        ws.request(command(
            "edge:t1",
            "modify",
            "/attributes/a",
            Some(json!(5)),
        ))
        .await;
        let r = edge.http().patch("/api/2/things/edge:t1", &json!({"attributes": {"b": {"c": null, "d": 3}}, "features": {"f": {"properties": {"x": true}}}})).await;
        assert_eq!(r.status, 204, "{}", r.text());
        let t = wait_thing(cloud.addr(), "edge:t1", CONVERGE, |t| {
            t["attributes"]["a"] == 5 && t["features"]["f"]["properties"]["x"] == true
        })
        .await;
        assert_eq!(
            t["attributes"]["b"],
            json!({"d": 3}),
            "merge deletes reach the cloud: {t}"
        );
        // things outside the mirrored namespaces stay local
        let r = edge.http().put("/api/2/things/other:t9", &json!({})).await;
        assert_eq!(r.status, 201);
        // the record holds the cloud's revision once the edge is synced
        let s = edge.wait_synced(CONVERGE).await;
        assert_eq!(s["connected"], true);
        let cloud_rev = revision(cloud.addr(), "edge:t1").await.unwrap();
        let st = edge.status(Some("edge:t1")).await;
        assert_eq!(st["thing"]["cloudRevision"], cloud_rev, "{st}");
        assert_eq!(st["thing"]["dirty"], false);
        assert_eq!(
            st["thing"]["syncedLocalRevision"],
            st["thing"]["localRevision"]
        );
        assert_eq!(cloud.http().get("/api/2/things/other:t9").await.status, 404);
        // delete
        assert_eq!(
            edge.http().delete("/api/2/things/edge:t1").await.status,
            204
        );
        wait_thing(cloud.addr(), "edge:t1", CONVERGE, |t| t.is_null()).await;
        let s = edge.wait_synced(CONVERGE).await;
        assert!(s["counters"]["created"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["counters"]["deleted"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["bytes"]["sent"].as_u64().unwrap() > 0);
        assert_eq!(s["lastError"], serde_json::Value::Null, "{s}");
    });
}

#[test]
fn the_gateway_twin_shows_the_box_online_and_things_get_the_configured_policy() {
    let cloud = Cloud::start();
    block_on(async {
        // the cloud-side policy the edge's things are created with (docs/uplink.md)
        let policy = json!({"entries": {"EDGE": {
            "subjects": {"nginx:ditto": {"type": "edge box"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "message:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        let r = cloud
            .http()
            .put("/api/2/policies/fleet:edge", &policy)
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    });
    let toml = format!("{}policy_id = \"fleet:edge\"\n", uplink_toml(&cloud.url()));
    let mut edge = Edge::start(&toml, &[]);
    block_on(async {
        edge.wait_connected().await;
        let gw = wait_thing(cloud.addr(), "edge:gateway", CONVERGE, |t| !t.is_null()).await;
        let status = &gw["features"]["ConnectionStatus"];
        assert_eq!(
            status["definition"][0],
            "org.eclipse.ditto:ConnectionStatus:1.0.0"
        );
        let until = status["properties"]["status"]["readyUntil"]
            .as_str()
            .unwrap()
            .to_owned();
        let since = status["properties"]["status"]["readySince"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(until > since, "{gw}");
        assert_eq!(gw["policyId"], "fleet:edge");
        edge.http()
            .put("/api/2/things/edge:p1", &json!({"attributes": {"x": 1}}))
            .await;
        let t = wait_thing(cloud.addr(), "edge:p1", CONVERGE, |t| !t.is_null()).await;
        assert_eq!(t["policyId"], "fleet:edge", "{t}");
        let s = edge.status(None).await;
        assert_eq!(s["gatewayId"], "edge:gateway");
        assert_eq!(s["url"], cloud.url());
        // health names the uplink state
        let h = edge.http().get("/status/health").await.json();
        assert_eq!(h["uplink"], "connected");
    });
    // a clean shutdown tells the cloud the box is gone: readyUntil is now
    let before_stop = edgetwin::clock::format_millis(edgetwin::clock::now_millis() + 5000);
    assert!(edge.server.terminate().success());
    block_on(async {
        let gw = wait_thing(cloud.addr(), "edge:gateway", CONVERGE, |t| {
            t["features"]["ConnectionStatus"]["properties"]["status"]["readyUntil"]
                .as_str()
                .is_some_and(|u| u < before_stop.as_str())
        })
        .await;
        assert!(
            gw["features"]["ConnectionStatus"]["properties"]["status"]["readySince"].is_string()
        );
    });
}
