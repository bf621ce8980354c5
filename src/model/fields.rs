//! Ditto field selectors (`fields=thingId,attributes(location,model),features/*/properties/on`):
//! parsing into pointers (Ditto's `ImmutableJsonFieldSelectorFactory`), the thing-level root check
//! (`ThingFieldSelector`) and the `select` API projecting a JSON value onto the selected paths
//! (the projection engine itself lives in `projection.rs`).

use crate::bounds::MAX_POINTER_SEGMENTS;
use crate::error::DittoError;
use crate::model::pointer::{format_pointer, parse_pointer};
use crate::model::projection::project;
use serde_json::Value;
use std::fmt;

/// Thing roots that may be followed by a sub-path.
const ROOTS_WITH_PATHS: [&str; 4] = ["attributes", "features", "_metadata", "_context"];
/// Thing roots that are selected as a whole only.
const LEAF_ROOTS: [&str; 8] = [
    "thingId",
    "policyId",
    "definition",
    "_namespace",
    "_revision",
    "_created",
    "_modified",
    "_policy",
];

const THING_FIELDS_DESCRIPTION: &str = "Please provide a comma separated List of valid Thing fields. Make sure \
     that you did not use a space after a comma. Valid Fields are: [thingId, policyId, definition, _namespace, \
     _revision, _created, _modified, _metadata(/[^,]+)?, _policy, _context, _context(/[^,]+)?, \
     features(/[^,]+)?, attributes(/[^,]+)?]";

/// A parsed field selector: the original text and its expanded, de-duplicated pointers (in the
/// order given). Keys are not trimmed: `a, b` selects `a` and ` b` (as in Ditto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    raw: String,
    pointers: Vec<Vec<String>>,
    /// An entry addressed the root (`a,,b`, `/`, `()`): ignored when selecting, but not a
    /// valid thing field.
    has_root_entry: bool,
}

impl FieldSelector {
    /// Parses `fields`: comma-separated pointers (leading `/` optional), `a/b(c,d/e)` groups
    /// (nestable up to 32 levels; `a()` means `a`). Empty text, unbalanced or too deeply nested
    /// parentheses, or text after a group's `)` -> 400 `json.fieldselector.invalid`; `//` -> 400
    /// `json.pointer.invalid`.
    pub fn parse(s: &str) -> Result<FieldSelector, DittoError> {
        if s.is_empty() || !parentheses_balanced(s) {
            return Err(selector_invalid(s));
        }
        let mut sel = FieldSelector {
            raw: s.to_owned(),
            pointers: Vec::new(),
            has_root_entry: false,
        };
        sel.parse_list(s, &[])?;
        sel.dedup();
        Ok(sel)
    }

    /// A selector from already parsed pointers (root pointers are ignored when selecting).
    pub fn from_pointers(pointers: Vec<Vec<String>>) -> FieldSelector {
        let raw = pointers
            .iter()
            .map(|p| format_pointer(p))
            .collect::<Vec<_>>()
            .join(",");
        let mut sel = FieldSelector {
            raw,
            pointers: Vec::new(),
            has_root_entry: false,
        };
        for p in pointers {
            sel.push(p);
        }
        sel.dedup();
        sel
    }

    fn push(&mut self, p: Vec<String>) {
        if p.is_empty() {
            self.has_root_entry = true;
        } else {
            self.pointers.push(p);
        }
    }

    /// Drops repeated pointers, keeping the first of each (linear: a selector of 100k
    /// `a,a,...` items must not cost 100k^2 comparisons).
    fn dedup(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::with_capacity(self.pointers.len());
        for p in std::mem::take(&mut self.pointers) {
            if !seen.contains(&p) {
                seen.insert(p.clone());
                kept.push(p);
            }
        }
        self.pointers = kept;
    }

    /// Appends `more` to a group's `prefix`: at most [`MAX_POINTER_SEGMENTS`] segments in all.
    fn joined(&self, prefix: &[String], more: &str) -> Result<Vec<String>, DittoError> {
        let more = parse_pointer(more)?;
        let n = prefix.len() + more.len();
        if n > MAX_POINTER_SEGMENTS {
            return Err(crate::bounds::pointer_too_long(&self.raw, n));
        }
        let mut path = prefix.to_vec();
        path.extend(more);
        Ok(path)
    }

