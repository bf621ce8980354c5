//! Engine unit tests of the metadata headers: exact keys, `*/leaf` on a merge, metadata dropped
//! with deleted data, `get-metadata`, `delete-metadata`, and the two 400 errors.

use super::tests::run;
use super::*;
use serde_json::json;

const CT: &str = "application/merge-patch+json";

fn state(metadata: Option<Value>) -> ThingState {
    ThingState {
        thing: json!({"thingId": "ns:t", "policyId": "ns:t",
            "attributes": {"a": 1, "b": 2},
            "features": {"lamp": {"properties": {"color": {"r": 1, "g": 2}, "on": true}}}}),
        revision: 1,
        created: 0,
        modified: 0,
        metadata,
        deleted: false,
    }
}

fn cmd(action: &str, path: &str, value: Option<Value>, headers: Value) -> Value {
    let mut v = json!({"topic": format!("ns/t/things/twin/commands/{action}"),
                       "path": path, "headers": headers});
    if let Some(x) = value {
        v["value"] = x;
    }
    v
}

fn md(o: &Outcome) -> Option<Value> {
    o.state.as_ref().unwrap().metadata.clone()
}

#[test]
fn put_with_exact_key_is_relative_to_the_path_and_in_the_event() {
    let put = r#"[{"key":"/description","value":"RGB"}]"#;
    let o = run(
        Some(&state(None)),
        cmd(
            "modify",
            "/features/lamp/properties/color",
            Some(json!({"r": 5})),
            json!({ "put-metadata": put }),
        ),
    )
    .unwrap();
    assert_eq!(
        md(&o),
        Some(json!({"features": {"lamp": {"properties": {"color": {"description": "RGB"}}}}}))
    );
    assert_eq!(
        o.event.unwrap().metadata,
        Some(json!({"description": "RGB"}))
    );
}

#[test]
fn star_leaf_applies_to_every_leaf_of_a_merge_and_keeps_existing() {
    let before = json!({"attributes": {"a": {"unit": "m"}}});
    let o = run(
        Some(&state(Some(before))),
        cmd(
            "merge",
            "/",
            Some(json!({"attributes": {"b": 3},
                        "features": {"lamp": {"properties": {"color": {"r": 9, "g": 8}}}}})),
            json!({"content-type": CT, "put-metadata": [{"key": "*/ts", "value": 7}]}),
        ),
    )
    .unwrap();
    assert_eq!(
        md(&o),
        Some(json!({"attributes": {"a": {"unit": "m"}, "b": {"ts": 7}},
                    "features": {"lamp": {"properties": {"color": {"r": {"ts": 7}, "g": {"ts": 7}}}}}}))
    );
    let ev = o.event.unwrap().metadata.unwrap();
    assert_eq!(
        ev["attributes"],
        json!({"b": {"ts": 7}}),
        "event has only what was written"
    );
}

#[test]
fn metadata_goes_with_deleted_and_merge_nulled_data() {
    let before = json!({"attributes": {"a": {"unit": "m"}, "b": {"unit": "s"}},
                        "features": {"lamp": {"x": 1}}});
    let o = run(
        Some(&state(Some(before.clone()))),
        cmd("delete", "/attributes/a", None, json!({})),
    )
    .unwrap();
    assert_eq!(
        md(&o),
        Some(json!({"attributes": {"b": {"unit": "s"}}, "features": {"lamp": {"x": 1}}}))
    );
    let o = run(
        Some(&state(Some(before.clone()))),
        cmd(
            "merge",
            "/attributes",
            Some(json!({"b": null})),
            json!({"content-type": CT}),
        ),
    )
    .unwrap();
    assert_eq!(md(&o).unwrap()["attributes"], json!({"a": {"unit": "m"}}));
    let o = run(
        Some(&state(Some(before))),
        cmd("delete", "/", None, json!({})),
    )
    .unwrap();
    assert_eq!(md(&o), None);
}

