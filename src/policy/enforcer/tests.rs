//! Enforcer unit tests: the examples of policies.md section 3 and Ditto's trie semantics.

use super::*;
use serde_json::json;

fn enf(entries: Value) -> Enforcer {
    Enforcer::from_policy(&json!({"policyId": "a:b", "entries": entries}), 0, None)
}

fn s(x: &str) -> Vec<String> {
    vec![x.to_owned()]
}

fn p(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn entry(subject: &str, resources: Value) -> Value {
    json!({"subjects": {subject: {"type": "t"}}, "resources": resources})
}

#[test]
fn revoke_below_grant_filters_and_hides() {
    let e = enf(json!({"e": entry("x:s", json!({
        "thing:/": {"grant": ["READ"], "revoke": []},
        "thing:/features/x/properties/secret": {"grant": [], "revoke": ["READ"]}
    }))}));
    let thing =
        json!({"thingId": "a:b", "features": {"x": {"properties": {"secret": 1, "open": 2}}}});
    assert_eq!(
        e.root_view(&s("x:s"), "thing", &thing, &THING_ALLOWLIST),
        Some(json!({"thingId": "a:b", "features": {"x": {"properties": {"open": 2}}}}))
    );
    assert!(!e.has_partial(
        &s("x:s"),
        "thing",
        &p("/features/x/properties/secret"),
        READ
    ));
    assert!(e.has_partial(&s("x:s"), "thing", &p("/features/x"), READ));
    assert!(!e.has_unrestricted(&s("x:s"), "thing", &p("/features/x"), READ));
    assert!(e.has_unrestricted(&s("x:s"), "thing", &p("/attributes"), READ));
}

#[test]
fn write_revoked_below_is_not_unrestricted_above() {
    let e = enf(json!({"e": entry("x:s", json!({
        "thing:/": {"grant": ["WRITE"], "revoke": []},
        "thing:/attributes/serial": {"grant": [], "revoke": ["WRITE"]}
    }))}));
    assert!(!e.has_unrestricted(&s("x:s"), "thing", &p("/attributes"), WRITE));
    assert!(!e.has_unrestricted(&s("x:s"), "thing", &[], WRITE));
    assert!(e.has_unrestricted(&s("x:s"), "thing", &p("/attributes/location"), WRITE));
    assert!(e.has_partial(&s("x:s"), "thing", &p("/attributes"), WRITE));
}

#[test]
fn deeper_grant_wins_and_same_level_revoke_wins() {
    let e = enf(json!({"e": entry("x:s", json!({
        "thing:/features": {"grant": [], "revoke": ["READ"]},
        "thing:/features/public": {"grant": ["READ"], "revoke": []}
    }))}));
    assert!(e.has_unrestricted(&s("x:s"), "thing", &p("/features/public"), READ));
    assert!(!e.has_unrestricted(&s("x:s"), "thing", &p("/features/private"), READ));
    let e = enf(json!({"e": entry("x:s", json!({
        "thing:/attributes": {"grant": ["READ"], "revoke": ["READ"]}
    }))}));
    assert!(!e.has_partial(&s("x:s"), "thing", &p("/attributes"), READ));
    // revoke in another entry at the same node also wins
    let e = enf(json!({
        "a": entry("x:s", json!({"thing:/attributes": {"grant": ["READ"], "revoke": []}})),
        "b": entry("x:s", json!({"thing:/attributes": {"grant": [], "revoke": ["READ"]}}))
    }));
    assert!(!e.has_partial(&s("x:s"), "thing", &p("/attributes"), READ));
}

#[test]
fn any_subject_of_the_context_counts_and_revokes_of_any_deny() {
    let e = enf(json!({
        "a": entry("x:one", json!({"thing:/": {"grant": ["READ"], "revoke": []}})),
        "b": entry("x:two", json!({"thing:/attributes": {"grant": [], "revoke": ["READ"]}}))
    }));
    let both = vec!["x:two".to_owned(), "x:one".to_owned()];
    assert!(e.has_unrestricted(&both, "thing", &p("/features"), READ));
    assert!(!e.has_partial(&both, "thing", &p("/attributes"), READ));
    assert!(!e.has_partial(&s("x:other"), "thing", &[], READ));
    assert_eq!(e.view(&s("x:other"), "thing", &[], &json!({"a": 1})), None);
}

#[test]
fn expired_subjects_and_namespaces_are_ignored() {
    let policy = json!({"policyId": "a:b", "entries": {
        "e": {"subjects": {"x:s": {"type": "t", "expiry": "2020-01-01T00:00:00Z"}},
              "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}},
        "n": {"subjects": {"x:n": {"type": "t"}}, "namespaces": ["com.acme.*"],
              "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}
    }});
    let before = crate::clock::parse_iso("2019-12-31T23:59:59Z").unwrap();
    let after = crate::clock::parse_iso("2020-01-01T00:00:00Z").unwrap();
    assert!(Enforcer::from_policy(&policy, before, None).has_partial(
        &s("x:s"),
        "thing",
        &[],
        READ
    ));
    assert!(!Enforcer::from_policy(&policy, after, None).has_partial(
        &s("x:s"),
        "thing",
        &[],
        READ
    ));
    assert!(
        Enforcer::from_policy(&policy, 0, Some("com.acme.x")).has_partial(
            &s("x:n"),
            "thing",
            &[],
            READ
        )
    );
    assert!(
        !Enforcer::from_policy(&policy, 0, Some("org.other")).has_partial(
            &s("x:n"),
            "thing",
            &[],
            READ
        )
    );
}

#[test]
fn partial_read_on_one_feature() {
    let e = enf(
        json!({"e": entry("x:p", json!({"thing:/features/lamp": {"grant": ["READ"], "revoke": []}}))}),
    );
    let thing = json!({"thingId": "a:b", "policyId": "a:b", "attributes": {"x": 1},
        "features": {"lamp": {"properties": {"on": true}}, "door": {"properties": {"open": false}}}});
    assert_eq!(
        e.root_view(&s("x:p"), "thing", &thing, &THING_ALLOWLIST),
        Some(json!({"thingId": "a:b", "features": {"lamp": {"properties": {"on": true}}}}))
    );
    assert!(e.has_partial(&s("x:p"), "thing", &[], READ));
    assert!(e.has_partial(&s("x:p"), "thing", &p("/features"), READ));
    assert!(!e.has_partial(&s("x:p"), "thing", &p("/attributes"), READ));
    assert_eq!(
        e.view(&s("x:p"), "thing", &p("/features"), &thing["features"]),
        Some(json!({"lamp": {"properties": {"on": true}}}))
    );
    assert_eq!(
        e.view(
            &s("x:p"),
            "thing",
            &p("/features/door"),
            &thing["features"]["door"]
        ),
        None
    );
    assert_eq!(
        e.view(
            &s("x:p"),
            "thing",
            &p("/features/lamp/properties/on"),
            &json!(true)
        ),
        Some(json!(true))
    );
    assert!(!e.has_unrestricted(&s("x:p"), "thing", &p("/features/lamp"), WRITE));
}

/// The subject indexes of a check, kept on the stack up to `STACK_IDS` known subjects, are
/// those the `Vec` of before held (same order) for any number of known and unknown subjects,
/// and the checks answer by them: the last subject alone is granted WRITE, so a requester has
/// it exactly when that subject is among its subjects (past the stack's capacity too).
#[test]
fn subject_ids_on_the_stack_are_the_collected_ones() {
    let n = 2 * STACK_IDS + 3;
    let mut entries = serde_json::Map::new();
    for i in 0..n {
        let grant = if i == n - 1 {
            json!(["READ", "WRITE"])
        } else {
            json!(["READ"])
        };
        entries.insert(
            format!("e{i}"),
            entry(
                &format!("x:s{i}"),
                json!({"thing:/": {"grant": grant, "revoke": []}}),
            ),
        );
    }
    let e = enf(Value::Object(entries));
    let mut rng = fastrand::Rng::with_seed(6);
    for _ in 0..500 {
        let subjects: Vec<String> = (0..rng.usize(0..2 * n))
            .map(|_| format!("x:s{}", rng.usize(0..n + 4)))
            .collect();
        let collected: Vec<u32> = subjects
            .iter()
            .filter_map(|s| e.subjects.iter().position(|x| x == s).map(|i| i as u32))
            .collect();
        assert_eq!(&*e.ids(&subjects), collected.as_slice());
        let writer = subjects.contains(&format!("x:s{}", n - 1));
        let path = p("/attributes/x");
        assert_eq!(e.has_unrestricted(&subjects, "thing", &path, WRITE), writer);
        let segments = ["attributes", "x"].into_iter();
        assert_eq!(
            e.has_partial_at(&subjects, "thing", segments, WRITE),
            writer
        );
    }
}
