//! Engine unit tests: every command family as a function call, JSON in and JSON out.

use super::*;
use crate::protocol::{Envelope, Signal};
use serde_json::json;

pub(super) const NOW: i64 = 1_610_962_932_000;

/// A thing command from its protocol JSON.
pub(super) fn cmd(v: Value) -> ThingCommand {
    match Signal::from_envelope(Envelope::parse(&v.to_string()).unwrap()).unwrap() {
        Signal::Thing(c) => c,
        other => panic!("not a thing command: {other:?}"),
    }
}

/// Applies the command `v` at `NOW` as `nginx:ditto` with the given access (`None`: trusted).
pub(super) fn run_as(
    state: Option<&ThingState>,
    v: Value,
    access: Option<enforce::Access>,
) -> Result<Outcome, DittoError> {
    apply(
        state,
        &cmd(v),
        &Ctx {
            now: NOW,
            subject: "nginx:ditto",
            lookup: &FnLookup(|_: &str| None, |_: &str| None),
            access,
        },
    )
}

pub(super) fn run(state: Option<&ThingState>, v: Value) -> Result<Outcome, DittoError> {
    run_as(state, v, None)
}

fn with_policy(state: Option<&ThingState>, v: Value) -> Result<Outcome, DittoError> {
    let some = |_: &str| Some(json!({"policyId": "x:y"}));
    apply(
        state,
        &cmd(v),
        &Ctx {
            now: NOW,
            subject: "nginx:ditto",
            lookup: &FnLookup(|_: &str| None, some),
            access: None,
        },
    )
}

fn created() -> ThingState {
    let o = run(
        None,
        json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {
            "attributes": {"location": {"floor": 3}},
            "features": {"lamp": {"properties": {"on": false}}}
        }}),
    )
    .unwrap();
    o.state.unwrap()
}

fn m(path: &str, value: Value) -> Value {
    json!({"topic": "ns/t/things/twin/commands/modify", "path": path, "value": value})
}

fn merge(path: &str, value: Value) -> Value {
    json!({"topic": "ns/t/things/twin/commands/merge", "headers": {"content-type": "application/merge-patch+json"}, "path": path, "value": value})
}

fn get(path: &str) -> Value {
    json!({"topic": "ns/t/things/twin/commands/retrieve", "path": path})
}

fn del(path: &str) -> Value {
    json!({"topic": "ns/t/things/twin/commands/delete", "path": path})
}

#[test]
fn create_gets_default_policy_revision_one_and_event() {
    let o = run(None, json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"attributes": {"a": 1}}})).unwrap();
    assert_eq!(o.status, 201);
    assert_eq!(
        o.value,
        Some(json!({"thingId": "ns:t", "policyId": "ns:t", "attributes": {"a": 1}}))
    );
    let (pid, policy) = o.policy.unwrap();
    assert_eq!(pid, "ns:t");
    assert_eq!(
        policy["entries"]["DEFAULT"]["subjects"]["nginx:ditto"]["type"],
        "generated"
    );
    assert_eq!(
        policy["entries"]["DEFAULT"]["resources"]["message:/"]["grant"],
        json!(["READ", "WRITE"])
    );
    let ev = o.event.unwrap();
    assert_eq!((ev.action, ev.revision), (EventAction::Created, 1));
    assert_eq!(o.etag.as_deref(), Some("\"rev:1\""));
    let s = o.state.unwrap();
    assert_eq!(ThingState::from_bytes(&s.to_bytes()).unwrap(), s);
}

#[test]
fn create_conflicts_and_policy_rules() {
    let s = created();
    let e = run(
        Some(&s),
        json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {}}),
    )
    .unwrap_err();
    assert_eq!((e.status, &*e.error), (409, "things:thing.conflict"));
    let e = run(None, json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"policyId": "x:y"}})).unwrap_err();
    assert_eq!((e.status, &*e.error), (400, "things:thing.notcreatable"));
    let o = with_policy(None, json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"policyId": "x:y"}})).unwrap();
    assert!(o.policy.is_none());
    let e = with_policy(
        None,
        json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {}}),
    )
    .unwrap_err();
    assert!(e.message.contains("implicit Policy"), "{e}");
    let e = run(None, json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"thingId": "ns:other"}})).unwrap_err();
    assert_eq!(e.error, "things:id.notsettable");
    // an invalid payload thingId is reported as such before the mismatch (Ditto parses it first)
    let e = run(None, json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"thingId": "invalid id"}})).unwrap_err();
    assert_eq!(
        (e.error.as_ref(), e.message.as_str()),
        ("things:id.invalid", "Thing ID 'invalid id' is not valid!")
    );
    let e = run(
        Some(&created()),
        merge("/", json!({"thingId": "invalid id"})),
    )
    .unwrap_err();
    assert_eq!(e.error, "things:id.invalid");
    let e = run(
        None,
        json!({"topic": "ns/t/things/live/commands/create", "path": "/", "value": {}}),
    )
    .unwrap_err();
    assert_eq!((e.status, &*e.error), (405, "things:thing.notcreatable"));
}

