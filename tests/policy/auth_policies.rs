//! Policies end to end over real sockets with three subjects, following Ditto's documented rules
//! (basic-policy.md, basic-auth-checkpermissions.md; spec/policies.md section 3):
//!
//! Policy of thing `ns.auth:lamp1`: `nginx:owner` READ+WRITE on `thing:/`, `policy:/`, `message:/`;
//! `nginx:partial` READ on `thing:/features/lamp` only; `nginx:none` not in the policy.
//!
//! | request (WS)                               | owner        | partial                               | none                       |
//! |--------------------------------------------|--------------|---------------------------------------|----------------------------|
//! | retrieve `/`                               | 200 full     | 200 `{thingId, features:{lamp}}`      | 404 `things:thing.notfound` |
//! | retrieve `/features`                       | 200 all      | 200 `{lamp}`                          | 404 `features.notfound`    |
//! | retrieve `/features/door`                  | 200          | 404 `things:feature.notfound`         | 404 `feature.notfound`     |
//! | retrieve `/attributes`                     | 200          | 404 `things:attributes.notfound`      | 404                        |
//! | modify `/features/lamp/properties/on`      | 204          | 403 `feature.property.notmodifiable`  | 403 `feature.property.notmodifiable` |
//! | modify `/attributes/location`              | 204          | 403 `things:attribute.notmodifiable`  | 403 `attribute.notmodifiable` |
//! | merge `/features/lamp` (leaf not writable) | -            | 403 `things:thing.notmodifiable`      | -                          |
//! | delete `/`                                 | (not run)    | 403 `things:thing.notdeletable`       | 403 `things:thing.notdeletable` |
//! | retrieve-multiple `[lamp1, secret1]`       | both         | `[lamp1 filtered]`                    | `[]`                       |
//!
//! | event caused by owner                      | owner2 (other session) | partial                     | none          |
//! |--------------------------------------------|------------------------|-----------------------------|---------------|
//! | modify `/attributes/location`              | delivered              | not delivered               | not delivered |
//! | modify `/features/lamp/properties/on`      | delivered              | delivered, same value       | not delivered |
//! | merge `/` attributes + lamp                | delivered, full patch  | delivered, only `features/lamp` | not delivered |
//! | `extra` (attributes/location, features/lamp) | full                 | only `features/lamp`        | -             |
//!
//! A write without WRITE is 403 whatever READ says (Ditto's ThingCommandToModifyExceptionRegistry;
//! a merge falls back to `things:thing.notmodifiable`); a read without READ is 404.
//!
//! HTTP: `/api/2/policies/...` GET/PUT/DELETE with the same subjects (policies as Ditto writes
//! them: `imports` and each entry's `importable` always present); `/api/2/whoami`.

use crate::authkit;
use crate::common;
use authkit::three::{policy, thing_json, THING};
use authkit::{http, start, user};
use common::{block_on, command, modify, Ws, WAIT};
use serde_json::{json, Value};

/// Entries as Ditto serialises them: each with `"importable": "implicit"` unless it has one.
fn with_defaults(entries: &Value) -> Value {
    let mut e = entries.clone();
    for entry in e.as_object_mut().unwrap().values_mut() {
        if entry.get("importable").is_none() {
            entry["importable"] = json!("implicit");
        }
    }
    e
}

async fn ws(env: &authkit::Env, who: &str) -> Ws {
    Ws::connect_with(env.srv.addr, "/ws/2", &[("authorization", user(who))])
        .await
        .expect("ws connect")
}

fn check(r: &Value, status: u64, expect: &Value, what: &str) {
    assert_eq!(r["status"], status, "{what}: {r}");
    if let Some(code) = expect.as_str().filter(|c| c.contains(':')) {
        assert_eq!(r["value"]["error"], code, "{what}: {r}");
        assert_eq!(r["topic"], "ns.auth/lamp1/things/twin/errors", "{what}");
    } else if !expect.is_null() {
        assert_eq!(&r["value"], expect, "{what}");
    }
}

