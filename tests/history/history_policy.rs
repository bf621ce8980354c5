//! History of policies: retrieves at a revision carry `historical-headers` (HTTP and WS);
//! `policies/streaming/subscribeForPersistedEvents` over the WebSocket with the request / next /
//! complete flow control; only a requester who may READ all of the policy (`policy:/`) now
//! gets its events.

use crate::authkit::PASSWORD;
use crate::common::Ws;
use crate::{put, start, thing};
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "pol:one";

fn streaming(action: &str, value: Value) -> Value {
    json!({"topic": format!("pol/one/policies/streaming/{action}"), "path": "/",
           "headers": {"correlation-id": "p-1"}, "value": value})
}

async fn next_streaming(ws: &mut Ws) -> Value {
    loop {
        let v = ws.recv().await;
        if v["topic"].as_str().unwrap_or("").contains("/streaming/") {
            return v;
        }
    }
}

fn action(v: &Value) -> &str {
    v["topic"]
        .as_str()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// Subscribes from revision 1 and returns the subscription id (asserting `created`).
async fn subscribe(ws: &mut Ws) -> String {
    ws.send(&streaming(
        "subscribeForPersistedEvents",
        json!({"fromHistoricalRevision": 1}),
    ))
    .await;
    let created = next_streaming(ws).await;
    assert_eq!(action(&created), "created", "{created}");
    assert_eq!(created["topic"], "pol/one/policies/streaming/created");
    created["value"]["subscriptionId"]
        .as_str()
        .expect("subscriptionId")
        .to_owned()
}

/// A policy at revision 3: created with its thing, replaced (EXTRA), one entry put (MORE).
async fn three_revisions(h: &crate::common::http::Http) {
    put(h, T, "", thing(1)).await; // creates policy pol:one at revision 1
    let p = format!("/api/2/policies/{T}");
    let mut policy = h.get(&p).await.json();
    policy["entries"]["EXTRA"] = json!({"subjects": {"nginx:other": {"type": "t"}},
        "resources": {"thing:/attributes": {"grant": ["READ"], "revoke": []}}});
    assert_eq!(h.put(&p, &policy).await.status, 204); // revision 2
    let entry = json!({"subjects": {"nginx:more": {"type": "t"}},
        "resources": {"thing:/features": {"grant": ["READ"], "revoke": []}}});
    let r = h.put(&format!("{p}/entries/MORE"), &entry).await;
    assert_eq!(r.status, 201, "{}", r.text()); // revision 3
}

#[test]
fn policy_retrieves_at_a_revision_carry_historical_headers() {
    smol::block_on(async {
        let rig = start("[history]\nheaders_to_persist = [\"ditto-originator\"]\n");
        let h = &rig.http;
        three_revisions(h).await;
        let r = h
            .get_with(
                &format!("/api/2/policies/{T}"),
                &[("at-historical-revision", "2")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["entries"].get("MORE").is_none(), "{}", r.text());
        let hh: Value =
            serde_json::from_str(r.header("historical-headers").expect("historical-headers"))
                .unwrap();
        assert_eq!(hh, json!({"ditto-originator": "nginx:ditto"}));
        // a current retrieve has none
        let r = h.get(&format!("/api/2/policies/{T}")).await;
        assert_eq!(r.header("historical-headers"), None);
        let mut ws = rig.srv.ws().await;
        let r = ws
            .request(
                json!({"topic": "pol/one/policies/commands/retrieve", "path": "/entries",
                "headers": {"at-historical-revision": 1}}),
            )
            .await;
        assert_eq!(r["status"], 200, "{r}");
        assert!(r["value"].get("EXTRA").is_none(), "{r}");
        assert_eq!(
            r["headers"]["historical-headers"],
            json!({"ditto-originator": "nginx:ditto"}),
            "{r}"
        );
    });
}

#[test]
fn policy_persisted_events_follow_the_demand() {
    smol::block_on(async {
        let rig = start("[history]\nheaders_to_persist = [\"ditto-originator\"]\n");
        let h = &rig.http;
        three_revisions(h).await;
        let mut ws = rig.srv.ws().await;
        let id = subscribe(&mut ws).await;
        // nothing before the first request
        assert!(ws.try_recv_text(Duration::from_millis(300)).await.is_none());
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": id, "demand": 2}),
        ))
        .await;
        let mut items = Vec::new();
        for _ in 0..2 {
            let n = next_streaming(&mut ws).await;
            assert_eq!(action(&n), "next", "{n}");
            assert_eq!(n["topic"], "pol/one/policies/streaming/next");
            items.push(n["value"]["item"].clone());
        }
        // no more than requested
        assert!(ws.try_recv_text(Duration::from_millis(300)).await.is_none());
        ws.send(&streaming(
            "request",
            json!({"subscriptionId": id, "demand": 5}),
        ))
        .await;
        let n = next_streaming(&mut ws).await;
        assert_eq!(action(&n), "next", "{n}");
        items.push(n["value"]["item"].clone());
        let end = next_streaming(&mut ws).await;
        assert_eq!(action(&end), "complete", "{end}");
        assert_eq!(end["value"]["subscriptionId"], id.as_str());
        let seen: Vec<(Value, Value)> = items
            .iter()
            .map(|i| (i["topic"].clone(), i["revision"].clone()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (json!("pol/one/policies/events/created"), json!(1)),
                (json!("pol/one/policies/events/modified"), json!(2)),
                (json!("pol/one/policies/events/created"), json!(3)),
            ]
        );
        assert_eq!(items[2]["path"], "/entries/MORE", "{}", items[2]);
        assert_eq!(
            items[2]["value"]["subjects"],
            json!({"nginx:more": {"type": "t"}})
        );
        assert_eq!(
            items[1]["headers"]["historical-headers"],
            json!({"ditto-originator": "nginx:ditto"})
        );
        // an unknown policy fails at the first request
        ws.send(
            &json!({"topic": "pol/none/policies/streaming/subscribeForPersistedEvents",
            "path": "/", "headers": {}, "value": {}}),
        )
        .await;
        let created = next_streaming(&mut ws).await;
        let other = created["value"]["subscriptionId"].as_str().unwrap();
        ws.send(
            &json!({"topic": "pol/none/policies/streaming/request", "path": "/",
            "headers": {}, "value": {"subscriptionId": other, "demand": 1}}),
        )
        .await;
        let failed = next_streaming(&mut ws).await;
        assert_eq!(action(&failed), "failed", "{failed}");
        assert_eq!(
            failed["value"]["error"]["error"], "policies:policy.notfound",
            "{failed}"
        );
    });
}

