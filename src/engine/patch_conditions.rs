//! The `merge-thing-patch-conditions` header of merge commands: a JSON object mapping pointers
//! (relative to the command's path) to RQL conditions on the current thing. Parts of the patch
//! whose condition is false are dropped before merging; parts without a condition always apply.

use crate::error::DittoError;
use crate::model::pointer;
use crate::protocol::Headers;
use crate::rql::{self, Env, Query};
use serde_json::Value;

/// Header name.
pub const HEADER: &str = "merge-thing-patch-conditions";

/// One parsed condition: where in the patch, and the RQL that must hold on the current thing.
#[derive(Debug)]
pub struct PatchCondition {
    /// pointer into the patch (relative to the command path)
    pub pointer: Vec<String>,
    /// parsed RQL
    pub query: Query,
}

/// 400 `header.invalid` with Ditto's text for a JSON object whose members are no
/// pointer -> string pairs (`AbstractDittoHeaders.getThingMergePatchConditions`).
fn parse_failed(detail: &str) -> DittoError {
    DittoError::new(
        400,
        "header.invalid",
        format!("Failed to parse {HEADER} header: {detail}"),
    )
    .describe("Verify that the header has the correct syntax and try again.")
}

/// Validates the header as Ditto's header validator does for every command: it must be a JSON
/// object (400 `header.invalid`, `... is not a valid JSON object.`).
fn header_object(h: &Headers) -> Result<Option<serde_json::Map<String, Value>>, DittoError> {
    let Some(text) = h.get_str(HEADER) else {
        return Ok(None);
    };
    match crate::bounds::parse_value(&text) {
        Some(Value::Object(m)) => Ok(Some(m)),
        _ => Err(DittoError::header_invalid(HEADER, &text, "JSON object")),
    }
}

/// Checks the header's JSON form on any command (Ditto validates typed headers up front).
pub fn validate(h: &Headers) -> Result<(), DittoError> {
    header_object(h).map(|_| ())
}

/// Parses the header of a merge command: every value must be a string (else 400
/// `header.invalid` `Failed to parse ...`), every key a valid pointer, every value valid RQL
/// (else 400 `things:condition.invalid`, as Ditto's enforcement parses them all).
pub fn parse(h: &Headers) -> Result<Option<Vec<PatchCondition>>, DittoError> {
    let Some(m) = header_object(h)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in &m {
        let ptr = pointer::parse_pointer(k).map_err(|e| parse_failed(&e.message))?;
        let Value::String(cond) = v else {
            return Err(parse_failed(&format!(
                "This JSON value is not a string: {v}"
            )));
        };
        let query = rql::parse(cond).map_err(|e| e.to_condition_error_for(cond))?;
        out.push(PatchCondition {
            pointer: ptr,
            query,
        });
    }
    Ok(Some(out))
}

/// The patch with every part removed whose condition does not hold on `thing` (the current
/// thing with its read-only fields). Non-object patches and pointers absent from the patch
/// are left alone; emptied parent objects stay (Ditto's default: no empty-object removal); a
/// false condition on the root pointer removes nothing (as in Ditto).
pub fn filter(patch: &Value, conds: &[PatchCondition], thing: &Value, env: &Env) -> Value {
    if !patch.is_object() {
        return patch.clone();
    }
    let mut out = patch.clone();
    for c in conds {
        if c.pointer.is_empty()
            || pointer::get(&out, &c.pointer).is_none()
            || c.query.matches(thing, env)
        {
            continue;
        }
        // As Ditto's `JsonObjectBuilder.remove`: the root pointer removes nothing.
        pointer::remove(&mut out, &c.pointer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(v: &str) -> Headers {
        let mut h = Headers::new();
        h.insert(HEADER, v);
        h
    }

    #[test]
    fn header_errors_follow_ditto() {
        let e = parse(&h("{not json")).unwrap_err();
        assert_eq!((e.status, &*e.error), (400, "header.invalid"));
        assert!(e.message.contains("is not a valid JSON object"), "{e:?}");
        assert_eq!(validate(&h("[1]")).unwrap_err().error, "header.invalid");
        let e = parse(&h(r#"{"a": 1}"#)).unwrap_err();
        assert_eq!((e.status, &*e.error), (400, "header.invalid"));
        assert!(e
            .message
            .starts_with("Failed to parse merge-thing-patch-conditions header: "));
        assert_eq!(
            parse(&h(r#"{"a//b": "eq(a,1)"}"#)).unwrap_err().error,
            "header.invalid"
        );
        let e = parse(&h(r#"{"a": "eq(a,"}"#)).unwrap_err();
        assert_eq!((e.status, &*e.error), (400, "things:condition.invalid"));
        assert!(parse(&Headers::new()).unwrap().is_none());
    }

    #[test]
    fn filter_drops_false_parts_only() {
        let conds = parse(&h(
            r#"{"a/x": "eq(attributes/n,1)", "b": "eq(attributes/n,2)", "/missing": "eq(attributes/n,2)"}"#,
        ))
        .unwrap()
        .unwrap();
        let thing = json!({"attributes": {"n": 1}});
        let env = Env::at(0);
        let patch = json!({"a": {"x": 1, "y": 2}, "b": 3, "c": 4});
        assert_eq!(
            filter(&patch, &conds, &thing, &env),
            json!({"a": {"x": 1, "y": 2}, "c": 4})
        );
        assert_eq!(filter(&json!(5), &conds, &thing, &env), json!(5));
        let root = parse(&h(r#"{"/": "eq(attributes/n,9)"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(filter(&patch, &root, &thing, &env), patch);
    }
}
