//! The depth bounds on untrusted input, in one place (docs/limits.md lists them): JSON nesting,
//! JSON pointer segments, RQL and field-selector nesting; plus the non-recursive checks that
//! enforce them before anything recursive (serde, the engine, a `Drop`) touches the input.
//! Not settings: every reader of a stored document (serde_json stops at 127 levels) must parse it.

use crate::error::DittoError;
use serde::Deserialize;
use serde_json::Value;

/// Deepest JSON nesting of a payload a client sends (a WS envelope's `value`, an HTTP body, a
/// JSON header, an MQTT payload, a message) and of every stored document (a thing, its
/// `_metadata`, a policy). `{"a":{}}` is 2 levels; a scalar 0. Stored wrappers and envelopes add
/// at most a few levels, so everything written stays far below serde_json's limit (127).
pub const MAX_JSON_DEPTH: usize = 100;

/// Deepest nesting of a whole inbound Ditto Protocol frame: the envelope object around a
/// payload of [`MAX_JSON_DEPTH`].
pub const MAX_FRAME_DEPTH: usize = MAX_JSON_DEPTH + 1;

/// Most segments of a JSON pointer (a command path, a `fields` path, a metadata key, a policy
/// resource, an RQL property). No stored document is deeper, so no longer pointer addresses
/// anything.
pub const MAX_POINTER_SEGMENTS: usize = MAX_JSON_DEPTH;

/// Stack of every thread the gateway starts (executor threads, store writer, event publisher,
/// MQTT): std's default, pinned so that `RUST_MIN_STACK` cannot lower it. The worst input the
/// bounds admit needs a fraction of it (`stack_tests`, RELIABILITY.md).
pub const THREAD_STACK_BYTES: usize = 2 * 1024 * 1024;

/// Deepest nesting of RQL `and`/`or`/`not` (filters, conditions, search).
pub const MAX_RQL_DEPTH: usize = 100;

/// Deepest parenthesis nesting of a field selector (`fields=a(b(c))`).
pub const MAX_FIELDS_NESTING: usize = 32;

