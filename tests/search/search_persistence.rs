//! The search index is exactly as durable as the twins: after `kill -9` under concurrent
//! modify/delete/re-create load the index in the data dir equals the entries computed from the
//! stored things (checked through the library on the killed server's files), and the restarted
//! server finds every thing by its stored values and nothing by stale ones (both backends).
//! Also: modify/merge/delete leave no stale hits, a `search-persisted` reply means durable, and a
//! data dir from before search gets its index built at start.

use crate::common;
use common::http::Http;
use common::*;
use edgetwin::engine::ThingState;
use edgetwin::search::access;
use edgetwin::search::index::{entries, Entries};
use edgetwin::store::{BackendKind, Op, Store, Tree};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn kind(store: &str) -> BackendKind {
    store.parse().unwrap()
}

/// Reads every entry of a tree.
fn all(s: &Store, tree: Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = s.scan(tree, b"", after.as_deref(), 1000).unwrap();
        let Some((k, _)) = batch.last() else {
            return out;
        };
        after = Some(k.clone());
        out.extend(batch);
    }
}

/// The index on disk equals the entries of the stored things plus the READ summaries of the
/// stored policies; returns the live things' states.
fn index_matches_things(data: &Path, store: &str) -> HashMap<String, ThingState> {
    let s = Store::open(kind(store), data, 1 << 20).unwrap();
    let mut expected = Entries::new();
    let mut live = HashMap::new();
    for (k, v) in all(&s, Tree::Things) {
        let st = ThingState::from_bytes(&v).unwrap();
        expected.extend(entries(&st));
        if !st.deleted {
            live.insert(String::from_utf8(k).unwrap(), st);
        }
    }
    for (k, v) in all(&s, Tree::Policies) {
        let p = edgetwin::policy::PolicyState::from_bytes(&v)
            .unwrap()
            .policy;
        let key = access::key(std::str::from_utf8(&k).unwrap(), access::POLICY);
        expected.insert(key, access::Summary::of(&p).to_bytes());
    }
    let actual: Entries = all(&s, Tree::Index).into_iter().collect();
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    let stale: Vec<_> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty() && actual == expected,
        "{store}: index differs from the things: {} missing, {} stale (e.g. {:?} / {:?})",
        missing.len(),
        stale.len(),
        missing.first().map(|k| String::from_utf8_lossy(k)),
        stale.first().map(|k| String::from_utf8_lossy(k)),
    );
    s.close().unwrap();
    live
}

async fn search_ids(c: &Http, filter: &str) -> Vec<String> {
    let q: String = filter
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'(' | b')' | b'/' | b',' | b':' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = c
        .get(&format!(
            "/api/2/search/things?filter={q}&option=size(200)&fields=thingId"
        ))
        .await;
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["thingId"].as_str().unwrap().to_owned())
        .collect()
}

/// A request that gives up (instead of panicking) when the server is gone.
async fn try_request(ws: &mut Ws, mut cmd: Value, cid: &str) -> Option<Value> {
    cmd["headers"]["correlation-id"] = json!(cid);
    ws.stream
        .send(async_tungstenite::tungstenite::Message::text(
            cmd.to_string(),
        ))
        .await
        .ok()?;
    loop {
        let v: Value = serde_json::from_str(&ws.try_recv_text(WAIT).await?).ok()?;
        if v["headers"]["correlation-id"] == cid {
            return Some(v);
        }
    }
}

