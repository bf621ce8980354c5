//! Policies over the HTTP API with the three-subject table of tests/policy/auth_policies.rs,
//! following Ditto's enforcement (ThingCommandEnforcement: a read without READ is 404, a write
//! without WRITE is 403 `*.notmodifiable` / `things:thing.notdeletable` whatever READ says, a
//! merge falls back to `things:thing.notmodifiable`; spec/policies.md §3 said 404 for writes
//! without READ, Ditto's code wins), READ-filtered bodies with the allow-list `thingId`;
//! spec/auth.md: subjects are compared as strings, however they were authenticated.
//!
//! Thing `ns.auth:lamp1` (attributes `location`, features `lamp`, `door`); its inline policy:
//! `nginx:owner` READ+WRITE on `thing:/`, `policy:/`, `message:/`; `nginx:partial` and
//! `test:partial` (JWT) READ on `thing:/features/lamp`; `nginx:none`/`test:none` are not in it.
//!
//! | request (HTTP, `/api/2/things/ns.auth:lamp1…`)   | owner             | partial                                   | none                               |
//! |--------------------------------------------------|-------------------|-------------------------------------------|------------------------------------|
//! | GET (the thing)                                  | 200 full          | 200 `{thingId, features:{lamp}}`          | 404 `things:thing.notfound`         |
//! | GET `?fields=thingId,attributes,features/lamp/properties` | 200 selected | 200 `{thingId, features:{lamp}}`      | 404 `things:thing.notfound`         |
//! | GET `?fields=attributes`                         | 200 `{attributes}`| 200 `{}`                                  | 404 `things:thing.notfound`         |
//! | GET `?fields=thingId,_policy`                    | 200 with policy   | 200 `{thingId}` (no READ on `policy:/`)   | 404 `things:thing.notfound`         |
//! | GET `/features`                                  | 200 all           | 200 `{lamp}`                              | 404 `things:features.notfound`      |
//! | GET `/features?fields=lamp/properties,door`      | 200 both          | 200 `{lamp}`                              | 404 `things:features.notfound`      |
//! | GET `/features/door`                             | 200               | 404 `things:feature.notfound`             | 404 `things:feature.notfound`       |
//! | GET `/features/lamp/properties/on`               | 200 `false`       | 200 `false`                               | 404 `things:feature.property.notfound` |
//! | GET `/attributes`                                | 200               | 404 `things:attributes.notfound`          | 404 `things:attributes.notfound`    |
//! | GET `/policyId`                                  | 200               | 404 `things:policyId.notfound`            | 404 `things:policyId.notfound`      |
//! | PUT `/features/lamp/properties/on`               | 204               | 403 `things:feature.property.notmodifiable` | 403 `things:feature.property.notmodifiable` |
//! | PATCH `/features/lamp`                           | 204               | 403 `things:thing.notmodifiable`          | 403 `things:thing.notmodifiable`    |
//! | PUT `/attributes/location`                       | 204               | 403 `things:attribute.notmodifiable`      | 403 `things:attribute.notmodifiable` |
//! | PUT (the whole thing)                            | 204               | 403 `things:thing.notmodifiable`          | 403 `things:thing.notmodifiable`    |
//! | PATCH (the thing)                                | 204               | 403 `things:thing.notmodifiable`          | 403 `things:thing.notmodifiable`    |
//! | PUT `/policyId`                                  | 204               | 403 `things:policyId.notmodifiable`       | 403 `things:policyId.notmodifiable` |
//! | DELETE `/features/lamp/properties/on`            | (last)            | 403 `things:feature.property.notmodifiable` | 403 `things:feature.property.notmodifiable` |
//! | DELETE `/features/door`                          | (last)            | 403 `things:feature.notmodifiable`        | 403 `things:feature.notmodifiable`  |
//! | DELETE (the thing)                               | (last) 204        | 403 `things:thing.notdeletable`           | 403 `things:thing.notdeletable`     |
//! | PUT `/attributes/x` of `ns.auth:ghost` (no such thing) | -          | 404 `things:thing.notfound`               | 404 `things:thing.notfound`         |
//! | GET `/api/2/things?ids=lamp1,secret1` (+`fields`)| both              | `[lamp1 filtered]` (`fields=attributes`: `[{}]`) | `[]`                        |
//! | GET `/api/2/things?namespaces=ns.auth` listing   | both              | `[lamp1 filtered]`                        | `[]`                               |
//! | … with `option=size(1)`                          | 1 + `next` link   | `[lamp1 filtered]`, no `next`             | `[]`, no `next`                    |
//!
//! The partial and none columns are also run with the same subjects authenticated by
//! `X-Ditto-Pre-Authenticated` from a trusted proxy and by a Bearer JWT (`test:<sub>`); the 404
//! of a read without READ is indistinguishable from the 404 of a thing that does not exist.
//!
//! SSE, creation with inline/copied policies and the policy routes: tests/policy/http_policies_sse.rs.

