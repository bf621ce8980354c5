//! Flash-wear benchmark (not a test): bytes the gateway writes to the disk per twin update,
//! from `/proc/<pid>/io` `write_bytes` of the release edgetwin next to this example, per
//! durability class (`waited`: default `twin-persisted`, each writer waits for its answer;
//! `interval`: `requested-acks: []`), per store, at several update rates and writer counts,
//! plus MQTT telemetry (QoS 0 and 1) through the bridge; printed next to the floor (bytes of
//! the change itself). Usage and figures: BENCHMARKS.md "Flash wear".

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/procs.rs"]
mod procs;
use procs::*;

struct Opts {
    stores: Vec<String>,
    rates: Vec<u32>,
    writers: Vec<u32>,
    classes: Vec<String>,
    mqtt_rates: Vec<u32>,
    secs: f64,
    twins: u32,
    /// extra lines for edgetwin's config file (e.g. `[store]` keys)
    config: String,
}

fn list<T: std::str::FromStr>(v: &str) -> Vec<T> {
    v.split(',').filter_map(|x| x.trim().parse().ok()).collect()
}

fn opts() -> Opts {
    let mut o = Opts {
        stores: vec!["redb".into(), "sled".into()],
        rates: vec![1, 50, 300],
        writers: vec![1, 4],
        classes: vec!["waited".into(), "interval".into()],
        mqtt_rates: vec![300],
        secs: 10.0,
        twins: 100,
        config: String::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for w in args.chunks(2) {
        let v = w.get(1).map(String::as_str).unwrap_or("");
        match w[0].as_str() {
            "--stores" => o.stores = list(v),
            "--rates" => o.rates = list(v),
            "--writers" => o.writers = list(v),
            "--classes" => o.classes = list(v),
            "--mqtt-rates" => o.mqtt_rates = list(v),
            "--secs" => o.secs = v.parse().unwrap_or(o.secs),
            "--twins" => o.twins = v.parse().unwrap_or(o.twins).max(1),
            "--config" => o.config = v.replace("\\n", "\n"),
            other => {
                eprintln!(
                    "unknown option {other}\nusage: flash_bench [--stores redb,sled] [--rates 1,50,300] \
                     [--writers 1,4] [--classes waited,interval] [--mqtt-rates 300] [--secs 10] \
                     [--twins 100] [--config 'TOML lines']"
                );
                std::process::exit(2);
            }
        }
    }
    o
}

/// Bytes this process has caused to be written to the storage layer (`write_bytes` minus
/// `cancelled_write_bytes`: dirty page cache pages dropped before writeback).
fn write_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    field("write_bytes:").saturating_sub(field("cancelled_write_bytes:"))
}

fn edgetwin_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(|d| d.join("edgetwin")))
        .filter(|p| p.exists())
        .expect("target/release/edgetwin (cargo build --release --bin edgetwin)")
}

fn start_edgetwin(
    dir: &Path,
    store: &str,
    mqtt_port: Option<u16>,
    extra: &str,
) -> (Proc, SocketAddr) {
    let conf = dir.join(format!("edgetwin-{store}.toml"));
    let mqtt = match mqtt_port {
        Some(p) => format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{p}\"\nclient_id = \"flash-{p}-{store}\"\n[[mqtt.mappings]]\ntopic = \"flash/{{thing}}\"\nfeature = \"v\"\npayload = \"properties\"\n"
        ),
        None => String::new(),
    };
    std::fs::write(&conf, format!("log_level = \"error\"\n{extra}\n{mqtt}")).expect("config");
    let mut cmd = Command::new(edgetwin_bin());
    cmd.args(["--listen", "127.0.0.1:0", "--store", store, "--config"])
        .arg(&conf)
        .arg("--data")
        .arg(dir.join(format!("data-{store}")));
    if mqtt_port.is_none() {
        cmd.args(["--mqtt", "none"]);
    }
    spawn_edgetwin(cmd.stderr(Stdio::inherit()))
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGl0dG86ZGl0dG8=\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

type Ws = async_tungstenite::WebSocketStream<smol::net::TcpStream>;

async fn ws_connect(addr: SocketAddr) -> Ws {
    let mut req = format!("ws://{addr}/ws/2")
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "authorization",
        "Basic ZGl0dG86ZGl0dG8=".parse().expect("header"),
    );
    let tcp = smol::net::TcpStream::connect(addr).await.expect("tcp");
    let _ = tcp.set_nodelay(true);
    async_tungstenite::client_async(req, tcp)
        .await
        .expect("ws")
        .0
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// The change of one update: `/attributes/n` set to a number (its bytes are the floor).
fn update(k: u32, n: u64, interval: bool) -> (String, usize) {
    let acks = if interval {
        r#","requested-acks":[]"#
    } else {
        ""
    };
    let value = n.to_string();
    let frame = format!(
        r#"{{"topic":"bench/t{k}/things/twin/commands/modify","headers":{{"correlation-id":"u{n}"{acks}}},"path":"/attributes/n","value":{value}}}"#
    );
    (frame, "/attributes/n".len() + value.len())
}

