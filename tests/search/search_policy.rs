//! Search results obey policies, over real sockets with configured users:
//!
//! | thing           | alice                       | bob                                  |
//! |-----------------|-----------------------------|--------------------------------------|
//! | `ns.p:shared`   | READ+WRITE on `thing:/`     | READ on `thing:/attributes/public`   |
//! | `ns.p:private`  | READ+WRITE on `thing:/`     | -                                    |
//! | `ns.p:bobs`     | -                           | READ+WRITE (default policy)          |
//!
//! A subject finds only what it may READ, sees only the readable fields, counts only readable
//! things, and filters (and sorts) on fields it cannot read reveal nothing: they are evaluated
//! against its READ view. `carol` (in no policy) finds nothing.

use crate::authkit;
use crate::common;
use authkit::{start, user};
use common::http::Http;
use common::{block_on, Ws};
use serde_json::{json, Value};

fn client(env: &authkit::Env, who: &str) -> Http {
    Http {
        addr: env.srv.addr,
        auth: Some(user(who)),
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| t["thingId"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn search(c: &Http, q: &str) -> Value {
    let r = c.get(&format!("/api/2/search/things?{q}")).await;
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    r.json()
}

async fn count(c: &Http, q: &str) -> String {
    c.get(&format!("/api/2/search/things/count?{q}"))
        .await
        .text()
}

#[test]
fn two_subjects_see_find_and_count_only_what_they_may_read() {
    let env = start(&["alice", "bob", "carol"], "");
    let (alice, bob, carol) = (
        client(&env, "alice"),
        client(&env, "bob"),
        client(&env, "carol"),
    );
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let shared_policy = json!({"entries": {
        "alice": {"subjects": {"nginx:alice": {"type": "t"}},
                  "resources": {"thing:/": rw, "policy:/": rw}},
        "bob": {"subjects": {"nginx:bob": {"type": "t"}},
                "resources": {"thing:/attributes/public": {"grant": ["READ"], "revoke": []}}}}});
    block_on(async {
        let attrs = json!({"public": "yes", "secret": 42});
        let r = alice
            .put(
                "/api/2/things/ns.p:shared",
                &json!({"_policy": shared_policy, "attributes": attrs,
                "features": {"f": {"properties": {"x": 1}}}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = alice
            .put("/api/2/things/ns.p:private", &json!({"attributes": attrs}))
            .await;
        assert_eq!(r.status, 201);
        let r = bob
            .put(
                "/api/2/things/ns.p:bobs",
                &json!({"attributes": {"public": "no", "secret": 7}}),
            )
            .await;
        assert_eq!(r.status, 201);

        assert_eq!(
            ids(&search(&alice, "").await),
            ["ns.p:private", "ns.p:shared"]
        );
        assert_eq!(ids(&search(&bob, "").await), ["ns.p:bobs", "ns.p:shared"]);
        assert_eq!(ids(&search(&carol, "").await), Vec::<String>::new());
        assert_eq!(
            search(&bob, "filter=eq(attributes/public,%22yes%22)").await["items"],
            json!([{"thingId": "ns.p:shared", "attributes": {"public": "yes"}}]),
            "only the readable part"
        );
        assert_eq!(
            search(
                &bob,
                "filter=eq(thingId,%22ns.p:shared%22)&fields=thingId,policyId,attributes,features"
            )
            .await["items"],
            json!([{"thingId": "ns.p:shared", "attributes": {"public": "yes"}}])
        );

        // filters on unreadable fields reveal nothing
        let secret = "filter=eq(attributes/secret,42)";
        assert_eq!(
            ids(&search(&alice, secret).await),
            ["ns.p:private", "ns.p:shared"]
        );
        assert_eq!(ids(&search(&bob, secret).await), Vec::<String>::new());
        assert_eq!(
            ids(&search(&bob, "filter=exists(attributes/secret)").await),
            ["ns.p:bobs"]
        );
        assert_eq!(
            ids(&search(&bob, "filter=ne(attributes/secret,1)").await),
            ["ns.p:bobs"]
        );
        assert_eq!(
            ids(&search(&bob, "filter=gt(attributes/secret,0)").await),
            ["ns.p:bobs"]
        );
        assert_eq!(
            ids(&search(&bob, "filter=exists(features/f)").await),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&search(&bob, "filter=not(exists(attributes/secret))").await),
            ["ns.p:shared"],
            "for bob, shared has no secret"
        );
        // sorting on an unreadable field: bob's view of shared has no value (sorts first)
        assert_eq!(
            ids(&search(&bob, "option=sort(-attributes/secret)").await),
            ["ns.p:bobs", "ns.p:shared"]
        );
        assert_eq!(
            ids(&search(&alice, "option=sort(%2Battributes/secret,-thingId)").await),
            ["ns.p:shared", "ns.p:private"]
        );

        assert_eq!(count(&alice, secret).await, "2");
        assert_eq!(count(&bob, secret).await, "0");
        assert_eq!(count(&bob, "").await, "2");
        assert_eq!(count(&carol, "").await, "0");

        // the WebSocket search protocol uses the same rules
        let mut ws = Ws::connect_with(env.srv.addr, "/ws/2", &[("authorization", user("bob"))])
            .await
            .expect("ws");
        let created = ws
            .request(json!({"topic": "_/_/things/twin/search/subscribe", "path": "/",
                "headers": {"correlation-id": "s1"}, "value": {"filter": "exists(attributes/public)"}}))
            .await;
        let sid = created["value"]["subscriptionId"].clone();
        ws.send(
            &json!({"topic": "_/_/things/twin/search/request", "path": "/",
            "headers": {"correlation-id": "r1"}, "value": {"subscriptionId": sid, "demand": 1}}),
        )
        .await;
        let next = ws.recv().await;
        assert_eq!(next["topic"], "_/_/things/twin/search/next");
        assert_eq!(
            next["value"]["items"],
            json!([{"thingId": "ns.p:bobs", "policyId": "ns.p:bobs", "attributes": {"public": "no", "secret": 7}},
                   {"thingId": "ns.p:shared", "attributes": {"public": "yes"}}])
        );
    });
}
