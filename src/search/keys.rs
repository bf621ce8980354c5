//! Key layout of the search index in `Tree::Index` (pure): an order-preserving, typed encoding
//! of JSON scalars, escaped+terminated paths, the four entry kinds and their parsing.
//!
//! ```text
//! v | path 00 01 | value | thingId   value entry, one per scalar leaf (array elements included);
//!                                     stored value = flags (bit 0: the path holds several values)
//! x | path 00 01 | thingId           the path exists (any value, objects and arrays included)
//! m | path 00 01 | thingId           the path is multi-valued (an array, or reached through one)
//! o | thingId                        the thing has too many leaves: not indexed, always a candidate
//! ```
//! `path` = the path's bytes, `00` escaped as `00 FF`, and each of [`PATH_TOKENS`] (Ditto's
//! fixed path words: `attributes/`, `features/`, `/properties`, `policyId`, `_modified`...)
//! written as `00 k` (k = 02 + its position; greedy, left to right) instead of its text: ~65 B
//! less per typical twin (index format 2; format 1 spelled every path out and is rebuilt at
//! start, `search::rebuild`). Decoding is unambiguous (`00` is followed by `FF`, `01` or a
//! token number), so distinct paths keep distinct, prefix-free encodings; nothing orders paths
//! (every scan is of one whole path).
//! `value` = type tag (null < number < string < object < array < bool, Ditto's sort rank) plus
//! payload: numbers as order-preserving f64 bits (int and double compare numerically; integers
//! beyond 2^53 round, so the index narrows and the evaluator decides), strings as their first
//! [`MAX_STR_BYTES`] bytes, `00` escaped as `00 FF` and terminated by `00 01`.

use serde_json::{Number, Value};

/// Entry kinds (first key byte).
pub const VALUE: u8 = b'v';
/// Existence entries.
pub const EXISTS: u8 = b'x';
/// Multi-valued path markers.
pub const MULTI: u8 = b'm';
/// Not-indexed things.
pub const OVERFLOW: u8 = b'o';

/// Type tags, in Ditto's sort rank order.
pub const TAG_NULL: u8 = 0x10;
/// numbers
pub const TAG_NUM: u8 = 0x20;
/// strings
pub const TAG_STR: u8 = 0x30;
/// objects (never stored; only compared)
pub const TAG_OBJ: u8 = 0x40;
/// arrays (never stored; only compared)
pub const TAG_ARR: u8 = 0x50;
/// booleans
pub const TAG_BOOL: u8 = 0x60;

/// String bytes kept in a key; longer strings share the entry of their prefix (still in order).
pub const MAX_STR_BYTES: usize = 128;

/// Flag in the stored value of a `v` entry: the path has several values in this thing.
pub const FLAG_MULTI: u8 = 1;

/// Integers up to this magnitude are exact as f64.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// Appends `bytes` with `00` escaped as `00 FF`.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.contains(&0) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

/// Appends escaped `bytes` and the terminator `00 01`.
fn push_terminated(out: &mut Vec<u8>, bytes: &[u8]) {
    push_escaped(out, bytes);
    out.extend_from_slice(&[0, 1]);
}

/// Path words written as `00 (02 + position)` in a path encoding (never reorder or remove one:
/// that changes the index format, see the module header). Longer words first where one starts
/// another.
pub const PATH_TOKENS: [&str; 10] = [
    "attributes/",
    "features/",
    "/properties",
    "/desiredProperties",
    "/definition",
    "policyId",
    "_created",
    "_modified",
    "definition",
    "_revision",
];

/// First byte after `00` of the first path token.
const TOKEN_BASE: u8 = 2;

/// Appends the encoding of `path` (tokens, escaped bytes) and the terminator `00 01`.
fn push_path(out: &mut Vec<u8>, path: &str) {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let token = PATH_TOKENS
            .iter()
            .position(|t| rest.starts_with(t.as_bytes()));
        match token {
            Some(n) => {
                out.extend_from_slice(&[0, TOKEN_BASE + n as u8]);
                i += PATH_TOKENS[n].len();
            }
            None => {
                push_escaped(out, &rest[..1]);
                i += 1;
            }
        }
    }
    out.extend_from_slice(&[0, 1]);
}

/// Order-preserving bytes of a finite f64 (`-0.0` = `0.0`).
pub fn f64_bytes(f: f64) -> [u8; 8] {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let bits = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    bits.to_be_bytes()
}

