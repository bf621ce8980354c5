//! `checkPermissions` (Ditto's basic-auth-checkpermissions.md) over HTTP (`POST
//! /api/2/checkPermissions`) and WS (`_/_/policies/commands/checkPermissions`) with real users:
//!
//! | check (thing `ns.auth:lamp1`, policy of tests/authkit `three`) | owner | partial | none |
//! |----------------------------------------------------------|-------|---------|-------|
//! | `thing:/features/lamp/properties/on` READ                | true  | true    | false |
//! | `thing:/features/lamp` READ + WRITE                      | true  | false   | false |
//! | `thing:/` READ (partial: READ only below, not unrestricted) | true | false  | false |
//! | `message:/features/lamp/inbox/messages/toggle` WRITE     | true  | false   | false |
//! | `policy:/` on the policy, READ + WRITE                   | true  | false   | false |
//! | `policy:/` on a policy that imports a grant for partial  | -     | true    | -     |
//! | a thing that does not exist, READ                        | false | false   | false |
//!
//! Answers are `{name: bool}` in request order; errors are Ditto's (400 for a malformed check,
//! 405 for another method, 415 for a non-JSON body).

use crate::authkit::three::{thing_json, THING};
use crate::authkit::{http, start, user};
use crate::common::{self, block_on, command, Ws};
use serde_json::{json, Value};

fn checks() -> Value {
    let c = |resource: &str, entity: &str, perms: &[&str]| json!({"resource": resource, "entityId": entity, "hasPermissions": perms});
    json!({
        "readLampState": c("thing:/features/lamp/properties/on", THING, &["READ"]),
        "writeLamp": c("thing:/features/lamp", THING, &["READ", "WRITE"]),
        "readThing": c("thing:/", THING, &["READ"]),
        "toggleLamp": c("message:/features/lamp/inbox/messages/toggle", THING, &["WRITE"]),
        "editPolicy": c("policy:/", THING, &["READ", "WRITE"]),
        "ghost": c("thing:/", "ns.auth:ghost", &["READ"]),
    })
}

fn verdicts(owner: bool, partial_read: bool) -> Value {
    json!({"readLampState": partial_read, "writeLamp": owner, "readThing": owner,
           "toggleLamp": owner, "editPolicy": owner, "ghost": false})
}

#[test]
fn check_permissions_over_http_and_ws() {
    let env = start(&["owner", "partial", "none"], "");
    let a = env.srv.addr;
    let post = |who: &str, body: &str| {
        http(
            a,
            "POST",
            "/api/2/checkPermissions",
            &[
                ("authorization", user(who)),
                ("correlation-id", format!("cp-{who}")),
            ],
            Some(body),
        )
    };
    block_on(async {
        let mut owner = Ws::connect_with(a, "/ws/2", &[("authorization", user("owner"))])
            .await
            .unwrap();
        let r = owner
            .request(command(THING, "create", "/", Some(thing_json())))
            .await;
        assert_eq!(r["status"], 201, "{r}");

        // HTTP: the verdicts in request order, per requester
        let body = checks().to_string();
        for (who, expected) in [
            ("owner", verdicts(true, true)),
            ("partial", verdicts(false, true)),
            ("none", verdicts(false, false)),
        ] {
            let r = post(who, &body);
            assert_eq!((r.status, r.json()), (200, expected.clone()), "{who}");
            let keys: Vec<String> = r.json().as_object().unwrap().keys().cloned().collect();
            let asked: Vec<String> = checks().as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys, asked, "request order");
            assert_eq!(r.headers.get("correlation-id"), Some(&format!("cp-{who}")));
        }
        // wrapped in `permissionChecks`, as Ditto's CheckPermissions JSON also is
        let wrapped = json!({"permissionChecks": checks()}).to_string();
        assert_eq!(post("partial", &wrapped).json(), verdicts(false, true));

        // WS: the Ditto Protocol command on the same checks
        let mut partial = Ws::connect_with(a, "/ws/2", &[("authorization", user("partial"))])
            .await
            .unwrap();
        let r = partial
            .request(json!({"topic": "_/_/policies/commands/checkPermissions",
                            "headers": {"correlation-id": "ws-cp"}, "path": "/", "value": checks()}))
            .await;
        assert_eq!(r["topic"], "_/_/policies/commands/checkPermissions", "{r}");
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["value"], verdicts(false, true));

        // a grant that arrives through an import counts (the policy with imports resolved)
        let admins = json!({"entries": {
            "owner": {"subjects": {"nginx:owner": {"type": "t"}}, "importable": "never",
                      "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
            "partial": {"subjects": {"nginx:partial": {"type": "t"}},
                        "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        let r = owner
            .request(
                json!({"topic": "ns.auth/admins/policies/commands/create", "path": "/",
                            "value": admins}),
            )
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let importing = json!({"imports": {"ns.auth:admins": {}}, "entries": {
            "owner": {"subjects": {"nginx:owner": {"type": "t"}},
                      "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        let r = owner
            .request(
                json!({"topic": "ns.auth/importing/policies/commands/create", "path": "/",
                            "value": importing}),
            )
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let via_import = json!({"edit": {"resource": "policy:/", "entityId": "ns.auth:importing",
                                         "hasPermissions": ["WRITE"]}});
        let r = partial
            .request(
                json!({"topic": "_/_/policies/commands/checkPermissions", "path": "/",
                            "value": via_import}),
            )
            .await;
        assert_eq!(r["value"], json!({"edit": true}), "{r}");

        // errors: a malformed check over WS and HTTP, another method, a non-JSON body
        let bad =
            json!({"x": {"resource": "thing", "entityId": THING, "hasPermissions": ["READ"]}});
        let r = partial
            .request(
                json!({"topic": "_/_/policies/commands/checkPermissions", "path": "/",
                            "value": bad}),
            )
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(400), json!("json.invalid")),
            "{r}"
        );
        let r = post(
            "owner",
            &json!({"x": {"resource": "thing:/", "entityId": THING}}).to_string(),
        );
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("json.field.missing"))
        );
        let r = post(
            "owner",
            &json!({"x": {"resource": "thing:/", "entityId": "nocolon",
                                            "hasPermissions": ["READ"]}})
            .to_string(),
        );
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("things:id.invalid"))
        );
        let r = post("owner", "{not json");
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("json.invalid"))
        );
        let r = http(
            a,
            "GET",
            "/api/2/checkPermissions",
            &[("authorization", user("owner"))],
            None,
        );
        assert_eq!(r.status, 405);
        assert_eq!(r.headers.get("allow").map(String::as_str), Some("POST"));
        let text = common::http::Http {
            addr: a,
            auth: Some(user("owner")),
        };
        let r = text
            .send(
                "POST",
                "/api/2/checkPermissions",
                &[("Content-Type", "text/plain")],
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (415, "mediatype.unsupported")
        );
        let r = http(a, "POST", "/api/2/checkPermissions", &[], Some(&body));
        assert_eq!(r.status, 401, "authenticated like every API route");
    });
}
