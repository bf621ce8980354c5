//! Metadata follows READ like the thing it describes: a subject that may read only one feature
//! sees only that feature's metadata, in `fields=_metadata` and in `ditto-metadata`; metadata of
//! a revoked field stays hidden even from a subject that reads the rest of the thing.

use crate::authkit;
use authkit::{http, start, user};
use serde_json::{json, Value};

const T: &str = "/api/2/things/ns.md:lamp";

fn get(env: &authkit::Env, who: &str, q: &str, headers: &[(&str, &str)]) -> authkit::Resp {
    let mut hs: Vec<(&str, String)> = vec![("authorization", user(who))];
    hs.extend(headers.iter().map(|(k, v)| (*k, (*v).to_owned())));
    http(env.srv.addr, "GET", &format!("{T}{q}"), &hs, None)
}

#[test]
fn metadata_is_filtered_by_read_as_the_thing_is() {
    let env = start(&["owner", "partial"], "");
    let policy = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "t"}},
                  "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                                "thing:/attributes/secret": {"grant": [], "revoke": ["READ"]},
                                "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "partial": {"subjects": {"nginx:partial": {"type": "t"}},
                    "resources": {"thing:/features/lamp": {"grant": ["READ"], "revoke": []}}}}});
    let thing = json!({"_policy": policy, "attributes": {"secret": "s", "room": "hall"},
        "features": {"lamp": {"properties": {"on": true}}}});
    let put_md = json!([{"key": "*/ts", "value": "2026-11-25"}]).to_string();
    let r = http(
        env.srv.addr,
        "PUT",
        T,
        &[("authorization", user("owner")), ("put-metadata", put_md)],
        Some(&thing.to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let all = get(&env, "owner", "?fields=_metadata", &[]).json();
    let md = &all["_metadata"];
    assert_eq!(md["attributes"]["room"]["ts"], "2026-11-25", "{all}");
    assert_eq!(
        md["features"]["lamp"]["properties"]["on"]["ts"],
        "2026-11-25"
    );
    assert_eq!(md["attributes"].get("secret"), None, "revoked field: {all}");

    let part = get(&env, "partial", "?fields=_metadata", &[]).json();
    assert_eq!(
        part,
        json!({"_metadata": {"features": {"lamp": {"properties": {"on": {"ts": "2026-11-25"}}}}}})
    );

    let header = |who: &str| -> Value {
        let r = get(&env, who, "", &[("get-metadata", "*/ts")]);
        assert_eq!(r.status, 200, "{}", r.body);
        let h = r
            .headers
            .get("ditto-metadata")
            .expect("ditto-metadata header");
        serde_json::from_str(h).expect("JSON header")
    };
    let owner_md = header("owner");
    assert_eq!(
        owner_md["attributes"]["room"]["ts"], "2026-11-25",
        "{owner_md}"
    );
    assert_eq!(owner_md["attributes"].get("secret"), None, "{owner_md}");
    let partial_md = header("partial");
    assert_eq!(partial_md.get("attributes"), None, "{partial_md}");
    assert_eq!(
        partial_md["features"]["lamp"]["properties"]["on"]["ts"],
        "2026-11-25"
    );
}