#[test]
fn three_subjects_retrieve_modify_and_delete_as_documented() {
    let env = start(&["owner", "partial", "none"], "");
    block_on(async {
        let mut owner = ws(&env, "owner").await;
        let mut partial = ws(&env, "partial").await;
        let mut none = ws(&env, "none").await;
        let r = owner
            .request(command(THING, "create", "/", Some(thing_json())))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let r = owner
            .request(command(
                "ns.auth:secret1",
                "create",
                "/",
                Some(json!({"attributes": {"x": 1}})),
            ))
            .await;
        assert_eq!(r["status"], 201);
        // the policy over WS as Ditto writes it: `imports` and every entry's `importable`
        let r = owner
            .request(json!({"topic": "ns.auth/lamp1/policies/commands/retrieve", "path": "/"}))
            .await;
        assert_eq!(r["value"]["imports"], json!({}), "{r}");
        assert_eq!(r["value"]["entries"], with_defaults(&policy()["entries"]));
        let r = owner
            .request(json!({"topic": "ns.auth/lamp1/policies/commands/retrieve",
                            "path": "/entries/partial"}))
            .await;
        assert_eq!(r["value"]["importable"], "implicit", "{r}");
        let lamp = json!({"properties": {"on": false}});
        let full = json!({"thingId": THING, "policyId": THING, "attributes": {"location": "kitchen"},
            "features": {"lamp": lamp, "door": {"properties": {"open": true}}}});
        type Row<'a> = (&'a str, &'a str, Option<Value>, [(u64, Value); 3]);
        let nf = |c: &str| (404, json!(c));
        let rows: Vec<Row> = vec![
            (
                "retrieve",
                "/",
                None,
                [
                    (200, full.clone()),
                    (200, json!({"thingId": THING, "features": {"lamp": lamp}})),
                    nf("things:thing.notfound"),
                ],
            ),
            (
                "retrieve",
                "/features",
                None,
                [
                    (200, full["features"].clone()),
                    (200, json!({"lamp": lamp})),
                    nf("things:features.notfound"),
                ],
            ),
            (
                "retrieve",
                "/features/door",
                None,
                [
                    (200, full["features"]["door"].clone()),
                    nf("things:feature.notfound"),
                    nf("things:feature.notfound"),
                ],
            ),
            (
                "retrieve",
                "/attributes",
                None,
                [
                    (200, full["attributes"].clone()),
                    nf("things:attributes.notfound"),
                    nf("things:attributes.notfound"),
                ],
            ),
            (
                "modify",
                "/features/lamp/properties/on",
                Some(json!(false)),
                [
                    (204, Value::Null),
                    (403, json!("things:feature.property.notmodifiable")),
                    (403, json!("things:feature.property.notmodifiable")),
                ],
            ),
            (
                "modify",
                "/attributes/location",
                Some(json!("kitchen")),
                [
                    (204, Value::Null),
                    (403, json!("things:attribute.notmodifiable")),
                    (403, json!("things:attribute.notmodifiable")),
                ],
            ),
        ];
        for (action, path, value, expect) in rows {
            for (i, ws) in [&mut owner, &mut partial, &mut none]
                .into_iter()
                .enumerate()
            {
                let r = ws
                    .request(command(THING, action, path, value.clone()))
                    .await;
                check(
                    &r,
                    expect[i].0,
                    &expect[i].1,
                    &format!("{action} {path} as #{i}"),
                );
            }
        }
        let r = partial.request(command(THING, "delete", "/", None)).await;
        check(
            &r,
            403,
            &json!("things:thing.notdeletable"),
            "partial delete",
        );
        let r = none.request(command(THING, "delete", "/", None)).await;
        check(&r, 403, &json!("things:thing.notdeletable"), "none delete");
        let multi = json!({"topic": "_/_/things/twin/commands/retrieve", "path": "/",
                           "value": {"thingIds": [THING, "ns.auth:secret1"]}});
        let r = owner.request(multi.clone()).await;
        assert_eq!(r["value"].as_array().map(Vec::len), Some(2));
        let r = partial.request(multi.clone()).await;
        assert_eq!(
            r["value"],
            json!([{"thingId": THING, "features": {"lamp": lamp}}])
        );
        let r = none.request(multi).await;
        assert_eq!(r["value"], json!([]));
        // fields=_policy: the policy content needs READ on policy:/
        let mut c = command(THING, "retrieve", "/", None);
        c["fields"] = json!("thingId,_policy");
        let r = owner.request(c.clone()).await;
        assert_eq!(r["value"]["_policy"]["policyId"], THING);
        let r = partial.request(c).await;
        assert_eq!(r["value"], json!({"thingId": THING}));
        // a merge touching an unwritable leaf is refused as a whole
        let mut m = command(
            THING,
            "merge",
            "/features/lamp",
            Some(json!({"properties": {"on": true}})),
        );
        m["headers"]["content-type"] = json!("application/merge-patch+json");
        let r = partial.request(m).await;
        assert_eq!(r["value"]["error"], "things:thing.notmodifiable", "{r}");
    });
}