/// A JSON number as f64 (rounded for big integers); `None` for non-finite.
pub fn number_f64(n: &Number) -> Option<f64> {
    if let Some(i) = n.as_i64() {
        Some(i as f64)
    } else if let Some(u) = n.as_u64() {
        Some(u as f64)
    } else {
        n.as_f64().filter(|f| f.is_finite())
    }
}

/// A number's encoding; `exact` if no other number can share it.
pub fn push_number(out: &mut Vec<u8>, f: f64) -> bool {
    out.push(TAG_NUM);
    out.extend_from_slice(&f64_bytes(f));
    f.abs() < EXACT_F64
}

/// A string's encoding; `exact` if it was not truncated.
pub fn push_str(out: &mut Vec<u8>, s: &str) -> bool {
    out.push(TAG_STR);
    let b = s.as_bytes();
    push_terminated(out, &b[..b.len().min(MAX_STR_BYTES)]);
    b.len() <= MAX_STR_BYTES
}

/// The encoding of any JSON value as compared for sorting (objects and arrays by tag only).
/// Returns whether the encoding identifies the value exactly.
pub fn push_value(out: &mut Vec<u8>, v: &Value) -> bool {
    match v {
        Value::Null => {
            out.push(TAG_NULL);
            true
        }
        Value::Bool(b) => {
            out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]);
            true
        }
        Value::Number(n) => push_number(out, number_f64(n).unwrap_or(0.0)),
        Value::String(s) => push_str(out, s),
        Value::Object(_) => {
            out.push(TAG_OBJ);
            false
        }
        Value::Array(_) => {
            out.push(TAG_ARR);
            false
        }
    }
}

/// `value` alone (sort comparisons in the executor).
pub fn value_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    push_value(&mut out, v);
    out
}

/// The longest string-encoding prefix shared by every string starting with `prefix`.
pub fn str_prefix(prefix: &str) -> Vec<u8> {
    let mut out = vec![TAG_STR];
    let b = prefix.as_bytes();
    push_escaped(&mut out, &b[..b.len().min(MAX_STR_BYTES)]);
    out
}

/// `kind | path 00 01`: the prefix of every entry of a kind on a path.
pub fn path_prefix(kind: u8, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 3);
    out.push(kind);
    push_path(&mut out, path);
    out
}

/// [`path_prefix`] into `out` (cleared first; no allocation once it is big enough).
pub fn path_prefix_into(out: &mut Vec<u8>, kind: u8, path: &str) {
    out.clear();
    out.push(kind);
    push_path(out, path);
}

/// A value entry key.
pub fn value_key(path: &str, v: &Value, thing_id: &str) -> Vec<u8> {
    // sized for the whole key at once (every write builds a few: `_modified`'s, the value's)
    let value = match v {
        Value::String(s) => s.len().min(MAX_STR_BYTES) + 3,
        _ => 9,
    };
    let mut k = Vec::with_capacity(path.len() + 3 + value + thing_id.len());
    k.push(VALUE);
    push_path(&mut k, path);
    push_value(&mut k, v);
    k.extend_from_slice(thing_id.as_bytes());
    k
}

/// `value_key` of a string value given as `&str` (the `_modified` stamp of every write, built
/// in a stack buffer).
pub fn str_value_key(path: &str, s: &str, thing_id: &str) -> Vec<u8> {
    let mut k =
        Vec::with_capacity(path.len() + 3 + s.len().min(MAX_STR_BYTES) + 3 + thing_id.len());
    k.push(VALUE);
    push_path(&mut k, path);
    push_str(&mut k, s);
    k.extend_from_slice(thing_id.as_bytes());
    k
}

/// An exists / multi entry key.
pub fn path_key(kind: u8, path: &str, thing_id: &str) -> Vec<u8> {
    let mut k = path_prefix(kind, path);
    k.extend_from_slice(thing_id.as_bytes());
    k
}

/// An overflow marker key.
pub fn overflow_key(thing_id: &str) -> Vec<u8> {
    let mut k = vec![OVERFLOW];
    k.extend_from_slice(thing_id.as_bytes());
    k
}

