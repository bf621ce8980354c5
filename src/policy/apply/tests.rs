//! Policy command engine tests: statuses, values and errors per path, authorization.

use super::*;
use crate::policy::PolicyState;
use crate::protocol::Envelope;
use serde_json::json;

const NOW: i64 = 1_600_000_000_000;

/// `super::apply` for a policy without stored imports.
fn apply(
    c: Option<&PolicyState>,
    cmd: &PolicyCommand,
    now: i64,
    subjects: Option<&[String]>,
) -> Result<PolicyOutcome, DittoError> {
    super::apply(c, cmd, now, subjects, &|_| Ok(None))
}

fn cmd(action: &str, path: &str, value: Option<Value>) -> PolicyCommand {
    let mut v =
        json!({"topic": format!("ns/p/policies/commands/{action}"), "headers": {}, "path": path});
    if let Some(x) = value {
        v["value"] = x;
    }
    let env = Envelope::parse(&v.to_string()).unwrap();
    PolicyCommand::from_envelope(&env).unwrap().unwrap()
}

fn owner() -> Vec<String> {
    vec!["nginx:owner".to_owned()]
}

fn reader() -> Vec<String> {
    vec!["nginx:reader".to_owned()]
}

fn base() -> PolicyState {
    let p = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "t"}},
                  "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "reader": {"subjects": {"nginx:reader": {"type": "t"}},
                   "resources": {"policy:/entries/reader": {"grant": ["READ"], "revoke": []}}}
    }});
    let o = apply(None, &cmd("create", "/", Some(p)), NOW, Some(&owner())).unwrap();
    assert_eq!(o.status, 201);
    o.state.unwrap()
}

