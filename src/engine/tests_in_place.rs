//! `apply_in_place` against `apply`: on random twins and random modifies (headers included)
//! it either gives the state back unchanged or the very outcome `apply` gives, and what it
//! replaced rebuilds the state before the write.

use super::tests::{cmd, NOW};
use super::*;
use crate::protocol::{Envelope, Signal};
use serde_json::json;

pub(super) fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u32(0..if depth == 0 { 4 } else { 6 }) {
        0 => json!(rng.bool()),
        1 => json!(rng.i32(-2..3)),
        2 => json!(["a", "b"][rng.usize(0..2)]),
        3 => Value::Null,
        4 => json!([rng.i32(0..2)]),
        _ => Value::Object(
            (0..rng.usize(0..3))
                .map(|_| (format!("k{}", rng.u32(0..3)), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

pub(super) fn random_path(rng: &mut fastrand::Rng) -> String {
    let mut p = match rng.u32(0..6) {
        0 => "/attributes".to_owned(),
        1 => return "/policyId".to_owned(),
        2 => "/features/f0".to_owned(),
        _ => format!(
            "/features/f{}/{}",
            rng.u32(0..2),
            ["properties", "desiredProperties", "definition"][rng.usize(0..3)]
        ),
    };
    if rng.u32(0..3) == 0 {
        p = "/attributes".to_owned();
    }
    for _ in 0..rng.usize(0..3) {
        p.push_str(&format!("/k{}", rng.u32(0..3)));
    }
    p
}

pub(super) fn random_headers(rng: &mut fastrand::Rng) -> Value {
    let mut h = serde_json::Map::new();
    match rng.u32(0..8) {
        0 => {
            h.insert(
                "if-equal".into(),
                json!(["update", "skip"][rng.usize(0..2)]),
            );
        }
        1 => {
            h.insert("condition".into(), json!("eq(attributes/k0,1)"));
        }
        2 => {
            h.insert("if-match".into(), json!("*"));
        }
        3 => {
            h.insert("if-none-match".into(), json!("*"));
        }
        4 => {
            h.insert("put-metadata".into(), json!([{"key": "/*/u", "value": 1}]));
        }
        _ => {}
    }
    Value::Object(h)
}

/// The command, unless its path is not one (a random path may address no resource).
pub(super) fn parse(v: Value) -> Option<ThingCommand> {
    match Signal::from_envelope(Envelope::parse(&v.to_string()).ok()?) {
        Ok(Signal::Thing(c)) => Some(c),
        _ => None,
    }
}

#[test]
fn in_place_is_apply_or_gives_the_state_back() {
    let mut rng = fastrand::Rng::with_seed(0x1a_91ace);
    let ctx = Ctx {
        now: NOW,
        subject: "nginx:ditto",
        lookup: &FnLookup(|_: &str| None, |_: &str| None),
        access: None,
    };
    let (mut done, mut runs) = (0, 0);
    for _ in 0..300 {
        let thing = json!({"thingId": "n:t",
            "attributes": {"k0": 1, "k1": {"k2": 0}},
            "features": {"f0": {"properties": {"k1": {"k2": 0}}}, "f1": {}}});
        let created = apply(
            None,
            &cmd(
                json!({"topic": "n/t/things/twin/commands/create", "path": "/",
                "value": thing}),
            ),
            &ctx,
        );
        let Ok(Outcome {
            state: Some(mut state),
            ..
        }) = created
        else {
            panic!("{created:?}");
        };
        for _ in 0..10 {
            let v = json!({"topic": "n/t/things/twin/commands/modify",
                "headers": random_headers(&mut rng),
                "path": random_path(&mut rng), "value": random_value(&mut rng, 2)});
            let Some(c) = parse(v) else {
                continue;
            };
            runs += 1;
            let want = apply(Some(&state), &c, &ctx);
            match apply_in_place(state.clone(), &c, &ctx) {
                Err(back) => assert_eq!(back, state, "given back unchanged"),
                Ok((got, replaced)) => {
                    done += 1;
                    assert_eq!(Ok(&got), want.as_ref(), "{}", c.raw_path);
                    let after = got.state.unwrap();
                    let before = replaced.index_view_before(&after);
                    assert_eq!(
                        (&before.thing, before.modified, before.created),
                        (&state.thing, state.modified, state.created)
                    );
                }
            }
            if let Ok(Outcome { state: Some(s), .. }) = want {
                state = s;
            }
        }
    }
    assert!(done > 150 && done * 8 > runs, "{done} of {runs} in place");
}

#[test]
fn a_refused_in_place_write_leaves_the_twin_as_it_was() {
    let ctx = Ctx {
        now: NOW,
        subject: "nginx:ditto",
        lookup: &FnLookup(|_: &str| None, |_: &str| None),
        access: None,
    };
    let created = apply(
        None,
        &cmd(
            json!({"topic": "n/t/things/twin/commands/create", "path": "/",
            "value": {"attributes": {"a": 1, "b": 2}}}),
        ),
        &ctx,
    )
    .unwrap()
    .state
    .unwrap();
    // too large: refused by `finish`, after the value was written in
    let big = "x".repeat(MAX_THING_BYTES);
    for (path, value) in [
        ("/attributes/a", json!(big)),
        ("/attributes/new", json!(big)),
    ] {
        let c = cmd(
            json!({"topic": "n/t/things/twin/commands/modify", "path": path,
            "value": value}),
        );
        let back = apply_in_place(created.clone(), &c, &ctx).unwrap_err();
        assert_eq!(back, created);
        let keys: Vec<&String> = back.thing["attributes"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["a", "b"], "order kept");
        assert_eq!(apply(Some(&created), &c, &ctx).unwrap_err().status, 413);
    }
}