/// Collects events until the marker event (on `ns.auth:marker`) arrives.
async fn events_until_marker(ws: &mut Ws) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    loop {
        let e = ws.next_event(WAIT).await.expect("marker event");
        if e["topic"]
            .as_str()
            .unwrap_or("")
            .starts_with("ns.auth/marker/")
        {
            return out;
        }
        out.push((
            e["path"].as_str().unwrap_or("").to_owned(),
            e["value"].clone(),
            e["extra"].clone(),
        ));
    }
}

#[test]
fn events_and_extra_are_filtered_by_read_per_subscriber() {
    let env = start(&["owner", "partial", "none"], "");
    block_on(async {
        let mut owner = ws(&env, "owner").await;
        let r = owner
            .request(command(THING, "create", "/", Some(thing_json())))
            .await;
        assert_eq!(r["status"], 201);
        // the marker thing is readable by every subscriber
        let mut p = policy();
        p["entries"]["all"] = json!({"subjects": {"nginx:partial": {"type": "t"}, "nginx:none": {"type": "t"}},
                                      "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}});
        let r = owner
            .request(command(
                "ns.auth:marker",
                "create",
                "/",
                Some(json!({"_policy": p})),
            ))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let sub =
            "START-SEND-EVENTS?extraFields=attributes/location,features/lamp&namespaces=ns.auth";
        let mut owner2 = ws(&env, "owner").await;
        let mut partial = ws(&env, "partial").await;
        let mut none = ws(&env, "none").await;
        for s in [&mut owner2, &mut partial, &mut none] {
            s.control(sub).await;
        }
        owner
            .request(modify(THING, "/attributes/location", json!("hall")))
            .await;
        owner
            .request(modify(THING, "/features/lamp/properties/on", json!(true)))
            .await;
        let patch = json!({"attributes": {"location": "attic"}, "features": {"lamp": {"properties": {"on": false}}}});
        let mut m = command(THING, "merge", "/", Some(patch.clone()));
        m["headers"]["content-type"] = json!("application/merge-patch+json");
        let r = owner.request(m).await;
        assert_eq!(r["status"], 204, "{r}");
        owner
            .request(modify("ns.auth:marker", "/attributes/n", json!(1)))
            .await;

        let lamp = |on: bool| json!({"features": {"lamp": {"properties": {"on": on}}}});
        let full_extra = |loc: &str, on: bool| {
            let mut x = lamp(on);
            x["attributes"] = json!({"location": loc});
            x
        };
        let got = events_until_marker(&mut owner2).await;
        assert_eq!(
            got,
            vec![
                (
                    "/attributes/location".into(),
                    json!("hall"),
                    full_extra("hall", false)
                ),
                (
                    "/features/lamp/properties/on".into(),
                    json!(true),
                    full_extra("hall", true)
                ),
                ("/".into(), patch, full_extra("attic", false)),
            ]
        );
        let got = events_until_marker(&mut partial).await;
        assert_eq!(
            got,
            vec![
                (
                    "/features/lamp/properties/on".into(),
                    json!(true),
                    lamp(true)
                ),
                ("/".into(), lamp(false), lamp(false)),
            ]
        );
        assert_eq!(events_until_marker(&mut none).await, vec![]);
    });
}

#[test]
fn policy_announcements_reach_the_expiring_subject_and_the_subject_is_removed() {
    let env = start(&["owner", "partial"], "");
    block_on(async {
        let mut owner = ws(&env, "owner").await;
        let mut partial = ws(&env, "partial").await;
        partial.control("START-SEND-POLICY-ANNOUNCEMENTS").await;
        owner.control("START-SEND-POLICY-ANNOUNCEMENTS").await;
        let expiry_ms = (edgetwin::clock::now_millis() / 1000 + 4) * 1000;
        let expiry = edgetwin::clock::format_millis(expiry_ms);
        let mut p = policy();
        p["entries"]["partial"]["subjects"]["nginx:partial"] = json!({"type": "test", "expiry": expiry,
            "announcement": {"beforeExpiry": "3s", "whenDeleted": true}});
        let create =
            json!({"topic": "ns.auth/pol1/policies/commands/create", "path": "/", "value": p});
        let r = owner.request(create).await;
        assert_eq!(r["status"], 201, "{r}");
        for _ in 0..2 {
            let a: Value = serde_json::from_str(&partial.recv_text().await).unwrap();
            assert_eq!(
                a["topic"],
                "ns.auth/pol1/policies/announcements/subjectDeletion"
            );
            assert_eq!(a["path"], "/");
            assert_eq!(
                a["value"],
                json!({"deleteAt": expiry, "subjectIds": ["nginx:partial"]})
            );
        }
        // the owner is not among the subjectIds: its next frame is the answer to its request
        let get = json!({"topic": "ns.auth/pol1/policies/commands/retrieve", "headers": {"correlation-id": "g"},
                         "path": "/entries/partial/subjects"});
        owner.send(&get).await;
        let r = owner.recv().await;
        assert_eq!(
            r["headers"]["correlation-id"], "g",
            "no announcement for the owner: {r}"
        );
        assert_eq!(r["value"], json!({}), "the expired subject was removed");
    });
}

#[test]
fn policies_over_http_with_whoami() {
    let env = start(&["owner", "partial", "none"], "");
    let a = env.srv.addr;
    let h = |who: &str| vec![("authorization", user(who))];
    let r = http(a, "GET", "/api/2/whoami", &h("partial"), None);
    assert_eq!(
        r.json(),
        json!({"defaultSubject": "nginx:partial", "subjects": ["nginx:partial"]})
    );
    let mut p = policy();
    p["entries"]["partial"]["resources"]["policy:/entries/partial"] =
        json!({"grant": ["READ"], "revoke": []});
    let body = p.to_string();
    let r = http(
        a,
        "PUT",
        "/api/2/policies/ns.auth:p1",
        &h("owner"),
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["policyId"], "ns.auth:p1");
    assert_eq!(
        r.json()["imports"],
        json!({}),
        "Ditto always writes imports"
    );
    assert_eq!(r.json()["entries"], with_defaults(&p["entries"]));
    assert_eq!(
        http(
            a,
            "PUT",
            "/api/2/policies/ns.auth:p1",
            &h("owner"),
            Some(&body)
        )
        .status,
        204
    );
    let r = http(a, "GET", "/api/2/policies/ns.auth:p1", &h("partial"), None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"policyId": "ns.auth:p1",
               "entries": {"partial": with_defaults(&p["entries"])["partial"]}}),
        "imports left out: partial may not READ policy:/imports"
    );
    let r = http(a, "GET", "/api/2/policies/ns.auth:p1", &h("owner"), None);
    assert_eq!(r.json()["imports"], json!({}));
    assert_eq!(r.json()["entries"], with_defaults(&p["entries"]));
    let r = http(
        a,
        "GET",
        "/api/2/policies/ns.auth:p1/entries/partial/importable",
        &h("owner"),
        None,
    );
    assert_eq!((r.status, r.json()), (200, json!("implicit")));
    let r = http(a, "GET", "/api/2/policies/ns.auth:p1", &h("none"), None);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("policies:policy.notfound"))
    );
    let sub = "/api/2/policies/ns.auth:p1/entries/partial/subjects/google:x%2Fy";
    let r = http(a, "PUT", sub, &h("partial"), Some(r#"{"type":"t"}"#));
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("policies:subject.notmodifiable"))
    );
    // a write without WRITE is 403 also without any READ (Ditto's PolicyCommandEnforcement)
    let r = http(a, "PUT", sub, &h("none"), Some(r#"{"type":"t"}"#));
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("policies:subject.notmodifiable"))
    );
    let r = http(a, "DELETE", "/api/2/policies/ns.auth:p1", &h("none"), None);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("policies:policy.notmodifiable"))
    );
    let r = http(a, "PUT", sub, &h("owner"), Some(r#"{"type":"t"}"#));
    assert_eq!((r.status, r.json()), (201, json!({"type": "t"})));
    let r = http(
        a,
        "GET",
        "/api/2/policies/ns.auth:p1/entries/partial/subjects",
        &h("owner"),
        None,
    );
    assert_eq!(
        r.json(),
        json!({"nginx:partial": {"type": "test"}, "google:x/y": {"type": "t"}})
    );
    let r = http(
        a,
        "DELETE",
        "/api/2/policies/ns.auth:p1/entries/owner",
        &h("owner"),
        None,
    );
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("policies:entry.modificationinvalid"))
    );
    let r = http(
        a,
        "PUT",
        "/api/2/policies/ns.auth:p2",
        &h("partial"),
        Some(&body),
    );
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("policies:policy.notcreatable"))
    );
    assert_eq!(
        http(a, "DELETE", "/api/2/policies/ns.auth:p1", &h("owner"), None).status,
        204
    );
    assert_eq!(
        http(a, "GET", "/api/2/policies/ns.auth:p1", &h("owner"), None).status,
        404
    );
}

