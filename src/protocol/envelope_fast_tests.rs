//! Differential tests of the hand-read envelope (`envelope_fast`) against serde's path: on the
//! conformance corpus, on generated frames (escapes, unicode, duplicate and unknown keys, odd
//! whitespace, numbers, nesting around the depth bound, header counts around theirs) and on
//! mutations and truncations of them, whatever the fast path accepts serde reads the same.

use super::envelope::Envelope;
use super::envelope_fast;
use crate::bounds::MAX_FRAME_DEPTH;
use crate::engine::json_write::tests::{random_str, random_value};
use serde_json::Value;

/// Checks `text` both ways; true if the fast path took it.
fn agree(text: &str) -> bool {
    let slow = Envelope::parse_serde(text);
    assert_eq!(Envelope::parse(text), slow, "{text}");
    let Some(fast) = envelope_fast::parse(text) else {
        return false;
    };
    let slow = slow.unwrap_or_else(|f| panic!("fast accepted what serde refused ({f:?}): {text}"));
    assert_eq!(fast, slow, "{text}");
    // the same bytes out (object order, numbers) as well as equal values
    assert_eq!(fast.to_text(), slow.to_text(), "{text}");
    true
}

fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["tests/conformance/things", "tests/conformance/policies"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for f in rd.flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap();
            let case: Value = serde_json::from_str(&text).unwrap();
            for k in ["command", "response", "event"] {
                if let Some(v) = case.get(k).filter(|v| v.is_object()) {
                    out.push(v.to_string());
                    out.push(serde_json::to_string_pretty(v).unwrap());
                }
            }
        }
    }
    out
}

/// loadgen's frames (the shape every benchmark sends).
fn bench_frames() -> Vec<String> {
    let head = r#"{"topic":"bench/t7/things/twin/commands/modify","headers":{"correlation-id":"c1.2.3","requested-acks":[]}"#;
    vec![
        format!(r#"{head},"path":"/attributes/a3","value":"xxxxxxxx"}}"#),
        format!(r#"{head},"path":"/","value":{{"attributes":{{"a0":"x"}},"features":{{"f":{{"properties":{{"p0":"x"}}}}}}}}}}"#),
        r#"{"topic":"bench/t7/things/twin/commands/merge","headers":{"correlation-id":"c","content-type":"application/merge-patch+json"},"path":"/features/f/properties","value":{"p1":"x"}}"#.into(),
        r#"{"topic":"bench/t7/things/twin/commands/retrieve","headers":{"correlation-id":"c"},"path":"/attributes/a1"}"#.into(),
    ]
}

#[test]
fn the_common_shapes_take_the_fast_path() {
    for f in bench_frames() {
        assert!(agree(&f), "{f}");
    }
    let corpus = corpus();
    let taken = corpus.iter().filter(|t| agree(t)).count();
    // most of the corpus is commands and answers of the common shape; the rest (status,
    // revision, timestamp, escapes...) went through serde and agreed
    assert!(
        corpus.len() > 300 && taken > 100,
        "{} {taken}",
        corpus.len()
    );
}

fn ws(rng: &mut fastrand::Rng) -> &'static str {
    ["", "", "", " ", "\n", "\t", "\r\n  "][rng.usize(0..7)]
}

/// A header or field text: usually plain, sometimes with escapes, unicode or control bytes.
fn text(rng: &mut fastrand::Rng) -> String {
    match rng.u8(0..6) {
        0 => serde_json::to_string(&random_str(rng)).unwrap(),
        1 => r#""a\"b""#.into(),
        2 => r#""\u00e9t\u00E9""#.into(),
        3 => "\"caf\u{e9} \u{1F600}\"".into(),
        _ => format!("\"v{}\"", rng.u32(..)),
    }
}

fn header_value(rng: &mut fastrand::Rng) -> String {
    match rng.u8(0..10) {
        0 => "true".into(),
        1 => "false".into(),
        2 => "[]".into(),
        3 => format!("[{}]", text(rng)),
        4 => format!("[{},{}{}]", text(rng), ws(rng), text(rng)),
        5 => ["null", "1", "-2.5e3", "[1]", "{\"a\":1}", "tru", "[\"a\",]"][rng.usize(0..7)].into(),
        _ => text(rng),
    }
}

const TOPICS: [&str; 6] = [
    "\"n/t/things/twin/commands/modify\"",
    "\"n/t/things/twin/commands/retrieve\"",
    "\"n/t/things/live/messages/ask\"",
    "\"n/t/policies/commands/delete\"",
    "\"n/t/things/twin/commands/nope\"",
    "\"n\\/t/things/twin/commands/modify\"",
];

const NAMES: [&str; 8] = [
    "correlation-id",
    "Correlation-ID",
    "requested-acks",
    "response-required",
    "x-a",
    "X-A",
    "content-type",
    "caf\u{e9}",
];

/// A value nested `d` levels (arrays and objects alternating).
fn nested(d: usize) -> String {
    let (mut open, mut close) = (String::new(), String::new());
    for i in 0..d {
        open.push_str(if i % 2 == 0 { "[" } else { "{\"k\":" });
        close.insert_str(0, if i % 2 == 0 { "]" } else { "}" });
    }
    format!("{open}1{close}")
}

fn payload(rng: &mut fastrand::Rng) -> String {
    match rng.u8(0..10) {
        0 => nested(MAX_FRAME_DEPTH - 2 + rng.usize(0..4)),
        1 => [
            "0",
            "-0",
            "1e400",
            "12345678901234567890",
            "0.1",
            "1.0",
            "-1E-2",
            "01",
            "1.",
        ][rng.usize(0..9)]
        .into(),
        2 => r#"{"a":1,"a":2}"#.into(),
        3 => "\"x\u{1}\"".into(),
        4 => text(rng),
        _ => serde_json::to_string(&random_value(rng, 0)).unwrap(),
    }
}

/// A frame of the fields in random order, some missing, twice or unknown, with random spacing.
fn frame(rng: &mut fastrand::Rng) -> String {
    let mut fields = Vec::new();
    if rng.u8(0..20) != 0 {
        fields.push(format!("\"topic\":{}", TOPICS[rng.usize(0..TOPICS.len())]));
    }
    if rng.u8(0..5) != 0 {
        let n = match rng.u8(0..10) {
            0 => rng.usize(62..67),
            _ => rng.usize(0..5),
        };
        let hs: Vec<String> = (0..n)
            .map(|i| {
                let name = match n > 10 {
                    true => format!("h{i}"),
                    false => NAMES[rng.usize(0..NAMES.len())].to_owned(),
                };
                format!("\"{name}\"{}:{}{}", ws(rng), ws(rng), header_value(rng))
            })
            .collect();
        fields.push(format!("\"headers\":{{{}}}", hs.join(",")));
    }
    if rng.u8(0..20) != 0 {
        fields.push(format!(
            "\"path\":{}",
            ["\"/attributes/x\"", "\"/\""][rng.usize(0..2)]
        ));
    }
    if rng.bool() {
        fields.push(format!("\"value\":{}", payload(rng)));
    }
    match rng.u8(0..12) {
        0 => fields.push(format!("\"path\":{}", text(rng))),
        1 => fields.push(format!("\"status\":{}", rng.u16(..))),
        2 => fields.push(r#""\u0074opic":"n/t/things/twin/commands/modify""#.into()),
        3 => fields.push("\"extra\":null".into()),
        4 => fields.push(format!("\"value\":{}", payload(rng))),
        _ => {}
    }
    rng.shuffle(&mut fields);
    let sep = |rng: &mut fastrand::Rng| format!("{},{}", ws(rng), ws(rng));
    let mut out = format!("{}{{{}", ws(rng), ws(rng));
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep(rng));
        }
        out.push_str(f);
    }
    out.push_str(&format!("{}}}{}", ws(rng), ws(rng)));
    out
}

