//! MQTT bridge benchmark (not a test): telemetry -> twin -> WS event throughput and latency
//! through edgetwin next to mosquitto's own pub -> sub, measured in the same run on the same
//! broker (its own mosquitto; the release edgetwin next to this example). Usage and figures:
//! BENCHMARKS.md "MQTT bridge".

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/procs.rs"]
mod procs;
use procs::*;

struct Opts {
    rounds: usize,
    n: usize,
    samples: usize,
    store: String,
    inflight: u32,
}

fn opts() -> Opts {
    let mut o = Opts {
        rounds: 3,
        n: 20_000,
        samples: 1_000,
        store: "sled".into(),
        inflight: 20,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for w in args.chunks(2) {
        let v = w.get(1).map(String::as_str).unwrap_or("");
        match w[0].as_str() {
            "--n" => o.n = v.parse().unwrap_or(o.n),
            "--rounds" => o.rounds = v.parse().unwrap_or(o.rounds).max(1),
            "--samples" => o.samples = v.parse().unwrap_or(o.samples),
            "--store" => o.store = v.to_owned(),
            "--inflight" => o.inflight = v.parse().unwrap_or(o.inflight),
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    o
}

/// A blocking MQTT client whose incoming publishes arrive on a channel.
fn client(port: u16, id: &str, sub: Option<&str>) -> (Client, mpsc::Receiver<Vec<u8>>) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(100);
    let (c, mut conn) = Client::new(o, 10_000);
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    if let Some(f) = sub {
        c.subscribe(f, QoS::AtLeastOnce).expect("subscribe");
    } else {
        let _ = ready_tx.send(());
    }
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p.payload.to_vec()).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(_) => {}
                // the broker is stopped at the end of the run; a loss mid-run shows as
                // "only k of n arrived"
                Err(_) => return,
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("connected");
    (c, rx)
}

fn micros(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What one path measured over all rounds.
#[derive(Default)]
struct Phase {
    burst: Vec<f64>,
    seq: Vec<f64>,
    lat: Vec<u64>,
    other: Vec<f64>,
    cpu_us: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Busy CPU ticks of the whole machine (`/proc/stat`).
fn machine_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<u64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system (idle iowait) irq softirq steal
            Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?)
        })
        .unwrap_or(0)
}

/// Measures `f`, returning its value, the cores used by processes other than `ours` during
/// it, and the CPU ticks `ours[0]` used.
fn window<T>(ours: &[u32], f: impl FnOnce() -> T) -> (T, f64, u64) {
    let own = |pids: &[u32]| pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>();
    let (m0, o0, s0) = (machine_ticks(), own(ours), cpu_ticks(ours[0]));
    let t = Instant::now();
    let v = f();
    let secs = t.elapsed().as_secs_f64().max(1e-3);
    let (m1, o1, s1) = (machine_ticks(), own(ours), cpu_ticks(ours[0]));
    let other =
        (m1.saturating_sub(m0) as f64 - o1.saturating_sub(o0) as f64).max(0.0) / 100.0 / secs;
    (v, other, s1.saturating_sub(s0))
}

