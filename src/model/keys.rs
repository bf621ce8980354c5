//! JSON key validation of user data (attributes, properties, desired properties, feature IDs):
//! Ditto's `JsonKeyValidator` / `NoControlCharactersNoSlashesValidator`. A key must be non-empty,
//! contain no `/` and no char of U+0000..U+001F or U+007F..U+00FF, and be at most 256 UTF-16
//! units long; otherwise 400 `json.key.invalid` (`The JSON key <k> is invalid!`).

use crate::error::DittoError;
use crate::model::id::{is_control_char, MAX_ID_LENGTH};
use serde_json::Value;

const REASON_CHARS: &str = "Neither slashes nor any control characters are allowed.";
const REASON_LENGTH: &str = "Not allowed to exceed length of 256.";

/// Validates one key.
pub fn validate_key(key: &str) -> Result<(), DittoError> {
    let reason = if key.chars().map(char::len_utf16).sum::<usize>() > MAX_ID_LENGTH {
        REASON_LENGTH
    } else if key.is_empty() || key.chars().any(|c| c == '/' || is_control_char(c)) {
        REASON_CHARS
    } else {
        return Ok(());
    };
    Err(DittoError::new(
        400,
        "json.key.invalid",
        format!("The JSON key <{key}> is invalid!"),
    )
    .describe(reason))
}

/// Validates every object key of `v`, descending into nested objects. Like Ditto, objects inside
/// arrays are not inspected (array elements are opaque values). Non-objects are always valid.
pub fn validate_keys(v: &Value) -> Result<(), DittoError> {
    if let Value::Object(map) = v {
        for (k, child) in map {
            validate_key(k)?;
            validate_keys(child)?;
        }
    }
    Ok(())
}

/// Validates every segment of a parsed pointer (Ditto validates attribute/property pointers of
/// modify commands the same way).
pub fn validate_pointer_keys(path: &[String]) -> Result<(), DittoError> {
    path.iter().try_for_each(|k| validate_key(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn good_keys() {
        for k in [
            "a",
            "with space",
            "%",
            "~",
            "*",
            "{{ ~x~ }}",
            "\u{100}",
            "\u{1F600}",
            "a.b-c",
        ] {
            assert!(validate_key(k).is_ok(), "{k}");
        }
        assert!(validate_key(&"k".repeat(256)).is_ok());
    }

    #[test]
    fn bad_keys_with_ditto_texts() {
        for k in [
            "", "a/b", "/", "a\u{0}", "\t", "\u{1F}", "\u{7F}", "\u{E4}", "\u{FF}",
        ] {
            let e = validate_key(k).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.error, "json.key.invalid");
            assert_eq!(e.message, format!("The JSON key <{k}> is invalid!"));
            assert_eq!(e.description.as_deref(), Some(REASON_CHARS));
        }
        let e = validate_key(&"k".repeat(257)).unwrap_err();
        assert_eq!(e.description.as_deref(), Some(REASON_LENGTH));
    }

    #[test]
    fn recursive_validation() {
        assert!(validate_keys(&json!({"a": {"b": {"c": 1}}, "d": [1, 2]})).is_ok());
        assert!(validate_keys(&json!(5)).is_ok());
        assert!(validate_keys(&json!(null)).is_ok());
        let e = validate_keys(&json!({"a": {"b": {"c/d": 1}}})).unwrap_err();
        assert_eq!(e.message, "The JSON key <c/d> is invalid!");
        assert!(validate_keys(&json!({"": 1})).is_err());
        assert!(validate_keys(&json!({"x": {"\n": 1}})).is_err());
        // array elements are not inspected (Ditto's JsonKeyValidator only recurses into objects)
        assert!(validate_keys(&json!({"a": [{"b/c": 1}]})).is_ok());
    }

    #[test]
    fn pointer_keys() {
        assert!(validate_pointer_keys(&[]).is_ok());
        assert!(validate_pointer_keys(&["a".into(), "b".into()]).is_ok());
        assert!(validate_pointer_keys(&["a".into(), "\u{1}".into()]).is_err());
    }
}
