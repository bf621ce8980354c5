//! Search over HTTP against the real binary: every RQL operator with search semantics (typed
//! comparisons, arrays, `ne` needs the field, `like` only strings), sort on several fields,
//! paging with cursors (index-ordered and heap plans), `limit`, `fields`, `namespaces`, count,
//! POST form bodies, Ditto's error codes, the `/api/2/things` listing agreeing with the search,
//! and the SSE search stream with `Last-Event-ID` resume.

use crate::common;
use common::http::Http;
use common::*;
use serde_json::{json, Value};

/// The things of every test here: `s.a:t1`..`s.b:t6`, `s.a:t7` (see the table in each test).
fn dataset() -> Vec<(&'static str, Value)> {
    vec![
        (
            "s.a:t1",
            json!({"attributes": {"n": 1, "name": "alpha", "tags": ["red", "blue"], "on": true,
            "loc": {"room": "kitchen"}}, "features": {"env": {"properties": {"temp": 20.5}}}}),
        ),
        (
            "s.a:t2",
            json!({"attributes": {"n": 2, "name": "beta", "tags": ["blue"], "on": false,
                "levels": [1, 7]},
            "features": {"env": {"properties": {"temp": 22}}}}),
        ),
        (
            "s.a:t3",
            json!({"attributes": {"n": 3.5, "name": "alphabet", "nothing": null},
            "features": {"env": {"properties": {"temp": 19}}}}),
        ),
        (
            "s.b:t4",
            json!({"attributes": {"n": 10, "name": "gamma", "tags": [], "on": true,
            "rooms": [{"room": "bath"}, {"room": "hall"}]}}),
        ),
        (
            "s.b:t5",
            json!({"attributes": {"n": "10", "name": "Alpha"}}),
        ),
        ("s.b:t6", json!({})),
        (
            "s.a:t7",
            json!({"attributes": {"n": -4, "name": "delta"},
            "features": {"env": {"properties": {"temp": 30}}, "door": {"properties": {"open": true}}}}),
        ),
    ]
}

/// Percent-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'('
            | b')'
            | b'/'
            | b','
            | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn load(c: &Http) {
    for (id, body) in dataset() {
        let r = c.put(&format!("/api/2/things/{id}"), &body).await;
        assert_eq!(r.status, 201, "{id}: {}", r.text());
    }
    // one change, so `_revision` differs
    let r = c
        .put("/api/2/things/s.a:t2/attributes/touched", &json!(true))
        .await;
    assert_eq!(r.status, 201);
}

