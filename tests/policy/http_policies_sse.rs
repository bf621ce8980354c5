//! Policies on SSE streams and on things created over HTTP, with the three-subject setup of
//! tests/policy/http_policies.rs (same thing, policy and requesters: Basic, pre-authenticated, JWT),
//! following spec/policies.md §3 (event visibility) and §5 (policy of a new thing).
//!
//! | SSE stream, owner changes over HTTP                   | owner                  | partial                              | none          |
//! |-------------------------------------------------------|------------------------|--------------------------------------|---------------|
//! | `/api/2/things?extraFields=attributes/location,features/lamp`: PUT `/attributes/location` | delivered with extra | not delivered | not delivered |
//! | … PUT `/features/lamp/properties/on`                  | delivered              | `{thingId, features:{lamp}}` (extra: only lamp) | not delivered |
//! | … PATCH `/` attributes + lamp                         | delivered              | only `features/lamp`                 | not delivered |
//! | … PUT `/features/door/properties/open`                | delivered              | not delivered                        | not delivered |
//! | `?fields=thingId,_revision,attributes,features/lamp`  | -                      | `thingId`, `_revision` + lamp only   | -             |
//! | `/api/2/things/ns.auth:lamp1/features/lamp/properties/on` | -                  | raw values                           | not delivered |
//!
//! (none proves "not delivered": READ on `thing:/features/lamp` is granted to it at the end, and
//! the first event its streams deliver is the one after that grant.)
//!
//! | create over HTTP (`PUT /api/2/things/{new id}`)         | owner                       | partial                        |
//! |---------------------------------------------------------|-----------------------------|--------------------------------|
//! | inline `_policy`                                        | 201, policy created with the thing ID | -                    |
//! | `_copyPolicyFrom: <policy id>`                          | 201, copy under the thing ID | 404 `policies:policy.notfound` (no READ on the policy) |
//! | `_copyPolicyFrom: {{ ref:things/<id>/policyId }}`       | 201, copy                   | 400 `placeholder:placeholder.reference.unknownfield` (thing partly readable, `policyId` not) |
//! | same reference, requester `none`                        | -                           | 404 `things:thing.notfound`    |
//!
//! Policy routes (`/api/2/policies/...`) follow the request rules of every HTTP route:
//! `correlation-id` (header or query, echoed on errors), duplicate header 400, absolute
//! `Location`, 405 with `Allow`, `json.invalid`, 413 `policies:policy.toolarge`.

use crate::authkit;
use crate::common;
use authkit::requester::{table_policy, As, Three};
use authkit::three::THING;
use common::http::Sse;
use common::{block_on, WAIT};
use serde_json::{json, Value};

/// Data of SSE events until (and including) the one that contains `"final"`.
async fn until_final(s: &mut Sse) -> Vec<Value> {
    let mut out = vec![];
    loop {
        let v = s.next_json(WAIT).await.expect("events up to the final one");
        let done = v.to_string().contains("\"final\"");
        out.push(v);
        if done {
            return out;
        }
    }
}