/// `text` with one random edit: a byte replaced, inserted or removed, or cut short.
fn mutate(rng: &mut fastrand::Rng, text: &str) -> String {
    const ALPHABET: [&str; 16] = [
        "{", "}", "[", "]", "\"", ":", ",", "\\", " ", "1", "a", "\u{e9}", "\u{0}", "-", "e",
        "\"\"",
    ];
    let mut at = rng.usize(0..=text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let mut end = (at + 1).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let piece = ALPHABET[rng.usize(0..ALPHABET.len())];
    match rng.u8(0..4) {
        0 => format!("{}{piece}{}", &text[..at], &text[end..]),
        1 => format!("{}{piece}{}", &text[..at], &text[at..]),
        2 => format!("{}{}", &text[..at], &text[end..]),
        _ => text[..at].to_owned(),
    }
}

#[test]
fn generated_frames_agree() {
    let mut rng = fastrand::Rng::with_seed(0xe4f);
    let (mut taken, mut total) = (0, 0);
    for _ in 0..20_000 {
        let f = frame(&mut rng);
        total += 1;
        taken += usize::from(agree(&f));
    }
    // both outcomes are well represented
    assert!(taken > 1_000 && taken < total - 1_000, "{taken} of {total}");
}

#[test]
fn mutated_and_truncated_frames_agree() {
    let mut rng = fastrand::Rng::with_seed(0x3a7);
    let mut seeds = bench_frames();
    seeds.extend(corpus());
    seeds.extend((0..200).map(|_| frame(&mut rng)));
    let mut taken = 0;
    for s in &seeds {
        // every truncation of the frames a benchmark sends
        if s.len() < 300 {
            for at in (0..s.len()).filter(|&i| s.is_char_boundary(i)) {
                taken += usize::from(agree(&s[..at]));
            }
        }
        let mut t = s.clone();
        for _ in 0..40 {
            t = if rng.u8(0..4) == 0 {
                s.clone()
            } else {
                mutate(&mut rng, &t)
            };
            taken += usize::from(agree(&t));
        }
    }
    assert!(taken > 500, "{taken}");
}

#[test]
fn bounds_are_serde_s() {
    let at = |d: usize| {
        format!(
            r#"{{"topic":"n/t/things/twin/commands/modify","path":"/","value":{}}}"#,
            nested(d)
        )
    };
    // the deepest frame serde's path takes is taken here too; one deeper is serde's answer
    assert!(agree(&at(MAX_FRAME_DEPTH - 1)));
    assert!(!agree(&at(MAX_FRAME_DEPTH)));
    assert_eq!(
        Envelope::parse(&at(MAX_FRAME_DEPTH))
            .unwrap_err()
            .error
            .error,
        "json.invalid"
    );
    let headers = |n: usize| {
        let hs: Vec<String> = (0..n).map(|i| format!("\"h{i}\":\"v\"")).collect();
        format!(
            r#"{{"topic":"n/t/things/twin/commands/retrieve","headers":{{{}}},"path":"/"}}"#,
            hs.join(",")
        )
    };
    assert!(agree(&headers(super::headers::MAX_HEADERS)));
    assert!(!agree(&headers(super::headers::MAX_HEADERS + 1)));
    assert_eq!(Envelope::parse(&headers(65)).unwrap_err().error.status, 431);
}
