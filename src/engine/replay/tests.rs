//! Replay against the engine: random command sequences (creates, modifies and merges at every
//! kind of path, merge nulls, deletes of parts and of the whole thing, re-creation, metadata)
//! applied by `engine::apply`; replaying each event onto the previous state must give exactly
//! the state the engine wrote.

use super::*;
use crate::engine::{apply as engine_apply, Ctx};
use crate::protocol::{Envelope, Signal, ThingCommand};
use serde_json::json;

fn cmd(v: Value) -> ThingCommand {
    match Signal::from_envelope(Envelope::parse(&v.to_string()).unwrap()).unwrap() {
        Signal::Thing(c) => c,
        other => panic!("not a thing command: {other:?}"),
    }
}

fn leaf(r: &mut fastrand::Rng) -> Value {
    match r.u8(..5) {
        0 => json!(r.i32(..)),
        1 => json!(format!("s{}", r.u8(..4))),
        2 => json!(r.bool()),
        3 => json!({"x": r.u8(..3), "y": {"z": r.u8(..3)}}),
        _ => Value::Null,
    }
}

fn path(r: &mut fastrand::Rng) -> String {
    let f = ["lamp", "fan"][r.usize(..2)];
    let a = ["a", "b", "c"][r.usize(..3)];
    match r.u8(..10) {
        0 => "/".into(),
        1 => "/attributes".into(),
        2 => format!("/attributes/{a}"),
        3 => format!("/attributes/{a}/x"),
        4 => "/features".into(),
        5 => format!("/features/{f}"),
        6 => format!("/features/{f}/properties"),
        7 => format!("/features/{f}/properties/{a}"),
        8 => format!("/features/{f}/desiredProperties/{a}"),
        _ => "/definition".into(),
    }
}

fn value_for(r: &mut fastrand::Rng, p: &str) -> Value {
    let obj = |r: &mut fastrand::Rng| json!({"a": leaf(r), "b": leaf(r)});
    match p {
        "/" => json!({"attributes": obj(r), "features": {"lamp": {"properties": obj(r)}}}),
        "/attributes" | "/features/lamp/properties" | "/features/fan/properties" => obj(r),
        "/features" => json!({"lamp": {"properties": obj(r)}}),
        "/definition" => json!("ns:def:1.0"),
        p if p.starts_with("/features/") && p.matches('/').count() == 2 => {
            json!({"properties": obj(r)})
        }
        _ => leaf(r),
    }
}

fn random_command(r: &mut fastrand::Rng, i: usize) -> Value {
    let p = path(r);
    let mut headers = json!({});
    let action = match r.u8(..10) {
        0..=3 => "modify",
        4..=6 => "merge",
        7 | 8 => "delete",
        _ => "create",
    };
    if action == "merge" {
        headers["content-type"] = json!("application/merge-patch+json");
    }
    if r.u8(..6) == 0 && action != "delete" {
        headers["put-metadata"] = json!([{"key": "*/unit", "value": format!("u{i}")}]);
    }
    let mut v = json!({"topic": format!("ns/t/things/twin/commands/{action}"),
        "headers": headers, "path": if action == "create" { "/" } else { p.as_str() }});
    if action != "delete" {
        let val = if action == "merge" && r.u8(..4) == 0 {
            Value::Null
        } else {
            value_for(r, &p)
        };
        v["value"] = val;
    }
    v
}

#[test]
fn replaying_every_event_gives_the_state_the_engine_wrote() {
    let mut r = fastrand::Rng::with_seed(18);
    let none = |_: &str| None;
    let mut applied = 0;
    for run in 0..60 {
        let mut state: Option<ThingState> = None;
        for i in 0..200 {
            let c = cmd(random_command(&mut r, i));
            let ctx = Ctx {
                now: 1_700_000_000_000 + (run * 1000 + i) as i64,
                subject: "nginx:ditto",
                lookup: &crate::engine::FnLookup(|_: &str| None, none),
                access: None,
            };
            let Ok(out) = engine_apply(state.as_ref(), &c, &ctx) else {
                continue;
            };
            let (Some(ev), Some(new)) = (out.event, out.state) else {
                continue;
            };
            let step = Step {
                action: ev.action,
                path: &ev.path,
                value: ev.value.as_ref(),
                full_metadata: new.metadata.as_ref(),
                revision: ev.revision,
                timestamp: ev.timestamp,
            };
            let replayed = apply(state.as_ref(), "ns:t", &step)
                .unwrap_or_else(|e| panic!("run {run} step {i} {c:?}: {e:?}"));
            assert_eq!(replayed, new, "run {run} step {i}: {c:?}");
            applied += 1;
            state = Some(new);
        }
    }
    assert!(applied > 3000, "only {applied} changes were exercised");
}

#[test]
fn a_change_of_a_missing_thing_is_refused() {
    let v = json!(1);
    let step = Step {
        action: EventAction::Modified,
        path: "/attributes/a",
        value: Some(&v),
        full_metadata: None,
        revision: 2,
        timestamp: 1,
    };
    assert!(apply(None, "ns:t", &step).is_err());
}