/// Length of the value encoding at the start of `b`, if well-formed.
pub fn value_len(b: &[u8]) -> Option<usize> {
    match *b.first()? {
        TAG_NULL | TAG_OBJ | TAG_ARR => Some(1),
        TAG_BOOL => (b.len() >= 2).then_some(2),
        TAG_NUM => (b.len() >= 9).then_some(9),
        TAG_STR => {
            let mut i = 1;
            while i + 1 < b.len() {
                match (b[i], b[i + 1]) {
                    (0, 1) => return Some(i + 2),
                    (0, _) => i += 2,
                    _ => i += 1,
                }
            }
            None
        }
        _ => None,
    }
}

/// The JSON value of a value encoding, if the encoding identifies it exactly: numbers below
/// 2^53 (an integral one as an integer: the evaluator compares 7 and 7.0 alike), strings shorter
/// than [`MAX_STR_BYTES`] (a longer one may have been cut), `null`, booleans.
pub fn exact_value(enc: &[u8]) -> Option<Value> {
    let (&tag, rest) = enc.split_first()?;
    match tag {
        TAG_NULL if rest.is_empty() => Some(Value::Null),
        TAG_BOOL if rest.len() == 1 => Some(Value::Bool(rest[0] == 1)),
        TAG_NUM => {
            let bits = u64::from_be_bytes(rest.try_into().ok()?);
            let bits = if bits >> 63 == 1 {
                bits & !(1 << 63)
            } else {
                !bits
            };
            let f = f64::from_bits(bits);
            if f.is_nan() || f.abs() >= EXACT_F64 {
                return None;
            }
            if f.fract() == 0.0 {
                Some(Value::from(f as i64))
            } else {
                Number::from_f64(f).map(Value::Number)
            }
        }
        TAG_STR => {
            let body = rest.strip_suffix(&[0, 1])?;
            let mut raw = Vec::with_capacity(body.len());
            let mut i = 0;
            while i < body.len() {
                raw.push(body[i]);
                i += if body[i] == 0 { 2 } else { 1 };
            }
            if raw.len() >= MAX_STR_BYTES {
                return None;
            }
            String::from_utf8(raw).ok().map(Value::String)
        }
        _ => None,
    }
}

