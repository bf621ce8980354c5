//! Policy imports in enforcement, over HTTP with real users: a thing's policy imports a shared
//! policy; its `implicit` entries apply, `explicit` ones only when the import lists them, `never`
//! ones not at all; changing the imported policy changes access at once (no stale cache), and
//! removing the import takes it away. Policy commands are authorized against the policy with its
//! imports resolved too (Ditto's PolicyCommandEnforcement): a `policy:/` grant that arrives
//! through an import lets its subject create, read and change the importing policy.

use crate::authkit;
use authkit::{http, start, user};
use serde_json::json;

const THING: &str = "/api/2/things/ns.imp:lamp";

fn get(env: &authkit::Env, who: &str, path: &str) -> u16 {
    http(
        env.srv.addr,
        "GET",
        path,
        &[("authorization", user(who))],
        None,
    )
    .status
}

fn put(env: &authkit::Env, who: &str, path: &str, body: &serde_json::Value) -> u16 {
    let b = body.to_string();
    http(
        env.srv.addr,
        "PUT",
        path,
        &[("authorization", user(who))],
        Some(&b),
    )
    .status
}

fn read_entry(subject: &str, importable: &str) -> serde_json::Value {
    json!({"subjects": {subject: {"type": "t"}}, "importable": importable,
           "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}})
}

#[test]
fn imported_entries_grant_as_their_importable_type_says_and_follow_changes() {
    let env = start(&["owner", "bob", "carol", "dave"], "");
    let shared = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "t"}}, "importable": "never",
                  "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "viewers": read_entry("nginx:bob", "implicit"),
        "admins": read_entry("nginx:carol", "explicit"),
        "private": read_entry("nginx:dave", "never")}});
    assert_eq!(
        put(&env, "owner", "/api/2/policies/ns.imp:shared", &shared),
        201
    );
    let own = |imports: serde_json::Value| {
        json!({"entries": {"owner": {"subjects": {"nginx:owner": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}},
               "imports": imports})
    };
    let only_implicit = own(json!({"ns.imp:shared": {}}));
    assert_eq!(
        put(&env, "owner", "/api/2/policies/ns.imp:lamp", &only_implicit),
        201
    );
    let thing = json!({"policyId": "ns.imp:lamp", "attributes": {"room": "hall"}});
    assert_eq!(put(&env, "owner", THING, &thing), 201);

    assert_eq!(get(&env, "owner", THING), 200);
    assert_eq!(get(&env, "bob", THING), 200, "implicit entry imported");
    assert_eq!(get(&env, "carol", THING), 404, "explicit entry not listed");
    assert_eq!(get(&env, "dave", THING), 404, "never imported");

    let listing = own(json!({"ns.imp:shared": {"entries": ["admins", "private"]}}));
    assert_eq!(
        put(&env, "owner", "/api/2/policies/ns.imp:lamp", &listing),
        204
    );
    assert_eq!(get(&env, "carol", THING), 200, "explicit entry listed");
    assert_eq!(
        get(&env, "dave", THING),
        404,
        "never stays never, listed or not"
    );

    // the resolved view shows the imported entries (query or header), without an ETag
    let view = |q: &str, h: Option<&str>| {
        let mut hs = vec![("authorization", user("owner"))];
        if let Some(h) = h {
            hs.push(("policy-view", h.to_owned()));
        }
        http(
            env.srv.addr,
            "GET",
            &format!("/api/2/policies/ns.imp:lamp{q}"),
            &hs,
            None,
        )
    };
    let labels = |r: &authkit::Resp| {
        let mut l: Vec<String> = r.json()["entries"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        l.sort();
        l
    };
    let stored = view("", None);
    assert_eq!(labels(&stored), ["owner"]);
    assert!(stored.headers.contains_key("etag"));
    for r in [
        view("?policy-view=resolved", None),
        view("", Some("resolved")),
    ] {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            labels(&r),
            [
                "imported-ns.imp:shared-admins",
                "imported-ns.imp:shared-viewers",
                "owner"
            ],
            "never entries stay out; the owner may READ the source entries (policy:/ on shared)"
        );
        assert!(!r.headers.contains_key("etag"), "merged view has no ETag");
    }
    let bad = view("?policy-view=merged", None);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "policies:view.invalid");

    // a change of the imported policy applies at once
    let mut without_bob = shared.clone();
    without_bob["entries"]
        .as_object_mut()
        .unwrap()
        .remove("viewers");
    assert_eq!(
        put(&env, "owner", "/api/2/policies/ns.imp:shared", &without_bob),
        204
    );
    assert_eq!(get(&env, "bob", THING), 404, "imported entry removed");
    assert_eq!(get(&env, "carol", THING), 200);

    // and dropping the import drops its entries
    assert_eq!(
        put(
            &env,
            "owner",
            "/api/2/policies/ns.imp:lamp",
            &own(json!({}))
        ),
        204
    );
    assert_eq!(get(&env, "carol", THING), 404);
    assert_eq!(get(&env, "owner", THING), 200);
}

#[test]
fn policy_commands_see_grants_that_arrive_through_imports() {
    let env = start(&["owner", "carol", "dave"], "");
    let a = env.srv.addr;
    let send = |who: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        let b = body.map(|b| b.to_string());
        http(
            a,
            method,
            path,
            &[("authorization", user(who))],
            b.as_deref(),
        )
    };
    // `admins`: carol administrates every policy that imports it (implicitly importable)
    let admins = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "t"}}, "importable": "never",
                  "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "admins": {"subjects": {"nginx:carol": {"type": "t"}},
                   "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
    let r = send(
        "owner",
        "PUT",
        "/api/2/policies/ns.imp:admins",
        Some(admins),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // carol creates a policy whose only policy WRITE for her comes through the import
    let dev = json!({"imports": {"ns.imp:admins": {}}, "entries": {
        "viewers": {"subjects": {"nginx:dave": {"type": "t"}},
                    "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}});
    let r = send("carol", "PUT", "/api/2/policies/ns.imp:dev", Some(dev));
    assert_eq!(
        r.status, 201,
        "creator's WRITE through the import: {}",
        r.body
    );
    assert_eq!(r.json()["imports"], json!({"ns.imp:admins": {}}));
    // she reads and changes it
    let r = send("carol", "GET", "/api/2/policies/ns.imp:dev", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["entries"]["viewers"]["importable"],
        "implicit",
        "entries as Ditto writes them"
    );
    let entry = json!({"subjects": {"nginx:carol": {"type": "t"}},
                       "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}});
    let r = send(
        "carol",
        "PUT",
        "/api/2/policies/ns.imp:dev/entries/carol",
        Some(entry.clone()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    // dave (thing READ only) may neither read nor change it
    let r = send("dave", "GET", "/api/2/policies/ns.imp:dev", None);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("policies:policy.notfound"))
    );
    let r = send(
        "dave",
        "PUT",
        "/api/2/policies/ns.imp:dev/entries/dave",
        Some(entry),
    );
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("policies:entry.notmodifiable"))
    );
    // carol's grant goes with the imported entry
    let r = send(
        "owner",
        "DELETE",
        "/api/2/policies/ns.imp:admins/entries/admins",
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = send("carol", "GET", "/api/2/policies/ns.imp:dev", None);
    assert_eq!(r.status, 404, "imported grant removed: {}", r.body);
}
