//! The search protocol over a real WebSocket (search.md section 4): `subscribe` -> `created`,
//! `request(n)` -> at most n `next` pages, `complete` after the last page, lazy failures of
//! invalid filters/options, rule 3.9 on demand <= 0, unknown IDs, cancel, zombies, the idle
//! timeout, the per-session bound, and errors on `_/_/things/search/errors` for input that is
//! no search command.
//!
//! "Nothing else was sent" is checked with a sentinel: a second `subscribe` right after; its
//! `created` must be the next frame (frames of one session are delivered in order).

use crate::authkit;
use crate::common;
use common::*;
use serde_json::{json, Value};

const T: &str = "_/_/things/twin/search/";

fn subscribe(cid: &str, value: Value) -> Value {
    json!({"topic": format!("{T}subscribe"), "path": "/", "headers": {"correlation-id": cid},
           "value": value})
}

fn request(cid: &str, id: &Value, demand: i64) -> Value {
    json!({"topic": format!("{T}request"), "path": "/", "headers": {"correlation-id": cid},
           "value": {"subscriptionId": id, "demand": demand}})
}

fn cancel(cid: &str, id: &Value) -> Value {
    json!({"topic": format!("{T}cancel"), "path": "/", "headers": {"correlation-id": cid},
           "value": {"subscriptionId": id}})
}

/// Subscribes and returns the subscription ID from `created` (checking topic and cid).
async fn created(ws: &mut Ws, cid: &str, value: Value) -> Value {
    ws.send(&subscribe(cid, value)).await;
    let c = ws.recv().await;
    assert_eq!(c["topic"], format!("{T}created"), "{c}");
    assert_eq!(c["headers"]["correlation-id"], cid);
    assert_eq!(c["headers"]["content-type"], "application/json");
    let id = c["value"]["subscriptionId"].clone();
    assert!(id.as_str().is_some_and(|s| !s.is_empty()), "{c}");
    id
}

/// The sentinel: the next frame is the `created` of a fresh subscription.
async fn nothing_else(ws: &mut Ws, what: &str) {
    ws.send(&subscribe(
        "sentinel",
        json!({"filter": "eq(thingId,'none:none')"}),
    ))
    .await;
    let f = ws.recv().await;
    assert_eq!(
        (f["topic"].as_str(), f["headers"]["correlation-id"].as_str()),
        (Some(&*format!("{T}created")), Some("sentinel")),
        "{what}: unexpected frame {f}"
    );
    // close it again, so it does not count against the session bound
    let id = f["value"]["subscriptionId"].clone();
    ws.send(&cancel("sentinel-cancel", &id)).await;
}

