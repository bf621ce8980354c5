//! How the store keeps the values of its document trees (`Things`, `Policies`) on disk: LZ4
//! blocks against a fixed dictionary of Ditto's JSON skeleton (a twin of ~200 B takes ~75 B, a
//! default policy of ~310 B ~45 B). The first byte of a stored value says how to read it:
//!
//! ```text
//! 0x01 | uncompressed length (LEB128) | LZ4 block against DICT_1    codec 1
//! 0x02..=0x08                                                      reserved for later codecs
//! 0x00 | value                                                     the value as is (escaped)
//! anything else                                                    the value as is
//! ```
//! JSON never starts with a byte below 0x09, so every value written before this codec existed
//! reads as itself: old data directories open unchanged, and a value that does not get smaller
//! stays as it is. `DICT_1` and this layout are on disk: never change them; a new dictionary is
//! a new codec byte (and a new `FORMAT` in the store's meta data, see `mod.rs`).
//! Values are encoded where they leave memory (write-ahead log, checkpoint: the writer thread,
//! the last write per key) and decoded where they come back; the overlay holds them as written.

use std::borrow::Cow;

use super::backend::{Entries, Op, StoreError, Tree};

/// Key in `Tree::Meta` of the data directory's store format (one byte): 1 (or missing) = values
/// as the engines wrote them, 2 = values of document trees may be in codec 1. A store refuses
/// to open a format above the one it writes.
pub const FORMAT_KEY: &[u8] = b"store.format";
/// The format this store writes.
pub const FORMAT: u8 = 2;

/// Checks the format recorded in the data directory; `true` if this store must record its own.
pub fn check_format(recorded: Option<&[u8]>) -> Result<bool, StoreError> {
    match recorded {
        None => Ok(true),
        Some([f]) if *f == FORMAT => Ok(false),
        Some([f]) if *f < FORMAT => Ok(true),
        Some(f) => Err(StoreError(format!(
            "the data directory has store format {f:?}, this edgetwin reads up to [{FORMAT}]: \
             it was written by a newer edgetwin"
        ))),
    }
}

/// Marker of a value kept as is although it starts with a marker byte.
const RAW: u8 = 0x00;
/// Marker of an LZ4 block against [`DICT_1`].
const LZ4_DICT_1: u8 = 0x01;
/// First bytes with a meaning (values starting with one are escaped by `RAW`).
const MARKERS: std::ops::RangeInclusive<u8> = 0x00..=0x08;
/// Values shorter than this are kept as they are (nothing to gain).
const MIN_COMPRESS: usize = 32;
/// Largest value the decoder produces (far above any document the gateway accepts): a corrupt
/// length never makes it allocate more.
pub const MAX_VALUE: usize = 64 << 20;

/// The dictionary of codec 1: the skeleton of the JSON the store keeps for twins
/// (`engine::ThingState`) and policies (`policy::command::PolicyState`), as Ditto shapes them.
/// LZ4 finds matches anywhere in it (offsets cost the same), so the order does not matter.
pub const DICT_1: &[u8] = concat!(
    r#"{"t":{"thingId":"","policyId":"","definition":"","_namespace":"","attributes":{"#,
    r#""name":"","type":"","location":"","manufacturer":"","model":"","serialNumber":"","#,
    r#""description":"","version":"","room":"","building":"","floor":"","site":"","tags":["#,
    r#"]},"features":{"#,
    r#""temperature":{"properties":{"value":,"unit":"Celsius","#,
    r#""humidity":{"properties":{"value":,"unit":"%"#,
    r#""battery":{"properties":{"level":,"charging":false,"#,
    r#""status":{"properties":{"state":"","online":true,"lastSeen":"","#,
    r#""location":{"properties":{"latitude":,"longitude":,"#,
    r#""connectivity":{"properties":{"rssi":-,"#,
    r#""":{"definition":[""],"properties":{"value":,"timestamp":"2026-01-01T00:00:00.000Z","#,
    r#""lastUpdate":"","updatedAt":"","error":null},"desiredProperties":{"value":}}}},"#,
    r#""md":{"attributes":{},"features":{"":{"properties":{"":{"issuedAt":"","#,
    r#""issuedBy":"","source":""}}}}},"d":true,"#,
    r#"{"p":{"policyId":"","imports":{"":{"entries":[""]}},"entries":{"#,
    r#""owner":{"subjects":{"integration:":{"type":"unknown"},"jwt:":{"type":"jwt"}},"#,
    r#""resources":{"thing:/features":{"grant":["READ"],"revoke":["WRITE"]},"#,
    r#""thing:/attributes":{"grant":[],"revoke":[]}},"importable":"implicit"},"#,
    r#""DEFAULT":{"subjects":{"nginx:ditto":{"type":"generated"}},"resources":{"#,
    r#""thing:/":{"grant":["READ","WRITE"],"revoke":[]},"#,
    r#""policy:/":{"grant":["READ","WRITE"],"revoke":[]},"#,
    r#""message:/":{"grant":["READ","WRITE"],"revoke":[]}}}}},"r":1,"c":17,"m":17}"#,
    // the shapes seen most (the default policy of a twin, a flat twin) last: LZ4 remembers
    // the last occurrence of a string
    r#"{"p":{"policyId":"","entries":{"DEFAULT":{"subjects":{"nginx:ditto":{"type":"#,
    r#""generated"}},"resources":{"thing:/":{"grant":["READ","WRITE"],"revoke":[]},"#,
    r#""policy:/":{"grant":["READ","WRITE"],"revoke":[]},"message:/":{"grant":["READ","#,
    r#""WRITE"],"revoke":[]}}}}},"r":1,"c":17,"m":17}"#,
    r#"{"t":{"thingId":"","policyId":"","attributes":{},"features":{"":{"properties":{"#,
    r#""":""}}}},"r":1,"c":17,"m":17}"#
)
.as_bytes();

