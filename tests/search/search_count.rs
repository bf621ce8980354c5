//! Counts (which the server may decide from its index: `search::access`, `search::counted`)
//! equal the number of things all result pages of the same query hold, for subjects with full
//! READ, partial READ, a revoked path and none; after a policy modify, a thing's policyId
//! change, a policy delete and a restart. Real binary, real sockets, temp data dir.

use crate::authkit;
use crate::common;
use authkit::{start, user};
use common::http::Http;
use common::{block_on, Server};
use serde_json::{json, Value};

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const FILTERS: [&str; 5] = [
    "eq(attributes/room,%22r1%22)",
    "ge(attributes/n,2)",
    "eq(attributes/secret,10)",
    "ne(attributes/room,%22r0%22)",
    "and(eq(attributes/room,%22r1%22),gt(attributes/n,0))",
];

fn client(srv: &Server, who: &str) -> Http {
    Http {
        addr: srv.addr,
        auth: Some(user(who)),
    }
}

async fn count(c: &Http, filter: &str) -> u64 {
    let r = c
        .get(&format!("/api/2/search/things/count?filter={filter}"))
        .await;
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    r.text().parse().unwrap_or_else(|_| panic!("{}", r.text()))
}

/// Things over every page of the query (pages never take the index-only path).
async fn paged(c: &Http, filter: &str) -> u64 {
    let (mut n, mut opt) = (0, "size(3)".to_owned());
    loop {
        let r = c
            .get(&format!(
                "/api/2/search/things?filter={filter}&option={opt}&fields=thingId"
            ))
            .await;
        assert_eq!(r.status, 200, "{filter}: {}", r.text());
        let v = r.json();
        n += v["items"].as_array().map_or(0, Vec::len) as u64;
        match v["cursor"].as_str() {
            Some(cur) => opt = format!("size(3),cursor({cur})"),
            None => return n,
        }
    }
}

/// Every user's count of every filter equals its paged total; returns alice's counts.
fn agree(srv: &Server, when: &str) -> Vec<u64> {
    block_on(async {
        let mut alice = Vec::new();
        for u in USERS {
            let c = client(srv, u);
            for f in FILTERS {
                let n = count(&c, f).await;
                assert_eq!(n, paged(&c, f).await, "{when}: {u} {f}");
                if u == "alice" {
                    alice.push(n);
                }
            }
        }
        alice
    })
}

fn entry(who: &str, resources: Value) -> Value {
    json!({"subjects": {format!("nginx:{who}"): {"type": "t"}}, "resources": resources})
}

#[test]
fn counts_equal_result_pages_for_every_kind_of_read() {
    let mut env = start(&USERS, "");
    let read = json!({"grant": ["READ"], "revoke": []});
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let revoked = json!({"grant": [], "revoke": ["READ"]});
    let own = json!({"entries": {
        "alice": entry("alice", json!({"thing:/": rw, "policy:/": rw})),
        "bob": entry("bob", json!({"thing:/attributes/room": read})),
        "carol": entry("carol", json!({"thing:/": read, "thing:/attributes/secret": revoked}))}});
    let shared = json!({"entries": {
        "alice": entry("alice", json!({"thing:/": rw, "policy:/": rw})),
        "carol": entry("carol", json!({"thing:/": read})),
        "dave": entry("dave", json!({"thing:/": read}))}});
    let alice = client(&env.srv, "alice");
    block_on(async {
        let r = alice.put("/api/2/policies/ns.c:shared", &shared).await;
        assert_eq!(r.status, 201, "{}", r.text());
        for i in 0..12 {
            let attrs = json!({"room": format!("r{}", i % 3), "n": i % 4, "secret": (i % 2) * 10});
            let body = if i < 6 {
                json!({"_policy": own, "attributes": attrs})
            } else {
                json!({"policyId": "ns.c:shared", "attributes": attrs})
            };
            let r = alice
                .put(&format!("/api/2/things/ns.c:t{i:02}"), &body)
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
        }
    });
    // r1: t01 t04 t07 t10; n >= 2: t02 t03 t06 t07 t10 t11; secret 10: odd ones
    assert_eq!(agree(&env.srv, "start"), [4, 6, 6, 8, 3]);

    // the shared policy loses alice's READ below the attributes and dave entirely
    let modified = json!({"entries": {
        "alice": entry("alice", json!({"thing:/": rw, "policy:/": rw,
                                       "thing:/attributes/secret": revoked})),
        "carol": entry("carol", json!({"thing:/": read}))}});
    block_on(async {
        let r = alice.put("/api/2/policies/ns.c:shared", &modified).await;
        assert_eq!(r.status, 204, "{}", r.text());
    });
    assert_eq!(agree(&env.srv, "policy modified"), [4, 6, 3, 8, 3]);

    // t01 moves to the shared policy, t07 to t00's own policy
    block_on(async {
        for (t, p) in [("ns.c:t01", "ns.c:shared"), ("ns.c:t07", "ns.c:t00")] {
            let r = alice
                .put(&format!("/api/2/things/{t}/policyId"), &json!(p))
                .await;
            assert_eq!(r.status, 204, "{t}: {}", r.text());
        }
    });
    assert_eq!(agree(&env.srv, "policyId changed"), [4, 6, 3, 8, 3]);
    block_on(async {
        let c = client(&env.srv, "dave");
        assert_eq!(count(&c, FILTERS[0]).await, 0, "dave lost READ");
        let c = client(&env.srv, "bob");
        assert_eq!(count(&c, FILTERS[0]).await, 2, "bob: t04 t07 (room only)");
    });

    // t00's own policy is deleted: t00 and t07 are no longer visible to anyone
    block_on(async {
        let r = alice.delete("/api/2/policies/ns.c:t00").await;
        assert_eq!(r.status, 204, "{}", r.text());
    });
    let after_delete = agree(&env.srv, "policy deleted");
    assert_eq!(after_delete, [3, 5, 2, 7, 2]);

    // same data dir, same config (authkit writes it beside the data dir)
    let data = env.srv.data.clone();
    let config = data.with_file_name("edgetwin.toml");
    assert!(env.srv.terminate().success());
    env.srv = Server::start_in(&data, &["--config", config.to_str().unwrap()]);
    assert_eq!(agree(&env.srv, "restarted"), after_delete);
}
