//! Creations whose history event is deferred (written with the entity's first change; until
//! then the entity's own state is revision 1): a thing and its policy created and never changed
//! answer at revision 1 and at their creation time, appear in SSE and WS persisted-event streams
//! with their persisted headers, across a restart and a `kill -9`, and answer the same after
//! their first change, after a deletion and re-creation.

use crate::common::http::Http;
use crate::common::{Server, Ws};
use crate::{counted_health, get_at, modified, put, thing};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const T: &str = "def:one";
const CONFIG: &str = "[history]\nheaders_to_persist = [\"ditto-originator\"]\n";
const WHO: &str = r#"{"ditto-originator":"nginx:ditto"}"#;

fn server(dir: &Path) -> Server {
    let conf = dir.join("edgetwin.toml");
    std::fs::write(&conf, CONFIG).expect("config");
    Server::start_in(
        &dir.join("data"),
        &["--config", conf.to_str().expect("utf-8")],
    )
}

/// Every event of the SSE persisted stream from revision 0: `_revision` and `_context` (the
/// Ditto Protocol event).
async fn sse_events(h: &Http) -> Vec<Value> {
    let q = format!("/api/2/things/{T}?from-historical-revision=0&fields=_revision,_context");
    let mut sse = h.sse(&q).await.unwrap_or_else(|r| panic!("{}", r.status));
    let mut out = Vec::new();
    while let Some(v) = sse.next_json(crate::common::WAIT).await {
        out.push(v);
    }
    out
}

/// Every item of the WS persisted stream of `group` (`things/twin` or `policies`) from 0.
async fn ws_items(ws: &mut Ws, group: &str) -> Vec<Value> {
    let topic = |a: &str| format!("def/one/{group}/streaming/{a}");
    let msg =
        |a: &str, v: Value| json!({"topic": topic(a), "path": "/", "headers": {}, "value": v});
    ws.send(&msg(
        "subscribeForPersistedEvents",
        json!({"fromHistoricalRevision": 0}),
    ))
    .await;
    let mut items = Vec::new();
    loop {
        let v = ws.recv().await;
        let t = v["topic"].as_str().unwrap_or("").to_owned();
        if t == topic("created") {
            let id = v["value"]["subscriptionId"].clone();
            ws.send(&msg(
                "request",
                json!({"subscriptionId": id, "demand": 100}),
            ))
            .await;
        } else if t == topic("next") {
            items.push(v["value"]["item"].clone());
        } else if t == topic("complete") {
            return items;
        } else {
            assert!(!t.contains("/streaming/"), "unexpected {v}");
        }
    }
}

/// What history answers of revision 1 of the thing and its policy, from every reader.
#[derive(Debug, PartialEq)]
struct Rev1 {
    sse: Value,
    ws_thing: Value,
    ws_policy: Value,
    at_time: (u16, Value),
}

async fn rev1(srv: &Server, created: i64) -> Rev1 {
    let h = &Http::new(srv.addr);
    let sse = sse_events(h).await;
    let mut ws = srv.ws().await;
    let things = ws_items(&mut ws, "things/twin").await;
    let policies = ws_items(&mut ws, "policies").await;
    let at = edgetwin::clock::format_millis(created + 1);
    let at_time = get_at(h, T, "/attributes", &[("at-historical-timestamp", &at)]).await;
    let before = edgetwin::clock::format_millis(created - 1);
    let (s, v) = get_at(h, T, "", &[("at-historical-timestamp", &before)]).await;
    assert_eq!(
        (s, v["error"].clone()),
        (404, json!("things:thing.history.notfound")),
        "before the creation"
    );
    let n = (sse.len(), things.len(), policies.len());
    assert!(
        n.0 > 0 && n.1 > 0 && n.2 > 0,
        "events seen (sse, ws thing, ws policy): {n:?}"
    );
    Rev1 {
        sse: sse[0].clone(),
        ws_thing: things[0].clone(),
        ws_policy: policies[0].clone(),
        at_time,
    }
}

fn assert_creation(r: &Rev1) {
    let who: Value = serde_json::from_str(WHO).unwrap();
    let sse = &r.sse["_context"];
    assert_eq!(sse["topic"], "def/one/things/twin/events/created", "{r:?}");
    assert_eq!(r.sse["_revision"], 1, "{r:?}");
    assert_eq!(
        sse["value"]["attributes"],
        json!({"n": 1, "name": "sensor"})
    );
    assert_eq!(sse["headers"]["historical-headers"], who, "{r:?}");
    assert_eq!(r.ws_thing["topic"], "def/one/things/twin/events/created");
    assert_eq!(r.ws_thing["revision"], 1);
    assert_eq!(r.ws_thing["value"], sse["value"]);
    assert_eq!(r.ws_thing["headers"]["historical-headers"], who);
    assert_eq!(r.ws_policy["topic"], "def/one/policies/events/created");
    assert_eq!(
        (
            r.ws_policy["revision"].clone(),
            r.ws_policy["value"]["policyId"].clone()
        ),
        (json!(1), json!(T)),
        "{r:?}"
    );
    assert_eq!(r.ws_policy["headers"]["historical-headers"], who);
    assert_eq!(r.at_time, (200, json!({"n": 1, "name": "sensor"})));
}