/// Splits the part of a value key after its path prefix into (value encoding, thingId).
pub fn split_value(rest: &[u8]) -> Option<(&[u8], &str)> {
    let n = value_len(rest)?;
    let id = std::str::from_utf8(&rest[n..]).ok()?;
    Some((&rest[..n], id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_str_value_key_is_the_value_key_of_the_string() {
        for (p, s) in [
            ("_modified", "2021-01-18T09:42:12.345Z"),
            ("attributes/a", "x\0y"),
            ("", ""),
        ] {
            let long = "z".repeat(MAX_STR_BYTES + 5);
            for s in [s, long.as_str()] {
                let v = Value::String(s.to_owned());
                assert_eq!(str_value_key(p, s, "n:t"), value_key(p, &v, "n:t"));
            }
        }
    }
    use serde_json::json;

    fn enc(v: Value) -> Vec<u8> {
        value_bytes(&v)
    }

    #[test]
    fn numbers_order_across_int_and_double() {
        let vals = [
            json!(-1e300),
            json!(i64::MIN),
            json!(-7.5),
            json!(-7),
            json!(-0.5),
            json!(0),
            json!(0.25),
            json!(7),
            json!(7.5),
            json!(u64::MAX),
            json!(1e300),
        ];
        for w in vals.windows(2) {
            assert!(enc(w[0].clone()) < enc(w[1].clone()), "{} < {}", w[0], w[1]);
        }
        assert_eq!(enc(json!(7)), enc(json!(7.0)));
        assert_eq!(enc(json!(0)), enc(json!(-0.0)));
    }

    #[test]
    fn types_rank_like_ditto_sort() {
        let ranked = [
            json!(null),
            json!(-5),
            json!(""),
            json!("a"),
            json!({}),
            json!([]),
            json!(false),
            json!(true),
        ];
        for w in ranked.windows(2) {
            assert!(enc(w[0].clone()) < enc(w[1].clone()), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn strings_order_bytewise_and_escape_nul() {
        let vals = ["", "\0", "\0\0", "\0a", "a", "a\0", "ab", "b", "é"];
        for w in vals.windows(2) {
            assert!(
                enc(json!(w[0])) < enc(json!(w[1])),
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
        let long = "x".repeat(MAX_STR_BYTES + 10);
        let mut out = Vec::new();
        assert!(!push_str(&mut out, &long));
        assert_eq!(out, enc(json!(long[..MAX_STR_BYTES])));
        assert!(enc(json!("ab")).starts_with(&str_prefix("a")));
        assert!(!enc(json!("b")).starts_with(&str_prefix("a")));
    }

    #[test]
    fn exact_values_decode_back() {
        for v in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-7),
            json!(7),
            json!(-0.5),
            json!(1e-300),
            json!(9_007_199_254_740_991i64),
            json!(""),
            json!("a\0b\0"),
            json!("é"),
            json!("x".repeat(MAX_STR_BYTES - 1)),
        ] {
            assert_eq!(exact_value(&value_bytes(&v)), Some(v.clone()), "{v}");
        }
        // 7.0 decodes as 7 (equal for the evaluator); these are not exact
        assert_eq!(exact_value(&value_bytes(&json!(7.0))), Some(json!(7)));
        for v in [
            json!(9_007_199_254_740_992u64),
            json!(u64::MAX),
            json!(1e300),
            json!("x".repeat(MAX_STR_BYTES)),
            json!("x".repeat(MAX_STR_BYTES + 1)),
            json!({}),
            json!([]),
        ] {
            assert_eq!(exact_value(&value_bytes(&v)), None, "{v}");
        }
        assert_eq!(exact_value(&[]), None);
        assert_eq!(exact_value(&[TAG_NUM, 1, 2]), None);
    }

    #[test]
    fn keys_split_back() {
        for v in [
            json!(null),
            json!(true),
            json!(-3.25),
            json!("a\0b"),
            json!(""),
        ] {
            let k = value_key("attributes/a\0", &v, "ns:thing");
            let p = path_prefix(VALUE, "attributes/a\0");
            assert!(k.starts_with(&p));
            let (venc, id) = split_value(&k[p.len()..]).unwrap();
            assert_eq!((venc, id), (value_bytes(&v).as_slice(), "ns:thing"));
        }
        assert!(!path_key(EXISTS, "attributes/ab", "n:t")
            .starts_with(&path_prefix(EXISTS, "attributes/a")));
        assert_eq!(split_value(&[TAG_STR, b'a']), None);
        assert_eq!(split_value(&[]), None);
        assert_eq!(overflow_key("n:t"), b"on:t");
    }

    /// Decodes a path encoding (tests only: nothing reads paths back from keys).
    fn decode_path(enc: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match (*enc.get(i)?, enc.get(i + 1).copied()) {
                (0, Some(1)) => {
                    return (i + 2 == enc.len()).then(|| String::from_utf8(out).ok())?
                }
                (0, Some(0xFF)) => out.push(0),
                (0, Some(k)) => out.extend_from_slice(
                    PATH_TOKENS
                        .get(usize::from(k.checked_sub(TOKEN_BASE)?))?
                        .as_bytes(),
                ),
                (b, _) => {
                    out.push(b);
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
    }

    #[test]
    fn paths_are_short_distinct_and_prefix_free() {
        let paths = [
            "attributes/a0",
            "features/f/properties/p0",
            "features/f/properties",
            "features/f",
            "features/f/desiredProperties/x",
            "features/f/definition",
            "policyId",
            "_created",
            "_modified",
            "definition",
            "attributes/features/x",
            "attributes/attributes/",
            "attributes/a\0b",
            "attributes/a\0",
            "attributes/a",
            "attributes/\u{1}\u{2}",
            "attributes/\u{2}",
            "attributes/_modifiedX",
            "attributes/policyIdent",
            "features/properties/properties",
            "",
        ];
        let enc: Vec<Vec<u8>> = paths.iter().map(|p| path_prefix(VALUE, p)).collect();
        for (p, e) in paths.iter().zip(&enc) {
            assert_eq!(decode_path(&e[1..]).as_deref(), Some(*p), "{e:?}");
        }
        for (i, a) in enc.iter().enumerate() {
            for (j, b) in enc.iter().enumerate() {
                assert!(i == j || !b.starts_with(a), "{} / {}", paths[i], paths[j]);
            }
        }
        // format 2: Ditto's fixed words cost 2 bytes each (format 1: their text)
        assert_eq!(
            path_prefix(VALUE, "features/f/properties/p0").len(),
            1 + 8 + 2
        );
        assert_eq!(path_prefix(VALUE, "attributes/a0").len(), 1 + 4 + 2);
        assert_eq!(path_prefix(VALUE, "_modified").len(), 1 + 2 + 2);
    }
}
