//! Durability over the real binary: a graceful restart keeps everything with the same
//! revision, and under concurrent write load `kill -9` loses no write that was answered
//! (default `twin-persisted` semantics) — for both store backends.

use crate::common;
use async_tungstenite::tungstenite::Message;
use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn restart_keeps_state(store: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut srv = Server::start_in(&data, &["--store", store]);
    block_on(async {
        let mut ws = srv.ws().await;
        ws.request(command(
            "ns:p",
            "create",
            "/",
            Some(json!({"attributes": {"a": 1}})),
        ))
        .await;
        ws.request(modify(
            "ns:p",
            "/features/f",
            json!({"properties": {"x": 1}}),
        ))
        .await;
        ws.request(modify(
            "ns:p",
            "/features/f",
            json!({"properties": {"x": 2}}),
        ))
        .await;
    });
    assert!(srv.terminate().success(), "clean exit on SIGTERM");
    let srv = Server::start_in(&data, &["--store", store]);
    block_on(async {
        let mut ws = srv.ws().await;
        let mut g = command("ns:p", "retrieve", "/", None);
        g["fields"] = json!("attributes,features,_revision");
        let r = ws.request(g).await;
        assert_eq!(
            r["value"],
            json!({"attributes": {"a": 1}, "features": {"f": {"properties": {"x": 2}}}, "_revision": 3}),
            "{store}"
        );
    });
}

#[test]
fn restart_keeps_state_sled() {
    restart_keeps_state("sled");
}

#[test]
fn restart_keeps_state_redb() {
    restart_keeps_state("redb");
}

/// Four connections write pipelined (20 in flight each); `kill -9` hits them mid-stream. After
/// restart every thing holds at least the highest value that was answered, and its revision is
/// exactly value + 1 (writes applied as a gap-free prefix, nothing half-written).
fn kill9_loses_no_acknowledged_write(store: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut srv = Server::start_in(&data, &["--store", store]);
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    block_on(async {
        let mut setup = srv.ws().await;
        for c in 0..4 {
            let r = setup
                .request(command(
                    &format!("crash:t{c}"),
                    "create",
                    "/",
                    Some(json!({"attributes": {"n": 0}})),
                ))
                .await;
            assert_eq!(r["status"], 201);
        }
        let tasks: Vec<_> = (0..4)
            .map(|c| {
                let (addr, acked) = (srv.addr, acked.clone());
                smol::spawn(async move {
                    let mut ws = Ws::connect(addr, Some(("ditto", "ditto"))).await.unwrap();
                    let thing = format!("crash:t{c}");
                    for round in 0u64.. {
                        for k in 1..=20u64 {
                            let mut cmd = modify(&thing, "/attributes/n", json!(round * 20 + k));
                            cmd["headers"]["correlation-id"] =
                                json!(format!("{thing}-{}", round * 20 + k));
                            if ws
                                .stream
                                .send(Message::text(cmd.to_string()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        for _ in 0..20 {
                            let Some(t) = ws.try_recv_text(WAIT).await else {
                                return;
                            };
                            let r: serde_json::Value = serde_json::from_str(&t).unwrap();
                            assert_eq!(r["status"], 204, "{r}");
                            let n: u64 = r["headers"]["correlation-id"]
                                .as_str()
                                .unwrap()
                                .rsplit('-')
                                .next()
                                .unwrap()
                                .parse()
                                .unwrap();
                            let mut a = acked.lock().unwrap();
                            let e = a.entry(thing.clone()).or_default();
                            *e = (*e).max(n);
                        }
                    }
                })
            })
            .collect();
        smol::Timer::after(std::time::Duration::from_millis(1500)).await;
        srv.kill9();
        for t in tasks {
            t.await;
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        4,
        "every writer got answers before the kill: {acked:?}"
    );
    let srv = Server::start_in(&data, &["--store", store]);
    block_on(async {
        let mut ws = srv.ws().await;
        for (thing, n) in &acked {
            let mut g = command(thing, "retrieve", "/", None);
            g["fields"] = json!("attributes/n,_revision");
            let r = ws.request(g).await;
            let stored = r["value"]["attributes"]["n"].as_u64().unwrap();
            assert!(
                stored >= *n,
                "{store} {thing}: answered {n}, stored {stored}"
            );
            assert_eq!(
                r["value"]["_revision"].as_u64().unwrap(),
                stored + 1,
                "{store} {thing}: gap-free"
            );
        }
    });
    eprintln!("{store}: acknowledged before kill -9: {acked:?}");
}

#[test]
fn kill9_sled() {
    kill9_loses_no_acknowledged_write("sled");
}

#[test]
fn kill9_redb() {
    kill9_loses_no_acknowledged_write("redb");
}
