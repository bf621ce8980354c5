//! Ditto JSON pointers (`ImmutableJsonPointer`): parsing `/a/b` into key segments and formatting
//! them back, plus get / get_mut / set / remove on `serde_json::Value` objects. Pointers only
//! address object members (arrays are opaque leaves, no numeric indexes); only `~0` -> `~` is
//! unescaped (no RFC 6901 `~1`, since keys can never contain `/`).

use crate::bounds::MAX_POINTER_SEGMENTS;
use crate::error::DittoError;
use serde_json::{Map, Value};

/// Parses a pointer. The leading `/` is optional; `""` and `"/"` are the root (empty vec); a
/// trailing `/` is ignored (`/a/b/` = `/a/b`), as in Ditto. Consecutive slashes anywhere are
/// rejected with 400 `json.pointer.invalid`, and so are pointers of more than
/// [`MAX_POINTER_SEGMENTS`] segments (counted before anything is allocated). `~0` inside a
/// segment decodes to `~`.
pub fn parse_pointer(s: &str) -> Result<Vec<String>, DittoError> {
    parse_pointer_after(s, 0)
}

/// `parse_pointer` without its first `skip` segments (checked as the whole pointer is; not
/// allocated): a command path's `attributes` segment is known from its variant.
pub fn parse_pointer_after(s: &str, skip: usize) -> Result<Vec<String>, DittoError> {
    let segments = s.split('/').filter(|seg| !seg.is_empty()).count();
    if segments > MAX_POINTER_SEGMENTS {
        return Err(crate::bounds::pointer_too_long(s, segments));
    }
    if s.as_bytes().windows(2).any(|w| w == b"//") {
        return Err(DittoError::new(
            400,
            "json.pointer.invalid",
            format!("The JSON pointer <{s}> is invalid!"),
        )
        .describe("Consecutive slashes in JSON pointers are not supported."));
    }
    // sized at once; a segment without `~` copied as is (`replace` runs a substring search)
    let mut out = Vec::with_capacity(segments.saturating_sub(skip));
    for seg in s.split('/').filter(|seg| !seg.is_empty()).skip(skip) {
        out.push(match seg.contains('~') {
            true => seg.replace("~0", "~"),
            false => seg.to_owned(),
        });
    }
    Ok(out)
}

/// Formats a parsed pointer as Ditto prints it: `/` for the root, else `/a/b`, with `~`
/// escaped as `~0` (so `parse_pointer(&format_pointer(p)) == p`).
pub fn format_pointer(path: &[String]) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::new();
    for seg in path {
        out.push('/');
        out.push_str(&seg.replace('~', "~0"));
    }
    out
}

/// The value at `path`; `None` if a segment is missing or passes through a non-object.
pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.as_object()?.get(key))
}

/// Mutable variant of [`get`].
pub fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.as_object_mut()?.get_mut(key))
}

/// Writes `new` at `path`, creating missing intermediate objects and replacing non-object
/// intermediates (and a non-object root) by objects. An empty path replaces `v` itself. An
/// existing member keeps its position; new members are appended.
pub fn set(v: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *v = new;
        return;
    };
    let mut cur = v;
    for key in parents {
        cur = ensure_object(cur).entry(key.clone()).or_insert(Value::Null);
    }
    ensure_object(cur).insert(last.clone(), new);
}

fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            *other = Value::Object(Map::new());
            ensure_object(other)
        }
    }
}

