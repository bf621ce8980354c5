//! Property test of "whatever was accepted can be read, modified and deleted, before and after a
//! restart" (issue 14), over the real binary with its store on disk: a seeded generator sends
//! documents, pointers, merge patches and metadata of random width and of depths around the
//! bound over HTTP and WebSocket; a model of each thing predicts which writes must be accepted
//! and which refused (and with which code); after a restart every thing reads back as before
//! and can still be changed and deleted. `EDGETWIN_PROPTEST_SEED=<n>` reruns one seed.

use crate::common;
use common::http::{Http, Resp};
use common::*;
use serde_json::{json, Map, Value};

/// `MAX_JSON_DEPTH` and `MAX_POINTER_SEGMENTS` (src/bounds.rs).
const MAX: usize = 100;
const THINGS: usize = 4;
const OPS_PER_SEED: usize = 160;
const SEEDS: [u64; 2] = [14, 2718];

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

// ---- the model: the engine's pointer and merge semantics on plain values ----

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

fn set(v: &mut Value, path: &[String], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    if !v.is_object() {
        *v = json!({});
    }
    let m = v.as_object_mut().unwrap();
    let child = m.entry(first.clone()).or_insert(Value::Null);
    set(child, rest, new);
}

fn remove(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for k in parents {
        match cur.as_object_mut().and_then(|m| m.get_mut(k)) {
            Some(c) => cur = c,
            None => return false,
        }
    }
    cur.as_object_mut()
        .is_some_and(|m| m.shift_remove(last).is_some())
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        o => o.clone(),
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, x) in p {
                if x.is_null() {
                    t.shift_remove(k);
                } else if let Some(e) = t.get_mut(k) {
                    merge(e, x);
                } else {
                    t.insert(k.clone(), strip_nulls(x));
                }
            }
        }
        (t, Value::Object(_)) => *t = strip_nulls(patch),
        (t, _) => *t = patch.clone(),
    }
}

// ---- the generator ----

struct Gen(fastrand::Rng);

impl Gen {
    fn key(&mut self) -> String {
        let n = self.0.usize(1..=2);
        (0..n)
            .map(|_| self.0.choice(['a', 'b', 'c']).unwrap())
            .collect()
    }

    fn scalar(&mut self) -> Value {
        match self.0.u8(0..4) {
            0 => json!(self.0.i32(-100..100)),
            1 => json!(self.key()),
            2 => json!(self.0.bool()),
            _ => json!(1.5),
        }
    }

    /// A value of exactly `d` levels: a spine of `d` containers, with a few shallow siblings.
    fn value(&mut self, d: usize, nulls: bool) -> Value {
        if d == 0 {
            return if nulls && self.0.u8(0..6) == 0 {
                Value::Null
            } else {
                self.scalar()
            };
        }
        let width = if self.0.u8(0..4) == 0 {
            3
        } else {
            self.0.usize(1..=2)
        };
        let spine = self.0.usize(0..width);
        let mut kids: Vec<Value> = (0..width)
            .map(|i| {
                if i == spine {
                    self.value(d - 1, nulls)
                } else {
                    let shallow = usize::from(d > 1 && self.0.u8(0..4) == 0);
                    self.value(shallow, nulls)
                }
            })
            .collect();
        if self.0.u8(0..3) == 0 {
            Value::Array(std::mem::take(&mut kids))
        } else {
            let mut keys = ["a", "b", "c", "ab", "ba", "cc"];
            self.0.shuffle(&mut keys);
            let m: Map<String, Value> = keys.iter().map(|k| k.to_string()).zip(kids).collect();
            Value::Object(m)
        }
    }

    /// A value of exactly `d` levels without siblings (small enough for a header).
    fn spine(&mut self, d: usize) -> Value {
        let mut v = self.scalar();
        for _ in 0..d {
            v = if self.0.bool() {
                json!([v])
            } else {
                json!({ self.key(): v })
            };
        }
        v
    }

    /// Pointer segments below `/attributes`: mostly a path that already exists (extended by a
    /// few keys), sometimes a fresh one, with lengths around the bound.
    fn path(&mut self, thing: &Value) -> Vec<String> {
        let mut p = vec!["attributes".to_owned()];
        let mut cur = thing.get("attributes");
        while let Some(Value::Object(m)) = cur {
            if m.is_empty() || self.0.u8(0..8) == 0 {
                break;
            }
            let k = m.keys().nth(self.0.usize(0..m.len())).unwrap().clone();
            cur = m.get(&k);
            p.push(k);
        }
        let extra = match self.0.u8(0..4) {
            0 => MAX.saturating_sub(p.len()) + self.0.usize(0..4),
            _ => self.0.usize(0..4),
        };
        for _ in 0..extra.min(MAX + 3 - p.len().min(MAX + 3)) {
            p.push(self.key());
        }
        p
    }

