//! Distinct large policies against the real binary: the enforcers the gateway keeps in memory
//! stay within `policy_cache_mib` (docs/limits.md). Before Dec 8 the 256 kept for sharing were
//! counted, not weighed, and each cached twin held its policy's enforcer: 300 distinct ~100 KB
//! policies, a thing under each, peaked at 1,170 MiB (`scripts/policy-storm.py`).

use crate::auth_limits::status_kib;
use crate::authkit::{http, start, user};
use serde_json::{json, Map, Value};

/// A policy of ~100 KB (the largest accepted is 100 KiB): `owner` may read and write, and a
/// reader of its own (`i`) may read 1,400 feature properties granted one by one, an enforcer
/// of ~3.6 MB.
fn large_policy(i: usize) -> Value {
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let grants: Map<String, Value> = (0..1400)
        .map(|f| {
            let path = format!("thing:/features/f{f}/properties/p{f}");
            (path, json!({"grant": ["READ"], "revoke": []}))
        })
        .collect();
    json!({"entries": {
        "OWNER": {"subjects": {"nginx:owner": {"type": "a"}},
                  "resources": {"thing:/": rw, "policy:/": rw}},
        "READERS": {"subjects": {format!("nginx:reader-{i}"): {"type": "a"}}, "resources": grants}
    }})
}

#[test]
fn distinct_large_policies_keep_the_peak_rss_within_the_policy_cache() {
    let env = start(&["owner"], "policy_cache_mib = 4\n");
    let (addr, pid) = (env.srv.addr, env.srv.child.id());
    let auth = [("authorization", user("owner"))];
    let idle = status_kib(pid, "VmRSS");
    let n = 50;
    for i in 0..n {
        let body = large_policy(i).to_string();
        let r = http(
            addr,
            "PUT",
            &format!("/api/2/policies/storm:p{i}"),
            &auth,
            Some(&body),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let thing = json!({"policyId": format!("storm:p{i}")}).to_string();
        let r = http(
            addr,
            "PUT",
            &format!("/api/2/things/storm:t{i}"),
            &auth,
            Some(&thing),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for round in 0..2 {
        for i in 0..n {
            let r = http(
                addr,
                "GET",
                &format!("/api/2/things/storm:t{i}"),
                &auth,
                None,
            );
            assert_eq!(r.status, 200, "round {round}: {}", r.body);
        }
    }
    let peak = status_kib(pid, "VmHWM");
    let grown_mib = peak.saturating_sub(idle) / 1024;
    println!("policy storm: {n} policies, idle {idle} KiB, peak {peak} KiB");
    // 4 MiB of cached enforcers and 1 MiB kept for sharing (one each, 3.6 MB, as each alone
    // passes its budget), two being built, request buffers; unbounded: 50 x ~3.9 MB kept
    assert!(
        grown_mib < 100,
        "peak RSS grew by {grown_mib} MiB (idle {idle} KiB, peak {peak} KiB)"
    );
}
