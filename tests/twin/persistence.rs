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

/// What a crash loop counted.
#[derive(Debug, Default)]
struct Loop {
    cycles: u32,
    /// writes answered after they were durable (default acks), and how many of them were lost
    acked: u64,
    lost: u64,
    /// writes answered without waiting (`requested-acks: []`), how many of those answered more
    /// than an interval before the kill were lost (must be 0), and how many later ones
    unwaited: u64,
    lost_older: u64,
    lost_last_interval: u64,
}

const LOOP_INTERVAL_MS: u64 = 500;
/// Allowance on top of the interval for the sync itself and a busy machine.
const LOOP_SLACK_MS: u64 = 1000;

/// Each of `waited` + `unwaited` writers sets `attributes/n` of its own thing to the next
/// number, 20 commands in flight; records the highest number answered (and when).
async fn drive(
    addr: std::net::SocketAddr,
    thing: String,
    start: u64,
    unwaited: bool,
) -> Vec<(u64, std::time::Instant)> {
    let mut answered = Vec::new();
    let Ok(mut ws) = Ws::connect(addr, Some(("ditto", "ditto"))).await else {
        return answered;
    };
    for round in 0u64.. {
        for k in 1..=20u64 {
            let n = start + round * 20 + k;
            let mut cmd = modify(&thing, "/attributes/n", json!(n));
            cmd["headers"]["correlation-id"] = json!(format!("{thing}-{n}"));
            if unwaited {
                cmd["headers"]["requested-acks"] = json!([]);
            }
            if ws
                .stream
                .send(Message::text(cmd.to_string()))
                .await
                .is_err()
            {
                return answered;
            }
        }
        for _ in 0..20 {
            let Some(t) = ws.try_recv_text(WAIT).await else {
                return answered;
            };
            let r: serde_json::Value = serde_json::from_str(&t).unwrap();
            assert_eq!(r["status"], 204, "{r}");
            let cid = r["headers"]["correlation-id"].as_str().unwrap();
            let n: u64 = cid.rsplit('-').next().unwrap().parse().unwrap();
            answered.push((n, std::time::Instant::now()));
        }
    }
    answered
}

/// kill -9 of the real binary `cycles` times under mixed load (2 writers waiting for
/// durability, 2 not), each at a random moment; after every restart: every acknowledged write
/// is there, of the others at most the last flush interval is missing, revisions are gap-free
/// and the search index agrees with the twins.
fn crash_loop(store: &str, cycles: u32) -> Loop {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let conf = tmp.path().join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!("[store]\nbackend = \"{store}\"\nflush_interval_ms = {LOOP_INTERVAL_MS}\n"),
    )
    .unwrap();
    let args = ["--config", conf.to_str().unwrap()];
    let things: Vec<(String, bool)> = (0..4).map(|i| (format!("loop:t{i}"), i >= 2)).collect();
    let mut out = Loop::default();
    // per thing: highest acked (waited) / answered-with-time (unwaited) of the last cycle
    let mut last: Vec<Vec<(u64, std::time::Instant)>> = vec![Vec::new(); things.len()];
    let mut killed_at = std::time::Instant::now();
    for cycle in 0..=cycles {
        let mut srv = Server::start_in(&data, &args);
        let stored: Vec<u64> = block_on(async {
            let mut ws = srv.ws().await;
            let mut stored = Vec::new();
            for (i, (thing, unwaited)) in things.iter().enumerate() {
                if cycle == 0 {
                    let c = command(thing, "create", "/", Some(json!({"attributes": {"n": 0}})));
                    assert_eq!(ws.request(c).await["status"], 201);
                    stored.push(0);
                    continue;
                }
                let mut g = command(thing, "retrieve", "/", None);
                g["fields"] = json!("attributes/n,_revision");
                let r = ws.request(g).await;
                let n = r["value"]["attributes"]["n"].as_u64().unwrap();
                assert_eq!(
                    r["value"]["_revision"].as_u64(),
                    Some(n + 1),
                    "{store}: gap-free {thing}"
                );
                // the search index agrees with the twin
                let q = format!("/api/2/search/things?filter=eq(attributes/n,{n})&fields=thingId");
                let s = common::http::Http::new(srv.addr).get(&q).await.json();
                let ids: Vec<&str> = s["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|x| x["thingId"].as_str())
                    .collect();
                assert!(
                    ids.contains(&thing.as_str()),
                    "{store}: index of {thing} at {n}: {s}"
                );
                for &(a, at) in &last[i] {
                    if !unwaited {
                        out.acked += 1;
                        out.lost += u64::from(a > n);
                    } else {
                        out.unwaited += 1;
                        let old = killed_at.duration_since(at).as_millis() as u64
                            > LOOP_INTERVAL_MS + LOOP_SLACK_MS;
                        out.lost_older += u64::from(a > n && old);
                        out.lost_last_interval += u64::from(a > n && !old);
                    }
                }
                stored.push(n);
            }
            stored
        });
        assert_eq!((out.lost, out.lost_older), (0, 0), "{store}: {out:?}");
        if cycle == cycles {
            break;
        }
        let run_ms = 300 + (cycle as u64 * 7919) % 1500;
        let answered = block_on(async {
            let tasks: Vec<_> = things
                .iter()
                .zip(&stored)
                .map(|((t, unwaited), n)| smol::spawn(drive(srv.addr, t.clone(), *n, *unwaited)))
                .collect();
            smol::Timer::after(std::time::Duration::from_millis(run_ms)).await;
            srv.kill9();
            killed_at = std::time::Instant::now();
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await);
            }
            all
        });
        last = answered;
        out.cycles += 1;
    }
    eprintln!("CRASHLOOP store={store} {out:?}");
    out
}

#[test]
fn crash_loop_mixed_load_sled() {
    let n = std::env::var("EDGETWIN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let r = crash_loop("sled", n);
    assert!(r.acked > 0 && r.unwaited > 0, "{r:?}");
}

#[test]
fn crash_loop_mixed_load_redb() {
    let n = std::env::var("EDGETWIN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let r = crash_loop("redb", n);
    assert!(r.acked > 0 && r.unwaited > 0, "{r:?}");
}
