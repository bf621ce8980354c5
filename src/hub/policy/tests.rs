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
    let (_dir, hub) = hub_with_policies(100, true);
    let budget = 64 * 1024;
    hub.set_policy_cache_bytes(budget);
    let (most, charged) = look_up_all(&hub, 100);
    // each ID brings an enforcer of its own (~3.4 KB): as many fit as their charge allows,
    // where the slots alone (~120 B) would let all 100 stay
    let one = hub
        .enforcer(&format!("{NS}:device-0"), NS, 0)
        .unwrap()
        .unwrap();
    let each = slot_bytes("org.example:device-00") + enforcer_bytes(&one);
    assert!(each > 2_000, "{each}");
    let fit = budget / each;
    assert!(
        (fit - 1..=fit + 1).contains(&most),
        "held at most {most} IDs, {fit} fit"
    );
    assert!(charged > 2_000, "charged {charged}");
}

#[test]
fn policies_alike_share_one_charged_enforcer() {
    let (_dir, hub) = hub_with_policies(100, false);
    hub.set_policy_cache_bytes(64 * 1024);
    let (most, charged) = look_up_all(&hub, 100);
    // one enforcer built and charged, the other 99 IDs take theirs from `shared`
    assert_eq!(most, 100);
    let one = slot_bytes("org.example:device-00");
    assert!(charged < 100 * one + 10 * 1024, "charged {charged}");
}

#[test]
fn enforcers_kept_for_sharing_are_bounded_in_bytes() {
    let (_dir, hub) = hub_with_policies(100, true);
    let budget = 64 * 1024;
    hub.set_policy_cache_bytes(budget);
    let mut most = 0;
    for i in 0..100 {
        hub.enforcer(&format!("{NS}:device-{i}"), NS, 0).unwrap();
        let shared = lock(&hub.policies().shared);
        most = most.max(shared.by_key.len());
        assert!(
            shared.charged <= budget / shared::SHARED_PART,
            "{} B kept for sharing, budget {}",
            shared.charged,
            budget / shared::SHARED_PART
        );
    }
    // distinct policies of ~3.4 KB enforcers: a few fit a quarter of 64 KiB, not all 100
    assert!((2..10).contains(&most), "kept {most} for sharing");
}
