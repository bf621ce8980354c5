//! Uplink benchmarks (figures for BENCHMARKS.md), run by `scripts/uplink-bench.sh`: two real
//! edgetwin processes, one as the cloud and one as the edge box.
//! - `sync`: things/s the edge brings up after the cloud returns (N things changed offline),
//!   next to the rate of creating them while connected;
//! - `live`: round trip of a message answered by a device on the edge, sent directly to the edge
//!   vs. sent to the cloud (through the uplink), p50/p99 and the ratio;
//! - `rss`: the edge's RSS while the cloud is unreachable and things change continuously
//!   (a compressed run: U updates as fast as the edge takes them), sampled over the run.
//!
//! `cargo run --release --example uplinkbench -- [sync N | live K | rss THINGS UPDATES] [--bin PATH]`

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use base64::Engine;
use futures_lite::StreamExt;
use futures_util::SinkExt;
use serde_json::{json, Value};
use smol::net::TcpStream;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/procs.rs"]
mod procs;
use procs::*;

type Ws = async_tungstenite::WebSocketStream<TcpStream>;

struct Proc {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &str, port: u16, toml: &str, dir: Option<tempfile::TempDir>) -> Proc {
    let dir = dir.unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
    let conf = dir.path().join("c.toml");
    std::fs::write(&conf, toml).expect("config");
    let mut child = Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--mqtt", "none"])
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&conf)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn edgetwin");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut line).expect("listen line");
    std::thread::spawn(move || {
        let mut s = String::new();
        while out.read_line(&mut s).map(|n| n > 0).unwrap_or(false) {
            s.clear();
        }
    });
    let addr = line
        .trim()
        .trim_start_matches("edgetwin listening on ")
        .parse()
        .expect("address");
    Proc {
        child,
        addr,
        _dir: dir,
    }
}

fn kill(p: Proc) -> tempfile::TempDir {
    let mut p = p;
    let _ = p.child.kill();
    let _ = p.child.wait();
    let dir = tempfile::tempdir().expect("tempdir");
    let old = std::mem::replace(&mut p._dir, dir);
    drop(p);
    old
}

fn uplink(cloud_port: u16) -> String {
    format!(
        "[uplink]\nurl = \"ws://127.0.0.1:{cloud_port}/ws/2\"\nusername = \"ditto\"\npassword = \"ditto\"\n\
         namespaces = [\"bench\"]\nrequest_timeout_secs = 5\nreconnect_max_secs = 1\n"
    )
}

fn get(addr: SocketAddr, path: &str) -> Value {
    let auth = base64::engine::general_purpose::STANDARD.encode("ditto:ditto");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let json = body.split("\r\n\r\n").nth(1).unwrap_or("null");
    serde_json::from_str(json).unwrap_or(Value::Null)
}

fn status(edge: SocketAddr) -> Value {
    get(edge, "/status/uplink")
}

fn wait(what: &str, limit: Duration, f: impl Fn() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

fn synced(edge: SocketAddr) -> bool {
    let s = status(edge);
    s["connected"] == true && s["pending"] == 0 && s["inFlight"] == 0 && s["scanning"] == false
}

async fn ws(addr: SocketAddr) -> Ws {
    let mut req = format!("ws://{addr}/ws/2")
        .into_client_request()
        .expect("req");
    let auth = base64::engine::general_purpose::STANDARD.encode("ditto:ditto");
    req.headers_mut()
        .insert("authorization", format!("Basic {auth}").parse().expect("h"));
    let tcp = TcpStream::connect(addr).await.expect("tcp");
    async_tungstenite::client_async(req, tcp)
        .await
        .expect("ws")
        .0
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).expect("json"),
            Some(Ok(_)) => continue,
            other => panic!("ws ended: {other:?}"),
        }
    }
}

/// Sends all commands, then reads as many answers (events skipped).
async fn pipeline(ws: &mut Ws, cmds: Vec<Value>) {
    let n = cmds.len();
    for chunk in cmds.chunks(256) {
        for c in chunk {
            ws.feed(Message::text(c.to_string())).await.expect("feed");
        }
        ws.flush().await.expect("flush");
    }
    let mut got = 0;
    while got < n {
        let v = recv(ws).await;
        if v["status"].is_number() {
            got += 1;
        }
    }
}