#[test]
fn get_metadata_answers_relative_selection_or_empty_object() {
    let before = json!({"features": {"lamp": {"properties": {
        "color": {"r": {"ts": 1}, "g": {"ts": 2}, "description": "RGB"}, "on": {"ts": 3}}}}});
    let st = state(Some(before));
    let get = |path: &str, h: &str| {
        run(
            Some(&st),
            cmd("retrieve", path, None, json!({ "get-metadata": h })),
        )
        .unwrap()
        .ditto_metadata
    };
    assert_eq!(
        get("/", "features/lamp/properties/color/r"),
        Some(json!({"features": {"lamp": {"properties": {"color": {"r": {"ts": 1}}}}}}))
    );
    assert_eq!(
        get("/features/lamp/properties", "color/description,on"),
        Some(json!({"color": {"description": "RGB"}, "on": {"ts": 3}}))
    );
    assert_eq!(
        get("/features/lamp/properties/color", "*/ts"),
        Some(json!({"r": {"ts": 1}, "g": {"ts": 2}}))
    );
    assert_eq!(get("/attributes", "x"), Some(json!({})));
    let plain = run(Some(&st), cmd("retrieve", "/", None, json!({}))).unwrap();
    assert_eq!(plain.ditto_metadata, None);
}

#[test]
fn delete_metadata_removes_pointers_and_wildcards() {
    let before = json!({"attributes": {"a": {"unit": "m", "ts": 1}, "b": {"ts": 2}}});
    let o = run(
        Some(&state(Some(before.clone()))),
        cmd(
            "modify",
            "/attributes/a",
            Some(json!(4)),
            json!({"delete-metadata": "unit"}),
        ),
    )
    .unwrap();
    assert_eq!(
        md(&o),
        Some(json!({"attributes": {"a": {"ts": 1}, "b": {"ts": 2}}}))
    );
    let o = run(
        Some(&state(Some(before.clone()))),
        cmd(
            "merge",
            "/",
            Some(json!({"attributes": {"c": 1}})),
            json!({"content-type": CT, "delete-metadata": "*/ts"}),
        ),
    )
    .unwrap();
    assert_eq!(md(&o), Some(json!({"attributes": {"a": {"unit": "m"}}})));
    let o = run(
        Some(&state(Some(before))),
        cmd(
            "modify",
            "/attributes/c",
            Some(json!(1)),
            json!({"delete-metadata": "*"}),
        ),
    )
    .unwrap();
    assert_eq!(
        md(&o).unwrap()["attributes"]["a"]["unit"],
        "m",
        "only relative to the path"
    );
}

#[test]
fn two_metadata_headers_conflict_and_inline_plus_header_is_not_modifiable() {
    let e = run(
        Some(&state(None)),
        cmd(
            "retrieve",
            "/",
            None,
            json!({"get-metadata": "a", "delete-metadata": "b"}),
        ),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.error.as_ref()),
        (400, "things:metadata.headersconflict")
    );
    let e = run(
        Some(&state(None)),
        cmd(
            "modify",
            "/attributes/a",
            Some(json!(1)),
            json!({"put-metadata": [{"key": "x", "value": 1}], "delete-metadata": "y"}),
        ),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.error.as_ref()),
        (400, "things:metadata.headersconflict")
    );
    let e = run(
        None,
        cmd(
            "create",
            "/",
            Some(json!({"_metadata": {"attributes": {}}})),
            json!({"put-metadata": [{"key": "/attributes/x/y", "value": 1}]}),
        ),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.error.as_ref()),
        (400, "things:metadata.notmodifiable")
    );
    let o = run(
        None,
        cmd(
            "create",
            "/",
            Some(json!({"attributes": {"x": 1},
            "_metadata": {"attributes": {"x": {"u": "m"}}}})),
            json!({}),
        ),
    )
    .unwrap();
    assert_eq!(md(&o), Some(json!({"attributes": {"x": {"u": "m"}}})));
}

#[test]
fn invalid_put_metadata_is_a_400_and_no_header_means_no_metadata() {
    for bad in [
        json!("nope"),
        json!([{"key": "a/*/b", "value": 1}]),
        json!([{"value": 1}]),
    ] {
        let e = run(
            Some(&state(None)),
            cmd(
                "modify",
                "/attributes/a",
                Some(json!(1)),
                json!({ "put-metadata": bad }),
            ),
        )
        .unwrap_err();
        assert_eq!(e.status, 400, "{bad}");
    }
    let o = run(
        Some(&state(None)),
        cmd("modify", "/attributes/a", Some(json!(1)), json!({})),
    )
    .unwrap();
    assert_eq!((md(&o), o.event.unwrap().metadata), (None, None));
}