    /// A value depth that puts the result near the bound (or anything small).
    fn depth_near(&mut self, base: usize) -> usize {
        if self.0.u8(0..4) == 0 {
            return self.0.usize(0..4);
        }
        let target = MAX - 2 + self.0.usize(0..5);
        target.saturating_sub(base)
    }
}

fn url(thing: usize, path: &[String]) -> String {
    let mut u = format!("/api/2/things/prop:t{thing}");
    for s in path {
        u.push('/');
        u.push_str(s);
    }
    u
}

/// What the gateway must answer: `Ok(())` = accepted, `Err(code)` = refused with that code.
fn predict(segments: usize, body: usize, before: usize, after: usize) -> Result<(), &'static str> {
    if segments > MAX {
        Err("json.pointer.invalid")
    } else if body > MAX || (after > MAX && after > before) {
        Err("json.invalid")
    } else {
        Ok(())
    }
}

fn check(resp: (u16, String), expect: Result<(), &str>, what: &str) -> bool {
    match expect {
        Ok(()) => {
            assert!(
                matches!(resp.0, 200..=204),
                "{what}: expected success, got {resp:?}"
            );
            true
        }
        Err(code) => {
            assert_eq!(resp, (400, code.to_owned()), "{what}");
            false
        }
    }
}

fn status_code(r: &Resp) -> (u16, String) {
    let code = if r.status >= 400 {
        r.error()
    } else {
        String::new()
    };
    (r.status, code)
}

async fn run_seed(seed: u64, srv: &Server) -> Vec<Value> {
    let http = Http::new(srv.addr);
    let mut ws = srv.ws().await;
    let mut g = Gen(fastrand::Rng::with_seed(seed));
    let mut things: Vec<Value> = Vec::new();
    for t in 0..THINGS {
        let r = http.put(&url(t, &[]), &json!({"attributes": {}})).await;
        assert!(matches!(r.status, 201 | 204), "{}", r.text());
        things.push(json!({"attributes": {}}));
    }
    let json_ct = [("Content-Type", "application/json")];
    let merge_ct = [("Content-Type", "application/merge-patch+json")];
    let (mut accepted, mut refused) = (0, 0);
    let mut sizes = [0; THINGS];
    for op in 0..OPS_PER_SEED {
        let t = g.0.usize(0..THINGS);
        let before = depth(&things[t]);
        let path = g.path(&things[t]);
        let what = format!("seed {seed} op {op} thing {t} at {} segments", path.len());
        // keep each thing well below the 100 kB size limit (a different bound)
        let kind = if sizes[t] > 30_000 { 5 } else { g.0.u8(0..6) };
        let ok = match kind {
            // modify (HTTP or WS) at a pointer
            0 | 1 => {
                let d = g.depth_near(path.len());
                let value = g.value(d, false);
                if path.len() == 1 && !value.is_object() {
                    continue; // `attributes` must be an object: a type error, not a depth one
                }
                let mut after = things[t].clone();
                set(&mut after, &path, value.clone());
                let expect = predict(path.len(), depth(&value), before, depth(&after));
                let resp = if kind == 0 {
                    let body = value.to_string();
                    status_code(
                        &http
                            .send("PUT", &url(t, &path), &json_ct, Some(body.as_bytes()))
                            .await,
                    )
                } else {
                    let p = format!("/{}", path.join("/"));
                    let r = ws.request(modify(&format!("prop:t{t}"), &p, value)).await;
                    let code = r["value"]["error"].as_str().unwrap_or_default().to_owned();
                    (r["status"].as_u64().unwrap_or(0) as u16, code)
                };
                let ok = check(resp, expect, &format!("{what} modify depth {d}"));
                if ok {
                    things[t] = after;
                }
                ok
            }
            // merge patch (with nulls) at a pointer
            2 | 3 => {
                let d = g.depth_near(path.len()).max(1);
                let patch = g.value(d, true);
                let mut after = things[t].clone();
                let mut target = get(&after, &path).cloned().unwrap_or(Value::Null);
                merge(&mut target, &patch);
                set(&mut after, &path, target);
                let expect = predict(path.len(), depth(&patch), before, depth(&after));
                // a merge that leaves `attributes` a non-object is a type error, not a depth one
                if path.len() == 1 && !after["attributes"].is_object() {
                    continue;
                }
                let body = patch.to_string();
                let r = http
                    .send("PATCH", &url(t, &path), &merge_ct, Some(body.as_bytes()))
                    .await;
                let ok = check(status_code(&r), expect, &format!("{what} merge depth {d}"));
                if ok {
                    things[t] = after;
                }
                ok
            }
            // put-metadata with a modify: the metadata entry is nested as deep as the path + 1
            4 => {
                let d = g.depth_near(path.len() + 1);
                let md = g.spine(d);
                let header = json!([{"key": "/m", "value": md}]).to_string();
                let value = if path.len() == 1 {
                    json!({})
                } else {
                    g.scalar()
                };
                let mut after = things[t].clone();
                set(&mut after, &path, value.clone());
                let entry = path.len() + 1 + depth(&md);
                let expect = if path.len() > MAX {
                    Err("json.pointer.invalid")
                } else if depth(&md) + 2 > MAX {
                    Err("header.invalid")
                } else if depth(&after) > MAX || entry > MAX {
                    Err("json.invalid")
                } else {
                    Ok(())
                };
                let hs = [
                    ("Content-Type", "application/json"),
                    ("put-metadata", header.as_str()),
                ];
                let body = value.to_string();
                let r = http
                    .send("PUT", &url(t, &path), &hs, Some(body.as_bytes()))
                    .await;
                let ok = check(
                    status_code(&r),
                    expect,
                    &format!("{what} metadata depth {d}"),
                );
                if ok {
                    things[t] = after;
                }
                ok
            }
            // delete at a pointer (existing or not)
            _ => {
                let exists = get(&things[t], &path).is_some();
                let r = http.delete(&url(t, &path)).await;
                let expect_status = if path.len() > MAX {
                    400
                } else if exists {
                    204
                } else {
                    404
                };
                assert_eq!(r.status, expect_status, "{what} delete: {}", r.text());
                if exists && path.len() > 1 {
                    assert!(remove(&mut things[t], &path));
                } else if exists {
                    things[t]["attributes"] = json!({});
                    assert_eq!(http.put(&url(t, &path), &json!({})).await.status, 201);
                }
                exists
            }
        };
        if ok {
            accepted += 1;
        } else {
            refused += 1;
        }
        // whatever happened, the stored thing is exactly the model
        let r = http
            .get(&format!("{}?fields=attributes,_metadata", url(t, &[])))
            .await;
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert_eq!(
            r.json()["attributes"],
            things[t]["attributes"],
            "{what}: stored thing differs"
        );
        sizes[t] = r.body.len();
    }
    println!("seed {seed}: {accepted} writes accepted, {refused} refused");
    assert!(
        accepted > OPS_PER_SEED / 5 && refused > OPS_PER_SEED / 10,
        "the generator must hit both sides of the bound"
    );
    let mut full = Vec::new();
    for t in 0..THINGS {
        let r = http
            .get(&format!("{}?fields=attributes,_metadata", url(t, &[])))
            .await;
        assert_eq!(r.status, 200);
        full.push(r.json());
    }
    full
}

