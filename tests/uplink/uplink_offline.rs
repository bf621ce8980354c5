//! Offline first: with the cloud killed, local WS/HTTP keep working and the status says why;
//! 1,000 things changed while offline, with the edge itself kill -9'ed meanwhile, converge
//! within 30 s of the cloud returning with exactly one cloud update per thing; both sides
//! changing the same thing while apart merge per leaf with owners; a proxy that stalls
//! without closing is detected, never blocks local traffic, and the changes go up afterwards.

use crate::common::{block_on, command, Ws};
use crate::uplinkkit::{
    pipeline, revisions, uplink_toml, wait_thing, Cloud, Edge, Proxy, CONVERGE,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn a_killed_cloud_leaves_local_traffic_working_and_the_edge_catches_up() {
    let mut cloud = Cloud::start();
    let edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        edge.http()
            .put("/api/2/things/edge:k1", &json!({"attributes": {"n": 0}}))
            .await;
        edge.wait_synced(CONVERGE).await;
    });
    cloud.kill9();
    block_on(async {
        let s = edge
            .wait_status(CONVERGE, |s| s["connected"] == false)
            .await;
        assert!(s["lastError"]["message"].is_string(), "{s}");
        // local traffic is served while the cloud is away
        let mut ws = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        for n in 1..=20 {
            let r = ws
                .request(command(
                    "edge:k1",
                    "modify",
                    "/attributes/n",
                    Some(json!(n)),
                ))
                .await;
            assert_eq!(r["status"], 204, "{r}");
        }
        let r = edge
            .http()
            .put(
                "/api/2/things/edge:k2",
                &json!({"attributes": {"new": true}}),
            )
            .await;
        assert_eq!(r.status, 201);
        let s = edge.wait_status(CONVERGE, |s| s["pending"] == 2).await;
        assert_eq!(s["connected"], false);
        assert!(
            s["counters"]["connectionErrors"].as_u64().unwrap() >= 1,
            "{s}"
        );
    });
    cloud.start_again();
    block_on(async {
        edge.wait_synced(CONVERGE).await;
        wait_thing(cloud.addr(), "edge:k1", CONVERGE, |t| {
            t["attributes"]["n"] == 20
        })
        .await;
        wait_thing(cloud.addr(), "edge:k2", CONVERGE, |t| {
            t["attributes"]["new"] == true
        })
        .await;
    });
}

const N: usize = 1000;

fn id(i: usize) -> String {
    format!("edge:bulk-{i:04}")
}

#[test]
fn a_thousand_things_changed_offline_across_a_kill_9_converge_with_one_update_each() {
    let mut cloud = Cloud::start();
    let mut edge = Edge::start(&uplink_toml(&cloud.url()), &[]);
    let ids: Vec<String> = (0..N).map(id).collect();
    let before = block_on(async {
        edge.wait_connected().await;
        let mut ws = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        let creates: Vec<Value> = ids
            .iter()
            .map(|t| {
                command(
                    t,
                    "create",
                    "/",
                    Some(json!({"attributes": {"v": 0, "keep": "x"}})),
                )
            })
            .collect();
        pipeline(&mut ws, &creates).await;
        edge.wait_synced(Duration::from_secs(120)).await;
        let before = revisions(cloud.addr(), &ids).await;
        assert_eq!(before.len(), N);
        before
    });
    cloud.kill9();
    // three changes per thing while offline, the edge killed (-9) halfway through
    let change = |round: u64| -> Vec<Value> {
        ids.iter()
            .map(|t| {
                command(
                    t,
                    "merge",
                    "/attributes",
                    Some(json!({"v": round, "r": round})),
                )
            })
            .collect()
    };
    block_on(async {
        edge.wait_status(CONVERGE, |s| s["connected"] == false)
            .await;
        let mut ws = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        pipeline(&mut ws, &change(1)).await;
        pipeline(&mut ws, &change(2)).await;
    });
    edge.kill_and_restart();
    block_on(async {
        let mut ws = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        pipeline(&mut ws, &change(3)).await;
        let s = edge
            .wait_status(CONVERGE, |s| s["scanning"] == false && s["pending"] == N)
            .await;
        assert_eq!(s["connected"], false, "{s}");
    });
    cloud.start_again();
    let back = Instant::now();
    block_on(async {
        let s = edge.wait_synced(CONVERGE).await;
        let took = back.elapsed();
        assert!(took <= CONVERGE, "converged after {took:?}");
        let after = revisions(cloud.addr(), &ids).await;
        for t in &ids {
            assert_eq!(
                after[t],
                before[t] + 1,
                "{t}: exactly one cloud update ({s})"
            );
        }
        for t in [&ids[0], &ids[N / 2], &ids[N - 1]] {
            let c = cloud.http().get(&format!("/api/2/things/{t}")).await.json();
            assert_eq!(c["attributes"], json!({"v": 3, "keep": "x", "r": 3}), "{t}");
        }
    });
}

