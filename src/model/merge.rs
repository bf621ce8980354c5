//! RFC 7396 JSON merge patch as Ditto applies it (`JsonMergePatch`), including Ditto's
//! regex-delete extension (`"{{ ~regex~ }}": null` removes matching sibling keys), the
//! minimisation used by `if-equal: skip-minimizing-merge`, and null stripping for a patch that
//! creates a resource. Object key order is kept (existing keys in place, new keys appended).

use crate::error::DittoError;
use regex_lite::{Regex, RegexBuilder};
use serde_json::{Map, Value};

/// Compiled-size cap for client-supplied key regexes (regex-lite's default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Applies `patch` to `target` (RFC 7396): objects merge recursively, a `null` member deletes,
/// a non-object patch (including `null`) replaces the target, an object patch onto a non-object
/// target replaces it with the patch minus its nulls. At every object level, keys
/// `{{ ~regex~ }}` / `{{ /regex/ }}` with value `null` first delete all target keys the regex
/// fully matches (Java `matches()` semantics); the rest of the patch then applies. Regexes that
/// do not compile delete nothing (see [`validate_patch_regexes`] to reject them up front).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_objects(t, p),
        (target, Value::Object(_)) => *target = strip_nulls(patch),
        (target, _) => *target = patch.clone(),
    }
}

fn merge_objects(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            if let Some(Ok(re)) = key_regex(key) {
                target.retain(|k, _| !re.is_match(k));
            }
        }
    }
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(key);
        } else if let Some(existing) = target.get_mut(key) {
            merge_patch(existing, value);
        } else {
            target.insert(key.clone(), strip_nulls(value));
        }
    }
}