#[test]
fn whatever_was_accepted_can_be_read_changed_and_deleted_after_a_restart() {
    let seeds: Vec<u64> = match std::env::var("EDGETWIN_PROPTEST_SEED") {
        Ok(s) => vec![s.parse().expect("EDGETWIN_PROPTEST_SEED=<u64>")],
        Err(_) => SEEDS.to_vec(),
    };
    for seed in seeds {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut srv = Server::start_in(&data, &[]);
        let before = block_on(run_seed(seed, &srv));
        assert!(
            srv.child.try_wait().unwrap().is_none(),
            "seed {seed}: the gateway died"
        );
        assert!(srv.terminate().success());
        let srv = Server::start_in(&data, &[]);
        block_on(async {
            let http = Http::new(srv.addr);
            for (t, was) in before.iter().enumerate() {
                let r = http
                    .get(&format!("{}?fields=attributes,_metadata", url(t, &[])))
                    .await;
                assert_eq!(r.status, 200, "seed {seed} thing {t}: {}", r.text());
                assert_eq!(
                    &r.json(),
                    was,
                    "seed {seed} thing {t} changed over the restart"
                );
                // change the deepest part, merge, delete it, delete the thing
                let mut deepest = vec!["attributes".to_owned()];
                while let Some(Value::Object(m)) = get(was, &deepest) {
                    let Some(k) = m
                        .iter()
                        .max_by_key(|(_, v)| depth(v))
                        .map(|(k, _)| k.clone())
                    else {
                        break;
                    };
                    deepest.push(k);
                }
                if deepest.len() > 1 {
                    let r = http.put(&url(t, &deepest), &json!("changed")).await;
                    assert_eq!(r.status, 204, "seed {seed} thing {t}: {}", r.text());
                    let r = http
                        .patch(&url(t, &deepest[..deepest.len() - 1]), &json!({"new": 1}))
                        .await;
                    assert_eq!(r.status, 204, "seed {seed} thing {t}: {}", r.text());
                    assert_eq!(http.delete(&url(t, &deepest)).await.status, 204);
                }
                assert_eq!(http.delete(&url(t, &[])).await.status, 204);
                assert_eq!(http.get(&url(t, &[])).await.status, 404);
            }
        });
    }
}
