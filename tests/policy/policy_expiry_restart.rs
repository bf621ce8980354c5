//! Subject expiry across a restart (persisted expiry index, src/policy/expiry_index.rs): a
//! subject whose expiry passes while the server is down is removed after the restart, for a
//! policy created by a policy command and for one created inline with a thing, on both backends.

use crate::common;
use common::{block_on, Server, Ws, WAIT};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn policy(expiry: &str) -> Value {
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    json!({"entries": {
        "owner": {"subjects": {"nginx:ditto": {"type": "test"}},
                  "resources": {"thing:/": rw, "policy:/": rw}},
        "temp": {"subjects": {"test:temp": {"type": "test", "expiry": expiry}},
                 "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}
    }})
}

async fn temp_subjects(ws: &mut Ws, policy_id: &str) -> Value {
    let (ns, name) = policy_id.split_once(':').expect("namespaced id");
    let r = ws
        .request(
            json!({"topic": format!("{ns}/{name}/policies/commands/retrieve"),
                        "path": "/entries/temp/subjects"}),
        )
        .await;
    assert_eq!(r["status"], 200, "{r}");
    r["value"].clone()
}

fn expired_subject_is_removed_after_restart(store: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut srv = Server::start_in(&data, &["--store", store]);
    let expiry_ms = (edgetwin::clock::now_millis() / 1000 + 3) * 1000;
    let expiry = edgetwin::clock::format_millis(expiry_ms);
    block_on(async {
        let mut ws = srv.ws().await;
        let r = ws
            .request(
                json!({"topic": "ns.exp/pol1/policies/commands/create", "path": "/",
                            "value": policy(&expiry)}),
            )
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let r = ws
            .request(
                json!({"topic": "ns.exp/thing1/things/twin/commands/create", "path": "/",
                            "value": {"_policy": policy(&expiry)}}),
            )
            .await;
        assert_eq!(r["status"], 201, "{r}");
        for id in ["ns.exp:pol1", "ns.exp:thing1"] {
            let subjects = temp_subjects(&mut ws, id).await;
            assert!(subjects.get("test:temp").is_some(), "{id}: {subjects}");
        }
    });
    assert!(srv.terminate().success(), "clean stop");
    // The expiry passes while the server is down: only the stored index can tell the new
    // process that these policies have work due.
    let wait = expiry_ms + 500 - edgetwin::clock::now_millis();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let srv = Server::start_in(&data, &["--store", store]);
    block_on(async {
        let mut ws = srv.ws().await;
        for id in ["ns.exp:pol1", "ns.exp:thing1"] {
            let until = Instant::now() + WAIT;
            let mut subjects = temp_subjects(&mut ws, id).await;
            while subjects != json!({}) && Instant::now() < until {
                smol::Timer::after(Duration::from_millis(200)).await;
                subjects = temp_subjects(&mut ws, id).await;
            }
            assert_eq!(subjects, json!({}), "{id}: expired subject removed");
        }
    });
}

#[test]
fn expired_subject_is_removed_after_restart_sled() {
    expired_subject_is_removed_after_restart("sled");
}

#[test]
fn expired_subject_is_removed_after_restart_redb() {
    expired_subject_is_removed_after_restart("redb");
}
