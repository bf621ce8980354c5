//! Tests of the hub's policy cache: its byte budget (`policy_cache_mib`) charges each enforcer
//! the hub builds, so distinct policies clear it at the budget while alike ones share one.

use super::*;
use crate::store::{BackendKind, Store};
use serde_json::json;

const NS: &str = "org.example";

/// A hub over a temp store with `n` stored policies of Ditto's default shape: each with its own
/// subject (`distinct`) or all with the same one.
fn hub_with_policies(n: usize, distinct: bool) -> (tempfile::TempDir, Hub) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Sled, dir.path(), 1 << 20).unwrap();
    let hub = Hub::new(store.clone());
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    for i in 0..n {
        let id = format!("{NS}:device-{i}");
        let subject = format!("nginx:device-{}", if distinct { i } else { 0 });
        let state = PolicyState {
            policy: json!({"policyId": id, "entries": {"DEFAULT": {
                "subjects": {subject: {"type": "generated"}},
                "resources": {"thing:/": rw, "policy:/": rw, "message:/": rw}
            }}}),
            revision: 1,
            created: 0,
            modified: 0,
        };
        store.submit(crate::policy::ready::write_ops(&id, None, Some(&state)));
    }
    (dir, hub)
}

/// Looks up the `n` policies' enforcers; returns the most IDs the cache held and its charge.
fn look_up_all(hub: &Hub, n: usize) -> (usize, usize) {
    let mut most = 0;
    for i in 0..n {
        let e = hub.enforcer(&format!("{NS}:device-{i}"), NS, 0).unwrap();
        assert!(e.is_some());
        let cache = lock(&hub.policies().cache);
        most = most.max(cache.by_id.len());
        assert!(cache.charged <= hub.policy_cache_bytes());
    }
    (most, lock(&hub.policies().cache).charged)
}

#[test]
fn distinct_policies_clear_the_cache_at_its_budget() {
    let (_dir, hub) = hub_with_policies(60, true);
    hub.set_policy_cache_bytes(64 * 1024);
    let (most, charged) = look_up_all(&hub, 60);
    // ~8.3 KB each (an enforcer of its own): 7 fit in 64 KiB; slots alone would hold all 60
    assert!((5..=8).contains(&most), "held at most {most} IDs");
    assert!(charged > 7 * 1024, "charged {charged}");
}

#[test]
fn policies_alike_share_one_charged_enforcer() {
    let (_dir, hub) = hub_with_policies(60, false);
    hub.set_policy_cache_bytes(64 * 1024);
    let (most, charged) = look_up_all(&hub, 60);
    // one enforcer built and charged, the other 59 IDs take theirs from `shared`
    assert_eq!(most, 60);
    let one = slot_bytes("org.example:device-0");
    assert!(charged < 60 * one + 10 * 1024, "charged {charged}");
}