/// Publishes `n` messages as fast as the client takes them; `recv` returns the send time
/// stamp (µs since `base`) of each arrival. Returns msgs/s over first send .. last arrival.
fn burst(
    pubc: &Client,
    n: usize,
    topic: impl Fn(usize) -> String,
    payload: impl Fn(usize, u64) -> String,
    recv: &mut dyn FnMut() -> Option<u64>,
    base: Instant,
) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        pubc.publish(topic(i), QoS::AtLeastOnce, false, payload(i, micros(base)))
            .expect("publish");
    }
    for k in 0..n {
        if recv().is_none() {
            panic!("only {k} of {n} arrived");
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One message at a time: latency from publish to arrival.
fn sequential(
    pubc: &Client,
    samples: usize,
    topic: impl Fn(usize) -> String,
    payload: impl Fn(usize, u64) -> String,
    recv: &mut dyn FnMut() -> Option<u64>,
    base: Instant,
    lat: &mut Vec<u64>,
) -> f64 {
    let start = Instant::now();
    for i in 0..samples {
        pubc.publish(topic(i), QoS::AtLeastOnce, false, payload(i, micros(base)))
            .expect("publish");
        let sent = recv().expect("arrival");
        lat.push(micros(base).saturating_sub(sent));
    }
    samples as f64 / start.elapsed().as_secs_f64()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("http");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGl0dG86ZGl0dG8=\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn main() {
    let o = opts();
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let broker = {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777));
        let inflight = format!("max_inflight_messages {}\n", o.inflight);
        mosquitto(tmp.path(), port, &inflight).expect("mosquitto (apt-get install mosquitto)")
    };
    let base = Instant::now();
    let stamp = |_: usize, t: u64| format!("{{\"t\":{t}}}");
    println!(
        "== MQTT bridge benchmark: {} rounds of {} messages (burst) and {} one at a time, QoS 1, store {}, mosquitto max_inflight_messages {}",
        o.rounds, o.n, o.samples, o.store, o.inflight
    );
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    println!("load average at start: {}", loadavg());

    // baseline: mosquitto pub -> sub (QoS 1 both ways, same broker, same publisher)
    let (_sc, srx) = client(port, "bench-sub", Some("base/#"));
    let (pc, _) = client(port, "bench-pub", None);
    let mut recv_base = || {
        let p = srx.recv_timeout(Duration::from_secs(30)).ok()?;
        serde_json::from_slice::<Value>(&p).ok()?["t"].as_u64()
    };
    let btopic = |i: usize| format!("base/m{}", i % 10);

    // edgetwin: pub -> broker -> bridge -> twin (durable, then acked) -> WS event
    let exe = std::env::current_exe().expect("exe");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("edgetwin"))
        .filter(|p| p.exists())
        .expect("target/release/edgetwin (cargo build --release --bin edgetwin)");
    let conf = tmp.path().join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!(
            // the burst must not overflow the WS subscriber's queue (it would be closed)
            "store = \"{}\"\nlog_level = \"error\"\n[limits]\noutbound_queue = 100000\n[mqtt]\nclient_id = \"bench-{port}\"\n[[mqtt.mappings]]\ntopic = \"bench/{{thing}}\"\nfeature = \"v\"\npayload = \"properties\"\n",
            o.store
        ),
    )
    .expect("config");
    let (edge, addr) = spawn_edgetwin(
        Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&conf)
            .arg("--data")
            .arg(tmp.path().join("data"))
            .args(["--mqtt", &format!("mqtt://127.0.0.1:{port}")])
            .stderr(Stdio::null()),
    );
    let pid = edge.0.id();
    let t0 = Instant::now();
    while !http_get(addr, "/status/mqtt").contains("\"subscribed\":true") {
        assert!(t0.elapsed() < Duration::from_secs(20), "bridge not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let erx = ws_events(addr);
    let mut recv_edge = || erx.recv_timeout(Duration::from_secs(60)).ok();
    let etopic = |i: usize| format!("bench/m{}", i % 10);
    for i in 0..10 {
        // warm-up: creates the 10 twins
        pc.publish(etopic(i), QoS::AtLeastOnce, false, stamp(i, micros(base)))
            .expect("publish");
        let _ = recv_edge();
    }

    let me = std::process::id();
    let mosq = broker.0.id();
    let (mut b, mut e) = (Phase::default(), Phase::default());
    for _ in 0..o.rounds {
        let (r, other, _) = window(&[me, mosq], || {
            burst(&pc, o.n, btopic, stamp, &mut recv_base, base)
        });
        b.burst.push(r);
        b.other.push(other);
        let (r, other, _) = window(&[me, mosq], || {
            sequential(
                &pc,
                o.samples,
                btopic,
                stamp,
                &mut recv_base,
                base,
                &mut b.lat,
            )
        });
        b.seq.push(r);
        b.other.push(other);
        let (r, other, ticks) = window(&[pid, me, mosq], || {
            burst(&pc, o.n, etopic, stamp, &mut recv_edge, base)
        });
        e.burst.push(r);
        e.other.push(other);
        e.cpu_us.push(ticks as f64 * 10_000.0 / o.n as f64);
        let (r, other, _) = window(&[pid, me, mosq], || {
            sequential(
                &pc,
                o.samples,
                etopic,
                stamp,
                &mut recv_edge,
                base,
                &mut e.lat,
            )
        });
        e.seq.push(r);
        e.other.push(other);
    }
    b.lat.sort_unstable();
    e.lat.sort_unstable();
    let status = http_get(addr, "/status/mqtt");

    println!();
    println!("| path | burst msgs/s | one at a time msgs/s | p50 | p99 | max | other cores |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (bb, bs, eb, es) = (
        median(&b.burst),
        median(&b.seq),
        median(&e.burst),
        median(&e.seq),
    );
    println!(
        "| mosquitto pub -> sub | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} |",
        bb,
        bs,
        pct(&b.lat, 0.5),
        pct(&b.lat, 0.99),
        pct(&b.lat, 1.0),
        median(&b.other)
    );
    println!(
        "| edgetwin pub -> twin -> WS event | {:.0} (**{:.1} %**) | {:.0} ({:.1} %) | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} |",
        eb, 100.0 * eb / bb, es, 100.0 * es / bs,
        pct(&e.lat, 0.5), pct(&e.lat, 0.99), pct(&e.lat, 1.0), median(&e.other)
    );
    println!();
    println!(
        "burst rates per round: mosquitto {:?}, edgetwin {:?}",
        rounded(&b.burst),
        rounded(&e.burst)
    );
    println!(
        "edgetwin during the bursts: {:.1} µs CPU per message (median), RSS {} KiB after the run",
        median(&e.cpu_us),
        rss_kib(pid)
    );
    println!("bridge status: {status}");
    println!("load average at end: {}", loadavg());
}

fn rounded(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.round() as u64).collect()
}

/// A WS subscriber (`START-SEND-EVENTS`) on its own thread; yields the send stamp of each
/// merged event.
fn ws_events(addr: SocketAddr) -> mpsc::Receiver<u64> {
    let (etx, erx) = mpsc::channel::<u64>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        smol::block_on(async move {
            let mut req = format!("ws://{addr}/ws/2")
                .into_client_request()
                .expect("req");
            req.headers_mut().insert(
                "authorization",
                "Basic ZGl0dG86ZGl0dG8=".parse().expect("header"),
            );
            let tcp = smol::net::TcpStream::connect(addr).await.expect("tcp");
            let (mut ws, _) = async_tungstenite::client_async(req, tcp).await.expect("ws");
            ws.send(Message::text("START-SEND-EVENTS"))
                .await
                .expect("start");
            while let Some(m) = ws.next().await {
                let t = match m {
                    Ok(Message::Text(t)) => t,
                    Ok(Message::Close(c)) => {
                        eprintln!("ws closed: {c:?}");
                        return;
                    }
                    Ok(_) => continue,
                    Err(_) => return, // the server is stopped at the end of the run
                };
                if t.as_str() == "START-SEND-EVENTS:ACK" {
                    let _ = ready_tx.send(());
                    continue;
                }
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                    continue;
                };
                if v["topic"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("/events/merged"))
                {
                    if let Some(s) = v["value"]["v"]["properties"]["t"].as_u64() {
                        if etx.send(s).is_err() {
                            return;
                        }
                    }
                }
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("START-SEND-EVENTS:ACK");
    erx
}