fn kill9_keeps_search_consistent(store: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut srv = Server::start_in(&data, &["--store", store]);
    let answered: Arc<Mutex<u64>> = Arc::default();
    block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|w| {
                let (addr, answered) = (srv.addr, answered.clone());
                smol::spawn(async move {
                    let Ok(mut ws) = Ws::connect(addr, Some(("ditto", "ditto"))).await else {
                        return;
                    };
                    let thing = format!("crash:w{w}");
                    for v in 0u64.. {
                        let cmd = match v % 7 {
                            // the policy outlives a deleted thing: re-create under it
                            0 => {
                                let mut t = json!({"attributes": {"n": v, "w": w}});
                                if v > 0 {
                                    t["policyId"] = json!(thing);
                                }
                                command(&thing, "create", "/", Some(t))
                            }
                            3 => modify(
                                &thing,
                                "/attributes/tags",
                                json!([format!("t{}", v % 3), "x", {"k": v}]),
                            ),
                            6 => command(&thing, "delete", "/", None),
                            _ => modify(&thing, "/attributes/n", json!(v)),
                        };
                        match try_request(&mut ws, cmd, &format!("{thing}-{v}")).await {
                            Some(r) if r["status"].as_u64().is_some_and(|s| s < 300) => {
                                *answered.lock().unwrap() += 1
                            }
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        smol::Timer::after(std::time::Duration::from_millis(1500)).await;
        srv.kill9();
        for t in tasks {
            t.await;
        }
    });
    let answered = *answered.lock().unwrap();
    assert!(
        answered > 8,
        "{store}: writes were answered before the kill ({answered})"
    );
    let live = index_matches_things(&data, store);
    let srv = Server::start_in(&data, &["--store", store]);
    let c = Http::new(srv.addr);
    block_on(async {
        for (id, st) in &live {
            let n = st.thing["attributes"]["n"].as_u64().unwrap();
            let found = search_ids(
                &c,
                &format!("and(eq(attributes/n,{n}),eq(attributes/w,{}))", &id[7..]),
            )
            .await;
            assert_eq!(found, vec![id.clone()], "{store}: {id} by its stored n={n}");
            let stale =
                search_ids(&c, &format!("and(lt(attributes/n,{n}),eq(thingId,'{id}'))")).await;
            assert!(stale.is_empty(), "{store}: {id} found by a smaller n");
        }
        let all = search_ids(&c, "exists(attributes/n)").await;
        let mut want: Vec<String> = live.keys().cloned().collect();
        want.sort();
        assert_eq!(all, want, "{store}: exactly the live things");
        let r = c.get("/api/2/search/things/count").await;
        assert_eq!(r.text(), live.len().to_string());
    });
    eprintln!(
        "{store}: {answered} writes answered before kill -9; {} live things",
        live.len()
    );
}

#[test]
fn kill9_sled() {
    kill9_keeps_search_consistent("sled");
}

#[test]
fn kill9_redb() {
    kill9_keeps_search_consistent("redb");
}

#[test]
fn modify_merge_and_delete_leave_no_stale_hits() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let t = "/api/2/things/st.x:a";
        let body = json!({"attributes": {"color": "red", "size": 3, "tags": ["a", "b"]},
            "features": {"lamp": {"properties": {"on": true}}}});
        assert_eq!(c.put(t, &body).await.status, 201);
        assert_eq!(
            c.put(
                "/api/2/things/st.x:b",
                &json!({"attributes": {"color": "red"}})
            )
            .await
            .status,
            201
        );
        assert_eq!(
            search_ids(&c, "eq(attributes/color,'red')").await,
            ["st.x:a", "st.x:b"]
        );

        assert_eq!(
            c.put(&format!("{t}/attributes/color"), &json!("blue"))
                .await
                .status,
            204
        );
        assert_eq!(
            search_ids(&c, "eq(attributes/color,'red')").await,
            ["st.x:b"]
        );
        assert_eq!(
            search_ids(&c, "eq(attributes/color,'blue')").await,
            ["st.x:a"]
        );

        let r = c
            .patch(t, &json!({"attributes": {"size": null, "tags": ["c"]}}))
            .await;
        assert_eq!(r.status, 204);
        assert!(search_ids(&c, "exists(attributes/size)").await.is_empty());
        assert!(search_ids(&c, "eq(attributes/tags,'a')").await.is_empty());
        assert_eq!(search_ids(&c, "eq(attributes/tags,'c')").await, ["st.x:a"]);

        assert_eq!(c.delete(&format!("{t}/features/lamp")).await.status, 204);
        assert!(search_ids(&c, "eq(features/lamp/properties/on,true)")
            .await
            .is_empty());
        assert!(search_ids(&c, "exists(features/lamp)").await.is_empty());

        assert_eq!(c.delete(t).await.status, 204);
        assert!(search_ids(&c, "eq(attributes/color,'blue')")
            .await
            .is_empty());
        assert!(search_ids(&c, "eq(thingId,'st.x:a')").await.is_empty());
        assert_eq!(c.get("/api/2/search/things/count").await.text(), "1");

        // the policy outlives the thing (as in Ditto): re-create under it
        let r = c
            .put(
                t,
                &json!({"policyId": "st.x:a", "attributes": {"color": "green"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(
            search_ids(&c, "exists(attributes/color)").await,
            ["st.x:a", "st.x:b"]
        );
        assert!(search_ids(&c, "eq(attributes/color,'blue')")
            .await
            .is_empty());
        assert_eq!(
            search_ids(&c, "eq(attributes/color,'green')").await,
            ["st.x:a"]
        );
    });
}

#[test]
fn search_persisted_reply_means_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut srv = Server::start_in(&data, &[]);
    block_on(async {
        let mut ws = srv.ws().await;
        let mut cmd = command(
            "sp.x:a",
            "create",
            "/",
            Some(json!({"attributes": {"v": 1}})),
        );
        cmd["headers"]["requested-acks"] = json!(["search-persisted"]);
        assert_eq!(ws.request(cmd).await["status"], 201);
        let mut cmd = modify("sp.x:a", "/attributes/v", json!(2));
        cmd["headers"]["requested-acks"] = json!(["search-persisted"]);
        assert_eq!(ws.request(cmd).await["status"], 204);
    });
    srv.kill9();
    let srv = Server::start_in(&data, &[]);
    let c = Http::new(srv.addr);
    block_on(async {
        assert_eq!(search_ids(&c, "eq(attributes/v,2)").await, ["sp.x:a"]);
    });
}

/// Writes an old data dir: 300 things and their policy, no index (`v1_index` false: from before
/// search) or an index of format 1 (paths spelled out in every key; only the attribute entries,
/// enough to tell whether it was rebuilt), then checks that a started server answers searches
/// from a rebuilt index that equals the things' entries of the current format.
fn old_data_dir_is_indexed_at_start(store: &str, v1_index: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    {
        let s = Store::open(kind(store), &data, 1 << 20).unwrap();
        let mut ops = Vec::new();
        for i in 0..300 {
            let id = format!("old.x:t{i:03}");
            let st = ThingState {
                thing: json!({"thingId": id, "policyId": "old.x:policy", "attributes": {"i": i, "even": i % 2 == 0}}),
                revision: 1,
                created: 0,
                modified: 0,
                metadata: None,
                deleted: false,
            };
            ops.push(Op::put(Tree::Things, id.clone(), st.to_bytes()));
            if v1_index {
                // format 1: `v | path 00 01 | value | thingId`, the path as text
                for (path, v) in [
                    ("attributes/i", json!(i)),
                    ("attributes/even", json!(i % 2 == 0)),
                ] {
                    let mut k = vec![b'v'];
                    k.extend_from_slice(path.as_bytes());
                    k.extend_from_slice(&[0, 1]);
                    k.extend_from_slice(&edgetwin::search::keys::value_bytes(&v));
                    k.extend_from_slice(id.as_bytes());
                    ops.push(Op::put(Tree::Index, k, vec![0]));
                }
            }
        }
        if v1_index {
            ops.push(Op::put(Tree::Meta, "search.index.version", "1"));
            ops.push(Op::put(Tree::Meta, "search.access.version", "1"));
        }
        let policy = json!({"policyId": "old.x:policy", "entries": {"all": {
            "subjects": {"nginx:ditto": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        let ps = edgetwin::policy::PolicyState::new(policy, 0);
        ops.push(Op::put(Tree::Policies, "old.x:policy", ps.to_bytes()));
        let seq = s.submit(ops);
        smol::block_on(s.durable(seq)).unwrap();
        assert_eq!(all(&s, Tree::Index).len(), if v1_index { 600 } else { 0 });
        s.close().unwrap();
    }
    let mut srv = Server::start_in(&data, &[]);
    let c = Http::new(srv.addr);
    block_on(async {
        assert_eq!(search_ids(&c, "eq(attributes/i,7)").await, ["old.x:t007"]);
        assert_eq!(
            search_ids(&c, "and(gt(attributes/i,295),eq(attributes/even,true))").await,
            ["old.x:t296", "old.x:t298"]
        );
        let r = c
            .get("/api/2/search/things/count?filter=eq(policyId,%22old.x:policy%22)")
            .await;
        assert_eq!(r.text(), "300");
        let r = c
            .get("/api/2/search/things/count?filter=eq(attributes/even,false)")
            .await;
        assert_eq!(r.text(), "150");
    });
    assert!(srv.terminate().success());
    index_matches_things(&data, store);
}

#[test]
fn data_dir_from_before_search_is_indexed_at_start() {
    old_data_dir_is_indexed_at_start("sled", false);
}

#[test]
fn data_dir_of_index_format_1_is_rebuilt_at_start() {
    old_data_dir_is_indexed_at_start("redb", true);
}
