//! Bad input and faults: a thing the cloud refuses for good is reported in /status/uplink and
//! not retried until it changes again; a cloud change the local policy refuses is reported
//! (side local); refused credentials, an unresolvable host and a TLS failure are each shown
//! with backoff while local traffic goes on; a thing deleted in the cloud comes back (the edge
//! owns existence).

use crate::common::block_on;
use crate::uplinkkit::{uplink_toml, wait_thing, Cloud, Edge, CONVERGE};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_thing_the_cloud_refuses_is_reported_and_not_retried_until_it_changes() {
    let cloud = Cloud::start();
    block_on(async {
        // in the cloud the edge's user may read this thing but not write it
        let r = cloud
            .http()
            .put(
                "/api/2/things/edge:r1",
                &json!({"attributes": {"owner": "cloud"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let p = json!({"entries": {"READER": {"subjects": {"nginx:ditto": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        let r = cloud.http().put("/api/2/policies/edge:r1", &p).await;
        assert!(r.status == 204 || r.status == 201, "{}", r.text());
    });
    let edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        edge.http()
            .put(
                "/api/2/things/edge:r1",
                &json!({"attributes": {"owner": "edge"}}),
            )
            .await;
        edge.http().put("/api/2/things/edge:ok", &json!({})).await;
        let s = edge.wait_status(CONVERGE, |s| s["refusedCount"] == 1).await;
        let r = &s["refused"][0];
        assert_eq!(
            (r["thingId"].as_str(), r["side"].as_str()),
            (Some("edge:r1"), Some("cloud")),
            "{s}"
        );
        assert_eq!(r["status"], 403, "{s}");
        assert!(
            r["error"].as_str().unwrap().contains("notmodifiable"),
            "{s}"
        );
        wait_thing(cloud.addr(), "edge:ok", CONVERGE, |t| !t.is_null()).await;
        // parked: no more attempts while nothing changes
        let s1 = edge.wait_synced(CONVERGE).await;
        smol::Timer::after(Duration::from_secs(3)).await;
        let s2 = edge.status(None).await;
        for c in ["created", "updated", "retrieved", "stale", "retries"] {
            assert_eq!(
                s1["counters"][c], s2["counters"][c],
                "no retries of a refused thing: {c}"
            );
        }
        assert_eq!(s2["pending"], 0, "{s2}");
        let t = edge.status(Some("edge:r1")).await;
        assert_eq!(
            (
                t["thing"]["dirty"].as_bool(),
                t["thing"]["refused"].as_bool()
            ),
            (Some(true), Some(true)),
            "{t}"
        );
        // a new change is tried again (and refused again)
        edge.http()
            .put("/api/2/things/edge:r1/attributes/n", &json!(1))
            .await;
        edge.wait_status(CONVERGE, |s| {
            s["counters"]["stale"].as_u64() > s2["counters"]["stale"].as_u64()
                || s["counters"]["retrieved"].as_u64() > s2["counters"]["retrieved"].as_u64()
        })
        .await;
        edge.wait_status(CONVERGE, |s| s["refusedCount"] == 1 && s["pending"] == 0)
            .await;
        let c = cloud.http().get("/api/2/things/edge:r1").await.json();
        assert_eq!(
            c["attributes"],
            json!({"owner": "cloud"}),
            "the cloud kept its thing"
        );
    });
}

#[test]
fn a_cloud_change_the_local_policy_refuses_is_reported_as_local() {
    let cloud = Cloud::start();
    let edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        // created by the dev user with the default policy: the uplink subject is not in it
        edge.http()
            .put("/api/2/things/edge:l1", &json!({"attributes": {"a": 1}}))
            .await;
        wait_thing(cloud.addr(), "edge:l1", CONVERGE, |t| !t.is_null()).await;
        edge.wait_synced(CONVERGE).await;
        let r = cloud
            .http()
            .patch(
                "/api/2/things/edge:l1",
                &json!({"features": {"f": {"desiredProperties": {"x": 1}}}}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        let s = edge.wait_status(CONVERGE, |s| s["refusedCount"] == 1).await;
        assert_eq!(s["refused"][0]["side"], "local", "{s}");
        assert_eq!(s["refused"][0]["status"], 403, "{s}");
        assert_eq!(s["lastError"]["kind"], "local", "{s}");
        // the local twin is untouched, the cloud keeps its desired property
        let t = edge.http().get("/api/2/things/edge:l1").await.json();
        assert!(t.get("features").is_none(), "{t}");
        let c = cloud.http().get("/api/2/things/edge:l1").await.json();
        assert_eq!(c["features"]["f"]["desiredProperties"]["x"], 1);
    });
}

#[test]
fn refused_credentials_dns_and_tls_failures_are_reported_while_local_traffic_goes_on() {
    let cloud = Cloud::start();
    let bad_password =
        uplink_toml(&cloud.url()).replace("password = \"ditto\"", "password = \"wrong\"");
    let no_such_host = uplink_toml("ws://no-such-host.invalid:80/ws/2");
    let tls_to_plain = uplink_toml(&format!("wss://127.0.0.1:{}/ws/2", cloud.port));
    for (toml, expect) in [
        (bad_password, "401"),
        (no_such_host, "DNS"),
        (tls_to_plain, "TLS"),
    ] {
        let edge = Edge::start(&toml, &[]);
        block_on(async {
            let s = edge
                .wait_status(CONVERGE, |s| {
                    s["lastError"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(expect))
                })
                .await;
            assert_eq!(s["connected"], false, "{s}");
            assert_eq!(s["lastError"]["kind"], "connection", "{s}");
            let r = edge
                .http()
                .put("/api/2/things/edge:x", &json!({"attributes": {"a": 1}}))
                .await;
            assert_eq!(r.status, 201, "local writes go on ({expect})");
            let s = edge
                .wait_status(CONVERGE, |s| {
                    s["pending"] == 1 && s["nextAttempt"].is_string()
                })
                .await;
            assert!(
                s["counters"]["connectionErrors"].as_u64().unwrap() >= 1,
                "{s}"
            );
        });
    }
}

#[test]
fn a_thing_deleted_in_the_cloud_is_created_again() {
    let cloud = Cloud::start();
    let edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        edge.http()
            .put("/api/2/things/edge:d1", &json!({"attributes": {"a": 1}}))
            .await;
        wait_thing(cloud.addr(), "edge:d1", CONVERGE, |t| !t.is_null()).await;
        edge.wait_synced(CONVERGE).await;
        assert_eq!(
            cloud.http().delete("/api/2/things/edge:d1").await.status,
            204
        );
        let t = wait_thing(cloud.addr(), "edge:d1", CONVERGE, |t| !t.is_null()).await;
        assert_eq!(t["attributes"]["a"], 1);
        assert_eq!(edge.http().get("/api/2/things/edge:d1").await.status, 200);
    });
}