#[test]
fn created_things_get_inline_copied_or_default_policies() {
    let env = start(&["owner", "partial", "none"], "");
    block_on(async {
        let mut owner = ws(&env, "owner").await;
        let mut partial = ws(&env, "partial").await;
        let r = owner
            .request(command(THING, "create", "/", Some(thing_json())))
            .await;
        assert_eq!(r["status"], 201);
        let policy_of = |id: &str| {
            let mut c = command(id, "retrieve", "/", None);
            c["fields"] = json!("policyId,_policy");
            c
        };
        // by policy ID
        let r = owner
            .request(command(
                "ns.auth:copy1",
                "create",
                "/",
                Some(json!({"_copyPolicyFrom": THING})),
            ))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let r = owner.request(policy_of("ns.auth:copy1")).await;
        assert_eq!(r["value"]["policyId"], "ns.auth:copy1");
        assert_eq!(r["value"]["_policy"]["imports"], json!({}));
        assert_eq!(
            r["value"]["_policy"]["entries"],
            with_defaults(&policy()["entries"])
        );
        // by reference to another thing's policyId
        let copy = json!({"_copyPolicyFrom": format!("{{{{ ref:things/{THING}/policyId }}}}")});
        let r = owner
            .request(command("ns.auth:copy2", "create", "/", Some(copy.clone())))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        assert_eq!(
            owner.request(policy_of("ns.auth:copy2")).await["value"]["_policy"]["entries"]
                ["partial"],
            with_defaults(&policy()["entries"])["partial"]
        );
        // partial may not read the source policy or the referenced thing's policyId
        let r = partial
            .request(command(
                "ns.auth:copy3",
                "create",
                "/",
                Some(json!({"_copyPolicyFrom": THING})),
            ))
            .await;
        assert_eq!(r["value"]["error"], "policies:policy.notfound", "{r}");
        let r = partial
            .request(command("ns.auth:copy3", "create", "/", Some(copy)))
            .await;
        // Ditto resolves the reference with RetrieveThing(fields=policyId): partial may read
        // the thing (the lamp) but not its policyId -> the field is missing from the answer
        assert_eq!(
            r["value"]["error"], "placeholder:placeholder.reference.unknownfield",
            "{r}"
        );
        // an inline policy nobody could administrate is refused
        let bad = json!({"_policy": {"entries": {"x": {"subjects": {"nginx:owner": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}}});
        let r = owner
            .request(command("ns.auth:bad", "create", "/", Some(bad)))
            .await;
        assert_eq!(r["value"]["error"], "things:policy.invalid", "{r}");
        // without a policy: Ditto's default policy for the FIRST subject
        let r = partial
            .request(command("ns.auth:own", "create", "/", None))
            .await;
        assert_eq!(r["status"], 201);
        let r = partial.request(policy_of("ns.auth:own")).await;
        assert_eq!(
            r["value"]["_policy"]["entries"]["DEFAULT"]["subjects"],
            json!({"nginx:partial": {"type": "generated"}})
        );
        // a thing referencing an existing policy the creator cannot write
        let r = partial
            .request(command(
                "ns.auth:ref",
                "create",
                "/",
                Some(json!({"policyId": THING})),
            ))
            .await;
        assert_eq!(r["value"]["error"], "things:thing.notmodifiable", "{r}");
    });
}
