//! Compact JSON of a `serde_json::Value` into a byte buffer, byte for byte what
//! `serde_json::to_writer` writes (compact formatter, `preserve_order`), without serde's
//! machinery (a `Serializer` and `Formatter` call per token, an `io::Write` per fragment). The encoding of every stored twin (issue 21).

use serde_json::Value;

/// Appends the JSON of `v` to `out`. Recursive like serde_json's serializer: every stored
/// document's depth is bounded when it is accepted (`bounds`), so the recursion is too.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, e);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_value(out, e);
            }
            out.push(b'}');
        }
    }
}

/// Integers as `itoa` writes them; floats through serde_json itself (its `ryu` formatting).
fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        write_u64(out, u);
    } else if let Some(i) = n.as_i64() {
        write_i64(out, i);
    } else {
        // a `Number` always serializes
        let _ = serde_json::to_writer(&mut *out, n);
    }
}

/// Decimal digits of `u`.
pub fn write_u64(out: &mut Vec<u8>, mut u: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Decimal digits of `i`, with its sign.
pub fn write_i64(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    write_u64(out, i.unsigned_abs());
}

/// Bytes serde_json escapes: control bytes, the quote and the backslash.
static ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// True if a byte of `w` is one `ESCAPED` holds (below 0x20, `"` or `\\`): the classic
/// "has a byte less than n / equal to zero" word tests, exact for whether any byte is.
fn any_escaped(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = zero_byte(w ^ (ONES * b'"' as u64));
    let backslash = zero_byte(w ^ (ONES * b'\\' as u64));
    below_space | quote | backslash != 0
}

/// A JSON string: quoted, escaped as serde_json escapes (`\"`, `\\`, `\b\t\n\f\r`, other
/// control bytes as `\u00xx`; nothing else).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// The inside of `write_str`'s string: `s` escaped, without the quotes (so a string written
/// in pieces is escaped as the whole would be).
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // most strings (keys, values) have nothing to escape: copied in one piece, found 8 bytes
    // at a time
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
            if !any_escaped(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let c = b[i];
        if ESCAPED[c as usize] {
            out.extend_from_slice(&b[start..i]);
            escape(out, c);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&b[start..]);
}

/// The escape of one `ESCAPED` byte.
fn escape(out: &mut Vec<u8>, c: u8) {
    match c {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        b'\t' => out.extend_from_slice(b"\\t"),
        b'\n' => out.extend_from_slice(b"\\n"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\r' => out.extend_from_slice(b"\\r"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 0xf) as usize]);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Map};

    pub(crate) fn random_str(rng: &mut fastrand::Rng) -> String {
        let n = rng.usize(0..40);
        (0..n)
            .map(|_| match rng.u8(0..10) {
                0 => char::from(rng.u8(0..0x20)),
                1 => ['"', '\\', '/', '\u{7f}', 'é', '€', '😀'][rng.usize(0..7)],
                _ => char::from(rng.u8(0x20..0x7f)),
            })
            .collect()
    }

    pub(crate) fn random_value(rng: &mut fastrand::Rng, depth: usize) -> Value {
        match rng.u8(0..if depth > 4 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            2 => json!(rng.u64(..)),
            3 => json!(rng.i64(..)),
            4 => {
                let f = f64::from_bits(rng.u64(..));
                json!(if f.is_finite() {
                    f
                } else {
                    rng.f64() * 1e6 - 5e5
                })
            }
            5 => Value::String(random_str(rng)),
            6 => Value::Array(
                (0..rng.usize(0..5))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.usize(0..6))
                    .map(|_| (random_str(rng), random_value(rng, depth + 1)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }

    /// Byte for byte what serde_json writes, on random documents (every control byte, quotes,
    /// backslashes, multi-byte UTF-8 at every offset of the 8-byte scan, all number kinds).
    #[test]
    fn writes_what_serde_json_writes() {
        let mut rng = fastrand::Rng::with_seed(21);
        for _ in 0..20_000 {
            let v = random_value(&mut rng, 0);
            let mut out = Vec::new();
            write_value(&mut out, &v);
            assert_eq!(
                String::from_utf8_lossy(&out),
                serde_json::to_string(&v).unwrap()
            );
        }
        for c in 0u8..=0x7f {
            for pad in 0..10 {
                let s = format!("{}{}{}", "a".repeat(pad), char::from(c), "b".repeat(pad));
                let mut out = Vec::new();
                write_str(&mut out, &s);
                assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{c:#x} at {pad}");
            }
        }
        for n in [0, 9, 10, u64::MAX, i64::MAX as u64] {
            let mut out = Vec::new();
            write_value(&mut out, &json!(n));
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
        for n in [i64::MIN, -1, -10] {
            let mut out = Vec::new();
            write_value(&mut out, &json!(n));
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
        }
    }

    /// `ThingState::to_bytes` is the serde derive's encoding (optional fields included).
    #[test]
    fn a_thing_state_encodes_as_its_serde_derive() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let s = crate::engine::ThingState {
                thing: random_value(&mut rng, 0),
                revision: rng.u64(..),
                created: rng.i64(..),
                modified: rng.i64(..),
                metadata: rng.bool().then(|| random_value(&mut rng, 0)),
                deleted: rng.bool(),
            };
            assert_eq!(s.to_bytes(), serde_json::to_vec(&s).unwrap());
        }
    }

    #[test]
    fn the_word_test_finds_every_escaped_byte_at_every_place() {
        // every byte value at each of the 8 places, amid each filler byte value (ASCII, UTF-8
        // lead and continuation bytes, escaped ones)
        for filler in 0..=255u8 {
            for place in 0..8 {
                for c in 0..=255u8 {
                    let mut w = [filler; 8];
                    w[place] = c;
                    let want = w.iter().any(|b| ESCAPED[*b as usize]);
                    assert_eq!(any_escaped(u64::from_le_bytes(w)), want, "{w:?}");
                }
            }
        }
        let mut rng = fastrand::Rng::with_seed(21);
        for _ in 0..200_000 {
            let w = rng.u64(..);
            let want = w.to_le_bytes().iter().any(|b| ESCAPED[*b as usize]);
            assert_eq!(any_escaped(w), want, "{w:#x}");
        }
    }

    #[test]
    fn long_strings_escape_as_serde_json_escapes() {
        // lengths around and beyond the 8-byte words, escapes sparse and dense
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let n = rng.usize(0..100);
            let dense = rng.u8(0..4);
            let s: String = (0..n)
                .map(|_| match rng.u8(0..40) {
                    k if k <= dense => ['"', '\\', '\n', '\u{1}', '\u{1f}'][rng.usize(0..5)],
                    4 => ['é', '€', '😀', '\u{7f}'][rng.usize(0..4)],
                    _ => char::from(rng.u8(0x20..0x7f)),
                })
                .collect();
            let mut out = Vec::new();
            write_str(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }
}