/// True for the keys whose values are documents and go through the codec: every value of the
/// twin and policy trees, and of `Tree::History` the events (`e..`) and snapshots (`s..`; the
/// layout of `history::keys`; they were written in this codec by the history log itself
/// before the store did it, so the bytes on disk are the same). The other keys (index flags,
/// counters, the history's totals) hold short binary values that may start with a marker byte.
pub fn applies(tree: Tree, key: &[u8]) -> bool {
    match tree {
        Tree::Things | Tree::Policies => true,
        Tree::History => matches!(key.first(), Some(b'e' | b's')),
        _ => false,
    }
}

/// `ops` with the values of document keys in their stored form.
pub fn encode_ops(ops: Vec<Op>) -> Vec<Op> {
    ops.into_iter().map(encode_op).collect()
}

/// `op` with its value in its stored form (if it is a document).
pub fn encode_op(op: Op) -> Op {
    match op.value {
        Some(v) if applies(op.tree, &op.key) => Op {
            value: Some(encode(v)),
            ..op
        },
        _ => op,
    }
}

/// `ops` with the values of document keys as written (the inverse of [`encode_ops`]).
pub fn decode_ops(ops: Vec<Op>) -> Result<Vec<Op>, StoreError> {
    ops.into_iter()
        .map(|op| match op.value {
            Some(v) if applies(op.tree, &op.key) => Ok(Op {
                value: Some(decode(v)?),
                ..op
            }),
            _ => Ok(op),
        })
        .collect()
}

/// The value of `key` in `tree` as stored -> as written.
pub fn decode_value(
    tree: Tree,
    key: &[u8],
    stored: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    match stored {
        Some(v) if applies(tree, key) => decode(v).map(Some),
        other => Ok(other),
    }
}

/// Scanned entries of `tree` as stored -> as written.
pub fn decode_entries(tree: Tree, entries: Entries) -> Result<Entries, StoreError> {
    if !matches!(tree, Tree::Things | Tree::Policies | Tree::History) {
        return Ok(entries);
    }
    entries
        .into_iter()
        .map(|(k, v)| match applies(tree, &k) {
            true => decode(v).map(|v| (k, v)),
            false => Ok((k, v)),
        })
        .collect()
}

/// The stored form of `value` (of a tree the codec [`applies`] to).
pub fn encode(value: Vec<u8>) -> Vec<u8> {
    match encode_slice(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(out) => out,
    }
}

/// [`encode`] of a borrowed value: itself if it is its own stored form.
pub fn encode_slice(value: &[u8]) -> Cow<'_, [u8]> {
    if value.len() >= MIN_COMPRESS && value.len() <= MAX_VALUE {
        let out = compressed(value);
        if out.len() < value.len() {
            return Cow::Owned(out);
        }
    }
    match value.first() {
        Some(b) if MARKERS.contains(b) => {
            let mut out = Vec::with_capacity(value.len() + 1);
            out.push(RAW);
            out.extend_from_slice(value);
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(value),
    }
}