    fn parse_list(&mut self, list: &str, prefix: &[String]) -> Result<(), DittoError> {
        let mut depth = 0usize;
        let mut start = 0;
        for (i, c) in list.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    self.parse_item(&list[start..i], prefix)?;
                    start = i + 1;
                }
                _ => {}
            }
        }
        self.parse_item(&list[start..], prefix)
    }

    fn parse_item(&mut self, item: &str, prefix: &[String]) -> Result<(), DittoError> {
        let Some(open) = item.find('(') else {
            let path = self.joined(prefix, item)?;
            self.push(path);
            return Ok(());
        };
        let close = matching_close(item, open).ok_or_else(|| selector_invalid(&self.raw))?;
        if close + 1 != item.len() {
            return Err(selector_invalid(&self.raw));
        }
        let path = self.joined(prefix, &item[..open])?;
        self.parse_list(&item[open + 1..close], &path)
    }

    /// The original selector text (or the pointers joined by `,` for [`FieldSelector::from_pointers`]).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The expanded pointers, e.g. `a(b,c)` -> `[["a","b"],["a","c"]]`.
    pub fn pointers(&self) -> &[Vec<String>] {
        &self.pointers
    }

    /// `true` if no pointer selects anything (e.g. `/`).
    pub fn is_empty(&self) -> bool {
        self.pointers.is_empty()
    }

    /// The distinct first segments of the pointers, in order.
    pub fn roots(&self) -> impl Iterator<Item = &str> + '_ {
        self.pointers.iter().enumerate().filter_map(|(i, p)| {
            let root = p.first()?;
            (!self.pointers[..i].iter().any(|q| q.first() == Some(root))).then_some(root.as_str())
        })
    }

    /// Checks that every pointer is a selectable thing field: `thingId`, `policyId`,
    /// `definition`, `_namespace`, `_revision`, `_created`, `_modified`, `_policy` as a whole;
    /// `attributes`, `features`, `_metadata`, `_context` with or without sub-path. Otherwise 400
    /// `things:field.selection.invalid` (`Thing field selection <fields> was not valid.`).
    pub fn validate_thing_roots(&self) -> Result<(), DittoError> {
        let valid = |p: &Vec<String>| match p.as_slice() {
            [root] => {
                LEAF_ROOTS.contains(&root.as_str()) || ROOTS_WITH_PATHS.contains(&root.as_str())
            }
            [root, ..] => ROOTS_WITH_PATHS.contains(&root.as_str()),
            [] => false,
        };
        if self.has_root_entry || !self.pointers.iter().all(valid) {
            return Err(DittoError::new(
                400,
                "things:field.selection.invalid",
                format!("Thing field selection <{}> was not valid.", self.raw),
            )
            .describe(THING_FIELDS_DESCRIPTION));
        }
        Ok(())
    }

    /// Projects `v` onto the selected paths, keeping the nesting. A `*` segment matches every key
    /// at its level (feature ID wildcard). Paths that do not exist are omitted; if none exists the
    /// result is `{}`. Arrays on a path are traversed: each object element is projected with the
    /// rest of the path, other elements are kept. Members appear in selector order; a shorter
    /// pointer wins over a longer one with the same prefix. A non-object or empty `v` is returned
    /// unchanged.
    pub fn select(&self, v: &Value) -> Value {
        self.select_impl(v, true)
    }

    /// Like [`FieldSelector::select`] but `*` is an ordinary key (Ditto expands the wildcard only
    /// at feature-ID positions; use this for attributes/properties).
    pub fn select_literal(&self, v: &Value) -> Value {
        self.select_impl(v, false)
    }

    fn select_impl(&self, v: &Value, wildcard: bool) -> Value {
        match v {
            Value::Object(obj) if !obj.is_empty() => project(obj, &self.pointers, wildcard),
            other => other.clone(),
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn selector_invalid(s: &str) -> DittoError {
    DittoError::new(400, "json.fieldselector.invalid", format!("The field selector <{s}> is invalid!")).describe(
        "Check, for example, if the amount of opening parentheses '(' matches the amount of closing ones ')'.",
    )
}

/// Maximum parenthesis nesting (deeper input is rejected instead of recursing without bound).
const MAX_NESTING: usize = crate::bounds::MAX_FIELDS_NESTING;

/// Parentheses properly nested (never closing more than opened) and not nested too deeply.
fn parentheses_balanced(s: &str) -> bool {
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' if depth == MAX_NESTING => return false,
            '(' => depth += 1,
            ')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}

/// Byte index of the `)` closing the `(` at byte index `open`.
fn matching_close(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    fn ptrs(s: &str) -> Vec<String> {
        sel(s)
            .pointers()
            .iter()
            .map(|p| format_pointer(p))
            .collect()
    }

    /// Ditto's fancy-thing example, shared with the projection tests.
    pub(crate) fn thing() -> Value {
        json!({
            "thingId": "org.eclipse.ditto:fancy-thing",
            "policyId": "org.eclipse.ditto:fancy-thing",
            "attributes": {"manufacturer": "ACME", "model": "X", "location": {"floor": 3, "room": "a"}},
            "features": {
                "lamp": {"properties": {"on": false, "color": "red"}},
                "fan": {"properties": {"speed": 3}},
                "heater": {"properties": {"on": true}, "desiredProperties": {"on": false}}
            },
            "_revision": 7
        })
    }

    #[test]
    fn parse_grammar() {
        assert_eq!(
            ptrs("thingId,attributes(location,model),features/*/properties/on,_revision"),
            [
                "/thingId",
                "/attributes/location",
                "/attributes/model",
                "/features/*/properties/on",
                "/_revision"
            ]
        );
        assert_eq!(ptrs("/a/b(/c,d/e)"), ["/a/b/c", "/a/b/d/e"]);
        assert_eq!(ptrs("a(b(c,d),e),f"), ["/a/b/c", "/a/b/d", "/a/e", "/f"]);
        assert_eq!(ptrs("a()"), ["/a"]);
        assert_eq!(ptrs("a(,b)"), ["/a", "/a/b"]);
        assert_eq!(ptrs("(a,b)"), ["/a", "/b"]);
        assert_eq!(ptrs("a,a,b/"), ["/a", "/b"]);
        assert_eq!(ptrs("a, b"), ["/a", "/ b"]);
        assert_eq!(ptrs("a~0b"), ["/a~0b"]);
        assert!(sel("/").is_empty());
        assert_eq!(sel("x(y)").to_string(), "x(y)");
        assert_eq!(sel("x(y)").as_str(), "x(y)");
    }

    #[test]
    fn parse_errors() {
        for s in ["", "a(b", "a)b(", "a(b))", ")", "a(b)c", "a(b)(c)", "a((b)"] {
            let e = FieldSelector::parse(s).unwrap_err();
            assert_eq!(e.status, 400, "{s}");
            assert_eq!(e.error, "json.fieldselector.invalid", "{s}");
            assert_eq!(e.message, format!("The field selector <{s}> is invalid!"));
            assert!(e.description.unwrap().contains("opening parentheses"));
        }
        let e = FieldSelector::parse("a//b").unwrap_err();
        assert_eq!(e.error, "json.pointer.invalid");
        let e = FieldSelector::parse("a(b//c)").unwrap_err();
        assert_eq!(e.error, "json.pointer.invalid");
    }

    #[test]
    fn roots_are_distinct_and_ordered() {
        let s = sel("attributes/a,thingId,attributes(b,c),features/*/properties");
        assert_eq!(
            s.roots().collect::<Vec<_>>(),
            ["attributes", "thingId", "features"]
        );
    }

    #[test]
    fn thing_roots() {
        for ok in [
            "thingId,policyId,definition,_namespace,_revision,_created,_modified,_policy",
            "attributes,features,_metadata,_context",
            "attributes/a/b,features/*/properties/on,_metadata/features,_context/topic",
            "/thingId,attributes(location,model)",
        ] {
            assert!(sel(ok).validate_thing_roots().is_ok(), "{ok}");
        }
        for bad in [
            "foo",
            "thingId,foo",
            "thingId/x",
            "_revision/x",
            "thingId, attributes",
            "thingId,,attributes",
            "/",
        ] {
            let e = sel(bad).validate_thing_roots().unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.error, "things:field.selection.invalid");
            assert_eq!(
                e.message,
                format!("Thing field selection <{bad}> was not valid.")
            );
            assert!(e
                .description
                .unwrap()
                .starts_with("Please provide a comma separated List of valid Thing fields."));
        }
    }

    #[test]
    fn from_pointers_roundtrip() {
        let s = FieldSelector::from_pointers(vec![
            vec!["a".into(), "b".into()],
            vec![],
            vec!["a".into(), "b".into()],
        ]);
        assert_eq!(s.pointers().len(), 1);
        assert_eq!(s.as_str(), "/a/b,/,/a/b");
        assert!(s.validate_thing_roots().is_err());
        assert_eq!(
            s.select(&json!({"a": {"b": 1, "c": 2}})),
            json!({"a": {"b": 1}})
        );
    }

    #[test]
    fn malformed_inputs_never_panic() {
        let junk = [
            "(",
            ")",
            "((",
            "))",
            ",",
            ",,",
            "(,)",
            "a(",
            "ä(ö,ü)",
            "\u{1F600}(x)",
            "a(b,(c,d))",
            "~",
            "/~0/",
        ];
        for s in junk {
            if let Ok(sel) = FieldSelector::parse(s) {
                let _ = sel.select(&thing());
                let _ = sel.validate_thing_roots();
            }
        }
        let deep = format!("{}x{}", "a(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            FieldSelector::parse(&deep).unwrap_err().error,
            "json.fieldselector.invalid"
        );
        let ok = format!("{}x{}", "a(".repeat(32), ")".repeat(32));
        assert_eq!(sel(&ok).pointers()[0].len(), 33);
    }

    #[test]
    fn random_inputs_never_panic() {
        let alphabet: Vec<char> = "a(),/~0 *:.-_\u{e4}\u{1F600}{}\u{0}".chars().collect();
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let doc = json!({"a": {"*": [1, {"a": 2}], "b": {"a": null}}, "*": 3});
        for _ in 0..20_000 {
            let mut s = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bits = state;
            for _ in 0..(bits % 12) {
                bits /= 7;
                s.push(alphabet[(bits % alphabet.len() as u64) as usize]);
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                bits ^= state >> 20;
            }
            let _ = parse_pointer(&s);
            if let Ok(sel) = FieldSelector::parse(&s) {
                let _ = sel.select(&doc);
                let _ = sel.select_literal(&doc);
                let _ = sel.validate_thing_roots();
                let _ = sel.roots().count();
            }
        }
    }
}