fn item_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|t| t["thingId"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// IDs found by `filter` (all on one page), default order.
async fn found(c: &Http, filter: &str) -> Vec<String> {
    let r = c
        .get(&format!(
            "/api/2/search/things?filter={}&option=size(200)",
            enc(filter)
        ))
        .await;
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    let v = r.json();
    assert!(v.get("cursor").is_none(), "{filter}: one page");
    item_ids(&v["items"])
}

fn short(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .map(|i| {
            let ns = if ["t4", "t5", "t6"].contains(i) {
                "s.b"
            } else {
                "s.a"
            };
            format!("{ns}:{i}")
        })
        .collect()
}

#[test]
fn every_operator_with_search_semantics() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        load(&c).await;
        let table: &[(&str, &[&str])] = &[
            ("eq(attributes/n,1)", &["t1"]),
            ("eq(attributes/n,3.5)", &["t3"]),
            ("eq(attributes/n,10.0)", &["t4"]),
            ("eq(attributes/n,\"10\")", &["t5"]),
            ("ne(attributes/n,1)", &["t2", "t3", "t4", "t5", "t7"]),
            ("gt(attributes/n,2)", &["t3", "t4"]),
            ("ge(attributes/n,2)", &["t2", "t3", "t4"]),
            ("lt(attributes/n,2)", &["t1", "t7"]),
            ("le(attributes/n,1)", &["t1", "t7"]),
            ("gt(attributes/n,\"0\")", &["t5"]),
            ("gt(attributes/n,null)", &[]),
            ("in(attributes/n,1,10,\"10\",99)", &["t1", "t4", "t5"]),
            ("like(attributes/name,\"alpha*\")", &["t1", "t3"]),
            ("ilike(attributes/name,\"ALPHA*\")", &["t1", "t3", "t5"]),
            ("like(attributes/name,\"*ta\")", &["t2", "t7"]),
            ("like(attributes/name,\"?amma\")", &["t4"]),
            ("like(attributes/n,\"1*\")", &["t5"]),
            ("like(attributes/name,\"alpha\")", &["t1"]),
            ("exists(attributes/nothing)", &["t3"]),
            ("exists(features/door)", &["t7"]),
            ("exists(attributes/loc/room)", &["t1"]),
            ("eq(attributes/nothing,null)", &["t3"]),
            ("eq(attributes/tags,\"blue\")", &["t1", "t2"]),
            ("eq(attributes/rooms/room,\"hall\")", &["t4"]),
            ("eq(attributes/on,true)", &["t1", "t4"]),
            ("gt(attributes/on,false)", &["t1", "t4"]),
            ("and(eq(attributes/on,true),gt(attributes/n,5))", &["t4"]),
            // ranges on one path are intersected; multi-valued things may match with two values
            ("and(ge(attributes/n,2),lt(attributes/n,4))", &["t2", "t3"]),
            (
                "and(gt(attributes/levels,5),lt(attributes/levels,3))",
                &["t2"],
            ),
            (
                "and(eq(attributes/tags,\"red\"),eq(attributes/tags,\"blue\"))",
                &["t1"],
            ),
            ("and(eq(attributes/n,1),eq(attributes/n,2))", &[]),
            ("and(gt(attributes/n,1),gt(attributes/n,\"1\"))", &[]),
            (
                "and(exists(attributes/tags),lt(attributes/n,3),like(attributes/name,\"b*\"))",
                &["t2"],
            ),
            (
                "or(eq(attributes/n,1),eq(attributes/name,\"gamma\"),eq(attributes/tags,\"red\"))",
                &["t1", "t4"],
            ),
            ("not(exists(attributes/n))", &["t6"]),
            ("empty(attributes/tags)", &["t3", "t4", "t5", "t6", "t7"]),
            ("gt(features/env/properties/temp,20)", &["t1", "t2", "t7"]),
            ("eq(features/*/properties/open,true)", &["t7"]),
            ("eq(thingId,\"s.a:t2\")", &["t2"]),
            ("in(thingId,\"s.a:t2\",\"s.b:t6\",\"x:y\")", &["t2", "t6"]),
            ("like(thingId,\"s.b:*\")", &["t4", "t5", "t6"]),
            ("gt(thingId,\"s.a:t7\")", &["t4", "t5", "t6"]),
            ("eq(_namespace,\"s.b\")", &["t4", "t5", "t6"]),
            ("gt(_revision,1)", &["t2"]),
            (
                "gt(_modified,\"2000\")",
                &["t1", "t2", "t3", "t4", "t5", "t6", "t7"],
            ),
            (
                "lt(_created,time:now+1h)",
                &["t1", "t2", "t3", "t4", "t5", "t6", "t7"],
            ),
            ("eq(policyId,\"s.a:t1\")", &["t1"]),
        ];
        for (filter, want) in table {
            let mut want = short(want);
            want.sort(); // default order: thingId
            assert_eq!(found(&c, filter).await, want, "{filter}");
        }
    });
}

#[test]
fn things_beyond_the_index_bound_are_still_found() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        load(&c).await;
        // more leaves than the index keeps per thing: stored as an overflow marker
        let mut attrs: serde_json::Map<String, Value> =
            (0..1100).map(|i| (format!("k{i}"), json!(i))).collect();
        attrs.insert("n".into(), json!(2.5));
        attrs.insert("name".into(), json!("alpine"));
        let r = c
            .put("/api/2/things/s.a:big", &json!({"attributes": attrs}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(found(&c, "eq(attributes/k1099,1099)").await, ["s.a:big"]);
        assert_eq!(
            found(&c, "like(attributes/name,\"alp*\")").await,
            ["s.a:big", "s.a:t1", "s.a:t3"]
        );
        let r = c
            .get(&format!(
                "/api/2/search/things?filter={}&option={}&fields=thingId",
                enc("gt(attributes/n,1)"),
                enc("sort(+attributes/n),size(2)")
            ))
            .await;
        assert_eq!(
            item_ids(&r.json()["items"]),
            ["s.a:t2", "s.a:big"],
            "index-ordered page"
        );
        let r = c
            .get(&format!(
                "/api/2/search/things/count?filter={}",
                enc("exists(attributes/k5)")
            ))
            .await;
        assert_eq!(r.text(), "1");
    });
}