/// Codec 1 of `value`: the marker, the length, the LZ4 block. The block (`lz4`: the dictionary's
/// hash table prepared once; the block `compress_with_dict` gives, tested) goes into a buffer the
/// thread keeps (at most ~64 KiB: `lz4::fits`) and is copied out at its size. Values too large
/// for `lz4`'s 16-bit table (rare) go through lz4_flex.
fn compressed(value: &[u8]) -> Vec<u8> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let frame = |block: &[u8]| {
        let mut out = Vec::with_capacity(1 + 5 + block.len());
        out.push(LZ4_DICT_1);
        push_leb128(&mut out, value.len());
        out.extend_from_slice(block);
        out
    };
    if super::lz4::fits(value.len()) {
        let done = SCRATCH.with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            s.clear();
            super::lz4::compress(value, &mut s);
            Some(frame(&s))
        });
        if let Some(out) = done {
            return out;
        }
    }
    frame(&lz4_flex::block::compress_with_dict(value, DICT_1))
}

/// The value a stored form holds (anything not starting with a marker byte is itself).
pub fn decode(stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    match stored.first() {
        Some(&RAW) => Ok(stored[1..].to_vec()),
        Some(&LZ4_DICT_1) => decode_lz4(&stored[1..]),
        Some(b) if MARKERS.contains(b) => Err(StoreError(format!(
            "value stored with codec {b}, which this edgetwin does not know (written by a newer version?)"
        ))),
        _ => Ok(stored),
    }
}

fn decode_lz4(buf: &[u8]) -> Result<Vec<u8>, StoreError> {
    let corrupt = |why: &str| StoreError(format!("corrupt compressed value: {why}"));
    let (len, head) = read_leb128(buf).ok_or_else(|| corrupt("bad length"))?;
    let block = &buf[head..];
    // an LZ4 block expands at most ~255-fold (plus what it copies from the dictionary)
    if len > MAX_VALUE || len > block.len().saturating_mul(255) + DICT_1.len() {
        return Err(corrupt("length out of bounds"));
    }
    let mut out = vec![0u8; len];
    let n = lz4_flex::block::decompress_into_with_dict(block, &mut out, DICT_1)
        .map_err(|e| corrupt(&e.to_string()))?;
    if n != len {
        return Err(corrupt("length mismatch"));
    }
    Ok(out)
}

