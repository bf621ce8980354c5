//! One test per fuzzing finding (RELIABILITY.md "Fuzzing"), on the input that found it. Each
//! failed before its fix.

use super::*;
use crate::engine::ThingState;
use serde_json::json;

fn passes(target: &str, input: &str) {
    match verdict(target, input.as_bytes()) {
        Some(Verdict::Violated(why)) => panic!("{target}: {why}"),
        Some(_) => {}
        None => panic!("no target {target}"),
    }
}

/// Finding 1 (envelope, cursor): long decimal numbers changed by one ulp when read back,
/// because serde_json's default number parsing is not correctly rounded: a stored thing, an
/// envelope, a cursor read back differently from what was acknowledged. Fixed by serde_json's
/// `float_roundtrip`.
#[test]
fn numbers_read_back_exactly_as_acknowledged() {
    let literal = "3.8221295347024027467141";
    let v: Value = serde_json::from_str(literal).unwrap();
    let state = ThingState {
        thing: json!({"thingId": "ns:a", "attributes": {"x": v}}),
        revision: 1,
        created: 0,
        modified: 0,
        metadata: None,
        deleted: false,
    };
    assert_eq!(ThingState::from_bytes(&state.to_bytes()), Ok(state));
    passes(
        "envelope",
        &format!(
            r#"{{"topic":"ns/a/things/twin/commands/modify","headers":{{}},"path":"/attributes/x","value":{literal}}}"#
        ),
    );
    passes(
        "cursor",
        r#"{"S":["+attributes/a"],"V":[23191.0369560260663427772085681939372],"I":"ns:a"}"#,
    );
}

/// Finding 4 (twin_command, harness): a thing name with a backslash (`\\f...`, valid in Ditto)
/// broke the harness's own follow-up commands, which were built by pasting text into JSON.
#[test]
fn thing_names_with_backslashes_go_through_the_engine() {
    passes(
        "twin_command",
        r#"{"topic":"org.ecl/ipse\\fancy-thing/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":1}"#,
    );
}