/// Creates twins `bench:t0..` of about 200 bytes each.
fn populate(addr: SocketAddr, twins: u32) {
    smol::block_on(async {
        let mut ws = ws_connect(addr).await;
        for k in 0..twins {
            let frame = format!(
                r#"{{"topic":"bench/t{k}/things/twin/commands/modify","headers":{{"correlation-id":"p{k}"}},"path":"/","value":{{"attributes":{{"n":0,"name":"sensor {k}","location":"building 1, floor 2, room {k}"}},"features":{{"v":{{"properties":{{"value":0}}}}}}}}}}"#
            );
            ws.send(Message::text(frame)).await.expect("send");
            let r = next_text(&mut ws).await;
            assert!(r.contains("\"status\":20"), "populate: {r}");
        }
    });
}

/// Sends `rate` updates/s spread over `writers` WS connections for `secs`; returns (updates
/// answered, floor bytes). `waited`: default acks (answered once durable), and each writer
/// sends its next update only after the answer to the previous one; else `requested-acks: []`.
fn ws_run(
    addr: SocketAddr,
    twins: u32,
    rate: u32,
    writers: u32,
    secs: f64,
    waited: bool,
) -> (u64, u64) {
    let floor = Arc::new(AtomicU64::new(0));
    let per_writer = rate as f64 / writers as f64;
    let counter = Arc::new(AtomicU64::new(1_000_000));
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (floor, counter) = (floor.clone(), counter.clone());
            std::thread::spawn(move || {
                smol::block_on(async move {
                    let ws = ws_connect(addr).await;
                    let (mut tx, mut rx) = ws.split();
                    let (ans_tx, ans_rx) = async_channel::unbounded::<()>();
                    let reader = smol::spawn(async move {
                        let mut n = 0u64;
                        while let Some(Ok(m)) = rx.next().await {
                            if let Message::Text(t) = m {
                                assert!(t.as_str().contains("\"status\":204"), "{t}");
                                n += 1;
                                let _ = ans_tx.send(()).await;
                            }
                        }
                        n
                    });
                    let start = Instant::now();
                    let mut rng = fastrand::Rng::with_seed(w as u64 + 7);
                    let mut sent = 0u64;
                    loop {
                        let at = sent as f64 / per_writer;
                        if at >= secs {
                            break;
                        }
                        smol::Timer::at(start + Duration::from_secs_f64(at)).await;
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let (frame, bytes) = update(rng.u32(0..twins), n, !waited);
                        futures_util::SinkExt::send(&mut tx, Message::text(frame))
                            .await
                            .expect("send");
                        floor.fetch_add(bytes as u64, Ordering::Relaxed);
                        sent += 1;
                        if waited {
                            ans_rx.recv().await.expect("answer");
                        }
                    }
                    // every answer in before the connection closes (at most 10 s)
                    let mut got = if waited { sent } else { 0 };
                    let until = Instant::now() + Duration::from_secs(10);
                    while got < sent {
                        let timeout = async {
                            smol::Timer::at(until).await;
                            Err(async_channel::RecvError)
                        };
                        if futures_lite::future::or(ans_rx.recv(), timeout)
                            .await
                            .is_err()
                        {
                            break;
                        }
                        got += 1;
                    }
                    let _ = futures_util::SinkExt::close(&mut tx).await;
                    drop(reader);
                    got
                })
            })
        })
        .collect();
    let answered = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    (answered, floor.load(Ordering::Relaxed))
}

/// Publishes `rate` telemetry messages/s (`{"value":n}`) round-robin to `twins` devices for
/// `secs`; returns (messages, floor bytes).
fn mqtt_run(port: u16, twins: u32, rate: u32, secs: f64, qos: QoS) -> (u64, u64) {
    let mut o = MqttOptions::new(
        format!("flash-pub-{}", fastrand::u32(..)),
        "127.0.0.1",
        port,
    );
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(100);
    let (c, mut conn) = Client::new(o, 10_000);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let net = std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("publisher connected");
    let start = Instant::now();
    let (mut n, mut floor) = (0u64, 0u64);
    loop {
        let at = n as f64 / rate as f64;
        if at >= secs {
            break;
        }
        if let Some(d) = Duration::from_secs_f64(at).checked_sub(start.elapsed()) {
            std::thread::sleep(d);
        }
        let payload = format!("{{\"value\":{}}}", 1_000_000 + n);
        floor += payload.len() as u64;
        c.publish(format!("flash/d{}", n % twins as u64), qos, false, payload)
            .expect("publish");
        n += 1;
    }
    let _ = c.disconnect();
    let _ = net.join();
    (n, floor)
}