#[test]
fn sort_on_several_fields_and_paging_with_cursors() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        load(&c).await;
        // on desc (true > false > absent), then n asc (absent < numbers < strings), then thingId
        let all = short(&["t1", "t4", "t2", "t6", "t7", "t3", "t5"]);
        let mut seen = Vec::new();
        let mut url = format!(
            "/api/2/search/things?option={}&fields=thingId",
            enc("sort(-attributes/on,+attributes/n),size(2)")
        );
        let mut pages = 0;
        loop {
            let r = c.get(&url).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            seen.extend(item_ids(&v["items"]));
            pages += 1;
            match v["cursor"].as_str() {
                // the cursor alone continues the query (filter, namespaces and sort are in it)
                Some(cur) => {
                    url =
                        format!("/api/2/search/things?option=cursor({cur}),size(2)&fields=thingId")
                }
                None => break,
            }
        }
        assert_eq!((seen, pages), (all, 4));

        // an index range driving the sort (ordered scan) and the same without a filter (heap)
        for filter in ["gt(attributes/n,-100)", "exists(attributes/n)"] {
            let mut seen = Vec::new();
            let base = format!("filter={}&option=", enc(filter));
            let mut opt = "sort(%2Battributes/n),size(2)".to_owned();
            loop {
                let r = c.get(&format!("/api/2/search/things?{base}{opt}")).await;
                assert_eq!(r.status, 200, "{}", r.text());
                let v = r.json();
                seen.extend(item_ids(&v["items"]));
                match v["cursor"].as_str() {
                    Some(cur) => opt = format!("sort(%2Battributes/n),size(2),cursor({cur})"),
                    None => break,
                }
            }
            let want = if filter.starts_with("gt") {
                short(&["t7", "t1", "t2", "t3", "t4"])
            } else {
                short(&["t7", "t1", "t2", "t3", "t4", "t5"])
            };
            assert_eq!(seen, want, "{filter}");
        }

        // descending thingId, and the sort of an equality driver
        let r = c
            .get("/api/2/search/things?option=sort(-thingId),size(3)&fields=thingId")
            .await;
        assert_eq!(item_ids(&r.json()["items"]), short(&["t6", "t5", "t4"]));
        let r = c
            .get(&format!(
                "/api/2/search/things?filter={}&option=sort(-attributes/name)",
                enc("eq(attributes/tags,\"blue\")")
            ))
            .await;
        assert_eq!(item_ids(&r.json()["items"]), short(&["t2", "t1"]));

        // a cursor is bound to its query
        let r = c.get("/api/2/search/things?option=size(1)").await;
        let cur = r.json()["cursor"].as_str().expect("cursor").to_owned();
        let r = c
            .get(&format!(
                "/api/2/search/things?filter={}&option=cursor({cur})",
                enc("exists(policyId)")
            ))
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "thing-search:search.option.invalid")
        );
        let r = c
            .get(&format!(
                "/api/2/search/things?option=sort(-thingId),cursor({cur})"
            ))
            .await;
        assert_eq!(r.status, 400);
        let r = c
            .get(&format!(
                "/api/2/search/things?option=cursor({cur}),limit(0,1)"
            ))
            .await;
        assert_eq!(r.status, 400);

        // deprecated limit(offset,count) with nextPageOffset
        let r = c
            .get("/api/2/search/things?option=limit(5,2)&fields=thingId")
            .await;
        let v = r.json();
        assert_eq!(
            (item_ids(&v["items"]), v["nextPageOffset"].clone()),
            (short(&["t5", "t6"]), json!(-1))
        );
        let r = c
            .get("/api/2/search/things?option=limit(1,2)&fields=thingId")
            .await;
        let v = r.json();
        assert_eq!(
            (item_ids(&v["items"]), v["nextPageOffset"].clone()),
            (short(&["t2", "t3"]), json!(3))
        );
        assert!(v.get("cursor").is_none());
    });
}

