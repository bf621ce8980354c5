//! Engine unit tests of `merge-thing-patch-conditions`: filtering against the current thing,
//! relative and nested pointers, the all-filtered event, header/RQL errors and READ checks.

use super::tests::run_as;
use super::*;
use crate::policy::Enforcer;
use serde_json::json;

const CT: &str = "application/merge-patch+json";

fn state() -> ThingState {
    ThingState {
        thing: json!({"thingId": "ns:t", "policyId": "ns:t", "features": {
            "temperature": {"properties": {"value": 21}},
            "humidity": {"properties": {"value": 90}}}}),
        revision: 1,
        created: 0,
        modified: 0,
        metadata: None,
        deleted: false,
    }
}

/// A merge at `path` with the given patch-conditions header value.
fn merge(path: &str, value: Value, conds: &str) -> Value {
    json!({"topic": "ns/t/things/twin/commands/merge", "path": path, "value": value,
           "headers": {"content-type": CT, "merge-thing-patch-conditions": conds}})
}

fn merged(path: &str, value: Value, conds: &str) -> Outcome {
    run_as(Some(&state()), merge(path, value, conds), None).unwrap()
}

fn features(o: &Outcome) -> Value {
    o.state.as_ref().unwrap().thing["features"].clone()
}

#[test]
fn true_keeps_false_drops_unconditioned_applies() {
    let o = merged(
        "/",
        json!({"attributes": {"x": 1}, "features": {
            "temperature": {"properties": {"value": 25}},
            "humidity": {"properties": {"value": 60}}}}),
        r#"{"features/temperature/properties/value": "gt(features/temperature/properties/value,20)",
            "features/humidity/properties/value": "lt(features/humidity/properties/value,80)"}"#,
    );
    assert_eq!(o.status, 204);
    let st = o.state.as_ref().unwrap();
    assert_eq!(st.thing["attributes"], json!({"x": 1}));
    assert_eq!(
        features(&o),
        json!({"temperature": {"properties": {"value": 25}},
               "humidity": {"properties": {"value": 90}}})
    );
    let ev = o.event.unwrap();
    assert_eq!(ev.action, EventAction::Merged);
    assert_eq!(
        ev.value,
        Some(json!({"attributes": {"x": 1}, "features": {
            "temperature": {"properties": {"value": 25}},
            "humidity": {"properties": {}}}}))
    );
    assert_eq!(ev.revision, 2);
}

#[test]
fn nested_pointers_and_conditions_on_the_whole_thing() {
    // the condition on `humidity` looks at `temperature`: conditions see the whole thing
    let o = merged(
        "/",
        json!({"features": {"humidity": {"properties": {"value": 50, "unit": "%"}}}}),
        r#"{"/features/humidity/properties/unit": "eq(features/temperature/properties/value,99)"}"#,
    );
    assert_eq!(
        features(&o)["humidity"],
        json!({"properties": {"value": 50}})
    );
    // a pointer absent from the patch is ignored, whatever its condition
    let o = merged(
        "/",
        json!({"features": {"humidity": {"properties": {"value": 50}}}}),
        r#"{"features/nothere": "eq(_revision,99)"}"#,
    );
    assert_eq!(features(&o)["humidity"]["properties"]["value"], json!(50));
}

#[test]
fn pointers_are_relative_to_the_command_path() {
    let o = merged(
        "/features/temperature/properties",
        json!({"value": 30, "unit": "C"}),
        r#"{"value": "lt(features/temperature/properties/value,0)", "/unit": "exists(thingId)"}"#,
    );
    assert_eq!(
        features(&o)["temperature"]["properties"],
        json!({"value": 21, "unit": "C"})
    );
    assert_eq!(o.event.unwrap().value, Some(json!({"unit": "C"})));
}

#[test]
fn everything_filtered_still_persists_an_event_with_empty_objects() {
    let o = merged(
        "/",
        json!({"features": {"temperature": {"properties": {"value": 25}}}}),
        r#"{"features/temperature/properties/value": "lt(features/temperature/properties/value,0)"}"#,
    );
    assert_eq!(o.status, 204);
    assert_eq!(o.state.as_ref().unwrap().revision, 2);
    assert_eq!(features(&o), state().thing["features"]);
    let ev = o.event.unwrap();
    assert_eq!(
        ev.value,
        Some(json!({"features": {"temperature": {"properties": {}}}}))
    );
    let o = merged(
        "/features/temperature",
        json!({"properties": {"value": 25}}),
        r#"{"properties": "eq(thingId,\"ns:other\")"}"#,
    );
    assert_eq!(o.event.unwrap().value, Some(json!({})));
}

#[test]
fn invalid_header_and_invalid_rql_are_400() {
    let err = |conds: &str| {
        run_as(
            Some(&state()),
            merge("/", json!({"attributes": {"a": 1}}), conds),
            None,
        )
        .unwrap_err()
    };
    let e = err("{features");
    assert_eq!((e.status, &*e.error), (400, "header.invalid"));
    assert_eq!(
        e.message,
        "The value '{features' of the header 'merge-thing-patch-conditions' is not a valid JSON object."
    );
    let e = err(r#"{"attributes/a": true}"#);
    assert_eq!((e.status, &*e.error), (400, "header.invalid"));
    assert!(e
        .message
        .starts_with("Failed to parse merge-thing-patch-conditions header:"));
    let e = err(r#"{"attributes/a": "gt(attributes/a"}"#);
    assert_eq!((e.status, &*e.error), (400, "things:condition.invalid"));
    assert_eq!(
        e.message,
        "The specified condition 'gt(attributes/a' is invalid."
    );
    // an invalid RQL fails even where its pointer is not in the patch (parsed up front)
    let e = err(r#"{"features/x": "foo("}"#);
    assert_eq!(e.error, "things:condition.invalid");
    // the JSON-object check applies to every command, the member parsing only to merges
    let modify = json!({"topic": "ns/t/things/twin/commands/modify", "path": "/attributes/a",
        "value": 1, "headers": {"merge-thing-patch-conditions": "[]"}});
    let e = run_as(Some(&state()), modify, None).unwrap_err();
    assert_eq!(e.error, "header.invalid");
}

#[test]
fn read_is_required_on_condition_fields() {
    let policy = json!({"policyId": "ns:t", "entries": {"e": {
    "subjects": {"x:s": {"type": "t"}},
    "resources": {
        "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
        "thing:/attributes/secret": {"grant": [], "revoke": ["READ"]}
    }}}});
    let e = Enforcer::from_policy(&policy, 0, None);
    let subjects = vec!["x:s".to_owned()];
    let access = || {
        Some(enforce::Access {
            subjects: &subjects,
            enforcer: Some(&e),
        })
    };
    let v = |c: &str| merge("/attributes", json!({"a": 1}), c);
    let err = run_as(
        Some(&state()),
        v(r#"{"a": "eq(attributes/secret,1)"}"#),
        access(),
    )
    .unwrap_err();
    assert_eq!((err.status, &*err.error), (412, "things:condition.failed"));
    let ok = run_as(
        Some(&state()),
        v(r#"{"a": "eq(attributes/open,1)"}"#),
        access(),
    )
    .unwrap();
    // attributes/open does not exist -> condition false -> `a` dropped
    assert_eq!(ok.event.unwrap().value, Some(json!({})));
}
