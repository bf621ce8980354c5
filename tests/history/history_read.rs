//! READ filtering of history: a past state and persisted events show only what the requester
//! may READ *now* (under the thing's current policy), whatever they could read then.

use crate::authkit::{start, user};
use crate::common::http::Http;
use crate::get_at;
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "read:one";

fn as_user(addr: std::net::SocketAddr, name: &str) -> Http {
    Http {
        addr,
        auth: Some(user(name)),
    }
}

fn policy(bob: &str) -> Value {
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    json!({"entries": {
        "owner": {"subjects": {"nginx:alice": {"type": "t"}},
                  "resources": {"thing:/": rw, "policy:/": rw}},
        "reader": {"subjects": {"nginx:bob": {"type": "t"}},
                   "resources": {bob: {"grant": ["READ"], "revoke": []}}}
    }})
}

async fn events(h: &Http) -> Vec<Value> {
    let mut sse = h
        .sse(&format!(
            "/api/2/things/{T}?from-historical-revision=0&fields=thingId,attributes,_revision"
        ))
        .await
        .unwrap_or_else(|r| panic!("{} {}", r.status, r.text()));
    let mut out = Vec::new();
    while let Some(v) = sse.next_json(Duration::from_secs(5)).await {
        out.push(v);
    }
    out
}

#[test]
fn history_shows_only_what_the_requester_may_read_now() {
    let env = start(&["alice", "bob"], "");
    smol::block_on(async {
        let alice = as_user(env.srv.addr, "alice");
        let bob = as_user(env.srv.addr, "bob");
        let body = json!({"_policy": policy("thing:/"), "attributes": {"public": 1, "secret": 1}});
        assert_eq!(
            alice.put(&format!("/api/2/things/{T}"), &body).await.status,
            201
        ); // rev 1
        let put = |p: &'static str, v: i64| {
            let alice = alice.clone();
            async move {
                let r = alice.put(&format!("/api/2/things/{T}{p}"), &json!(v)).await;
                assert_eq!(r.status, 204);
            }
        };
        put("/attributes/secret", 2).await; // rev 2
        put("/attributes/public", 2).await; // rev 3
                                            // then bob could read everything
        let (s, v) = get_at(&bob, T, "/attributes", &[("at-historical-revision", "1")]).await;
        assert_eq!((s, v), (200, json!({"public": 1, "secret": 1})));
        // now bob may read only the public attribute
        let mut p = policy("thing:/attributes/public");
        p["policyId"] = json!(T);
        assert_eq!(
            alice.put(&format!("/api/2/policies/{T}"), &p).await.status,
            204
        );
        let (s, v) = get_at(&bob, T, "", &[("at-historical-revision", "1")]).await;
        assert_eq!(s, 200);
        assert_eq!(v["attributes"], json!({"public": 1}), "{v}");
        let (s, _) = get_at(
            &bob,
            T,
            "/attributes/secret",
            &[("at-historical-revision", "1")],
        )
        .await;
        assert_ne!(s, 200);
        let seen = events(&bob).await;
        let revs: Vec<u64> = seen
            .iter()
            .map(|v| v["_revision"].as_u64().unwrap())
            .collect();
        assert_eq!(
            revs,
            vec![1, 3],
            "the change of the secret is not shown: {seen:?}"
        );
        assert!(
            !Value::Array(seen.clone()).to_string().contains("secret"),
            "{seen:?}"
        );
        assert_eq!(seen[0]["attributes"], json!({"public": 1}));
        // alice still sees all of it
        let revs: Vec<u64> = events(&alice)
            .await
            .iter()
            .map(|v| v["_revision"].as_u64().unwrap())
            .collect();
        assert_eq!(revs, vec![1, 2, 3]);
        // without READ now: nothing
        let mut p = policy("thing:/attributes/public");
        p["entries"].as_object_mut().unwrap().remove("reader");
        assert_eq!(
            alice.put(&format!("/api/2/policies/{T}"), &p).await.status,
            204
        );
        let (s, _) = get_at(&bob, T, "", &[("at-historical-revision", "1")]).await;
        assert_eq!(s, 404);
        let r = bob
            .sse(&format!("/api/2/things/{T}?from-historical-revision=0"))
            .await;
        assert_eq!(r.err().map(|r| r.status), Some(404));
        // the policy's own history is READ-checked now too
        let r = bob
            .get_with(
                &format!("/api/2/policies/{T}"),
                &[("at-historical-revision", "1")],
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
    });
}
