//! Policy model tests: validation errors, normalisation, the lockout rule, helpers.
use super::*;
use serde_json::json;

const NOW: i64 = 1_600_000_000_000;

#[test]
fn validates_entries_and_normalises() {
    let p = json!({"policyId": "a:b", "entries": {"owner": {
        "subjects": {"nginx:ditto": {"type": "t", "__schemaVersion": 2}},
        "resources": {"policy:/": {"grant": ["READ", "WRITE", "WRITE"], "__schemaVersion": 2}}
    }}});
    let n = normalize_policy("a:b", &p, NOW).unwrap();
    assert_eq!(
        n["entries"]["owner"],
        json!({"subjects": {"nginx:ditto": {"type": "t"}}, "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}})
    );
    assert!(keeps_policy_writer(&n));
    let e = normalize_policy("a:c", &p, NOW).unwrap_err();
    assert_eq!(e.error, "policies:id.notsettable");
    let bad = |v: Value| {
        normalize_policy("a:b", &v, NOW)
            .unwrap_err()
            .error
            .to_string()
    };
    assert_eq!(
        bad(
            json!({"entries": {"importedX": {"subjects": {}, "resources": {"thing:/": {"grant": ["READ"]}}}}})
        ),
        "policies:label.invalid"
    );
    assert_eq!(
        bad(
            json!({"entries": {"x": {"subjects": {"nocolon": {"type": "t"}}, "resources": {"thing:/": {"grant": ["READ"]}}}}})
        ),
        "policies:subjectid.invalid"
    );
    assert_eq!(
        bad(
            json!({"entries": {"x": {"subjects": {}, "resources": {"thing:/": {"grant": ["FLY"]}}}}})
        ),
        "policies:entry.invalid"
    );
    assert_eq!(
        bad(
            json!({"entries": {"x": {"subjects": {"a:b": {"type": "t", "expiry": "2000-01-01T00:00:00Z"}}, "resources": {"thing:/": {"grant": ["READ"]}}}}})
        ),
        "policies:subjectexpiry.invalid"
    );
    assert_eq!(
        bad(
            json!({"entries": {"x": {"subjects": {"a:b": {"type": "t", "announcement": {"beforeExpiry": "5 minutes"}}}, "resources": {"thing:/": {"grant": ["READ"]}}}}})
        ),
        "policies:subjectannouncement.invalid"
    );
    assert_eq!(
        bad(json!({"imports": {"a:b": {}}, "entries": {}})),
        "policies:import.invalid"
    );
}

#[test]
fn lockout_rule() {
    let p = |subjects: Value, revoke: Value| {
        json!({"policyId": "a:b", "entries": {
            "o": {"subjects": subjects, "resources": {"policy:/": {"grant": ["WRITE"], "revoke": []}}},
            "r": {"subjects": revoke, "resources": {"policy:/": {"grant": [], "revoke": ["WRITE"]}}}
        }})
    };
    assert!(keeps_policy_writer(&p(
        json!({"x:a": {"type": "t"}}),
        json!({})
    )));
    assert!(!keeps_policy_writer(&p(
        json!({"x:a": {"type": "t", "expiry": "2999-01-01T00:00:00Z"}}),
        json!({})
    )));
    assert!(!keeps_policy_writer(&p(
        json!({"x:a": {"type": "t"}}),
        json!({"x:a": {"type": "t"}})
    )));
}

#[test]
fn keys_namespaces_durations() {
    assert_eq!(
        parse_resource_key("thing:/a/b"),
        Some(("thing".into(), vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        parse_resource_key("thing:/"),
        Some(("thing".into(), vec![]))
    );
    assert_eq!(parse_resource_key("thing"), None);
    assert!(namespace_matches("com.acme", "com.acme"));
    assert!(!namespace_matches("com.acme", "com.acme.x"));
    assert!(namespace_matches("com.acme.*", "com.acme.x"));
    assert!(!namespace_matches("com.acme.*", "com.acme"));
    assert!(!namespace_matches("com.acme.*", "com.acmex"));
    assert_eq!(parse_duration_ms("3599s"), Some(3_599_000));
    assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
    assert_eq!(parse_duration_ms("0s"), None);
}