/// For a key of the form `{{ ~re~ }}` or `{{ /re/ }}` (whitespace inside the braces optional):
/// `Some(compiled regex anchored for a full match)`; `None` for ordinary keys.
fn key_regex(key: &str) -> Option<Result<Regex, regex_lite::Error>> {
    let inner = key.strip_prefix("{{")?.strip_suffix("}}")?;
    // Java's String.trim(): strips every char <= U+0020
    let inner = inner.trim_matches(|c: char| c <= ' ');
    let body = inner
        .strip_prefix('~')
        .and_then(|r| r.strip_suffix('~'))
        .or_else(|| inner.strip_prefix('/').and_then(|r| r.strip_suffix('/')))?;
    // validate the regex on its own first, so that e.g. `a)|(b` cannot escape the anchoring group
    let build = |pattern: &str| {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    Some(build(body).and_then(|_| build(&format!("^(?:{body})$"))))
}

/// Rejects a patch containing a regex-delete key (`{{ ~re~ }}: null`, at any object depth)
/// whose regex does not compile: 400 `things:merge.invalid`. (Ditto would fail with an
/// unhandled `PatternSyntaxException`; edgetwin answers a client error instead.)
pub fn validate_patch_regexes(patch: &Value) -> Result<(), DittoError> {
    let Value::Object(map) = patch else {
        return Ok(());
    };
    for (key, value) in map {
        if value.is_null() {
            if let Some(Err(err)) = key_regex(key) {
                let first_line = err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                return Err(DittoError::new(
                    400,
                    "things:merge.invalid",
                    "The provided JSON Merge Patch is invalid, it must conform to RFC7396.",
                )
                .describe(format!(
                    "The regular expression in key '{key}' is not valid: {first_line}"
                )));
            }
        }
        validate_patch_regexes(value)?;
    }
    Ok(())
}

/// `v` with every `null` object member removed, recursively through objects (array elements
/// are kept as they are): the result of applying `v` as a merge patch to nothing.
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, val)| !val.is_null())
                .map(|(k, val)| (k.clone(), strip_nulls(val)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The part of `patch` that would change `current` (`if-equal: skip-minimizing-merge`), or
/// `None` if applying the patch changes nothing (JSON equality, key order ignored). Applying the
/// result to `current` yields a document equal to applying `patch`. Dropped: members equal to
/// the current value, `null` for absent keys, empty objects merged into objects, regex-delete
/// keys matching nothing, and regex-delete keys whose deleted keys the patch all re-creates
/// unchanged (they would only reorder). Other matching regex-delete keys are kept and the
/// remaining members are compared against `current` minus the keys they delete.
pub fn minimize_patch(current: &Value, patch: &Value) -> Option<Value> {
    match (current, patch) {
        (Value::Object(cur), Value::Object(p)) => minimize_objects(cur, p).map(Value::Object),
        (_, Value::Object(_)) => Some(patch.clone()),
        _ => (current != patch).then(|| patch.clone()),
    }
}

fn minimize_objects(
    current: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut deleted_by_regex: Vec<&str> = Vec::new();
    for (key, value) in patch {
        if value.is_null() {
            if let Some(Ok(re)) = key_regex(key) {
                let before = deleted_by_regex.len();
                deleted_by_regex.extend(
                    current
                        .keys()
                        .map(String::as_str)
                        .filter(|k| re.is_match(k)),
                );
                if deleted_by_regex.len() > before {
                    out.insert(key.clone(), Value::Null);
                }
            }
        }
    }
    // Regex deletions whose keys the patch all re-creates with their current value only reorder
    // the object: drop them (and compare everything against the untouched current object).
    let only_reorders = deleted_by_regex
        .iter()
        .all(|k| match (patch.get(*k), current.get(*k)) {
            (Some(new), Some(old)) => !new.is_null() && strip_nulls(new) == *old,
            _ => false,
        });
    if only_reorders {
        out.clear();
        deleted_by_regex.clear();
    }
    let lookup = |key: &str| {
        current
            .get(key)
            .filter(|_| !deleted_by_regex.contains(&key))
    };
    for (key, value) in patch {
        if out.contains_key(key) {
            continue; // a kept regex-delete key
        }
        let kept = match (lookup(key), value) {
            (None, Value::Null) => None,
            (None, _) | (Some(_), Value::Null) => Some(value.clone()),
            (Some(existing), _) => minimize_patch(existing, value),
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merged(target: Value, patch: Value) -> Value {
        let mut t = target;
        merge_patch(&mut t, &patch);
        t
    }

    #[test]
    fn rfc7396_appendix_a() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(
                merged(target.clone(), patch.clone()),
                expected,
                "{target} + {patch}"
            );
        }
    }

    #[test]
    fn keeps_key_order() {
        let out = merged(
            json!({"x":1,"y":2,"z":3}),
            json!({"y":null,"x":10,"w":{"n":null,"m":1}}),
        );
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"x":10,"z":3,"w":{"m":1}}"#
        );
    }

    #[test]
    fn object_patch_onto_scalar_strips_nested_nulls() {
        assert_eq!(
            merged(json!(5), json!({"a":{"b":null,"c":[null]},"d":null})),
            json!({"a":{"c":[null]}})
        );
    }

    #[test]
    fn regex_delete_from_ditto_tests() {
        let day = |p: &str| {
            json!({
                format!("{p}-01"): true, format!("{p}-02"): "hello", format!("{p}-03"): "darkness",
                format!("{p}-04"): "my", format!("{p}-05"): "old", format!("{p}-06"): "friend"
            })
        };
        let target = json!({"a": day("2023-04"), "b": day("2023-04"),
            "c": {"some": true, "2023-04-02": "hello", "totally-other": "darkness", "foo": "my"}});
        let new = json!({"2023-05-01": "new", "2023-05-02": "catch", "2023-05-03": "phrase"});
        let mut pa = json!({"{{ ~2023-04-.*~ }}": null});
        let mut pb = json!({"{{ ~2023-04-01~ }}": null, "{{ ~^2023-04-03$~ }}": null, "{{ ~[0-9]{4}-04-.+4~ }}": null});
        let mut pc = json!({"{{ ~.*~ }}": null});
        for p in [&mut pa, &mut pb, &mut pc] {
            for (k, v) in new.as_object().unwrap() {
                p.as_object_mut().unwrap().insert(k.clone(), v.clone());
            }
        }
        let out = merged(target, json!({"a": pa, "b": pb, "c": pc}));
        let expected = json!({
            "a": new,
            "b": {"2023-04-02": "hello", "2023-04-05": "old", "2023-04-06": "friend",
                  "2023-05-01": "new", "2023-05-02": "catch", "2023-05-03": "phrase"},
            "c": new,
        });
        assert_eq!(out, expected);
    }

    #[test]
    fn regex_delete_then_rest_applies_with_hierarchy() {
        let target = json!({"first": {"second": {"third": {"x": 1}, "another-on-second": false},
            "something-on-first": "foobar1", "another-on-first": 42}});
        let patch =
            json!({"first": {"{{ ~seco.*~ }}": null, "second": {"another-on-second": true}}});
        let expected = json!({"first": {"something-on-first": "foobar1", "another-on-first": 42,
            "second": {"another-on-second": true}}});
        let out = merged(target, patch);
        assert_eq!(out, expected);
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"first":{"something-on-first":"foobar1","another-on-first":42,"second":{"another-on-second":true}}}"#
        );
    }

    #[test]
    fn regex_key_syntax_variants() {
        let t = json!({"ab": 1, "ac": 2, "b": 3});
        assert_eq!(
            merged(t.clone(), json!({"{{~a.~}}": null})),
            json!({"b": 3})
        );
        assert_eq!(
            merged(t.clone(), json!({"{{   /a./  }}": null})),
            json!({"b": 3})
        );
        assert_eq!(
            merged(t.clone(), json!({"{{ ~a~ }}": null})),
            t,
            "full match, not find"
        );
        assert_eq!(merged(t.clone(), json!({"{{ ~~ }}": null})), t);
        assert_eq!(
            merged(t.clone(), json!({"{{ ~ }}": null})),
            t,
            "single ~ is not a regex"
        );
        assert_eq!(
            merged(t.clone(), json!({"{{ ~a)|(b~ }}": null})),
            t,
            "invalid, not re-grouped"
        );
        assert!(validate_patch_regexes(&json!({"{{ ~a)|(b~ }}": null})).is_err());
        assert_eq!(
            merged(t.clone(), json!({"{{ ~a.|b~ }}": null})),
            json!({}),
            "anchored as a whole"
        );
        assert_eq!(merged(t.clone(), json!({"{{ ~a.~ }}x": null})), t);
        // a regex key with a non-null value is an ordinary key
        assert_eq!(merged(t.clone(), json!({"{{ ~a.~ }}": 1}))["{{ ~a.~ }}"], 1);
        // new keys from the patch that match are not deleted
        assert_eq!(
            merged(json!({}), json!({"{{ ~a.~ }}": null, "ax": 1})),
            json!({"ax": 1})
        );
        // invalid regexes are ignored by merge_patch
        assert_eq!(
            merged(t.clone(), json!({"{{ ~a(~ }}": null, "z": 0})),
            json!({"ab":1,"ac":2,"b":3,"z":0})
        );
    }

    #[test]
    fn regex_validation() {
        assert!(
            validate_patch_regexes(&json!({"{{ ~a.*~ }}": null, "x": {"{{ /b/ }}": null}})).is_ok()
        );
        assert!(validate_patch_regexes(&json!(null)).is_ok());
        assert!(
            validate_patch_regexes(&json!({"{{ ~(~ }}": 5})).is_ok(),
            "non-null: ordinary key"
        );
        let e = validate_patch_regexes(&json!({"x": {"y": {"{{ ~a(~ }}": null}}})).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.error, "things:merge.invalid");
        assert!(e.description.unwrap().contains("{{ ~a(~ }}"));
        // huge counted repetitions exceed the size limit instead of eating memory
        assert!(validate_patch_regexes(&json!({"{{ ~(a{1000}){1000}~ }}": null})).is_err());
    }

    #[test]
    fn strip_nulls_is_recursive_through_objects_only() {
        assert_eq!(
            strip_nulls(&json!({"a":null,"b":{"c":null,"d":[null,{"e":null}]}})),
            json!({"b":{"d":[null,{"e":null}]}})
        );
        assert_eq!(strip_nulls(&json!(null)), json!(null));
        assert_eq!(strip_nulls(&json!([1])), json!([1]));
        let s = strip_nulls(&json!({"z":1,"a":null,"m":2}));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"z":1,"m":2}"#);
    }

    #[test]
    fn minimize_basic() {
        let cur = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        assert_eq!(minimize_patch(&cur, &json!({"a": 1})), None);
        assert_eq!(
            minimize_patch(&cur, &json!({"a": 2})),
            Some(json!({"a": 2}))
        );
        assert_eq!(
            minimize_patch(&cur, &json!({"b": {"c": 2, "d": 4}})),
            Some(json!({"b": {"d": 4}}))
        );
        assert_eq!(minimize_patch(&cur, &json!({"x": null})), None);
        assert_eq!(
            minimize_patch(&cur, &json!({"a": null, "x": null})),
            Some(json!({"a": null}))
        );
        assert_eq!(minimize_patch(&cur, &json!({"b": {}})), None);
        assert_eq!(
            minimize_patch(&cur, &json!({"a": {}})),
            Some(json!({"a": {}}))
        );
        assert_eq!(
            minimize_patch(&cur, &json!({"new": {"k": null}})),
            Some(json!({"new": {"k": null}}))
        );
        assert_eq!(minimize_patch(&cur, &json!({"e": [1]})), None);
        assert_eq!(minimize_patch(&cur, &json!({})), None);
        assert_eq!(minimize_patch(&json!(5), &json!(5)), None);
        assert_eq!(minimize_patch(&json!(5), &json!(6)), Some(json!(6)));
        assert_eq!(minimize_patch(&json!(5), &json!({})), Some(json!({})));
        assert_eq!(minimize_patch(&cur, &json!(null)), Some(json!(null)));
        assert_eq!(minimize_patch(&json!(null), &json!(null)), None);
    }

    #[test]
    fn minimize_with_regex_keys() {
        let cur = json!({"k1": 1, "k2": 2, "z": 0});
        assert_eq!(minimize_patch(&cur, &json!({"{{ ~x.*~ }}": null})), None);
        assert_eq!(
            minimize_patch(&cur, &json!({"{{ ~k.*~ }}": null, "k1": 1, "z": 0})),
            Some(json!({"{{ ~k.*~ }}": null, "k1": 1}))
        );
        // deleting and re-creating every matched key with its current value only reorders
        assert_eq!(
            minimize_patch(&cur, &json!({"{{ ~k.*~ }}": null, "k1": 1, "k2": 2})),
            None
        );
        assert_eq!(
            minimize_patch(&cur, &json!({"{{ ~k.*~ }}": null, "k1": 1, "k2": 3})),
            Some(json!({"{{ ~k.*~ }}": null, "k1": 1, "k2": 3}))
        );
        let nested = json!({"k": {"x": 1, "y": 2}});
        assert_eq!(
            minimize_patch(&nested, &json!({"{{ ~k~ }}": null, "k": {"x": 1}})),
            Some(json!({"{{ ~k~ }}": null, "k": {"x": 1}}))
        );
    }

    /// Tiny deterministic generator (xorshift) for property checks.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn value(&mut self, depth: u32, patch: bool) -> Value {
            let choice = if depth == 0 {
                self.next(4)
            } else {
                self.next(7)
            };
            match choice {
                0 => json!(self.next(3)),
                1 if patch => Value::Null,
                1 => json!("s"),
                2 => json!([self.next(2)]),
                3 => json!(true),
                _ => {
                    let mut m = Map::new();
                    for _ in 0..self.next(4) {
                        let key = ["a", "b", "c", "ab", "{{ ~a.*~ }}"]
                            [self.next(if patch { 5 } else { 4 }) as usize];
                        m.insert(key.to_owned(), self.value(depth - 1, patch));
                    }
                    Value::Object(m)
                }
            }
        }
    }

    #[test]
    fn minimized_patch_has_the_same_effect() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let cur = g.value(3, false);
            let patch = g.value(3, true);
            let full = merged(cur.clone(), patch.clone());
            match minimize_patch(&cur, &patch) {
                None => assert_eq!(full, cur, "{cur} + {patch}"),
                Some(min) => {
                    let by_min = merged(cur.clone(), min.clone());
                    assert_eq!(by_min, full, "{cur} + {patch} -> {min}");
                    if !patch.to_string().contains("{{") {
                        // without regex keys even the key order is identical
                        assert_eq!(by_min.to_string(), full.to_string());
                    }
                    assert_ne!(full, cur, "{cur} + {patch} -> {min} changes nothing");
                }
            }
        }
    }
}