#[test]
fn fields_namespaces_count_and_listing() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        load(&c).await;
        let r = c
            .get(&format!(
                "/api/2/search/things?filter={}&fields=thingId,attributes/name,_revision",
                enc("eq(attributes/n,2)")
            ))
            .await;
        assert_eq!(
            r.json(),
            json!({"items": [{"thingId": "s.a:t2", "attributes": {"name": "beta"}, "_revision": 2}]})
        );
        let r = c
            .get("/api/2/search/things?filter=eq(attributes/n,1)")
            .await;
        let item = &r.json()["items"][0];
        assert_eq!(
            (
                item["policyId"].as_str(),
                item["features"]["env"]["properties"]["temp"].as_f64()
            ),
            (Some("s.a:t1"), Some(20.5)),
            "without fields: the whole thing"
        );

        let r = c
            .get("/api/2/search/things?namespaces=s.b&fields=thingId")
            .await;
        assert_eq!(item_ids(&r.json()["items"]), short(&["t4", "t5", "t6"]));
        let r = c
            .get(&format!(
                "/api/2/search/things?namespaces=s.b,nope&filter={}",
                enc("exists(attributes/name)")
            ))
            .await;
        assert_eq!(item_ids(&r.json()["items"]), short(&["t4", "t5"]));

        for (q, n) in [
            ("", 7),
            ("?filter=exists(attributes/n)", 6),
            ("?namespaces=s.b", 3),
            (
                &*format!(
                    "?filter={}&namespaces=s.a",
                    enc("like(attributes/name,\"*a\")")
                ),
                3,
            ),
            ("?filter=eq(attributes/n,404)", 0),
        ] {
            let r = c.get(&format!("/api/2/search/things/count{q}")).await;
            assert_eq!((r.status, r.text()), (200, n.to_string()), "count{q}");
            assert_eq!(r.header("content-type"), Some("application/json"));
        }

        // POST with form bodies
        let form = format!(
            "filter={}&option={}&fields=thingId",
            enc("ge(attributes/n,2)"),
            enc("sort(-attributes/n)")
        );
        let r = c
            .send(
                "POST",
                "/api/2/search/things",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(form.as_bytes()),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(item_ids(&r.json()["items"]), short(&["t4", "t3", "t2"]));
        let r = c
            .send(
                "POST",
                "/api/2/search/things/count",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(b"namespaces=s.a"),
            )
            .await;
        assert_eq!(r.text(), "4");
        let r = c
            .post(
                "/api/2/search/things",
                &json!({"filter": "exists(thingId)"}),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (415, "mediatype.unsupported")
        );
        let r = c.delete("/api/2/search/things").await;
        assert_eq!((r.status, r.header("allow")), (405, Some("GET, POST")));

        // the listing is the same search (no filter) as an array with Link headers
        let r = c
            .get("/api/2/things?option=sort(%2Battributes/n),size(4)&fields=thingId")
            .await;
        let listed = item_ids(&r.json());
        let s = c
            .get("/api/2/search/things?option=sort(%2Battributes/n),size(4)&fields=thingId")
            .await;
        assert_eq!(listed, item_ids(&s.json()["items"]));
        assert_eq!(listed, short(&["t6", "t7", "t1", "t2"]));
        let next = r
            .headers_all("link")
            .into_iter()
            .find(|l| l.ends_with("rel=\"next\""))
            .expect("next link")
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let r = c.get(&next).await;
        assert_eq!(
            item_ids(&r.json()),
            short(&["t3", "t4", "t5"]),
            "sort, size and fields kept"
        );
        assert!(r.json()[0].get("attributes").is_none());
    });
}

