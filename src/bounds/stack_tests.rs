//! Stack margin of the depth bounds: the worst inputs the bounds let through (documents at the
//! depth bound, pointers of the most segments, RQL and field selectors nested to their bounds,
//! the writes refused for their depth) run on a thread with a quarter of the smallest stack the
//! gateway's threads get (2 MiB), in a child process so an overflow is a clean failure; the
//! smallest stack that suffices is measured and printed.

use super::*;
use crate::engine::{self, enforce::Access, Ctx, ThingState};
use crate::model::FieldSelector;
use crate::policy::{Enforcer, PolicyCommand, PolicyState};
use crate::protocol::{Envelope, Signal, ThingCommand};
use std::process::Command;

const CHILD_ENV: &str = "EDGETWIN_STACK_CHILD_KIB";
const TEST: &str = "bounds::stack_tests::worst_case_inputs_fit_a_quarter_of_the_thread_stack";
/// What every thread of the gateway has at least (std's default on every target, aarch64 musl
/// included: std sets it explicitly instead of inheriting musl's 128 KiB).
const THREAD_STACK_KIB: usize = THREAD_STACK_BYTES / 1024;

fn nest(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

fn cmd(text: &str) -> ThingCommand {
    match Signal::from_envelope(Envelope::parse(text).expect("envelope")) {
        Ok(Signal::Thing(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn frame(action: &str, path: &str, value: &str, headers: &str) -> String {
    format!(
        r#"{{"topic":"ns/deep/things/twin/commands/{action}","headers":{{{headers}}},"path":"{path}","value":{value}}}"#
    )
}

const SUBJECT: &str = "nginx:s";

fn segs(n: usize) -> String {
    "/a".repeat(n)
}

/// A policy with a resource at the pointer bound and a subject field nested 90 levels.
#[inline(never)]
fn deep_policy() -> Value {
    let deep_res = format!("thing:/attributes{}", segs(MAX_POINTER_SEGMENTS - 1));
    let text = format!(
        r#"{{"policyId":"ns:deep","entries":{{"E":{{"subjects":{{"{SUBJECT}":{{"type":"t","x":{}}}}},"resources":{{"thing:/":{{"grant":["READ","WRITE"],"revoke":[]}},"policy:/":{{"grant":["READ","WRITE"],"revoke":[]}},"{deep_res}":{{"grant":[],"revoke":["READ"]}}}}}}}}}}"#,
        nest(90)
    );
    serde_json::from_str(&text).expect("policy")
}

fn apply(
    state: Option<&ThingState>,
    text: &str,
    access: Option<Access<'_>>,
) -> Result<engine::Outcome, crate::error::DittoError> {
    let policy = deep_policy();
    let lookup_policy = |id: &str| (id == "ns:deep").then(|| policy.clone());
    let no_thing = |_: &str| None;
    let ctx = Ctx {
        now: 1,
        subject: SUBJECT,
        lookup: &engine::FnLookup(no_thing, lookup_policy),
        access,
    };
    engine::apply(state, &cmd(text), &ctx)
}

/// A thing at the depth bound, created from a frame at the frame bound, then a write at a
/// path of the most segments.
#[inline(never)]
fn create_at_the_bound() -> ThingState {
    let attrs = format!(r#"{{"a":{}}}"#, nest(MAX_JSON_DEPTH - 3));
    let thing = format!(r#"{{"policyId":"ns:deep","attributes":{attrs}}}"#);
    let text = frame("create", "/", &thing, "");
    assert!(text_depth(text.as_bytes()) <= MAX_FRAME_DEPTH);
    let created = apply(None, &text, None).expect("create at the bound");
    let state = created.state.expect("state");
    let long = format!("/attributes{}", segs(MAX_POINTER_SEGMENTS - 1));
    let out = apply(Some(&state), &frame("modify", &long, "1", ""), None).expect("long path");
    let state = out.state.expect("state");
    let back = ThingState::from_bytes(&out.bytes.expect("bytes"));
    assert_eq!(back.as_ref(), Ok(&state));
    state
}

/// Writes that are refused for their depth, at the longest path with the deepest values.
#[inline(never)]
fn refused_writes(state: &ThingState) {
    let long = format!("/attributes{}", segs(MAX_POINTER_SEGMENTS - 2));
    let deep = nest(MAX_JSON_DEPTH);
    let md = format!(
        r#""put-metadata":[{{"key":"*/m","value":{}}}]"#,
        nest(MAX_JSON_DEPTH - 3)
    );
    let merge = r#""content-type":"application/merge-patch+json""#;
    for (action, headers, value) in [
        ("modify", "", deep.as_str()),
        ("merge", merge, &deep),
        ("modify", &md, "1"),
    ] {
        let r = apply(Some(state), &frame(action, &long, value, headers), None);
        assert_eq!(
            r.map(|_| ()).map_err(|e| e.error),
            Err("json.invalid".into()),
            "{action}"
        );
    }
}

/// Reads under the policy (its trie at the pointer bound), fields, RQL, the search index.
#[inline(never)]
fn reads(state: &ThingState) {
    let enforcer = Enforcer::from_policy(&deep_policy(), 1, Some("ns"));
    let subjects = [SUBJECT.to_owned()];
    let access = Access {
        subjects: &subjects,
        enforcer: Some(&enforcer),
    };
    let read = frame("retrieve", "/", "null", r#""get-metadata":"*/m""#)
        .replace(r#""value":null"#, r#""fields":"attributes,_metadata""#);
    apply(Some(state), &read, Some(access)).expect("read");
    let fields = format!(
        "{}x{}",
        "a(".repeat(MAX_FIELDS_NESTING),
        ")".repeat(MAX_FIELDS_NESTING)
    );
    FieldSelector::parse(&fields)
        .expect("fields")
        .select(&state.full_view());
    let prop = format!("attributes{}", segs(MAX_POINTER_SEGMENTS - 1));
    let rql = format!(
        "{}exists({prop}){}",
        "not(".repeat(MAX_RQL_DEPTH),
        ")".repeat(MAX_RQL_DEPTH)
    );
    let q = crate::rql::parse(&rql).expect("rql");
    q.matches(&state.full_view(), &crate::rql::Env::at(1));
    let entries = crate::search::index::entries(state);
    crate::search::index::delta(&Default::default(), &entries);
}

/// A policy written with a value near the depth bound, and an MQTT payload at the bound.
#[inline(never)]
fn policy_and_mqtt() {
    let p = format!(
        r#"{{"topic":"ns/deep/policies/commands/create","headers":{{}},"path":"/","value":{}}}"#,
        deep_policy()
    );
    let env = Envelope::parse(&p).expect("policy frame");
    let pc = PolicyCommand::from_envelope(&env)
        .expect("policy")
        .expect("policy");
    let subjects = [SUBJECT.to_owned()];
    let out = crate::policy::apply::apply(None, &pc, 1, Some(&subjects), &|_| Ok(None))
        .expect("policy create");
    let bytes = out.state.expect("policy state").to_bytes();
    assert!(PolicyState::from_bytes(&bytes).is_some());
    let cfg = crate::mqtt::config::MqttConfig {
        presets: vec!["zigbee2mqtt".into()],
        ..Default::default()
    };
    let m = crate::mqtt::mapping::Mappings::build(&cfg).expect("mappings");
    let payload = format!(r#"{{"p":{}}}"#, nest(MAX_JSON_DEPTH - 1));
    let _ = m.classify("zigbee2mqtt/dev", payload.as_bytes(), "home");
}

/// Every recursive path over untrusted input, at the bounds.
fn worst_case() {
    let state = create_at_the_bound();
    refused_writes(&state);
    reads(&state);
    policy_and_mqtt();
}

fn run_on_stack(kib: usize) {
    let t = std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(worst_case)
        .expect("spawn");
    t.join().expect("worst case passed");
}

/// Runs the worst case in a child process on a thread of `kib` KiB; `None` if no child can be
/// started (e.g. under qemu-user without binfmt_misc).
fn child_passes(kib: usize) -> Option<bool> {
    let out = Command::new(std::env::current_exe().ok()?)
        .args([TEST, "--exact", "--test-threads=1"])
        .env(CHILD_ENV, kib.to_string())
        .output()
        .ok()?;
    Some(out.status.success())
}

/// In an optimized build the worst case must fit a quarter of the stack; debug frames are
/// several times larger (an RQL nesting level alone takes ~5 KiB), so there: half of it.
#[test]
fn worst_case_inputs_fit_a_quarter_of_the_thread_stack() {
    if let Some(kib) = std::env::var(CHILD_ENV).ok().and_then(|v| v.parse().ok()) {
        return run_on_stack(kib);
    }
    let share = if cfg!(debug_assertions) {
        THREAD_STACK_KIB / 2
    } else {
        THREAD_STACK_KIB / 4
    };
    match child_passes(share) {
        None => {
            println!("no child process here: running the worst case in-process on {share} KiB");
            run_on_stack(share);
        }
        Some(ok) => {
            assert!(ok, "the worst case overflowed a {share} KiB stack");
            let (mut lo, mut hi) = (8, share);
            while hi - lo > 8 {
                let mid = (lo + hi) / 2;
                if child_passes(mid) == Some(true) {
                    hi = mid
                } else {
                    lo = mid
                }
            }
            println!("stack: the worst case needs at most {hi} KiB (this build; threads have {THREAD_STACK_KIB} KiB)");
        }
    }
}

/// Threads spawned without a size get 2 MiB on every target (here: use about 1 MiB of it, far
/// more than musl's own 128 KiB default).
#[test]
fn default_threads_have_two_mib_of_stack() {
    fn dig(n: usize) -> u8 {
        let buf = std::hint::black_box([n as u8; 16 * 1024]);
        if n == 0 {
            buf[0]
        } else {
            dig(n - 1).wrapping_add(buf[1000])
        }
    }
    let t = std::thread::spawn(|| dig(48));
    assert!(t.join().is_ok());
}
