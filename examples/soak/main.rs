//! Soak test driver (`scripts/soak.sh`; not a test): runs mixed load against the release
//! edgetwin for a given time (WS commands and subscribers, HTTP CRUD, SSE, MQTT telemetry
//! through a real mosquitto, plus stalled readers, reconnect churn and bad frames), prints the
//! gateway's RSS and open file descriptors every sample interval, and a verdict: RSS flat
//! within 10 % after warm-up, fds back to the baseline once the load stopped.

mod abuse;
mod load;
mod procs;
#[allow(dead_code)]
#[path = "../../tests/common/raw_ws.rs"]
mod raw_ws;

use load::{Counters, Ctx};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Opts {
    minutes: f64,
    sample_secs: u64,
    warmup_minutes: f64,
    store: String,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        minutes: 30.0,
        sample_secs: 30,
        warmup_minutes: 5.0,
        store: "auto".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for w in args.chunks(2) {
        let v = w.get(1).map(String::as_str).unwrap_or("");
        let bad = || format!("bad value for {}: {v}", w[0]);
        match w[0].as_str() {
            "--minutes" => o.minutes = v.parse().map_err(|_| bad())?,
            "--sample-secs" => o.sample_secs = v.parse().map_err(|_| bad())?,
            "--warmup-minutes" => o.warmup_minutes = v.parse().map_err(|_| bad())?,
            "--store" => o.store = v.to_owned(),
            other => {
                return Err(format!(
                    "unknown option {other} (--minutes --sample-secs --warmup-minutes --store auto|redb|sled)"
                ))
            }
        }
    }
    o.warmup_minutes = o.warmup_minutes.min(o.minutes / 2.0);
    Ok(o)
}

fn rate(now: u64, before: u64, secs: f64) -> f64 {
    (now - before) as f64 / secs
}

fn snapshot(n: &Counters) -> [u64; 8] {
    [
        &n.ws_cmds,
        &n.events,
        &n.http,
        &n.sse_events,
        &n.mqtt,
        &n.abuse,
        &n.reconnects,
        &n.errors,
    ]
    .map(|c| c.load(Ordering::Relaxed))
}

