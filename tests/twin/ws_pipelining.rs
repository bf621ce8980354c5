//! Pipelined traffic over `/ws/2` (what the load generator does): many commands sent without
//! waiting are all answered, in order, with and without `twin-persisted`, and a subscriber
//! gets every event in revision order. Guards the batched writer (one flush per burst), the
//! session queue bound and the store's commit batching (last write per key, gathering).

use crate::common;
use common::{block_on, command, modify, Server, WAIT};
use serde_json::{json, Value};

const N: usize = 300;

fn cid(v: &Value) -> String {
    v["headers"]["correlation-id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn pipelined_commands_are_all_answered_in_order() {
    answered_in_order(&Server::start());
}

/// A session queue of 4 replies and 2 durable ones in flight, far below the 300 pipelined
/// commands: the session's reader waits for queue space and in-flight slots that only its
/// writer frees (the writer runs in the reader's task and must go on while the reader waits).
#[test]
fn pipelined_commands_beyond_the_session_queue_are_all_answered_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("edgetwin.toml");
    std::fs::write(
        &cfg,
        "[limits]\noutbound_queue = 4\nmax_pending_per_session = 2\n",
    )
    .unwrap();
    let s = Server::start_in(
        &tmp.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    answered_in_order(&s);
}

fn answered_in_order(s: &Server) {
    block_on(async {
        let mut ws = s.ws().await;
        let created = ws
            .request(modify("pipe:t", "/", json!({"attributes": {"n": -1}})))
            .await;
        assert_eq!(created["status"], 201, "{created}");
        // Every 3rd command waits for the disk, the others do not: replies must still come
        // back in request order (a durable reply holds back the ones behind it).
        for i in 0..N {
            let mut c = modify("pipe:t", "/attributes/n", json!(i));
            c["headers"]["correlation-id"] = json!(format!("p{i}"));
            if i % 3 != 0 {
                c["headers"]["requested-acks"] = json!([]);
            }
            ws.send(&c).await;
        }
        for i in 0..N {
            let r = ws.recv().await;
            assert_eq!(cid(&r), format!("p{i}"), "reply order: {r}");
            assert_eq!(r["status"], 204, "{r}");
        }
        let mut get = command("pipe:t", "retrieve", "/attributes/n", None);
        get["headers"]["correlation-id"] = json!("get");
        let got = ws.request(get).await;
        assert_eq!(got["value"], json!(N - 1), "{got}");
    });
}

#[test]
fn subscriber_gets_every_pipelined_event_in_revision_order_and_restart_keeps_the_last() {
    let mut s = Server::start();
    block_on(async {
        let mut sub = s.ws().await;
        sub.control("START-SEND-EVENTS?namespaces=pipe").await;
        let mut ws = s.ws().await;
        for k in 0..3 {
            let r = ws
                .request(modify(
                    &format!("pipe:e{k}"),
                    "/",
                    json!({"attributes": {}}),
                ))
                .await;
            assert_eq!(r["status"], 201, "{r}");
        }
        // The same three things written over and over without waiting: the store may merge the
        // writes of one key inside a commit, the subscriber must still see every revision.
        for i in 0..N {
            let mut c = modify(&format!("pipe:e{}", i % 3), "/attributes/i", json!(i));
            c["headers"]["requested-acks"] = json!([]);
            c["headers"]["correlation-id"] = json!(format!("e{i}"));
            ws.send(&c).await;
        }
        for i in 0..N {
            let r = ws.recv().await;
            assert_eq!(cid(&r), format!("e{i}"), "{r}");
        }
        let mut last_rev = [0u64; 3];
        let mut seen = 0;
        while seen < N + 3 {
            let ev = sub.next_event(WAIT).await.expect("event");
            let thing = ev["topic"].as_str().unwrap_or_default().to_owned();
            let k: usize = thing
                .split('/')
                .nth(1)
                .and_then(|n| n.strip_prefix('e'))
                .and_then(|n| n.parse().ok())
                .expect("pipe/e<k>");
            let rev = ev["revision"].as_u64().expect("revision");
            assert!(rev > last_rev[k], "revisions of {thing} in order: {ev}");
            last_rev[k] = rev;
            seen += 1;
        }
        // 1 creation + 100 modifications per thing
        assert_eq!(last_rev, [101, 101, 101]);
    });
    assert!(s.terminate().success());
    let data = s.data.clone();
    let s2 = Server::start_in(&data, &[]);
    block_on(async {
        let mut ws = s2.ws().await;
        for k in 0..3 {
            let mut get = command(&format!("pipe:e{k}"), "retrieve", "/", None);
            get["fields"] = json!("attributes,_revision");
            let got = ws.request(get).await;
            let want = (0..N).filter(|i| i % 3 == k).max().expect("some i");
            assert_eq!(got["value"]["attributes"]["i"], json!(want), "{got}");
            assert_eq!(got["value"]["_revision"], json!(101), "{got}");
        }
    });
}
