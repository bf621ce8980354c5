//! Stable content hashes of JSON values for `"hash:<hex>"` ETags: FNV-1a 64 over a canonical
//! serialisation (object keys sorted by bytes, compact, JSON string escaping), so the hash does
//! not depend on key order, process, platform or Rust version.

use serde_json::Value;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    fn string(&mut self, s: &str) {
        self.write(b"\"");
        let mut buf = [0u8; 4];
        for c in s.chars() {
            match c {
                '"' => self.write(b"\\\""),
                '\\' => self.write(b"\\\\"),
                c if u32::from(c) < 0x20 => {
                    self.write(format!("\\u{:04x}", u32::from(c)).as_bytes())
                }
                c => self.write(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
        self.write(b"\"");
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.write(b"null"),
            Value::Bool(true) => self.write(b"true"),
            Value::Bool(false) => self.write(b"false"),
            Value::Number(n) => self.write(n.to_string().as_bytes()),
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.write(b"[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.write(b",");
                    }
                    self.value(item);
                }
                self.write(b"]");
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                self.write(b"{");
                for (i, (k, val)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        self.write(b",");
                    }
                    self.string(k);
                    self.write(b":");
                    self.value(val);
                }
                self.write(b"}");
            }
        }
    }
}

/// 16 lowercase hex digits of FNV-1a 64 over the canonical form of `v`.
pub fn value_hash(v: &Value) -> String {
    let mut h = Fnv(FNV_OFFSET);
    h.value(v);
    format!("{:016x}", h.0)
}

/// `"hash:<value_hash>"`, the ETag of a value, written without the formatting machinery (the
/// answer of every modify below a thing's root carries one).
pub fn hash_etag(v: &Value) -> String {
    let mut h = Fnv(FNV_OFFSET);
    h.value(v);
    let mut out = String::with_capacity(23);
    out.push_str("\"hash:");
    for shift in (0..16).rev() {
        out.push(char::from(
            b"0123456789abcdef"[(h.0 >> (shift * 4)) as usize & 0xf],
        ));
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_etag_is_the_formatted_hash() {
        for v in [
            json!(null),
            json!(1),
            json!("a"),
            json!({"b": [1.5, "x"]}),
            json!(-7),
        ] {
            assert_eq!(hash_etag(&v), format!("\"hash:{}\"", value_hash(&v)));
        }
    }

    #[test]
    fn fnv_reference_vectors() {
        // FNV-1a 64 of "" and "a" (published test vectors); "null" hashes the 4 bytes
        assert_eq!(format!("{:016x}", Fnv(FNV_OFFSET).0), "cbf29ce484222325");
        let mut h = Fnv(FNV_OFFSET);
        h.write(b"a");
        assert_eq!(format!("{:016x}", h.0), "af63dc4c8601ec8c");
    }

    #[test]
    fn canonical_form_is_compact_sorted_json() {
        let v = json!({"b": [1, "x\"\\\n"], "a": {"d": null, "c": true}});
        let canonical = r#"{"a":{"c":true,"d":null},"b":[1,"x\"\\\u000a"]}"#;
        let mut h = Fnv(FNV_OFFSET);
        h.write(canonical.as_bytes());
        assert_eq!(value_hash(&v), format!("{:016x}", h.0));
    }

    #[test]
    fn independent_of_key_order() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":{"p":[1,2],"q":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y":{"q":"s","p":[1,2]},"x":1}"#).unwrap();
        assert_eq!(value_hash(&a), value_hash(&b));
        assert_eq!(value_hash(&a).len(), 16);
        assert!(value_hash(&a)
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn sensitive_to_content() {
        let values = [
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!(1),
            json!(1.5),
            json!(""),
            json!("1"),
            json!([]),
            json!({}),
            json!([1, 2]),
            json!([2, 1]),
            json!({"a": 1}),
            json!({"a": "1"}),
            json!({"a": [1]}),
            json!([[]]),
            json!({"a": {}}),
            json!({"ab": 1}),
            json!({"a": 1, "b": 2}),
        ];
        let hashes: std::collections::HashSet<String> = values.iter().map(value_hash).collect();
        assert_eq!(hashes.len(), values.len());
    }

    #[test]
    fn pinned_values_never_change() {
        // stored/issued ETags depend on these exact values
        assert_eq!(value_hash(&json!({"on": true})), "bcad642719ab5264");
        assert_eq!(
            value_hash(&json!({"b": [1, "x"], "a": {"c": null}})),
            "863edfc9b361e609"
        );
    }
}