fn push_leb128(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `(value, bytes read)`; at most 5 bytes (32 bits).
fn read_leb128(buf: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0usize;
    for (i, b) in buf.iter().take(5).enumerate() {
        n |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWIN: &str = r#"{"t":{"thingId":"bench:t12341","policyId":"bench:t12341","attributes":{"a0":"xxxxxxxxxxxxxxxx"},"features":{"f":{"properties":{"p0":"xxxxxxxxxxxxxxxx"}}}},"r":1,"c":1796594120282,"m":1796594120282}"#;
    const POLICY: &str = r#"{"p":{"policyId":"bench:t12341","entries":{"DEFAULT":{"subjects":{"nginx:ditto":{"type":"generated"}},"resources":{"thing:/":{"grant":["READ","WRITE"],"revoke":[]},"policy:/":{"grant":["READ","WRITE"],"revoke":[]},"message:/":{"grant":["READ","WRITE"],"revoke":[]}}}}},"r":1,"c":1796594120282,"m":1796594120282}"#;

    #[test]
    fn blocks_read_back_and_are_no_larger_than_lz4_flex_s() {
        let check = |v: &[u8]| -> (usize, usize) {
            let ours = compressed(v);
            let (len, head) = read_leb128(&ours[1..]).unwrap();
            assert_eq!(len, v.len());
            let back = lz4_flex::block::decompress_with_dict(&ours[1 + head..], len, DICT_1)
                .unwrap_or_else(|e| panic!("{} B: {e}", v.len()));
            assert_eq!(back, v, "{} B", v.len());
            let theirs = lz4_flex::block::compress_with_dict(v, DICT_1).len() + 1 + head;
            (ours.len(), theirs)
        };
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..2_000 {
            let n = match rng.u8(0..10) {
                0 => rng.usize(0..64),
                1 => rng.usize(60_000..65_535 - DICT_1.len()),
                _ => rng.usize(MIN_COMPRESS..4_000),
            };
            let v: Vec<u8> = (0..n)
                .map(|_| match rng.u8(0..3) {
                    0 => rng.u8(..),
                    _ => DICT_1[rng.usize(0..DICT_1.len())],
                })
                .collect();
            check(&v);
        }
        // long literal runs and long matches (lengths past 15 and 270, overlapping), into the
        // dictionary and back into the value; the sizes on both sides of the table's bound
        let bound = 65_535 - DICT_1.len();
        for n in (0..300).chain([bound - 1, bound, bound + 1, 70_000]) {
            let mut v = Vec::with_capacity(n);
            while v.len() < n {
                let run = rng.usize(1..600);
                match rng.u8(0..4) {
                    0 => v.extend((0..run).map(|_| rng.u8(..))),
                    1 => {
                        let at = rng.usize(0..DICT_1.len());
                        v.extend_from_slice(&DICT_1[at..DICT_1.len().min(at + run)]);
                    }
                    2 => v.extend(std::iter::repeat_n(rng.u8(..), run)),
                    _ if !v.is_empty() => {
                        let at = rng.usize(0..v.len());
                        let end = v.len().min(at + run);
                        v.extend_from_within(at..end);
                    }
                    _ => {}
                }
            }
            v.truncate(n);
            check(&v);
        }
        // the bench's twin, policy and history events (a modify of a property, of an attribute:
        // the history's header bytes, then its JSON body): never larger than lz4_flex's blocks
        let event = |body: &str| {
            let mut e = vec![1, 2];
            e.extend_from_slice(&1_796_594_120_282_i64.to_be_bytes());
            e.extend_from_slice(body.as_bytes());
            e
        };
        for doc in [
            TWIN.as_bytes().to_vec(),
            POLICY.as_bytes().to_vec(),
            event(r#"{"p":"/features/f/properties/p0","v":"xxxxxxxxxxxxxxxx","h":{}}"#),
            event(r#"{"p":"/attributes/a0","v":"xxxxxxxxxxxxxxxx"}"#),
        ] {
            let (o, t) = check(&doc);
            let doc = String::from_utf8_lossy(&doc);
            eprintln!("{o} B, lz4_flex {t} B: {doc}");
            assert!(o <= t, "{o} > {t} B: {doc}");
        }
        // the conformance corpus: no larger in total
        let (mut ours, mut theirs, mut larger) = (0, 0, 0);
        let docs = conformance_documents();
        for doc in &docs {
            let (o, t) = check(doc);
            (ours, theirs, larger) = (ours + o, theirs + t, larger + usize::from(o > t));
        }
        eprintln!(
            "{} documents: {ours} B, lz4_flex {theirs} B; {larger} larger",
            docs.len()
        );
        assert!(ours <= theirs, "{ours} > {theirs} B");
    }

    #[test]
    fn the_dictionary_never_changes() {
        // DICT_1 is on disk in every compressed value: editing it makes them unreadable.
        assert_eq!((DICT_1.len(), crc32fast::hash(DICT_1)), (1747, 0x74f1_43db));
    }

    #[test]
    fn documents_shrink_and_round_trip() {
        for (doc, at_most) in [(TWIN, 90), (POLICY, 60)] {
            let stored = encode(doc.as_bytes().to_vec());
            assert_eq!(stored[0], LZ4_DICT_1);
            assert!(stored.len() <= at_most, "{} B: {doc}", stored.len());
            assert_eq!(decode(stored).unwrap(), doc.as_bytes());
        }
    }

    #[test]
    fn values_written_before_the_codec_read_as_themselves() {
        for old in [TWIN.as_bytes(), b"{}", b""] {
            assert_eq!(decode(old.to_vec()).unwrap(), old);
        }
    }

    #[test]
    fn short_incompressible_and_marker_led_values_round_trip() {
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let cases: Vec<Vec<u8>> = vec![
            b"{\"a\":1}".to_vec(),
            noise.clone(),
            [&[0u8][..], &noise].concat(),
            [&[1u8][..], b"short"].concat(),
            [&[8u8][..], b"short"].concat(),
            [&[9u8][..], b"short"].concat(),
            vec![0],
            vec![1],
            Vec::new(),
        ];
        for v in cases {
            let stored = encode(v.clone());
            assert!(stored.len() <= v.len() + 1);
            assert_eq!(decode(stored).unwrap(), v);
        }
        assert_eq!(encode(b"{\"a\":1}".to_vec()), b"{\"a\":1}", "kept as is");
    }

    #[test]
    fn corrupt_values_are_errors_not_panics_or_huge_allocations() {
        let good = encode(TWIN.as_bytes().to_vec());
        let mut huge = vec![LZ4_DICT_1];
        push_leb128(&mut huge, 1 << 30);
        huge.extend_from_slice(&good[3..]);
        assert!(decode(huge).is_err());
        assert!(decode(vec![LZ4_DICT_1, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        let newer = decode(vec![2, b'x']).unwrap_err();
        assert!(newer.0.contains("codec 2"), "{newer}");
        for cut in 2..good.len() {
            let _ = decode(good[..cut].to_vec()); // no panic
        }
        let mut flipped = good.clone();
        for i in 2..flipped.len() {
            flipped[i] ^= 0x5a;
            let _ = decode(flipped.clone());
            flipped[i] ^= 0x5a;
        }
    }

    /// Twins and policies in Ditto's documentation examples (tests/conformance), stored as the
    /// store keeps them.
    fn conformance_documents() -> Vec<Vec<u8>> {
        fn collect(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
            match v {
                serde_json::Value::Object(m) => {
                    if m.contains_key("policyId")
                        && (m.contains_key("thingId") || m.contains_key("entries"))
                    {
                        out.push(v.clone());
                    }
                    m.values().for_each(|x| collect(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
                _ => {}
            }
        }
        let mut docs = Vec::new();
        for dir in ["tests/conformance/things", "tests/conformance/policies"] {
            for e in std::fs::read_dir(dir).unwrap() {
                let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
                if let Ok(v) = serde_json::from_str(&text) {
                    collect(&v, &mut docs);
                }
            }
        }
        docs.iter()
            .map(|d| {
                let key = if d.get("entries").is_some() { "p" } else { "t" };
                let c = 1_796_594_120_282_i64;
                serde_json::to_vec(&serde_json::json!({key: d, "r": 3, "c": c, "m": c + 1000}))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn documents_of_every_shape_shrink() {
        let docs = conformance_documents();
        assert!(docs.len() >= 15, "{} documents", docs.len());
        let raw: usize = docs.iter().map(Vec::len).sum();
        let mut stored = 0;
        for d in docs {
            let s = encode(d.clone());
            stored += s.len();
            assert_eq!(decode(s).unwrap(), d);
        }
        // measured: 56 % (LZ4 without the dictionary: 82 %)
        assert!(stored * 100 < raw * 60, "{stored} of {raw} B");
    }

    #[test]
    fn formats_up_to_this_one_open() {
        assert_eq!(check_format(None), Ok(true));
        assert_eq!(check_format(Some(&[1])), Ok(true));
        assert_eq!(check_format(Some(&[FORMAT])), Ok(false));
        assert!(check_format(Some(&[FORMAT + 1]))
            .unwrap_err()
            .0
            .contains("newer"));
    }

    #[test]
    fn only_document_trees_are_encoded() {
        let doc = TWIN.as_bytes().to_vec();
        let ops = encode_ops(vec![
            Op::put(Tree::Things, "a", doc.clone()),
            Op::put(Tree::Index, "i", doc.clone()),
            Op::put(Tree::Meta, "m", vec![1]),
            Op::delete(Tree::Policies, "p"),
            Op::put(Tree::History, "e|event", doc.clone()),
            Op::put(Tree::History, "c", vec![1]),
        ]);
        assert_ne!(ops[0].value.as_deref(), Some(&doc[..]));
        assert_ne!(ops[4].value.as_deref(), Some(&doc[..]), "history events");
        assert_eq!(ops[5].value.as_deref(), Some(&[1u8][..]), "history totals");
        assert_eq!(ops[1].value.as_deref(), Some(&doc[..]));
        assert_eq!(ops[2].value.as_deref(), Some(&[1u8][..]));
        assert_eq!(ops[3].value, None);
        let back = decode_value(Tree::Things, b"a", ops[0].value.clone()).unwrap();
        assert_eq!(back, Some(doc));
        assert_eq!(
            decode_value(Tree::Meta, b"m", Some(vec![1])).unwrap(),
            Some(vec![1])
        );
    }

    #[test]
    fn leb128_round_trips() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, MAX_VALUE] {
            let mut b = Vec::new();
            push_leb128(&mut b, n);
            assert_eq!(read_leb128(&b), Some((n, b.len())));
        }
    }
}
