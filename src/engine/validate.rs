//! Payload validation per addressed path: a value written at `/features/f/definition` must be
//! a non-empty array of identifiers, attributes must be an object with valid keys, and so on.
//! Pure checks; the first violation becomes the Ditto error.

use super::errors;
use crate::error::DittoError;
use crate::model::{
    parse_policy_id, validate_definition, validate_feature_definition, validate_feature_id,
    validate_keys,
};
use crate::protocol::ThingPath;
use serde_json::{Map, Value};

/// Validates `v` as the new value of `path`.
pub fn value_for(path: &ThingPath, v: &Value) -> Result<(), DittoError> {
    // the path as text names it in errors; below an attribute or property (every write of one
    // value) no check needs it
    let at = || path.to_pointer_string();
    match path {
        ThingPath::Root => thing(v),
        ThingPath::PolicyId => policy_id(v, &at()),
        ThingPath::Definition => definition(v, &at()),
        ThingPath::Attributes | ThingPath::Properties(_) | ThingPath::DesiredProperties(_) => {
            object(v, &at())?;
            validate_keys(v)
        }
        ThingPath::Attribute(_) | ThingPath::Property(..) | ThingPath::DesiredProperty(..) => {
            validate_keys(v)
        }
        ThingPath::Features => features(v, &at()),
        ThingPath::Feature(_) => feature(v, &at()),
        ThingPath::FeatureDefinition(_) => feature_definition(v, &at()),
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, DittoError> {
    v.as_object()
        .ok_or_else(|| errors::wrong_type(at, "JsonObject"))
}

fn policy_id(v: &Value, at: &str) -> Result<(), DittoError> {
    let s = v.as_str().ok_or_else(|| errors::wrong_type(at, "String"))?;
    parse_policy_id(s).map(|_| ())
}

fn definition(v: &Value, at: &str) -> Result<(), DittoError> {
    match v {
        Value::Null => Ok(()),
        Value::String(s) => validate_definition(s),
        _ => Err(errors::wrong_type(at, "String")),
    }
}

fn feature_definition(v: &Value, at: &str) -> Result<(), DittoError> {
    let a = v
        .as_array()
        .ok_or_else(|| errors::wrong_type(at, "JsonArray"))?;
    if a.is_empty() {
        return Err(errors::feature_definition_empty());
    }
    for d in a {
        let s = d
            .as_str()
            .ok_or_else(|| errors::wrong_type(at, "JsonArray of String"))?;
        validate_feature_definition(s)?;
    }
    Ok(())
}

fn features(v: &Value, at: &str) -> Result<(), DittoError> {
    for (id, f) in object(v, at)? {
        validate_feature_id(id)?;
        feature(f, &format!("{at}/{id}"))?;
    }
    Ok(())
}

fn feature(v: &Value, at: &str) -> Result<(), DittoError> {
    for (k, x) in object(v, at)? {
        let here = format!("{at}/{k}");
        match k.as_str() {
            "definition" if !x.is_null() => feature_definition(x, &here)?,
            "properties" | "desiredProperties" if !x.is_null() => {
                object(x, &here)?;
                validate_keys(x)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A whole thing JSON (without the `_`-prefixed inline fields, which the engine strips first).
pub fn thing(v: &Value) -> Result<(), DittoError> {
    for (k, x) in object(v, "/")? {
        let here = format!("/{k}");
        match k.as_str() {
            "thingId" => {
                x.as_str()
                    .ok_or_else(|| errors::wrong_type(&here, "String"))?;
            }
            "policyId" => policy_id(x, &here)?,
            "definition" => definition(x, &here)?,
            "attributes" if !x.is_null() => {
                object(x, &here)?;
                validate_keys(x)?;
            }
            "features" if !x.is_null() => features(x, &here)?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn per_path_types() {
        assert!(value_for(&ThingPath::Attributes, &json!({"a": 1})).is_ok());
        assert_eq!(
            value_for(&ThingPath::Attributes, &json!(5))
                .unwrap_err()
                .status,
            400
        );
        assert!(value_for(&ThingPath::Attribute(vec!["a".into()]), &json!(5)).is_ok());
        let e = value_for(&ThingPath::FeatureDefinition("f".into()), &json!([])).unwrap_err();
        assert_eq!(e.error, "things:feature.definition.empty");
        assert!(value_for(
            &ThingPath::FeatureDefinition("f".into()),
            &json!(["a:b:1.0"])
        )
        .is_ok());
        assert!(value_for(&ThingPath::Definition, &json!("not a definition")).is_err());
        assert!(value_for(&ThingPath::PolicyId, &json!(42)).is_err());
        assert!(value_for(
            &ThingPath::Root,
            &json!({"features": {"f": {"properties": 3}}})
        )
        .is_err());
        assert!(value_for(&ThingPath::Root, &json!({"attributes": {"a/b": 3}})).is_err());
        assert!(value_for(
            &ThingPath::Root,
            &json!({"features": {"f": {"properties": {"x": 1}}}})
        )
        .is_ok());
    }
}
