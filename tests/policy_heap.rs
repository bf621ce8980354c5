//! `Enforcer::heap_bytes` against the heap an enforcer really holds, counted by this test's own
//! global allocator (live bytes): the estimate the hub's policy cache charges
//! (`policy_cache_mib`) must stay within 0.75x-1.5x of the measured bytes.

use edgetwin::policy::Enforcer;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Live bytes allocated minus freed by this thread (the harness runs tests on threads).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(d: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + d));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new as isize - l.size() as isize);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Ditto's default policy of one device: its own subject, READ+WRITE on thing, policy, message.
fn default_policy(i: usize) -> Value {
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    json!({"entries": {"DEFAULT": {
        "subjects": {format!("nginx:device-{i}"): {"type": "generated"}},
        "resources": {"thing:/": rw, "policy:/": rw, "message:/": rw}
    }}})
}

/// Several entries and subjects, resources down to properties, revokes, 20 features (more
/// children than one B-tree node holds).
fn rich_policy() -> Value {
    let mut resources = serde_json::Map::new();
    for f in 0..20 {
        resources.insert(
            format!("thing:/features/f{f}/properties/p{f}"),
            json!({"grant": ["READ"], "revoke": []}),
        );
    }
    resources.insert(
        "thing:/attributes/secret/inner".into(),
        json!({"grant": [], "revoke": ["READ", "WRITE"]}),
    );
    json!({"entries": {
        "OWNER": {
            "subjects": {"nginx:owner": {"type": "a"}, "nginx:admin": {"type": "b"}},
            "resources": {
                "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                "message:/": {"grant": ["READ", "WRITE"], "revoke": []},
                "thing:/attributes/private": {"grant": [], "revoke": ["READ"]}
            }
        },
        "READERS": {
            "subjects": {"nginx:r1": {"type": "a"}, "nginx:r2": {"type": "a"}, "nginx:r3": {"type": "a"}},
            "resources": resources
        },
        "DEVICE": {
            "subjects": {"nginx:device": {"type": "a"}},
            "resources": {
                "thing:/features/f0/properties": {"grant": ["READ", "WRITE"], "revoke": []},
                "message:/inbox/messages/cmd": {"grant": ["READ"], "revoke": []}
            }
        }
    }})
}

/// Builds one enforcer per policy; returns (measured live heap bytes, estimate).
fn measure(policies: &[Value]) -> (usize, usize) {
    let mut kept: Vec<Enforcer> = Vec::with_capacity(policies.len());
    let before = live();
    for p in policies {
        kept.push(Enforcer::from_policy(p, 0, Some("org.example")));
    }
    let measured = (live() - before) as usize;
    let estimate = kept.iter().map(Enforcer::heap_bytes).sum();
    (measured, estimate)
}

fn assert_close(what: &str, measured: usize, estimate: usize) {
    let ratio = estimate as f64 / measured as f64;
    eprintln!("{what}: measured {measured} B, estimated {estimate} B, ratio {ratio:.3}");
    assert!(
        (0.75..=1.5).contains(&ratio),
        "{what}: estimate {estimate} B vs measured {measured} B (ratio {ratio:.3})"
    );
}

#[test]
fn default_policies_estimate_is_close() {
    let policies: Vec<Value> = (0..200).map(default_policy).collect();
    let (measured, estimate) = measure(&policies);
    assert_close("200 default-policy enforcers", measured, estimate);
    eprintln!("per enforcer: measured {} B", measured / 200);
}

#[test]
fn rich_policy_estimate_is_close() {
    let (measured, estimate) = measure(&[rich_policy()]);
    assert_close("rich policy enforcer", measured, estimate);
}

/// The largest policy the gateway accepts, granting 1,450 feature properties one by one: its
/// enforcer's heap is what the policy cache and the shared enforcers are charged (~3.7 MB).
#[test]
fn largest_policy_estimate_is_close() {
    let resources: serde_json::Map<String, Value> = (0..1450)
        .map(|f| {
            let path = format!("thing:/features/f{f}/properties/p{f}");
            (path, json!({"grant": ["READ"], "revoke": []}))
        })
        .collect();
    let policy = json!({"entries": {"READERS": {
        "subjects": {"nginx:reader": {"type": "a"}},
        "resources": resources
    }}});
    let text = policy.to_string().len();
    assert!(
        text <= edgetwin::policy::model::MAX_POLICY_BYTES,
        "{text} B"
    );
    assert!(
        text > edgetwin::policy::model::MAX_POLICY_BYTES * 9 / 10,
        "{text} B"
    );
    let (measured, estimate) = measure(&[policy]);
    assert_close("largest policy enforcer", measured, estimate);
}