fn item_ids(f: &Value) -> Vec<&str> {
    f["value"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{f}"))
        .iter()
        .map(|t| t["thingId"].as_str().unwrap_or("?"))
        .collect()
}

async fn load(ws: &mut Ws) {
    for i in 1..=5 {
        let r = ws
            .request(command(
                &format!("ws.s:t{i}"),
                "create",
                "/",
                Some(json!({"attributes": {"n": i, "even": i % 2 == 0}})),
            ))
            .await;
        assert_eq!(r["status"], 201);
    }
    let r = ws
        .request(command(
            "other:t9",
            "create",
            "/",
            Some(json!({"attributes": {"n": 9}})),
        ))
        .await;
    assert_eq!(r["status"], 201);
}

#[test]
fn pages_on_demand_then_complete() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        load(&mut ws).await;
        let id = created(
            &mut ws,
            "sub-1",
            json!({"filter": "gt(attributes/n,1)",
            "options": "size(2),sort(-attributes/n)", "namespaces": ["ws.s"]}),
        )
        .await;
        nothing_else(&mut ws, "no page before a request").await;

        ws.send(&request("req-1", &id, 1)).await;
        let f = ws.recv().await;
        assert_eq!(f["topic"], format!("{T}next"), "{f}");
        assert_eq!(f["headers"]["correlation-id"], "req-1");
        assert_eq!(f["value"]["subscriptionId"], id);
        assert_eq!(item_ids(&f), ["ws.s:t5", "ws.s:t4"]);
        assert_eq!(
            f["value"]["items"][0],
            json!({"thingId": "ws.s:t5", "policyId": "ws.s:t5",
            "attributes": {"n": 5, "even": false}})
        );
        nothing_else(&mut ws, "demand 1 = one page").await;

        ws.send(&request("req-2", &id, 5)).await;
        let f = ws.recv().await;
        assert_eq!(
            (f["topic"].as_str(), item_ids(&f)),
            (Some(&*format!("{T}next")), vec!["ws.s:t3", "ws.s:t2"])
        );
        let f = ws.recv().await;
        assert_eq!(
            f["topic"],
            format!("{T}complete"),
            "last page was full: complete, no empty next"
        );
        assert_eq!(f["value"], json!({"subscriptionId": id}));
        assert_eq!(f["headers"]["correlation-id"], "req-2");
        nothing_else(&mut ws, "nothing after complete").await;

        // a request to the completed subscription: protocol error (Ditto's zombie)
        ws.send(&request("req-3", &id, 1)).await;
        let f = ws.recv().await;
        assert_eq!(f["topic"], format!("{T}failed"));
        assert_eq!(
            f["value"]["error"]["error"],
            "thing-search:subscription.protocol.error"
        );

        // fields, and an empty result completes on the first request without a next
        let id = created(
            &mut ws,
            "sub-2",
            json!({"filter": "eq(attributes/even,true)"}),
        )
        .await;
        ws.send(&request("req-4", &id, 1)).await;
        let f = ws.recv().await;
        assert_eq!(item_ids(&f), ["ws.s:t2", "ws.s:t4"]);
        let f = ws.recv().await;
        assert_eq!(f["topic"], format!("{T}complete"));
        let mut sub = subscribe("sub-3", json!({"filter": "eq(attributes/n,42)"}));
        sub["fields"] = json!("thingId");
        ws.send(&sub).await;
        let id = ws.recv().await["value"]["subscriptionId"].clone();
        ws.send(&request("req-5", &id, 3)).await;
        let f = ws.recv().await;
        assert_eq!(f["topic"], format!("{T}complete"), "{f}");
        let mut sub = subscribe("sub-4", json!({"filter": "eq(attributes/n,3)"}));
        sub["fields"] = json!("thingId");
        ws.send(&sub).await;
        let id = ws.recv().await["value"]["subscriptionId"].clone();
        ws.send(&request("req-6", &id, 3)).await;
        assert_eq!(
            ws.recv().await["value"]["items"],
            json!([{"thingId": "ws.s:t3"}])
        );
    });
}