/// Revision 1 of the thing and of its policy by revision, with its `historical-headers`.
async fn at_revision_1(h: &Http, policy: &Value) {
    let r = h
        .get_with(
            &format!("/api/2/things/{T}/attributes"),
            &[("at-historical-revision", "1")],
        )
        .await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"n": 1, "name": "sensor"}))
    );
    assert_eq!(r.header("historical-headers"), Some(WHO));
    let r = h
        .get_with(
            &format!("/api/2/policies/{T}"),
            &[("at-historical-revision", "1")],
        )
        .await;
    assert_eq!((r.status, &r.json()), (200, policy));
    assert_eq!(r.header("historical-headers"), Some(WHO));
}

#[test]
fn a_creation_never_changed_is_history_before_and_after_its_first_change() {
    smol::block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut srv = server(tmp.path());
        let h = Http::new(srv.addr);
        put(&h, T, "", thing(1)).await;
        let created = modified(&h, T).await;
        let policy = h.get(&format!("/api/2/policies/{T}")).await.json();
        let first = rev1(&srv, created).await;
        assert_creation(&first);
        let health = counted_health(&h).await;
        assert_eq!(health["history"]["events"], 2, "thing and policy: {health}");
        assert!(health["history"]["oldest"].is_string(), "{health}");
        // a restart: the same from every reader
        assert!(srv.terminate().success());
        let mut srv = server(tmp.path());
        let h = Http::new(srv.addr);
        assert_eq!(rev1(&srv, created).await, first, "after a restart");
        assert_eq!(counted_health(&h).await["history"]["events"], 2);
        // the first changes of the thing and of its policy: revision 1 answers the same
        smol::Timer::after(Duration::from_millis(30)).await;
        put(&h, T, "/attributes/n", json!(2)).await;
        let p = format!("/api/2/policies/{T}/entries/other");
        let entry = json!({"subjects": {"nginx:other": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}});
        assert_eq!(h.put(&p, &entry).await.status, 201);
        assert_eq!(rev1(&srv, created).await, first, "after the first change");
        at_revision_1(&h, &policy).await;
        let sse = sse_events(&h).await;
        let revs: Vec<_> = sse.iter().map(|e| e["_revision"].clone()).collect();
        assert_eq!(revs, vec![json!(1), json!(2)]);
        assert_eq!(counted_health(&h).await["history"]["events"], 4);
        assert!(srv.terminate().success());
        let srv = server(tmp.path());
        let h = Http::new(srv.addr);
        assert_eq!(rev1(&srv, created).await, first, "changed, then restarted");
        at_revision_1(&h, &policy).await;
        assert_eq!(counted_health(&h).await["history"]["events"], 4);
    });
}

#[test]
fn a_thing_deleted_at_revision_2_keeps_its_creation() {
    smol::block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let srv = server(tmp.path());
        let h = Http::new(srv.addr);
        put(&h, T, "", thing(1)).await; // rev 1, deferred
        let created = modified(&h, T).await;
        let first = rev1(&srv, created).await;
        assert_eq!(h.delete(&format!("/api/2/things/{T}")).await.status, 204); // rev 2
        let mut again = thing(10);
        again["policyId"] = json!(T);
        put(&h, T, "", again).await; // rev 3
        let (s, v) = get_at(&h, T, "/attributes/n", &[("at-historical-revision", "1")]).await;
        assert_eq!((s, v), (200, json!(1)), "before the deletion");
        let sse = sse_events(&h).await;
        let topics: Vec<_> = sse.iter().map(|e| e["_context"]["topic"].clone()).collect();
        let ev = |a: &str| json!(format!("def/one/things/twin/events/{a}"));
        assert_eq!(topics, vec![ev("created"), ev("deleted"), ev("created")]);
        assert_eq!(
            sse[0], first.sse,
            "revision 1 as it was before the deletion"
        );
    });
}

#[test]
fn a_kill_between_creation_and_first_change_loses_nothing_of_revision_1() {
    smol::block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut srv = server(tmp.path());
        let h = Http::new(srv.addr);
        put(&h, T, "", thing(1)).await; // a waited write: on disk when answered
        let created = modified(&h, T).await;
        let policy = h.get(&format!("/api/2/policies/{T}")).await.json();
        let first = rev1(&srv, created).await;
        srv.kill9();
        let mut srv = server(tmp.path());
        let h = Http::new(srv.addr);
        assert_eq!(rev1(&srv, created).await, first, "after kill -9");
        smol::Timer::after(Duration::from_millis(30)).await;
        put(&h, T, "/attributes/n", json!(2)).await;
        let p = format!("/api/2/policies/{T}/entries/other");
        let entry = json!({"subjects": {"nginx:other": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}});
        assert_eq!(h.put(&p, &entry).await.status, 201);
        srv.kill9();
        let srv = server(tmp.path());
        let h = Http::new(srv.addr);
        assert_eq!(rev1(&srv, created).await, first, "changed, then kill -9");
        at_revision_1(&h, &policy).await;
    });
}