/// Removes and returns the value at `path` (siblings keep their order). `None` if absent. An
/// empty path takes the whole value, leaving `Value::Null` behind.
pub fn remove(v: &mut Value, path: &[String]) -> Option<Value> {
    let Some((last, parents)) = path.split_last() else {
        return Some(std::mem::take(v));
    };
    get_mut(v, parents)?.as_object_mut()?.shift_remove(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        parse_pointer(s).unwrap()
    }

    #[test]
    fn parsing() {
        assert!(p("").is_empty());
        assert!(p("/").is_empty());
        assert_eq!(p("/a/b"), ["a", "b"]);
        assert_eq!(p("a/b"), ["a", "b"]);
        assert_eq!(p("/a/b/"), ["a", "b"]);
        assert_eq!(p("/with space/%20"), ["with space", "%20"]);
        assert_eq!(p("/a~0b"), ["a~b"]);
        assert_eq!(p("/a~1b"), ["a~1b"]);
        assert_eq!(p("/~00"), ["~0"]);
        assert_eq!(p("/ä/\u{1F600}"), ["ä", "\u{1F600}"]);
    }

    #[test]
    fn consecutive_slashes_rejected() {
        for s in ["a//b", "//", "//a", "/a//", "///"] {
            let e = parse_pointer(s).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.error, "json.pointer.invalid");
            assert_eq!(e.message, format!("The JSON pointer <{s}> is invalid!"));
            assert!(e
                .description
                .unwrap()
                .contains("Consecutive slashes in JSON pointers are not supported."));
        }
    }

    #[test]
    fn long_pointers_rejected() {
        let at = "/a".repeat(MAX_POINTER_SEGMENTS);
        assert_eq!(p(&at).len(), MAX_POINTER_SEGMENTS);
        for s in [format!("{at}/a"), "/a".repeat(100_000)] {
            let e = parse_pointer(&s).unwrap_err();
            assert_eq!((e.status, &*e.error), (400, "json.pointer.invalid"));
            assert!(e.message.len() < 300, "the message quotes a prefix only");
        }
    }

    #[test]
    fn formatting_roundtrips() {
        assert_eq!(format_pointer(&[]), "/");
        assert_eq!(format_pointer(&p("a/b")), "/a/b");
        assert_eq!(format_pointer(&["a~b".to_owned()]), "/a~0b");
        for s in ["/a~0b/c", "/x", "/~0~0"] {
            assert_eq!(format_pointer(&p(s)), s);
        }
        // `~1` is not an escape: the key is `a~1`, printed with its `~` escaped
        assert_eq!(format_pointer(&p("/a~1")), "/a~01");
        for s in ["/a~0b/c", "/x", "/~0~0", "/a~1", "/~", "/~~0~1"] {
            assert_eq!(p(&format_pointer(&p(s))), p(s));
        }
    }

    #[test]
    fn get_and_get_mut() {
        let mut v = json!({"a": {"b": [1, {"c": 2}], "n": null}});
        assert_eq!(get(&v, &[]), Some(&v));
        assert_eq!(get(&v, &p("a/b")), Some(&json!([1, {"c": 2}])));
        assert_eq!(get(&v, &p("a/n")), Some(&Value::Null));
        assert_eq!(get(&v, &p("a/x")), None);
        assert_eq!(get(&v, &p("a/b/1")), None, "arrays are not indexable");
        assert_eq!(get(&v, &p("a/b/c")), None);
        *get_mut(&mut v, &p("a/n")).unwrap() = json!(3);
        assert_eq!(v["a"]["n"], 3);
        assert!(get_mut(&mut v, &p("a/n/deeper")).is_none());
        assert_eq!(get(&json!(5), &p("a")), None);
    }

    #[test]
    fn set_creates_and_replaces() {
        let mut v = json!({});
        set(&mut v, &p("a/b/c"), json!(1));
        assert_eq!(v, json!({"a": {"b": {"c": 1}}}));
        set(&mut v, &p("a/b"), json!("x"));
        assert_eq!(v, json!({"a": {"b": "x"}}));
        set(&mut v, &p("a/b/d"), json!(2));
        assert_eq!(v, json!({"a": {"b": {"d": 2}}}));
        let mut arr = json!({"a": [1, 2]});
        set(&mut arr, &p("a/0"), json!(9));
        assert_eq!(arr, json!({"a": {"0": 9}}));
        let mut scalar = json!(5);
        set(&mut scalar, &p("k"), json!(true));
        assert_eq!(scalar, json!({"k": true}));
        set(&mut scalar, &[], json!("root"));
        assert_eq!(scalar, json!("root"));
    }

    #[test]
    fn set_keeps_order() {
        let mut v = json!({"x": 1, "y": 2, "z": 3});
        set(&mut v, &p("y"), json!(20));
        set(&mut v, &p("w"), json!(0));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"x":1,"y":20,"z":3,"w":0}"#
        );
    }

    #[test]
    fn remove_values() {
        let mut v = json!({"a": {"x": 1, "y": 2, "z": 3}, "s": 5});
        assert_eq!(remove(&mut v, &p("a/y")), Some(json!(2)));
        assert_eq!(serde_json::to_string(&v["a"]).unwrap(), r#"{"x":1,"z":3}"#);
        assert_eq!(remove(&mut v, &p("a/y")), None);
        assert_eq!(remove(&mut v, &p("s/t")), None);
        assert_eq!(remove(&mut v, &p("nope/t")), None);
        assert_eq!(
            remove(&mut v, &[]),
            Some(json!({"a": {"x": 1, "z": 3}, "s": 5}))
        );
        assert_eq!(v, Value::Null);
    }

    /// The sized parse gives what the collecting parse gave, on random pointers of `/`, `~`,
    /// `0`, `1` and letters (escapes, empty segments, trailing slashes).
    #[test]
    fn parse_is_the_collecting_parse() {
        let old = |s: &str| -> Vec<String> {
            s.split('/')
                .filter(|seg| !seg.is_empty())
                .map(|seg| seg.replace("~0", "~"))
                .collect()
        };
        let mut rng = fastrand::Rng::with_seed(6);
        for _ in 0..20_000 {
            let s: String = (0..rng.usize(0..16))
                .map(|_| ['/', '~', '0', '1', 'a', 'é'][rng.usize(0..6)])
                .collect();
            match parse_pointer(&s) {
                Ok(v) => assert_eq!(v, old(&s), "{s}"),
                Err(_) => assert!(s.contains("//"), "{s}"),
            }
        }
    }
}