#[test]
fn modify_created_vs_modified_and_revisions() {
    let s = created();
    let o = run(Some(&s), m("/attributes/manufacturer", json!("ACME"))).unwrap();
    assert_eq!((o.status, o.value.clone()), (201, Some(json!("ACME"))));
    let s2 = o.state.unwrap();
    assert_eq!(s2.revision, 2);
    let o = run(Some(&s2), m("/attributes/manufacturer", json!("Bosch"))).unwrap();
    assert_eq!((o.status, o.value.clone()), (204, None));
    assert_eq!(o.event.as_ref().unwrap().action, EventAction::Modified);
    assert_eq!(o.state.as_ref().unwrap().revision, 3);
    assert!(o.etag.unwrap().starts_with("\"hash:"));
    let o = run(Some(&s), m("/features/lamp/properties/on", json!(true))).unwrap();
    assert_eq!(o.status, 204);
    let e = run(Some(&s), m("/features/nope/properties/on", json!(true))).unwrap_err();
    assert_eq!((e.status, &*e.error), (404, "things:feature.notfound"));
    let o = run(Some(&s), m("/features/new", json!({}))).unwrap();
    assert_eq!(o.status, 201);
    let e = run(None, m("/attributes/x", json!(1))).unwrap_err();
    assert_eq!((e.status, &*e.error), (404, "things:thing.notfound"));
}

#[test]
fn modify_root_replaces_and_keeps_policy() {
    let s = created();
    let o = run(Some(&s), m("/", json!({"attributes": {"b": 2}}))).unwrap();
    assert_eq!(o.status, 204);
    let t = &o.state.as_ref().unwrap().thing;
    assert_eq!(
        t,
        &json!({"thingId": "ns:t", "policyId": "ns:t", "attributes": {"b": 2}})
    );
    assert_eq!(o.event.unwrap().value.unwrap(), *t);
    let e = run(Some(&s), m("/", json!({"_policy": {}}))).unwrap_err();
    assert_eq!(e.error, "things:policy.notallowed");
    let o = run(None, m("/", json!({"attributes": {}}))).unwrap();
    assert_eq!(
        (o.status, o.event.unwrap().action),
        (201, EventAction::Created)
    );
}

#[test]
fn merge_rfc7396_everywhere() {
    let s = created();
    let o = run(
        Some(&s),
        merge(
            "/attributes",
            json!({"location": {"floor": null, "room": 1}, "x": 5}),
        ),
    )
    .unwrap();
    assert_eq!(o.status, 204);
    let st = o.state.unwrap();
    assert_eq!(
        st.thing["attributes"],
        json!({"location": {"room": 1}, "x": 5})
    );
    let ev = o.event.unwrap();
    assert_eq!(ev.action, EventAction::Merged);
    assert_eq!(
        ev.value.unwrap(),
        json!({"location": {"floor": null, "room": 1}, "x": 5})
    );
    let o = run(Some(&st), merge("/attributes/x", Value::Null)).unwrap();
    assert!(o.state.unwrap().thing["attributes"].get("x").is_none());
    let o = run(Some(&s), merge("/features/lamp/properties/on", json!(true))).unwrap();
    assert_eq!(
        o.state.unwrap().thing["features"]["lamp"]["properties"]["on"],
        true
    );
    let o = run(Some(&s), merge("/", json!({"definition": "a:b:1"}))).unwrap();
    assert_eq!(o.state.unwrap().thing["definition"], "a:b:1");
    assert_eq!(
        run(Some(&s), merge("/", Value::Null)).unwrap_err().error,
        "things:merge.invalid"
    );
    assert_eq!(
        run(Some(&s), merge("/", json!({"thingId": null})))
            .unwrap_err()
            .error,
        "things:id.notdeletable"
    );
    assert_eq!(
        run(Some(&s), merge("/policyId", Value::Null))
            .unwrap_err()
            .error,
        "things:policyId.notdeletable"
    );
    let mut no_ct = merge("/attributes", json!({}));
    no_ct["headers"] = json!({});
    assert_eq!(run(Some(&s), no_ct).unwrap_err().status, 415);
    let o = run(None, merge("/", json!({"attributes": {"a": 1, "b": null}}))).unwrap();
    assert_eq!(o.status, 201);
    assert_eq!(o.state.unwrap().thing["attributes"], json!({"a": 1}));
}