fn cmd(id: usize, action: &str, value: Value) -> Value {
    let topic = format!("bench/t{id}/things/twin/commands/{action}");
    let mut v = json!({"topic": topic, "headers": {}, "path": "/", "value": value});
    if action == "merge" {
        v["headers"]["content-type"] = "application/merge-patch+json".into();
    }
    v
}

fn sync(bin: &str, n: usize) {
    let cport = free_port();
    let cloud = spawn(bin, cport, "", None);
    let edge = spawn(bin, 0, &uplink(cport), None);
    wait("connect", Duration::from_secs(30), || {
        status(edge.addr)["connected"] == true
    });
    let t0 = Instant::now();
    smol::block_on(async {
        let mut w = ws(edge.addr).await;
        pipeline(
            &mut w,
            (0..n)
                .map(|i| cmd(i, "create", json!({"attributes": {"v": 0}})))
                .collect(),
        )
        .await;
    });
    wait("initial sync", Duration::from_secs(600), || {
        synced(edge.addr)
    });
    let online = t0.elapsed();
    let cloud_dir = kill(cloud);
    wait("disconnect", Duration::from_secs(30), || {
        status(edge.addr)["connected"] == false
    });
    smol::block_on(async {
        let mut w = ws(edge.addr).await;
        pipeline(
            &mut w,
            (0..n)
                .map(|i| cmd(i, "merge", json!({"attributes": {"v": 1, "x": i}})))
                .collect(),
        )
        .await;
    });
    wait("pending", Duration::from_secs(60), || {
        status(edge.addr)["pending"] == n
    });
    let _cloud = spawn(bin, cport, "", Some(cloud_dir));
    let back = wait("resync", Duration::from_secs(600), || synced(edge.addr));
    let s = status(edge.addr);
    println!(
        "sync: {n} things created while connected, mirrored in {:.2} s = {:.0} things/s",
        online.as_secs_f64(),
        n as f64 / online.as_secs_f64()
    );
    println!("sync: {n} things changed offline, cloud back -> all confirmed in {:.2} s = {:.0} things/s (reconnect backoff <= 1 s included)", back.as_secs_f64(), n as f64 / back.as_secs_f64());
    println!("sync: counters {}", s["counters"]);
}