/// The events bob gets (`Err`: the error code of `failed`).
async fn bob_events(addr: std::net::SocketAddr) -> Result<usize, String> {
    let mut ws = Ws::connect(addr, Some(("bob", PASSWORD)))
        .await
        .expect("ws");
    let id = subscribe(&mut ws).await;
    ws.send(&streaming(
        "request",
        json!({"subscriptionId": id, "demand": 100}),
    ))
    .await;
    let mut n = 0;
    loop {
        let v = next_streaming(&mut ws).await;
        match action(&v) {
            "next" => n += 1,
            "complete" => return Ok(n),
            _ => return Err(v["value"]["error"]["error"].as_str().unwrap_or("").into()),
        }
    }
}

#[test]
fn policy_events_need_read_on_the_whole_policy_now() {
    let env = crate::authkit::start(&["alice", "bob"], "");
    smol::block_on(async {
        let alice = crate::common::http::Http {
            addr: env.srv.addr,
            auth: Some(crate::authkit::user("alice")),
        };
        let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
        let read = json!({"grant": ["READ"], "revoke": []});
        let policy = |bob: Value| {
            json!({"entries": {
                "owner": {"subjects": {"nginx:alice": {"type": "t"}},
                          "resources": {"thing:/": rw, "policy:/": rw}},
                "reader": {"subjects": {"nginx:bob": {"type": "t"}}, "resources": bob}
            }})
        };
        let p = format!("/api/2/policies/{T}");
        let r = alice
            .put(&p, &policy(json!({"thing:/": read, "policy:/": read})))
            .await;
        assert_eq!(r.status, 201, "{}", r.text()); // revision 1
        assert_eq!(bob_events(env.srv.addr).await, Ok(1));
        // READ on a part of the policy only: no history of it
        let r = alice
            .put(
                &p,
                &policy(json!({"thing:/": read, "policy:/entries/reader": read})),
            )
            .await;
        assert_eq!(r.status, 204); // revision 2
        assert_eq!(
            bob_events(env.srv.addr).await,
            Err("policies:policy.notfound".into())
        );
        // without READ on the policy now: none either, though bob could read it then
        let r = alice.put(&p, &policy(json!({"thing:/": read}))).await;
        assert_eq!(r.status, 204);
        assert_eq!(
            bob_events(env.srv.addr).await,
            Err("policies:policy.notfound".into())
        );
        // READ again: the whole history, as kept
        let r = alice.put(&p, &policy(json!({"policy:/": read}))).await;
        assert_eq!(r.status, 204);
        assert_eq!(bob_events(env.srv.addr).await, Ok(4));
    });
}