#[test]
fn both_sides_changing_a_thing_while_apart_merge_per_leaf_with_owners() {
    let cloud = Cloud::start();
    let proxy = Proxy::start(cloud.addr());
    let edge = Edge::start(&uplink_toml(&proxy.url()), &[]);
    let mut t0 = json!({"attributes": {"a": 1, "b": 1},
                    "features": {"lamp": {"properties": {"on": false}, "desiredProperties": {"on": false}}}});
    // the uplink may write the thing locally (cloud changes come down as its subject)
    t0["_policy"] = crate::uplinkkit::policy_with_uplink();
    let before = block_on(async {
        edge.wait_connected().await;
        edge.http().put("/api/2/things/edge:c1", &t0).await;
        edge.wait_synced(CONVERGE).await;
        wait_thing(cloud.addr(), "edge:c1", CONVERGE, |t| {
            t["attributes"]["b"] == 1
        })
        .await;
        crate::uplinkkit::revision(cloud.addr(), "edge:c1")
            .await
            .unwrap()
    });
    proxy.stall();
    block_on(async {
        edge.wait_status(CONVERGE, |s| s["connected"] == false)
            .await;
        // the edge: a (only here), b (both), lamp properties (only here), desired (both)
        let r = edge
            .http()
            .patch("/api/2/things/edge:c1", &json!({"attributes": {"a": 2, "b": 20},
                "features": {"lamp": {"properties": {"on": true}, "desiredProperties": {"on": "edge"}}}}))
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        // the cloud: b (both), c (only there), desired (both)
        let r = cloud
            .http()
            .patch(
                "/api/2/things/edge:c1",
                &json!({"attributes": {"b": 30, "c": 3},
                "features": {"lamp": {"desiredProperties": {"on": true}}}}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
    });
    let cloud_changed = before + 1;
    proxy.resume();
    let want = json!({"a": 2, "b": 20, "c": 3});
    block_on(async {
        edge.wait_synced(CONVERGE).await;
        let c = wait_thing(cloud.addr(), "edge:c1", CONVERGE, |t| {
            t["attributes"] == want
        })
        .await;
        let e = wait_thing(edge.addr(), "edge:c1", CONVERGE, |t| {
            t["attributes"] == want
        })
        .await;
        let lamp = json!({"properties": {"on": true}, "desiredProperties": {"on": true}});
        assert_eq!(c["features"]["lamp"], lamp, "cloud: {c}");
        assert_eq!(e["features"]["lamp"], lamp, "edge: {e}");
        let rev = crate::uplinkkit::revision(cloud.addr(), "edge:c1")
            .await
            .unwrap();
        assert_eq!(rev, cloud_changed + 1, "one merge from the edge");
    });
}

#[test]
fn a_proxy_that_stalls_without_closing_is_detected_and_never_blocks_local_traffic() {
    let cloud = Cloud::start();
    let proxy = Proxy::start(cloud.addr());
    let edge = Edge::start(&uplink_toml(&proxy.url()), &[]);
    block_on(async {
        edge.wait_connected().await;
        edge.http()
            .put("/api/2/things/edge:s1", &json!({"attributes": {"n": 0}}))
            .await;
        edge.wait_synced(CONVERGE).await;
    });
    proxy.stall();
    block_on(async {
        // changes made while the socket hangs: served locally, answered by the edge at once
        let mut ws = Ws::connect(edge.addr(), Some(("ditto", "ditto")))
            .await
            .unwrap();
        for n in 1..=50 {
            let r = ws
                .request(command(
                    "edge:s1",
                    "modify",
                    "/attributes/n",
                    Some(json!(n)),
                ))
                .await;
            assert_eq!(r["status"], 204);
        }
        let s = edge
            .wait_status(CONVERGE, |s| s["connected"] == false)
            .await;
        let msg = s["lastError"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            msg.contains("stalled") || msg.contains("no answer") || msg.contains("timeout"),
            "{s}"
        );
        assert_eq!(s["pending"], 1, "{s}");
        // the stalled session holds no local resource: more local traffic is fine
        let r = edge.http().put("/api/2/things/edge:s2", &json!({})).await;
        assert_eq!(r.status, 201);
    });
    proxy.resume();
    block_on(async {
        edge.wait_synced(CONVERGE).await;
        wait_thing(cloud.addr(), "edge:s1", CONVERGE, |t| {
            t["attributes"]["n"] == 50
        })
        .await;
        wait_thing(cloud.addr(), "edge:s2", CONVERGE, |t| !t.is_null()).await;
    });
}