use crate::authkit;
use crate::common;
use authkit::requester::{table_policy, As, Three};
use authkit::three::THING;
use common::block_on;
use common::http::Resp;
use serde_json::{json, Value};

/// An expected answer.
#[derive(Clone)]
enum E {
    /// status and exact JSON body
    Body(u16, Value),
    /// status and Ditto error code
    Err(u16, &'static str),
    /// status without body
    Empty(u16),
    /// this column is not run for the row
    Skip,
}

fn check(r: &Resp, e: &E, what: &str) {
    match e {
        E::Body(s, v) => assert_eq!((r.status, r.json()), (*s, v.clone()), "{what}"),
        E::Err(s, code) => {
            assert_eq!(
                (r.status, r.error().as_str()),
                (*s, *code),
                "{what}: {}",
                r.text()
            );
        }
        E::Empty(s) => assert_eq!((r.status, r.text()), (*s, String::new()), "{what}"),
        E::Skip => unreachable!("skipped rows are not sent"),
    }
}

type Row = (&'static str, String, Option<Value>, [E; 3]);

/// The request rows of the table (owner writes leave the thing as it is).
fn rows() -> Vec<Row> {
    let t = format!("/api/2/things/{THING}");
    let lamp = json!({"properties": {"on": false}});
    let door = json!({"properties": {"open": true}});
    let full = json!({"thingId": THING, "policyId": THING, "attributes": {"location": "kitchen"},
                      "features": {"lamp": lamp, "door": door}});
    let partial_root = json!({"thingId": THING, "features": {"lamp": lamp}});
    let nf = |c: &'static str| E::Err(404, c);
    let nm = |c: &'static str| E::Err(403, c);
    let body = |v: Value| E::Body(200, v);
    let put_thing = json!({"policyId": THING, "attributes": {"location": "kitchen"},
                           "features": {"lamp": lamp, "door": door}});
    vec![
        (
            "GET",
            t.clone(),
            None,
            [
                body(full.clone()),
                body(partial_root.clone()),
                nf("things:thing.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}?fields=thingId,attributes,features/lamp/properties"),
            None,
            [
                body(
                    json!({"thingId": THING, "attributes": {"location": "kitchen"},
                            "features": {"lamp": lamp}}),
                ),
                body(partial_root.clone()),
                nf("things:thing.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}?fields=attributes"),
            None,
            [
                body(json!({"attributes": {"location": "kitchen"}})),
                body(json!({})),
                nf("things:thing.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}?fields=thingId,_policy"),
            None,
            [
                E::Skip, // content checked in the test
                body(json!({"thingId": THING})),
                nf("things:thing.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}/features"),
            None,
            [
                body(full["features"].clone()),
                body(json!({"lamp": lamp})),
                nf("things:features.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}/features?fields=lamp/properties,door"),
            None,
            [
                body(full["features"].clone()),
                body(json!({"lamp": lamp})),
                nf("things:features.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}/features/door"),
            None,
            [
                body(door.clone()),
                nf("things:feature.notfound"),
                nf("things:feature.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}/features/lamp/properties/on"),
            None,
            [
                body(json!(false)),
                body(json!(false)),
                nf("things:feature.property.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}/attributes"),
            None,
            [
                body(full["attributes"].clone()),
                nf("things:attributes.notfound"),
                nf("things:attributes.notfound"),
            ],
        ),
        (
            "GET",
            format!("{t}/policyId"),
            None,
            [
                body(json!(THING)),
                nf("things:policyId.notfound"),
                nf("things:policyId.notfound"),
            ],
        ),
        (
            "PUT",
            format!("{t}/features/lamp/properties/on"),
            Some(json!(false)),
            [
                E::Empty(204),
                nm("things:feature.property.notmodifiable"),
                nm("things:feature.property.notmodifiable"),
            ],
        ),
        (
            "PATCH",
            format!("{t}/features/lamp"),
            Some(json!({"properties": {"on": false}})),
            [
                E::Empty(204),
                nm("things:thing.notmodifiable"),
                nm("things:thing.notmodifiable"),
            ],
        ),
        (
            "PUT",
            format!("{t}/attributes/location"),
            Some(json!("kitchen")),
            [
                E::Empty(204),
                nm("things:attribute.notmodifiable"),
                nm("things:attribute.notmodifiable"),
            ],
        ),
        (
            "PUT",
            t.clone(),
            Some(put_thing),
            [
                E::Empty(204),
                nm("things:thing.notmodifiable"),
                nm("things:thing.notmodifiable"),
            ],
        ),
        (
            "PATCH",
            t.clone(),
            Some(json!({"attributes": {"location": "kitchen"}})),
            [
                E::Empty(204),
                nm("things:thing.notmodifiable"),
                nm("things:thing.notmodifiable"),
            ],
        ),
        (
            "PUT",
            format!("{t}/policyId"),
            Some(json!(THING)),
            [
                E::Empty(204),
                nm("things:policyId.notmodifiable"),
                nm("things:policyId.notmodifiable"),
            ],
        ),
        (
            "DELETE",
            format!("{t}/features/lamp/properties/on"),
            None,
            [
                E::Skip,
                nm("things:feature.property.notmodifiable"),
                nm("things:feature.property.notmodifiable"),
            ],
        ),
        (
            "DELETE",
            format!("{t}/features/door"),
            None,
            [
                E::Skip,
                nm("things:feature.notmodifiable"),
                nm("things:feature.notmodifiable"),
            ],
        ),
        (
            "DELETE",
            t.clone(),
            None,
            [
                E::Skip,
                nm("things:thing.notdeletable"),
                nm("things:thing.notdeletable"),
            ],
        ),
        (
            "PUT",
            "/api/2/things/ns.auth:ghost/attributes/x".to_owned(),
            Some(json!(1)),
            [
                E::Skip,
                nf("things:thing.notfound"),
                nf("things:thing.notfound"),
            ],
        ),
    ]
}

/// Runs every row for each requester in `who` against column `col[i]`.
async fn run_rows(who: &[(&str, &As, usize)]) {
    for (method, path, body, expect) in rows() {
        for (name, a, col) in who {
            if matches!(expect[*col], E::Skip) {
                continue;
            }
            let r = a.send(method, &path, body.as_ref()).await;
            check(&r, &expect[*col], &format!("{method} {path} as {name}"));
        }
    }
}

/// `Link` targets with `rel="next"`.
fn next_link(r: &Resp) -> Option<String> {
    r.headers_all("link").iter().find_map(|l| {
        l.strip_suffix("; rel=\"next\"")
            .map(|u| u.trim_matches(['<', '>']).to_owned())
    })
}

#[test]
fn things_over_http_follow_read_and_write_of_the_policy() {
    let three = Three::start();
    let (a, owner, partial, none) = (three.addr(), &three.owner, &three.partial, &three.none);
    block_on(async {
        three.create_thing().await;
        let r = owner
            .put(
                "/api/2/things/ns.auth:secret1",
                &json!({"attributes": {"x": 1}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());

        run_rows(&[
            ("owner", owner, 0),
            ("partial", partial, 1),
            ("none", none, 2),
        ])
        .await;
        // the same subjects authenticated another way get the same answers
        let partial_pre = As::pre_authenticated(a, "nginx:partial");
        let partial_jwt = As::jwt(a, "partial");
        let none_pre = As::pre_authenticated(a, "nginx:none");
        let none_jwt = As::jwt(a, "none");
        run_rows(&[
            ("partial (pre-authenticated)", &partial_pre, 1),
            ("partial (JWT)", &partial_jwt, 1),
            ("none (pre-authenticated)", &none_pre, 2),
            ("none (JWT)", &none_jwt, 2),
        ])
        .await;

        // fields=_policy: the policy inline for who may read it
        let r = owner
            .get(&format!("/api/2/things/{THING}?fields=thingId,_policy"))
            .await;
        assert_eq!(r.json()["_policy"]["policyId"], THING);
        let mut entries = table_policy()["entries"].clone();
        for e in entries.as_object_mut().unwrap().values_mut() {
            e["importable"] = json!("implicit");
        }
        assert_eq!(
            r.json()["_policy"]["entries"],
            entries,
            "as Ditto writes them"
        );
        assert_eq!(r.json()["_policy"]["imports"], json!({}));

        // 404 without READ is the same answer as for a thing that does not exist
        let hidden = none.get(&format!("/api/2/things/{THING}")).await;
        let missing = none.get("/api/2/things/ns.auth:missing").await;
        assert_eq!(
            hidden.text().replace(THING, "ID"),
            missing.text().replace("ns.auth:missing", "ID")
        );

        // retrieve by ids: unreadable skipped, partially readable filtered, request order kept
        let secret = json!({"thingId": "ns.auth:secret1", "policyId": "ns.auth:secret1",
                            "attributes": {"x": 1}});
        let lamp_only =
            json!({"thingId": THING, "features": {"lamp": {"properties": {"on": false}}}});
        let ids = format!("/api/2/things?ids=ns.auth:secret1,{THING}");
        let r = owner.get(&ids).await;
        assert_eq!(r.json()[0], secret);
        assert_eq!(r.json()[1]["attributes"], json!({"location": "kitchen"}));
        for p in [partial, &partial_jwt, &partial_pre] {
            assert_eq!(p.get(&ids).await.json(), json!([lamp_only]));
        }
        for n in [none, &none_jwt] {
            assert_eq!(n.get(&ids).await.json(), json!([]));
        }
        let with_fields = format!("{ids}&fields=thingId,features/lamp/properties/on,attributes");
        assert_eq!(
            owner.get(&with_fields).await.json(),
            json!([{"thingId": "ns.auth:secret1", "attributes": {"x": 1}},
                   {"thingId": THING, "attributes": {"location": "kitchen"},
                    "features": {"lamp": {"properties": {"on": false}}}}])
        );
        assert_eq!(partial.get(&with_fields).await.json(), json!([lamp_only]));
        // as in Ditto (one RetrieveThing per ID): a readable thing whose selected fields are all
        // unreadable is an empty object, not skipped
        assert_eq!(
            partial
                .get(&format!("{ids}&fields=attributes"))
                .await
                .json(),
            json!([{}])
        );

        // listing: only readable things, pages counted in readable things
        let list = "/api/2/things?namespaces=ns.auth";
        let r = owner.get(list).await;
        assert_eq!(r.json().as_array().map(Vec::len), Some(2));
        assert_eq!(r.json()[1], secret);
        assert_eq!(partial.get(list).await.json(), json!([lamp_only]));
        assert_eq!(none.get(list).await.json(), json!([]));
        let paged = format!("{list}&option=size(1)");
        let r = owner.get(&paged).await;
        assert_eq!(r.json()[0]["thingId"], THING);
        let next = next_link(&r).expect("owner: a next page");
        let r = owner.get(&next).await;
        assert_eq!(r.json(), json!([secret]));
        assert_eq!(next_link(&r), None);
        let r = partial.get(&paged).await;
        assert_eq!(r.json(), json!([lamp_only]));
        assert_eq!(next_link(&r), None, "partial: nothing readable follows");
        let r = none.get(&paged).await;
        assert_eq!((r.json(), next_link(&r)), (json!([]), None));

        // the owner's deletes come last
        let t = format!("/api/2/things/{THING}");
        for path in [format!("{t}/features/lamp/properties/on"), t.clone()] {
            let r = owner.send("DELETE", &path, None).await;
            assert_eq!(r.status, 204, "owner DELETE {path}");
        }
        let r = owner.get(&t).await;
        assert_eq!(r.error(), "things:thing.notfound");
    });
}
