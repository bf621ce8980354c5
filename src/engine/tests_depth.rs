//! `depth::check` without the scan (a modify below the root) against the scan of the encoded
//! state, and the ETag of such a modify against `etag_at`: random twins near the depth bound
//! (some deeper than it, as an older version may have stored them) and random modifies.

use super::tests_in_place::{parse, random_headers, random_path, random_value};
use super::write::etag_at;
use super::*;
use crate::bounds::MAX_JSON_DEPTH;
use serde_json::json;

/// `{"k0":{"k0":...}}`, `levels` deep.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!({ "k0": v });
    }
    v
}

#[test]
fn a_modify_below_the_root_needs_no_scan_of_the_twin() {
    let mut rng = fastrand::Rng::with_seed(0xde_97);
    let ctx = Ctx {
        now: 1,
        subject: "nginx:ditto",
        lookup: &FnLookup(|_: &str| None, |_: &str| None),
        access: None,
    };
    let (mut written, mut refused, mut deep_before) = (0, 0, 0);
    for _ in 0..300 {
        let deep = nested(MAX_JSON_DEPTH - 4 + rng.usize(0..8));
        let metadata = match rng.u32(0..4) {
            0 => Some(json!({"attributes": nested(MAX_JSON_DEPTH - 3 + rng.usize(0..6))})),
            1 => Some(json!({"attributes": {"k0": {"u": 1}}})),
            _ => None,
        };
        let prev = ThingState {
            thing: json!({"thingId": "n:t", "attributes": {"k0": 1, "k1": deep},
                "features": {"f0": {"properties": {"k1": {"k2": 0}}}, "f1": {}}}),
            revision: 3,
            created: 0,
            modified: 0,
            metadata,
            deleted: false,
        };
        let mut path = random_path(&mut rng);
        let value = match rng.u32(0..3) {
            0 => nested(MAX_JSON_DEPTH - 4 + rng.usize(0..6)),
            _ => random_value(&mut rng, 3),
        };
        if rng.bool() {
            path = format!("/attributes/k1{}", "/k0".repeat(rng.usize(0..8)));
        }
        let v = json!({"topic": "n/t/things/twin/commands/modify",
            "headers": random_headers(&mut rng), "path": path, "value": value});
        let Some(c) = parse(v) else {
            continue;
        };
        if c.path == ThingPath::Root {
            continue;
        }
        deep_before += usize::from(crate::bounds::value_depth(&prev.thing) > MAX_JSON_DEPTH);
        for out in [
            apply(Some(&prev), &c, &ctx),
            apply_in_place(prev.clone(), &c, &ctx)
                .map(|o| o.0)
                .map_err(|_| {
                    DittoError::internal("not in place") // compared below only when written
                }),
        ] {
            let Ok(Outcome {
                state: Some(after),
                bytes: Some(bytes),
                etag,
                ..
            }) = out
            else {
                refused += 1;
                continue;
            };
            written += 1;
            assert_eq!(depth::scan(Some(&prev), &bytes), Ok(()), "{}", c.raw_path);
            assert_eq!(etag, etag_at(&after, &c.path), "{}", c.raw_path);
        }
    }
    assert!(
        written > 150 && refused > 150 && deep_before > 100,
        "{written} {refused} {deep_before}"
    );
}