#[test]
fn sse_streams_deliver_only_what_the_subscriber_may_read() {
    let three = Three::start();
    let (a, owner) = (three.addr(), &three.owner);
    block_on(async {
        let t = format!("/api/2/things/{THING}");
        three.create_thing().await;
        let all = "/api/2/things?namespaces=ns.auth&extraFields=attributes/location,features/lamp";
        let mut owner2 = As::basic(a, "owner").sse(all).await;
        let mut partial = As::basic(a, "partial").sse(all).await;
        let mut partial_jwt = As::jwt(a, "partial").sse(all).await;
        let mut partial_pre = As::pre_authenticated(a, "nginx:partial").sse(all).await;
        let mut none = As::basic(a, "none").sse(all).await;
        let mut none_jwt = As::jwt(a, "none").sse(all).await;
        let fields = "/api/2/things?fields=thingId,_revision,attributes,features/lamp";
        let mut partial_fields = As::basic(a, "partial").sse(fields).await;
        let on = format!("{t}/features/lamp/properties/on");
        let mut partial_on = As::basic(a, "partial").sse(&on).await;
        let mut none_on = As::basic(a, "none").sse(&on).await;

        let changes = [
            ("PUT", format!("{t}/attributes/location"), json!("hall")),
            ("PUT", on.clone(), json!(true)),
            (
                "PATCH",
                t.clone(),
                json!({"attributes": {"location": "attic"}, "features": {"lamp": {"properties": {"on": false}}}}),
            ),
            (
                "PUT",
                format!("{t}/features/door/properties/open"),
                json!(false),
            ),
        ];
        for (m, p, v) in &changes {
            let r = owner.send(m, p, Some(v)).await;
            assert_eq!(r.status, 204, "{m} {p}: {}", r.text());
        }
        // none may read the lamp from now on; the next event is the first it sees
        let late = json!({"subjects": {"nginx:none": {"type": "t"}, "test:none": {"type": "t"}},
                          "resources": {"thing:/features/lamp": {"grant": ["READ"], "revoke": []}}});
        let r = owner
            .put(&format!("/api/2/policies/{THING}/entries/late"), &late)
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = owner.put(&on, &json!("final")).await;
        assert_eq!(r.status, 204);

        let lamp = |on: Value| json!({"lamp": {"properties": {"on": on}}});
        let owner_view = |loc: &str, on: Value| json!({"thingId": THING, "attributes": {"location": loc}, "features": lamp(on)});
        let mut door_event = owner_view("attic", json!(false));
        door_event["features"]["door"] = json!({"properties": {"open": false}});
        assert_eq!(
            until_final(&mut owner2).await,
            vec![
                owner_view("hall", json!(false)),
                owner_view("hall", json!(true)),
                owner_view("attic", json!(false)),
                door_event,
                owner_view("attic", json!("final")),
            ]
        );
        let partial_view = |on: Value| json!({"thingId": THING, "features": lamp(on)});
        let seen = vec![
            partial_view(json!(true)),
            partial_view(json!(false)),
            partial_view(json!("final")),
        ];
        for (who, s) in [
            ("partial", &mut partial),
            ("partial (JWT)", &mut partial_jwt),
            ("partial (pre-authenticated)", &mut partial_pre),
        ] {
            assert_eq!(until_final(s).await, seen, "{who}");
        }
        for (who, s) in [("none", &mut none), ("none (JWT)", &mut none_jwt)] {
            assert_eq!(
                until_final(s).await,
                vec![partial_view(json!("final"))],
                "{who}"
            );
        }
        let with_rev =
            |on: Value, rev: u64| json!({"thingId": THING, "_revision": rev, "features": lamp(on)});
        assert_eq!(
            until_final(&mut partial_fields).await,
            vec![
                with_rev(json!(true), 3),
                with_rev(json!(false), 4),
                with_rev(json!("final"), 6)
            ]
        );
        assert_eq!(
            until_final(&mut partial_on).await,
            vec![json!(true), json!(false), json!("final")]
        );
        assert_eq!(until_final(&mut none_on).await, vec![json!("final")]);
    });
}

