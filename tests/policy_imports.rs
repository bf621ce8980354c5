//! Policy imports in enforcement, over HTTP with real users: a thing's policy imports a shared
//! policy; its `implicit` entries apply, `explicit` ones only when the import lists them, `never`
//! ones not at all; changing the imported policy changes access at once (no stale cache), and
//! removing the import takes it away.

mod authkit;
mod common;

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