/// Round trips of `k` messages to `bench:dev` sent on `app`, answered by `dev`.
async fn round_trips(app: &mut Ws, dev: &mut Ws, k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let cid = format!("rt-{i}");
        let m = json!({"topic": "bench/dev/things/live/messages/ping", "path": "/inbox/messages/ping",
                       "headers": {"correlation-id": cid, "content-type": "application/json", "timeout": "10s"},
                       "value": i});
        let t0 = Instant::now();
        app.send(Message::text(m.to_string())).await.expect("send");
        loop {
            let got = recv(dev).await;
            if got["headers"]["correlation-id"] == cid.as_str() {
                let a = json!({"topic": got["topic"], "path": got["path"], "status": 200,
                               "headers": {"correlation-id": cid, "content-type": "application/json"}, "value": i});
                dev.send(Message::text(a.to_string()))
                    .await
                    .expect("answer");
                break;
            }
        }
        loop {
            let r = recv(app).await;
            if r["headers"]["correlation-id"] == cid.as_str() {
                assert_eq!(r["status"], 200, "{r}");
                break;
            }
        }
        out.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn live(bin: &str, k: usize) {
    let cport = free_port();
    let cloud = spawn(bin, cport, "", None);
    let edge = spawn(bin, 0, &uplink(cport), None);
    wait("connect", Duration::from_secs(30), || {
        status(edge.addr)["connected"] == true
    });
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let policy = json!({"entries": {
        "OWNER": {"subjects": {"nginx:ditto": {"type": "o"}}, "resources": {"thing:/": rw, "policy:/": rw, "message:/": rw}},
        "UPLINK": {"subjects": {"integration:edgetwin-uplink": {"type": "u"}}, "resources": {"thing:/": rw, "message:/": rw}}}});
    smol::block_on(async {
        let mut dev = ws(edge.addr).await;
        pipeline(
            &mut dev,
            vec![cmd(0, "create", json!({"_policy": policy}))]
                .into_iter()
                .map(|mut c| {
                    c["topic"] = "bench/dev/things/twin/commands/create".into();
                    c
                })
                .collect(),
        )
        .await;
        dev.send(Message::text("START-SEND-MESSAGES"))
            .await
            .expect("start");
        while !matches!(dev.next().await, Some(Ok(Message::Text(t))) if t.as_str() == "START-SEND-MESSAGES:ACK")
        {
        }
        wait("mirrored", Duration::from_secs(30), || {
            get(cloud.addr, "/api/2/things/bench:dev")["thingId"] == "bench:dev"
        });
        let mut direct_app = ws(edge.addr).await;
        let mut cloud_app = ws(cloud.addr).await;
        // warm-up
        round_trips(&mut direct_app, &mut dev, 20).await;
        round_trips(&mut cloud_app, &mut dev, 20).await;
        let d = round_trips(&mut direct_app, &mut dev, k).await;
        let c = round_trips(&mut cloud_app, &mut dev, k).await;
        println!("live: {k} message round trips answered by a WS device on the edge");
        println!(
            "live: direct to the edge   p50 {:.2} ms  p99 {:.2} ms",
            pct(&d, 0.5),
            pct(&d, 0.99)
        );
        println!(
            "live: through the cloud    p50 {:.2} ms  p99 {:.2} ms  (ratio p50 {:.2}x)",
            pct(&c, 0.5),
            pct(&c, 0.99),
            pct(&c, 0.5) / pct(&d, 0.5)
        );
    });
}

fn rss(bin: &str, things: usize, updates: usize, with_uplink: bool) {
    // the cloud's port is never opened: the edge keeps retrying (backoff <= 1 s); the
    // baseline run has no [uplink] at all
    let store = std::env::var("STORE").unwrap_or_else(|_| "sled".into());
    let toml = format!(
        "[store]\nbackend = \"{store}\"\n{}",
        if with_uplink {
            uplink(free_port())
        } else {
            String::new()
        }
    );
    let edge = spawn(bin, 0, &toml, None);
    println!(
        "rss: {} the uplink",
        if with_uplink {
            "with"
        } else {
            "baseline without"
        }
    );
    let pid = edge.child.id();
    smol::block_on(async {
        let mut w = ws(edge.addr).await;
        pipeline(
            &mut w,
            (0..things)
                .map(|i| cmd(i, "create", json!({"attributes": {"v": 0}})))
                .collect(),
        )
        .await;
        let start = rss_kib(pid);
        println!("rss: {things} things, cloud unreachable; RSS after creating them {start} KiB");
        let t0 = Instant::now();
        let rounds = 10;
        let per = updates / rounds;
        let mut last = start;
        for r in 1..=rounds {
            let cmds = (0..per)
                .map(|u| {
                    cmd(
                        u % things,
                        "merge",
                        json!({"attributes": {"v": r * per + u}}),
                    )
                })
                .collect();
            pipeline(&mut w, cmds).await;
            last = rss_kib(pid);
            let s = if with_uplink {
                status(edge.addr)
            } else {
                json!({})
            };
            println!(
                "rss: {:>7} updates  RSS {last:>6} KiB  pending {}  connectionErrors {}",
                r * per,
                s["pending"],
                s["counters"]["connectionErrors"]
            );
        }
        let secs = t0.elapsed().as_secs_f64();
        println!("rss: {updates} updates in {secs:.1} s ({:.0}/s; = {:.1} h of one update per thing per minute); RSS end/start = {:.2}", updates as f64 / secs, updates as f64 / things as f64 / 60.0, last as f64 / start.max(1) as f64);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bin = args
        .iter()
        .position(|a| a == "--bin")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "target/release/edgetwin".into());
    let num = |i: usize, d: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d);
    match args.first().map(String::as_str) {
        Some("sync") => sync(&bin, num(1, 2000)),
        Some("live") => live(&bin, num(1, 500)),
        Some("rss") => {
            rss(&bin, num(1, 1000), num(2, 200_000), false);
            rss(&bin, num(1, 1000), num(2, 200_000), true);
        }
        _ => {
            sync(&bin, 2000);
            live(&bin, 500);
            rss(&bin, 1000, 200_000, false);
            rss(&bin, 1000, 200_000, true);
        }
    }
}