#[test]
fn failures_unknown_ids_cancel_and_bad_input() {
    let srv = Server::start();
    block_on(async {
        let mut ws = srv.ws().await;
        load(&mut ws).await;
        // invalid filter / options: created, then failed on the first request
        for (value, code) in [
            (
                json!({"filter": "eq(attributes/n"}),
                "rql.expression.invalid",
            ),
            (
                json!({"filter": "eq(topic:action,'x')"}),
                "rql.expression.invalid",
            ),
            (
                json!({"options": "size(500)"}),
                "thing-search:search.option.invalid",
            ),
            (
                json!({"options": "cursor(abc)"}),
                "thing-search:search.option.invalid",
            ),
            (
                json!({"options": "limit(0,1)"}),
                "thing-search:search.option.invalid",
            ),
            (
                json!({"namespaces": ["1bad"]}),
                "thing-search:search.namespaces.invalid",
            ),
        ] {
            let id = created(&mut ws, "bad", value.clone()).await;
            nothing_else(&mut ws, "no failure before the first request").await;
            ws.send(&request("bad-req", &id, 1)).await;
            let f = ws.recv().await;
            assert_eq!(f["topic"], format!("{T}failed"), "{value}: {f}");
            assert_eq!(f["value"]["subscriptionId"], id);
            assert_eq!(f["value"]["error"]["error"], code, "{value}");
            assert_eq!(f["headers"]["correlation-id"], "bad-req");
        }

        // demand <= 0: rule 3.9
        let id = created(&mut ws, "z", json!({})).await;
        ws.send(&request("zero", &id, 0)).await;
        let f = ws.recv().await;
        assert_eq!(f["topic"], format!("{T}failed"));
        let e = &f["value"]["error"];
        assert_eq!(
            (e["status"].as_u64(), e["error"].as_str()),
            (Some(400), Some("thing-search:subscription.protocol.error"))
        );
        assert!(
            e["message"].as_str().unwrap().starts_with("Rule 3.9"),
            "{e}"
        );

        // unknown IDs
        for msg in [
            request("u1", &json!("nope"), 1),
            cancel("u2", &json!("nope")),
        ] {
            ws.send(&msg).await;
            let f = ws.recv().await;
            assert_eq!(f["topic"], format!("{T}failed"));
            assert_eq!(f["value"]["subscriptionId"], "nope");
            assert_eq!(
                f["value"]["error"]["error"],
                "thing-search:subscription.not.found"
            );
            assert_eq!(f["value"]["error"]["status"], 404);
        }

        // cancel: silence afterwards, then requests fail as for an ended subscription
        let id = created(&mut ws, "c", json!({"options": "size(1)"})).await;
        ws.send(&request("c1", &id, 1)).await;
        assert_eq!(item_ids(&ws.recv().await), ["other:t9"]);
        ws.send(&cancel("c2", &id)).await;
        nothing_else(&mut ws, "no reply to cancel").await;
        ws.send(&request("c3", &id, 1)).await;
        let f = ws.recv().await;
        assert_eq!(
            f["value"]["error"]["error"], "thing-search:subscription.protocol.error",
            "{f}"
        );

        // not a search command at all: an error on _/_/things/search/errors
        for (value, code) in [
            (json!({"options": 5}), "thing-search:search.option.invalid"),
            (json!([1]), "json.format.invalid"),
        ] {
            ws.send(&subscribe("unparsable", value)).await;
            let f = ws.recv().await;
            assert_eq!(f["topic"], "_/_/things/search/errors", "{f}");
            assert_eq!(f["value"]["error"], code);
            assert_eq!(f["headers"]["correlation-id"], "unparsable");
        }
        ws.send(&json!({"topic": format!("{T}request"), "path": "/", "headers": {"correlation-id": "nr"},
            "value": {"demand": 1}})).await;
        let f = ws.recv().await;
        assert_eq!(
            (f["topic"].as_str(), f["value"]["error"].as_str()),
            (Some("_/_/things/search/errors"), Some("json.field.missing"))
        );
    });
}

#[test]
fn idle_timeout_and_session_bound_from_config() {
    let env = authkit::start(
        &["u"],
        "[search]\nsubscription_idle_timeout_secs = 1\nmax_subscriptions_per_session = 2\n",
    );
    block_on(async {
        let mut ws = Ws::connect_with(
            env.srv.addr,
            "/ws/2",
            &[("authorization", authkit::user("u"))],
        )
        .await
        .expect("ws");
        let a = created(&mut ws, "a", json!({})).await;
        let b = created(&mut ws, "b", json!({})).await;
        ws.send(&subscribe("c", json!({}))).await;
        let f = ws.recv().await;
        assert_eq!(
            f["topic"], "_/_/things/search/errors",
            "third subscription refused: {f}"
        );
        assert_eq!(
            f["value"]["error"],
            "thing-search:subscription.protocol.error"
        );
        assert_eq!(f["headers"]["correlation-id"], "c");
        // without a request both time out
        let mut timed_out = Vec::new();
        for _ in 0..2 {
            let f = ws.recv().await;
            assert_eq!(f["topic"], format!("{T}failed"), "{f}");
            assert_eq!(
                f["value"]["error"]["error"],
                "thing-search:subscription.timeout"
            );
            assert_eq!(f["value"]["error"]["status"], 408);
            timed_out.push(f["value"]["subscriptionId"].clone());
        }
        timed_out.sort_by_key(|v| v.to_string());
        let mut want = vec![a, b];
        want.sort_by_key(|v| v.to_string());
        assert_eq!(timed_out, want);
        // ended subscriptions free their slots
        created(&mut ws, "d", json!({})).await;
    });
}