#[test]
fn things_created_over_http_with_inline_or_copied_policies() {
    let three = Three::start();
    let (_a, owner, partial, none) = (three.addr(), &three.owner, &three.partial, &three.none);
    block_on(async {
        let r = three.create_thing().await;
        assert_eq!(
            r.json(),
            json!({"thingId": THING, "policyId": THING, "attributes": {"location": "kitchen"},
                   "features": {"lamp": {"properties": {"on": false}}, "door": {"properties": {"open": true}}}}),
            "the created thing, without the inline policy"
        );
        let r = owner.get(&format!("/api/2/policies/{THING}")).await;
        let mut entries = table_policy()["entries"].clone();
        for e in entries.as_object_mut().unwrap().values_mut() {
            e["importable"] = json!("implicit");
        }
        assert_eq!(r.json()["entries"], entries, "as Ditto writes them");
        assert_eq!(r.json()["imports"], json!({}));

        let body = |copy: &str| {
            json!({"_copyPolicyFrom": copy, "attributes": {"a": 1},
                   "features": {"lamp": {"properties": {"on": true}}}})
        };
        let by_ref = format!("{{{{ ref:things/{THING}/policyId }}}}");
        for (id, copy) in [
            ("ns.copy:by-id", THING),
            ("ns.copy:by-ref", by_ref.as_str()),
        ] {
            let r = owner.put(&format!("/api/2/things/{id}"), &body(copy)).await;
            assert_eq!(r.status, 201, "{id}: {}", r.text());
            assert_eq!(
                r.json()["policyId"],
                id,
                "{id}: a copy under the thing's ID"
            );
            assert!(r.json().get("_copyPolicyFrom").is_none());
            let p = owner.get(&format!("/api/2/policies/{id}")).await;
            assert_eq!(p.json()["entries"], entries, "{id}");
            // the copy is in force: partial reads the lamp only
            let r = partial.get(&format!("/api/2/things/{id}")).await;
            assert_eq!(
                r.json(),
                json!({"thingId": id, "features": {"lamp": {"properties": {"on": true}}}}),
                "{id}"
            );
        }
        // partial may not read the policy; it may read the thing but not its policyId
        let r = partial.put("/api/2/things/ns.copy:p1", &body(THING)).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (404, "policies:policy.notfound")
        );
        let r = partial
            .put("/api/2/things/ns.copy:p1", &body(&by_ref))
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "placeholder:placeholder.reference.unknownfield"),
            "{}",
            r.text()
        );
        let r = none.put("/api/2/things/ns.copy:n1", &body(&by_ref)).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (404, "things:thing.notfound")
        );
        assert_eq!(
            owner.get("/api/2/things/ns.copy:p1").await.status,
            404,
            "nothing was created by the refused requests"
        );
    });
}

#[test]
fn policy_routes_follow_the_shared_http_request_rules() {
    let three = Three::start();
    let (owner, none) = (&three.owner, &three.none);
    block_on(async {
        let p = "/api/2/policies/ns.p:one";
        let body = table_policy().to_string();
        let r = owner
            .http
            .send(
                "PUT",
                p,
                &[
                    ("Content-Type", "application/json"),
                    ("correlation-id", "c-1"),
                ],
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("correlation-id"), Some("c-1"));
        assert_eq!(
            r.header("location"),
            Some("http://127.0.0.1/api/2/policies/ns.p:one")
        );
        assert!(r.header("etag").is_some());
        // query parameters: fields, and correlation-id as a query header (echoed on errors too)
        let r = owner.get(&format!("{p}?fields=policyId")).await;
        assert_eq!(r.json(), json!({"policyId": "ns.p:one"}));
        let r = none.get(&format!("{p}?correlation-id=c-2")).await;
        assert_eq!(
            (r.status, r.error().as_str(), r.header("correlation-id")),
            (404, "policies:policy.notfound", Some("c-2"))
        );
        let r = owner
            .http
            .send(
                "GET",
                &format!("{p}?correlation-id=a"),
                &[("correlation-id", "b")],
                None,
            )
            .await;
        assert_eq!(r.error(), "gateway:duplicate.header.field");
        let r = owner.send("POST", p, Some(&json!({}))).await;
        assert_eq!(
            (r.status, r.error().as_str(), r.header("allow")),
            (405, "gateway:method.notallowed", Some("GET, PUT, DELETE"))
        );
        let r = owner
            .http
            .send(
                "PUT",
                p,
                &[("Content-Type", "application/json")],
                Some(b"{nope"),
            )
            .await;
        assert_eq!((r.status, r.error().as_str()), (400, "json.invalid"));
        let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(257 * 1024));
        let r = owner
            .http
            .send(
                "PUT",
                p,
                &[("Content-Type", "application/json")],
                Some(huge.as_bytes()),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (413, "policies:policy.toolarge")
        );
        let r = owner.send("DELETE", p, None).await;
        assert_eq!(r.status, 204);
    });
}