/// Waits until the bridge has handled `want` messages in all (`/status/mqtt` counters).
fn wait_bridge(addr: SocketAddr, want: u64) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let s = http_get(addr, "/status/mqtt");
        let body = s.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let done = v["received"].as_u64().unwrap_or(0);
        if done >= want {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("bridge did not report {want} messages within 30 s");
}

struct Row {
    store: String,
    what: String,
    rate: u32,
    writers: u32,
    updates: u64,
    bytes: u64,
    floor: u64,
}

impl Row {
    fn per_update(&self) -> f64 {
        self.bytes as f64 / self.updates.max(1) as f64
    }
    fn print(&self) {
        let per = self.per_update();
        println!(
            "FLASH store={} class={} rate={} writers={} updates={} write_bytes={} per_update={:.0} floor={:.1} gb_per_day_at_50={:.2}",
            self.store,
            self.what,
            self.rate,
            self.writers,
            self.updates,
            self.bytes,
            per,
            self.floor as f64 / self.updates.max(1) as f64,
            per * 50.0 * 86_400.0 / 1e9
        );
    }
}

/// Bytes written during `f` and the settling time after it (the flush interval, so the last
/// interval's writes count), by the edgetwin process `pid`.
fn measure(pid: u32, settle: Duration, f: impl FnOnce() -> (u64, u64)) -> (u64, u64, u64) {
    let before = write_bytes(pid);
    let (updates, floor) = f();
    std::thread::sleep(settle);
    (updates, floor, write_bytes(pid).saturating_sub(before))
}

fn main() {
    let o = opts();
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let broker = if o.mqtt_rates.is_empty() {
        None
    } else {
        let b = mosquitto(tmp.path(), port, "");
        if b.is_none() {
            println!(
                "MQTT scenarios skipped: mosquitto is not installed (scripts/test.sh installs it)"
            );
        }
        b
    };
    let mqtt_port = broker.as_ref().map(|_| port);
    println!(
        "== flash wear: bytes written per update (/proc/<pid>/io write_bytes), {} twins, {:.0} s per scenario, disk {}",
        o.twins,
        o.secs,
        std::env::temp_dir().display()
    );
    // The settle time after each scenario covers the default flush interval (1 s).
    let settle = Duration::from_millis(1600);
    let mut rows = Vec::new();
    for store in &o.stores {
        let (edge, addr) = start_edgetwin(tmp.path(), store, mqtt_port, &o.config);
        let pid = edge.0.id();
        populate(addr, o.twins);
        if let Some(p) = mqtt_port {
            // the devices' twins are created by their first message
            let t = Instant::now();
            while !http_get(addr, "/status/mqtt").contains("\"subscribed\":true") {
                assert!(t.elapsed() < Duration::from_secs(20), "bridge not ready");
                std::thread::sleep(Duration::from_millis(20));
            }
            let (n, _) = mqtt_run(p, o.twins, 200, o.twins as f64 / 200.0, QoS::AtLeastOnce);
            wait_bridge(addr, n);
        }
        std::thread::sleep(Duration::from_secs(2));
        for class in &o.classes {
            let waited = class == "waited";
            for &writers in &o.writers {
                for &rate in &o.rates {
                    // at least 10 updates per scenario
                    let secs = o.secs.max(10.0 / rate as f64);
                    let (updates, floor, bytes) = measure(pid, settle, || {
                        ws_run(addr, o.twins, rate, writers, secs, waited)
                    });
                    let row = Row {
                        store: store.clone(),
                        what: class.clone(),
                        rate,
                        writers,
                        updates,
                        bytes,
                        floor,
                    };
                    row.print();
                    rows.push(row);
                }
            }
        }
        if let Some(p) = mqtt_port {
            let mut total = 0;
            for (name, qos) in [
                ("mqtt-qos0", QoS::AtMostOnce),
                ("mqtt-qos1", QoS::AtLeastOnce),
            ] {
                for &rate in &o.mqtt_rates {
                    let secs = o.secs.max(10.0 / rate as f64);
                    let (updates, floor, bytes) = measure(pid, settle, || {
                        let r = mqtt_run(p, o.twins, rate, secs, qos);
                        total += r.0;
                        wait_bridge(addr, total + o.twins as u64);
                        r
                    });
                    let row = Row {
                        store: store.clone(),
                        what: name.into(),
                        rate,
                        writers: 1,
                        updates,
                        bytes,
                        floor,
                    };
                    row.print();
                    rows.push(row);
                }
            }
        }
        drop(edge);
    }
    drop(broker);
    println!();
    println!("| store | class | updates/s | writers | bytes written per update | floor (change) | GB/day at 50 updates/s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.2} |",
            r.store,
            r.what,
            r.rate,
            r.writers,
            r.per_update(),
            r.floor as f64 / r.updates.max(1) as f64,
            r.per_update() * 50.0 * 86_400.0 / 1e9
        );
    }
}