#[test]
fn bad_queries_get_dittos_errors() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        for (q, code) in [
            ("filter=eq(attributes/n", "rql.expression.invalid"),
            ("filter=foo(attributes/n,1)", "rql.expression.invalid"),
            ("filter=eq(bogus,1)", "rql.expression.invalid"),
            (
                &*format!("filter={}", enc("eq(topic:action,\"created\")")),
                "rql.expression.invalid",
            ),
            ("option=size(201)", "thing-search:search.option.invalid"),
            ("option=size(0)", "thing-search:search.option.invalid"),
            ("option=foo(1)", "thing-search:search.option.invalid"),
            ("option=sort(thingId)", "thing-search:search.option.invalid"),
            ("option=limit(0,300)", "thing-search:search.option.invalid"),
            (
                "option=cursor(nonsense)",
                "thing-search:search.option.invalid",
            ),
            ("namespaces=1bad", "thing-search:search.namespaces.invalid"),
            ("fields=bogus", "things:field.selection.invalid"),
        ] {
            let r = c.get(&format!("/api/2/search/things?{q}")).await;
            assert_eq!(
                (r.status, r.error()),
                (400, code.to_owned()),
                "{q}: {}",
                r.text()
            );
        }
        let r = c.get("/api/2/search/things?filter=eq(attributes/n").await;
        let e = r.json();
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("The given RQL expression was invalid"),
            "{e}"
        );
        assert_eq!(
            e["description"],
            "Ensure that all opening parentheses have also closing ones and that the RQL expression is valid."
        );
        let r = c.get("/api/2/search/things?option=size(201)").await;
        assert_eq!(
            r.json()["message"],
            "Parameter <size> must be less than or equal to <200> but it was <201>!"
        );
        let r = c
            .get("/api/2/search/things/count?filter=eq(attributes/n")
            .await;
        assert_eq!(r.error(), "rql.expression.invalid");
        let r = c.get("/api/2/search/other").await;
        assert_eq!(r.status, 404);
    });
}

#[test]
fn sse_stream_sends_everything_and_resumes_after_last_event_id() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        load(&c).await;
        let path = format!(
            "/api/2/search/things?filter={}&option={}&fields=thingId,attributes/n",
            enc("exists(attributes/n)"),
            enc("sort(-attributes/n),size(1)")
        );
        let mut s = c
            .sse(&path)
            .await
            .unwrap_or_else(|r| panic!("{}", r.text()));
        assert_eq!(s.header("content-type"), Some("text/event-stream"));
        let mut blocks = Vec::new();
        while let Some(b) = s.next_block(WAIT).await {
            blocks.push(b);
        }
        // strings > numbers, descending: "10", then 10, 3.5, 2, 1, -4
        let order = short(&["t5", "t4", "t3", "t2", "t1", "t7"]);
        assert_eq!(blocks.len(), order.len(), "{blocks:?}");
        for (b, id) in blocks.iter().zip(&order) {
            let (data, rest) = b.split_once('\n').unwrap();
            let v: Value = serde_json::from_str(data.strip_prefix("data:").unwrap()).unwrap();
            assert_eq!(v["thingId"], json!(id));
            assert_eq!(rest, format!("id:{id}"));
        }
        let mut hs = vec![("Accept", "text/event-stream"), ("Last-Event-ID", "s.a:t3")];
        let auth = basic("ditto", "ditto");
        hs.push(("Authorization", &auth));
        let mut conn = common::http::Conn::connect(srv.addr).await;
        conn.send(&common::http::request_bytes("GET", &path, &hs, None))
            .await;
        let (status, _) = conn.read_head(WAIT).await.unwrap();
        assert_eq!(status, 200);
        let mut text = String::new();
        while let Some(chunk) = conn.read_chunk(WAIT).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("id:")).collect();
        assert_eq!(ids, ["s.a:t2", "s.a:t1", "s.a:t7"], "strictly after s.a:t3");

        let r = c
            .sse("/api/2/search/things?filter=eq(x")
            .await
            .err()
            .expect("400");
        assert_eq!(r.status, 400);
        let r = c
            .sse("/api/2/search/things?option=cursor(abc)")
            .await
            .err()
            .expect("400");
        assert_eq!(r.status, 400);
    });
}