fn main() {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = procs::free_port();
    let broker = procs::mosquitto(tmp.path(), port, "");
    if broker.is_none() {
        println!("MQTT: SKIPPED (mosquitto not installed: apt-get install mosquitto)");
    }
    let mqtt_port = broker.as_ref().map(|_| port);
    let toml = format!(
        "log_level = \"warn\"\n[mqtt]\nclient_id = \"soak-{port}\"\npresets = [\"homie\"]\nnamespace = \"soak\"\n"
    );
    let (mut edge, addr) = procs::edgetwin(tmp.path(), &toml, &o.store, mqtt_port);
    let pid = edge.0.id();
    let t = Instant::now();
    while mqtt_port.is_some()
        && procs::health(addr)["mqtt"] != "connected"
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let base_fds = procs::fds(pid);
    let base_rss = procs::rss_kib(pid);
    println!(
        "== soak: {} min against {addr} (pid {pid}, store {}), sample every {} s, warm-up {} min; load average at start {}",
        o.minutes, o.store, o.sample_secs, o.warmup_minutes, procs::loadavg()
    );
    println!(
        "baseline: rss {:.1} MiB, {base_fds} open fds",
        base_rss as f64 / 1024.0
    );
    let ctx = Arc::new(Ctx {
        addr,
        stop: AtomicBool::new(false),
        n: Counters::default(),
    });
    let mut threads = Vec::new();
    let spawn = |f: Box<dyn FnOnce() + Send>| std::thread::spawn(f);
    for id in 0..2 {
        let c = ctx.clone();
        threads.push(spawn(Box::new(move || load::ws_commands(c, id))));
    }
    for filter in [false, true] {
        let c = ctx.clone();
        threads.push(spawn(Box::new(move || load::ws_subscriber(c, filter))));
    }
    let c = ctx.clone();
    threads.push(spawn(Box::new(move || load::http_crud(c))));
    for _ in 0..2 {
        let c = ctx.clone();
        threads.push(spawn(Box::new(move || load::sse_reader(c))));
    }
    if let Some(p) = mqtt_port {
        let c = ctx.clone();
        threads.push(spawn(Box::new(move || load::mqtt_telemetry(c, p))));
    }
    let c = ctx.clone();
    threads.push(spawn(Box::new(move || abuse::run(c))));

    println!("   t_s  rss_mib  fds  sess  conns  ws_cmd/s  events/s  http/s  sse_ev/s  mqtt/s  abuse  reconn  errors  rejected  send_to  idle_to  load");
    let start = Instant::now();
    let total = Duration::from_secs_f64(o.minutes * 60.0);
    let warmup = Duration::from_secs_f64(o.warmup_minutes * 60.0);
    let every = Duration::from_secs(o.sample_secs.max(1));
    let mut before = snapshot(&ctx.n);
    let mut last = Instant::now();
    let mut after_warmup: Vec<u64> = Vec::new();
    let mut died = None;
    while start.elapsed() < total {
        std::thread::sleep(every.min(total.saturating_sub(start.elapsed())));
        if let Ok(Some(status)) = edge.0.try_wait() {
            // a crash, or a kill from outside (the machine may be shared): no verdict possible
            println!(
                "the gateway exited at t={} s: {status}",
                start.elapsed().as_secs()
            );
            died = Some(status);
            break;
        }
        let now = snapshot(&ctx.n);
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let rss = procs::rss_kib(pid);
        let h = procs::health(addr);
        let c = &h["connections"];
        let num = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        if start.elapsed() >= warmup {
            after_warmup.push(rss);
        }
        println!(
            "{:>6}  {:>7.1}  {:>3}  {:>4}  {:>5}  {:>8.0}  {:>8.0}  {:>6.0}  {:>8.0}  {:>6.0}  {:>5}  {:>6}  {:>6}  {:>8}  {:>7}  {:>7}  {}",
            start.elapsed().as_secs(),
            rss as f64 / 1024.0,
            procs::fds(pid),
            num(&h["sessions"]),
            num(&c["open"]),
            rate(now[0], before[0], secs),
            rate(now[1], before[1], secs),
            rate(now[2], before[2], secs),
            rate(now[3], before[3], secs),
            rate(now[4], before[4], secs),
            now[5],
            now[6],
            now[7],
            num(&c["rejected"]),
            num(&c["sendTimeouts"]),
            num(&c["idleTimeouts"]),
            procs::loadavg()
        );
        before = now;
    }
    ctx.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    // the gateway closes what is left (closing handshakes, SSE keep-alive notices)
    let t = Instant::now();
    let mut end_fds = procs::fds(pid);
    while end_fds > base_fds && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        end_fds = procs::fds(pid);
    }
    let h = procs::health(addr);
    let (min, max) = (
        after_warmup.iter().copied().min().unwrap_or(0),
        after_warmup.iter().copied().max().unwrap_or(0),
    );
    let spread = if min > 0 {
        (max - min) as f64 / min as f64 * 100.0
    } else {
        f64::NAN
    };
    let flat = spread <= 10.0;
    let fds_back = end_fds <= base_fds;
    let n = snapshot(&ctx.n);
    println!(
        "totals: ws commands {}, events {}, http {}, sse events {}, mqtt {}, abuse rounds {}, reconnects {}, client-side errors {}",
        n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]
    );
    println!("health at end: {h}");
    println!(
        "RSS after warm-up: min {:.1} MiB, max {:.1} MiB, spread {spread:.1} % -> {}",
        min as f64 / 1024.0,
        max as f64 / 1024.0,
        if flat { "flat (<= 10 %)" } else { "NOT flat" }
    );
    println!(
        "fds: baseline {base_fds}, {end_fds} after the load stopped (waited {:.0} s) -> {}",
        t.elapsed().as_secs_f64(),
        if fds_back {
            "back to baseline"
        } else {
            "NOT back"
        }
    );
    println!("load average at end: {}", procs::loadavg());
    let pass = flat && fds_back && died.is_none();
    println!(
        "RESULT soak minutes={} rss_min_mib={:.1} rss_max_mib={:.1} spread_pct={spread:.1} fds_base={base_fds} fds_end={end_fds} verdict={}",
        o.minutes,
        min as f64 / 1024.0,
        max as f64 / 1024.0,
        if pass { "PASS" } else { "FAIL" }
    );
    drop(edge);
    drop(broker);
    if !pass {
        std::process::exit(1);
    }
}