/// Nesting of the JSON text `b` (arrays and objects), counted without parsing or recursion;
/// brackets inside strings do not count. Meaningful for any bytes (invalid JSON included).
pub fn text_depth(b: &[u8]) -> usize {
    // a string's body is skipped in a tight loop (most of a frame is strings; every inbound
    // frame is scanned); same counting as the state machine in `tests::machine_depth`
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'"' => {
                while let Some(&c) = b.get(i) {
                    i += 1;
                    match c {
                        b'\\' => i += 1,
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Nesting of a parsed value (same counting as [`text_depth`]), without recursion.
pub fn value_depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(a) => {
                max = max.max(d + 1);
                stack.extend(a.iter().map(|x| (x, d + 1)));
            }
            Value::Object(m) => {
                max = max.max(d + 1);
                stack.extend(m.values().map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    max
}

/// The least nesting that merging `patch` (RFC 7396) leaves behind: like [`value_depth`],
/// but `null` object members (deletions) add nothing. Without recursion.
pub fn merge_depth(patch: &Value) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(patch, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(_) => max = max.max(d + value_depth(v)),
            Value::Object(m) => {
                max = max.max(d + 1);
                stack.extend(m.values().filter(|x| !x.is_null()).map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    max
}

/// 400 `json.invalid` before a write is built: a value of `depth` levels written `at` pointer
/// segments below a document's root nests it at least `at + depth` levels deep.
pub fn check_write(what: &str, at: usize, depth: usize) -> Result<(), DittoError> {
    match at + depth {
        d if d > MAX_JSON_DEPTH => Err(document_too_deep(what, d)),
        _ => Ok(()),
    }
}

/// Why bounded JSON text could not be parsed.
#[derive(Debug)]
pub enum JsonError {
    /// nested deeper than the bound (found, bound)
    TooDeep(usize, usize),
    /// serde_json refused it
    Parse(serde_json::Error),
}

impl JsonError {
    /// True when the text was JSON of the wrong shape (serde's "data" category).
    pub fn is_data(&self) -> bool {
        matches!(self, JsonError::Parse(e) if e.is_data())
    }
}

/// `serde_json::from_slice`, refusing text nested deeper than `max` before parsing it.
pub fn from_slice<'a, T: Deserialize<'a>>(b: &'a [u8], max: usize) -> Result<T, JsonError> {
    let d = text_depth(b);
    if d > max {
        return Err(JsonError::TooDeep(d, max));
    }
    serde_json::from_slice(b).map_err(JsonError::Parse)
}

/// A JSON payload of a client (at most [`MAX_JSON_DEPTH`] deep), or `None`.
pub fn parse_value(text: &str) -> Option<Value> {
    from_slice(text.as_bytes(), MAX_JSON_DEPTH).ok()
}

/// 400 `json.invalid` for JSON nested too deeply: Ditto answers JSON its parser cannot take, a
/// `StackOverflowError` included, with `JsonParseException` (`json.invalid`; see
/// `org.eclipse.ditto.json.JsonValueParser`).
pub fn too_deep_json(text: &str, found: usize, bound: usize) -> DittoError {
    DittoError::json_invalid(text).describe(format!(
        "The JSON is nested {found} levels deep; at most {bound} levels are accepted."
    ))
}

/// 400 `json.invalid` for a write whose document would be nested deeper than [`MAX_JSON_DEPTH`]
/// (the value is fine alone, but not at that path, or with that metadata).
pub fn document_too_deep(what: &str, found: usize) -> DittoError {
    DittoError::new(
        400,
        "json.invalid",
        format!("The {what} would be nested {found} levels deep, at most {MAX_JSON_DEPTH} levels are accepted."),
    )
    .describe("Reduce the nesting of the value, or write it at a shorter path.")
}

/// 400 `json.pointer.invalid` (Ditto's `JsonPointerInvalidException`) for a pointer with more
/// than [`MAX_POINTER_SEGMENTS`] segments.
pub fn pointer_too_long(shown: &str, segments: usize) -> DittoError {
    let shown: String = shown.chars().take(200).collect();
    DittoError::new(
        400,
        "json.pointer.invalid",
        format!("The JSON pointer <{shown}> is invalid!"),
    )
    .describe(format!(
        "The JSON pointer has {segments} segments; at most {MAX_POINTER_SEGMENTS} are supported."
    ))
}

#[cfg(test)]
mod stack_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The scan before it skipped string bodies in a loop of their own.
    fn machine_depth(b: &[u8]) -> usize {
        let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
        for &c in b {
            if in_str {
                match c {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_str = false,
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn text_depth_is_the_state_machine() {
        let mut rng = fastrand::Rng::with_seed(0xb0);
        let alphabet = b"[]{}\"\\a";
        for _ in 0..20_000 {
            let b: Vec<u8> = (0..rng.usize(0..40))
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            assert_eq!(
                text_depth(&b),
                machine_depth(&b),
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    #[test]
    fn depths_agree() {
        for v in [
            json!(1),
            json!("[{"),
            json!([]),
            json!({"a": {"b": [1, [2, {"c": "]]}}"}]]}}),
            json!([[], [[[]]], {}]),
        ] {
            let text = v.to_string();
            assert_eq!(text_depth(text.as_bytes()), value_depth(&v), "{text}");
        }
        assert_eq!(value_depth(&json!({"a": {"b": [1, [2, {}]]}})), 5);
        assert_eq!(text_depth(br#"{"a\"[":"\\"}"#), 1);
        assert_eq!(merge_depth(&json!({"a": {"b": null}, "c": [[1]]})), 3);
        assert_eq!(merge_depth(&json!({"a": {"b": {"c": null}}})), 3);
        assert_eq!(merge_depth(&json!(null)), 0);
    }

    #[test]
    fn bounded_parse_refuses_before_serde() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        match from_slice::<Value>(deep.as_bytes(), MAX_JSON_DEPTH) {
            Err(JsonError::TooDeep(100_000, MAX_JSON_DEPTH)) => {}
            other => panic!("{other:?}"),
        }
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        let v: Value = from_slice(ok.as_bytes(), MAX_JSON_DEPTH).unwrap();
        assert_eq!(value_depth(&v), MAX_JSON_DEPTH);
    }

    /// The bounds leave room below serde_json's own recursion limit for every wrapper that a
    /// stored document or an envelope puts around a payload.
    #[test]
    fn bounded_documents_stay_readable_when_wrapped() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let wrapped = format!(r#"{{"t":{{"x":{{"y":{}}}}}}}"#, nest(MAX_JSON_DEPTH));
        assert!(serde_json::from_str::<Value>(&wrapped).is_ok());
        // serde_json's own limit (for the record): 127 levels parse, 128 do not
        assert!(serde_json::from_str::<Value>(&nest(127)).is_ok());
        assert!(serde_json::from_str::<Value>(&nest(128)).is_err());
    }
}
