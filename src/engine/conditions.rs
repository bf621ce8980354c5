//! Conditional requests: `if-match` / `if-none-match` against entity tags, `if-equal`
//! (`update`, `skip`, `skip-minimizing-merge`), the RQL `condition` header, and the merge
//! content-type rule. Evaluation order as Ditto: ETags, then if-equal, then condition.

use super::{errors, ThingState};
use crate::error::DittoError;
use crate::protocol::Headers;
use crate::rql::{self, Env, Query};

/// `if-equal` strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfEqual {
    /// always write (default)
    Update,
    /// 412 when the write changes nothing
    Skip,
    /// like skip, and merges are reduced to the members that change
    SkipMinimizingMerge,
}

impl IfEqual {
    /// Reads the header; unknown values are 400 `header.invalid`.
    pub fn from_headers(h: &Headers) -> Result<IfEqual, DittoError> {
        match h.get_str("if-equal").as_deref() {
            None | Some("update") => Ok(IfEqual::Update),
            Some("skip") => Ok(IfEqual::Skip),
            Some("skip-minimizing-merge") => Ok(IfEqual::SkipMinimizingMerge),
            Some(other) => Err(DittoError::header_invalid(
                "if-equal",
                other,
                "if-equal option",
            )),
        }
    }
}

/// The pre-parsed conditional headers of one command.
pub struct Checks<'a> {
    /// parsed `condition`
    pub condition: Option<&'a Query>,
    /// `if-equal`
    pub if_equal: IfEqual,
    /// request time (for `time:now` in conditions)
    pub now: i64,
    /// parsed `merge-thing-patch-conditions` (merge commands only)
    pub patch_conditions: Option<&'a [super::patch_conditions::PatchCondition]>,
}

/// Parses the `condition` header (400 `things:condition.invalid` when unparsable).
pub fn parse_condition(h: &Headers) -> Result<Option<Query>, DittoError> {
    match h.get_str("condition") {
        None => Ok(None),
        Some(c) => rql::parse(&c).map(Some).map_err(|e| e.to_condition_error()),
    }
}

/// 415 unless a merge carries `content-type: application/merge-patch+json`.
pub fn check_merge_content_type(h: &Headers) -> Result<(), DittoError> {
    let ct = h.get_str("content-type");
    let ok = ct
        .as_deref()
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/merge-patch+json")
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(errors::merge_media_type(ct.as_deref()))
    }
}

fn normalize(tag: &str) -> &str {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"')
}

fn matches_any(list: &str, current: &str) -> bool {
    list.split(',').any(|t| normalize(t) == normalize(current))
}

/// Checks `if-match` and `if-none-match` against the current ETag of the addressed resource
/// (`None` = it does not exist). Reads fail `if-none-match` with 304, writes with 412.
pub fn check_etags(h: &Headers, current: Option<&str>, is_read: bool) -> Result<(), DittoError> {
    if let Some(v) = h.get_str("if-match") {
        let ok = match current {
            None => false,
            Some(c) => v.trim() == "*" || matches_any(&v, c),
        };
        if !ok {
            return Err(errors::precondition_failed(
                "if-match",
                &v,
                current.unwrap_or(""),
            ));
        }
    }
    if let Some(v) = h.get_str("if-none-match") {
        let matched = match current {
            None => false,
            Some(c) => v.trim() == "*" || matches_any(&v, c),
        };
        if matched {
            let actual = current.unwrap_or("");
            return Err(if is_read {
                errors::not_modified(&v, actual)
            } else {
                errors::precondition_failed("if-none-match", &v, actual)
            });
        }
    }
    Ok(())
}

/// Evaluates the `condition` against the current thing (with its read-only fields).
pub fn check_condition(checks: &Checks, state: &ThingState) -> Result<(), DittoError> {
    let Some(q) = checks.condition else {
        return Ok(());
    };
    let env = Env {
        now_millis: checks.now,
        placeholders: None,
    };
    if q.matches(&state.full_view(), &env) {
        Ok(())
    } else {
        Err(errors::condition_failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(v: serde_json::Value) -> Headers {
        Headers::from_map(v.as_object().cloned().unwrap_or_default()).unwrap()
    }

    #[test]
    fn etag_rules() {
        let cur = Some("\"rev:3\"");
        assert!(check_etags(&h(json!({"if-match": "\"rev:3\""})), cur, false).is_ok());
        assert!(check_etags(&h(json!({"if-match": "\"rev:1\", \"rev:3\""})), cur, false).is_ok());
        assert!(check_etags(&h(json!({"if-match": "*"})), cur, false).is_ok());
        let e = check_etags(&h(json!({"if-match": "\"rev:2\""})), cur, false).unwrap_err();
        assert_eq!((e.status, &*e.error), (412, "things:precondition.failed"));
        assert!(check_etags(&h(json!({"if-match": "*"})), None, false).is_err());
        assert!(check_etags(&h(json!({"if-none-match": "*"})), None, false).is_ok());
        assert_eq!(
            check_etags(&h(json!({"if-none-match": "*"})), cur, false)
                .unwrap_err()
                .status,
            412
        );
        let e = check_etags(&h(json!({"if-none-match": "\"rev:3\""})), cur, true).unwrap_err();
        assert_eq!(
            (e.status, &*e.error),
            (304, "things:precondition.notmodified")
        );
        assert!(check_etags(&h(json!({"if-none-match": "\"rev:4\""})), cur, true).is_ok());
    }

    #[test]
    fn if_equal_and_content_type() {
        assert_eq!(
            IfEqual::from_headers(&h(json!({}))).unwrap(),
            IfEqual::Update
        );
        assert_eq!(
            IfEqual::from_headers(&h(json!({"if-equal": "skip"}))).unwrap(),
            IfEqual::Skip
        );
        assert!(IfEqual::from_headers(&h(json!({"if-equal": "maybe"}))).is_err());
        assert!(check_merge_content_type(&h(
            json!({"Content-Type": "application/merge-patch+json"})
        ))
        .is_ok());
        let e =
            check_merge_content_type(&h(json!({"content-type": "application/json"}))).unwrap_err();
        assert_eq!((e.status, &*e.error), (415, "mediatype.unsupported"));
        assert_eq!(
            check_merge_content_type(&h(json!({}))).unwrap_err().status,
            415
        );
    }
}