#[test]
fn retrieve_paths_and_fields() {
    let s = created();
    let o = run(Some(&s), get("/attributes/location")).unwrap();
    assert_eq!((o.status, o.value.unwrap()), (200, json!({"floor": 3})));
    let e = run(Some(&s), get("/attributes/nope")).unwrap_err();
    assert_eq!((e.status, &*e.error), (404, "things:attribute.notfound"));
    assert_eq!(e.message, "The attribute with key '/nope' on the thing with ID 'ns:t' could not be found or the requester had insufficient permissions to access it.");
    assert_eq!(
        run(Some(&s), get("/definition")).unwrap_err().error,
        "things:definition.notfound"
    );
    assert_eq!(
        run(Some(&s), get("/features/lamp/definition"))
            .unwrap_err()
            .error,
        "things:feature.definition.notfound"
    );
    assert_eq!(
        run(Some(&s), get("/features/x/properties"))
            .unwrap_err()
            .error,
        "things:feature.notfound"
    );
    assert_eq!(
        run(Some(&s), get("/features/lamp/desiredProperties"))
            .unwrap_err()
            .error,
        "things:feature.desiredProperties.notfound"
    );
    let mut r = get("/");
    r["fields"] = json!("thingId,attributes(location),_revision,_created");
    let v = run(Some(&s), r).unwrap().value.unwrap();
    assert_eq!(
        v,
        json!({"thingId": "ns:t", "attributes": {"location": {"floor": 3}}, "_revision": 1, "_created": "2021-01-18T09:42:12.000Z"})
    );
    let mut r = get("/");
    r["fields"] = json!("nonsense");
    assert_eq!(
        run(Some(&s), r).unwrap_err().error,
        "things:field.selection.invalid"
    );
}

#[test]
fn delete_and_recreate_continues_revision() {
    let s = created();
    assert_eq!(
        run(Some(&s), del("/attributes/nope")).unwrap_err().error,
        "things:attribute.notfound"
    );
    let o = run(Some(&s), del("/attributes")).unwrap();
    assert_eq!(
        (o.status, o.event.unwrap().action),
        (204, EventAction::Deleted)
    );
    let o = run(Some(&s), del("/")).unwrap();
    let tomb = o.state.unwrap();
    assert!(tomb.deleted && tomb.revision == 2);
    assert_eq!(
        run(Some(&tomb), get("/")).unwrap_err().error,
        "things:thing.notfound"
    );
    let o = run(
        Some(&tomb),
        json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {}}),
    )
    .unwrap();
    assert_eq!(o.state.unwrap().revision, 3);
}

#[test]
fn conditional_headers() {
    let s = created();
    let mut c = m("/", json!({"attributes": {"a": 1}}));
    c["headers"] = json!({"if-match": "\"rev:1\""});
    assert_eq!(run(Some(&s), c.clone()).unwrap().status, 204);
    let mut sub = m("/attributes/a", json!(1));
    sub["headers"] = json!({"if-match": "*"});
    assert_eq!(
        run(Some(&s), sub).unwrap_err().status,
        412,
        "if-match * on a missing resource"
    );
    c["headers"] = json!({"if-match": "\"rev:7\""});
    assert_eq!(
        run(Some(&s), c.clone()).unwrap_err().error,
        "things:precondition.failed"
    );
    let mut r = get("/");
    r["headers"] = json!({"if-none-match": "\"rev:1\""});
    assert_eq!(run(Some(&s), r).unwrap_err().status, 304);
    let mut c = m("/attributes/location", json!({"floor": 3}));
    c["headers"] = json!({"if-equal": "skip"});
    assert_eq!(run(Some(&s), c).unwrap_err().status, 412);
    let mut c = merge("/attributes", json!({"location": {"floor": 3}, "new": 1}));
    c["headers"]["if-equal"] = json!("skip-minimizing-merge");
    let o = run(Some(&s), c).unwrap();
    assert_eq!(o.event.unwrap().value.unwrap(), json!({"new": 1}));
    let mut c = m("/attributes/a", json!(1));
    c["headers"] = json!({"condition": "eq(attributes/location/floor,3)"});
    assert_eq!(run(Some(&s), c.clone()).unwrap().status, 201);
    c["headers"] = json!({"condition": "eq(attributes/location/floor,4)"});
    assert_eq!(
        run(Some(&s), c.clone()).unwrap_err().error,
        "things:condition.failed"
    );
    c["headers"] = json!({"condition": "eq(attributes/location/floor"});
    assert_eq!(
        run(Some(&s), c).unwrap_err().error,
        "things:condition.invalid"
    );
}

#[test]
fn validation_errors() {
    let s = created();
    assert_eq!(
        run(Some(&s), m("/features/lamp/definition", json!([])))
            .unwrap_err()
            .error,
        "things:feature.definition.empty"
    );
    assert_eq!(
        run(Some(&s), m("/attributes", json!(3)))
            .unwrap_err()
            .status,
        400
    );
    assert_eq!(
        run(Some(&s), m("/attributes/a", json!({"b/c": 1})))
            .unwrap_err()
            .error,
        "json.key.invalid"
    );
    assert_eq!(
        run(Some(&s), m("/definition", json!("no good")))
            .unwrap_err()
            .error,
        "things:definition.identifier.invalid"
    );
    let big = "x".repeat(MAX_THING_BYTES + 1);
    assert_eq!(
        run(Some(&s), m("/attributes/big", json!(big)))
            .unwrap_err()
            .status,
        413
    );
    assert_eq!(
        run(
            Some(&s),
            json!({"topic": "ns/t/things/twin/commands/modify", "path": "/attributes/x"})
        )
        .unwrap_err()
        .error,
        "json.field.missing"
    );
}