#[test]
fn create_requires_the_creator_to_keep_write() {
    let p = json!({"entries": {"x": {"subjects": {"nginx:someone": {"type": "t"}},
        "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
    let e = apply(
        None,
        &cmd("create", "/", Some(p.clone())),
        NOW,
        Some(&owner()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:policy.notcreatable");
    let mut c = cmd("create", "/", Some(p));
    c.headers.insert("allow-policy-lockout", true);
    assert_eq!(apply(None, &c, NOW, Some(&owner())).unwrap().status, 201);
    let e = apply(
        Some(&base()),
        &cmd("create", "/", Some(json!({}))),
        NOW,
        Some(&owner()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:policy.conflict");
    let e = apply(
        None,
        &cmd("create", "/", Some(json!({"entries": {}}))),
        NOW,
        Some(&owner()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:policy.modificationinvalid");
}

#[test]
fn modify_statuses_and_values() {
    let s = base();
    let sub = cmd(
        "modify",
        "/entries/reader/subjects/google:x",
        Some(json!({"type": "y"})),
    );
    let o = apply(Some(&s), &sub, NOW, Some(&owner())).unwrap();
    assert_eq!(
        (o.status, o.value.clone()),
        (201, Some(json!({"type": "y"})))
    );
    let s2 = o.state.unwrap();
    assert_eq!(s2.revision, 2);
    assert_eq!(
        apply(Some(&s2), &sub, NOW, Some(&owner())).unwrap().status,
        204
    );
    let e = apply(
        Some(&s),
        &cmd(
            "modify",
            "/entries/nope/subjects/a:b",
            Some(json!({"type": "y"})),
        ),
        NOW,
        Some(&owner()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:entry.notfound");
    let e = apply(
        Some(&s),
        &cmd("delete", "/entries/owner", None),
        NOW,
        Some(&owner()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:entry.modificationinvalid");
    let e = apply(
        Some(&s),
        &cmd("delete", "/entries/owner/subjects/x:none", None),
        NOW,
        Some(&owner()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:subject.notfound");
    let o = apply(Some(&s), &cmd("delete", "/", None), NOW, Some(&owner())).unwrap();
    assert!(o.deleted && o.status == 204);
}

#[test]
fn reader_sees_filtered_policy_and_cannot_write() {
    let s = base();
    let o = apply(Some(&s), &cmd("retrieve", "/", None), NOW, Some(&reader())).unwrap();
    let v = o.value.unwrap();
    assert_eq!(v["policyId"], "ns:p");
    assert!(v["entries"].get("owner").is_none());
    assert!(v["entries"].get("reader").is_some());
    let e = apply(
        Some(&s),
        &cmd(
            "modify",
            "/entries/reader/subjects/a:b",
            Some(json!({"type": "t"})),
        ),
        NOW,
        Some(&reader()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:subject.notmodifiable");
    let e = apply(
        Some(&s),
        &cmd("retrieve", "/entries/owner", None),
        NOW,
        Some(&reader()),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:entry.notfound");
    let e = apply(
        Some(&s),
        &cmd("retrieve", "/", None),
        NOW,
        Some(&["x:stranger".to_owned()]),
    )
    .unwrap_err();
    assert_eq!(e.error, "policies:policy.notfound");
    let e = apply(
        Some(&s),
        &cmd("delete", "/", None),
        NOW,
        Some(&["x:stranger".to_owned()]),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.error.as_ref()),
        (403, "policies:policy.notmodifiable"),
        "a write without WRITE is 403 whatever READ says (Ditto)"
    );
}

#[test]
fn authorization_sees_imported_entries() {
    // `ns:admins` grants nginx:admin READ+WRITE on `policy:/` (implicitly importable)
    let admins = json!({"policyId": "ns:admins", "entries": {"admin": {
        "subjects": {"nginx:admin": {"type": "t"}},
        "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
    let load = |id: &str| Ok((id == "ns:admins").then(|| admins.clone()));
    let p = json!({"imports": {"ns:admins": {}}, "entries": {}});
    let admin = vec!["nginx:admin".to_owned()];
    // creating: the creator's WRITE comes through the import
    let c = cmd("create", "/", Some(p));
    assert_eq!(
        super::apply(None, &c, NOW, Some(&admin), &|_| Ok(None))
            .unwrap_err()
            .error,
        "policies:policy.notcreatable",
        "without the imported policy the creator has no WRITE"
    );
    let s = super::apply(None, &c, NOW, Some(&admin), &load)
        .unwrap()
        .state
        .unwrap();
    let get = cmd("retrieve", "/", None);
    let o = super::apply(Some(&s), &get, NOW, Some(&admin), &load).unwrap();
    assert_eq!(o.value.unwrap()["imports"], json!({"ns:admins": {}}));
    let put = cmd(
        "modify",
        "/entries/own",
        Some(json!({"subjects": {"nginx:admin": {"type": "t"}},
                    "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}})),
    );
    assert_eq!(
        super::apply(Some(&s), &put, NOW, Some(&admin), &load)
            .unwrap()
            .status,
        201
    );
    let e = super::apply(Some(&s), &get, NOW, Some(&admin), &|_| Ok(None)).unwrap_err();
    assert_eq!(e.status, 404, "no import resolved: nothing readable");
}

#[test]
fn plain_entries_are_the_stored_entries_text_unless_other_parts_matter() {
    let entries = json!({"e": {"subjects": {"nginx:a": {"type": "t"}},
        "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}});
    let plain = PolicyState::new(json!({"policyId": "n:p", "entries": entries}), NOW).to_bytes();
    let text = PolicyState::plain_entries(&plain).unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), entries);
    assert_eq!(
        text,
        entries.to_string(),
        "the text the hub shares enforcers by"
    );
    let with = |extra: Value| {
        let mut p = json!({"policyId": "n:p", "entries": entries});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        PolicyState::new(p, NOW).to_bytes()
    };
    assert_eq!(
        PolicyState::plain_entries(&with(json!({"imports": {"n:o": {}}}))),
        None
    );
    let mut exp = entries.clone();
    exp["e"]["subjects"]["nginx:a"]["expiry"] = json!("2030-01-01T00:00:00Z");
    let expiring = PolicyState::new(json!({"policyId": "n:p", "entries": exp}), NOW).to_bytes();
    assert_eq!(PolicyState::plain_entries(&expiring), None);
    // the bare form of older versions and anything else: decoded in full
    let bare = serde_json::to_vec(&json!({"policyId": "n:p", "entries": entries})).unwrap();
    assert_eq!(PolicyState::plain_entries(&bare), None);
    assert_eq!(
        PolicyState::plain_entries(b"{\"p\":1,\"r\":1,\"c\":0,\"m\":0}"),
        None
    );
    assert_eq!(PolicyState::plain_entries(b"nonsense"), None);
}
