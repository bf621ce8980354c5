//! `loadgen load`: one scenario against the echo baseline and edgetwin in the same run.
//! Connects N command connections (+ S event subscribers), runs warm-up then the measuring
//! window, and prints throughput, latency percentiles, server RSS and CPU, and the ratio
//! edgetwin / echo.

use crate::opts::Opts;
use crate::procs::{default_edgetwin_bin, Server, TempDir};
use crate::stats::{
    context_switches, cpu_time, format_latency, machine_busy, mib, rss_kib, run_delay, status_kib,
    Samples,
};
use crate::workload::{put_twin, Mix, Workload};
use crate::wsconn::{self, Plan};
use smol::Executor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One scenario.
#[derive(Clone)]
pub struct Scenario {
    pub label: String,
    pub conns: usize,
    pub window: usize,
    pub mix: Mix,
    pub mix_text: String,
    pub payload: usize,
    pub twins: u32,
    pub acks_none: bool,
    pub subscribers: usize,
    /// total commands/s over all connections, 0 = unbounded
    pub rate: f64,
    pub warmup: f64,
    pub secs: f64,
    pub client_threads: usize,
    /// modify every twin once before the run (`--touch-all`): the window then measures the
    /// steady state (twins written before), the touch pass itself the first modify of each twin
    pub touch_all: bool,
}

/// What one target did in a scenario.
pub struct Outcome {
    pub throughput: f64,
    pub latency: Samples,
    pub events: Samples,
    /// the part of `events` after the server applied the command (ms resolution)
    pub events_after_handled: Samples,
    pub events_received: u64,
    pub errors: u64,
    pub lost: usize,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// CPU used by everything else on the machine during the window (cores)
    pub other_cpu: f64,
    /// subscribers the server closed before the end (too slow: close code 1013)
    pub subscribers_closed: usize,
    /// server context switches per answered command in the window (hand-offs between threads)
    pub switches_per_cmd: f64,
    /// run-queue wait in the window, server and client threads (threads waiting for a CPU on
    /// average: 0.10 = 100 ms of waiting per second, summed over the process's threads)
    pub server_wait: f64,
    pub client_wait: f64,
}

impl Scenario {
    pub fn from_opts(o: &Opts) -> Result<Scenario, String> {
        let mix_text = o.get("mix", "modify=100".to_string())?;
        let acks = o.get("acks", "none".to_string())?;
        let acks_none = match acks.as_str() {
            "none" => true,
            "persisted" | "twin-persisted" => false,
            _ => return Err("--acks none|persisted".into()),
        };
        let s = Scenario {
            label: o.get("label", "run".to_string())?,
            conns: o.get("conns", 1)?,
            window: o.get("window", 64)?,
            mix: Mix::parse(&mix_text)?,
            mix_text,
            payload: o.get("payload", 16)?,
            twins: o.get("twins", 100)?,
            acks_none,
            subscribers: o.get("subscribers", 0)?,
            rate: o.get("rate", 0.0)?,
            warmup: o.get("warmup", 1.0)?,
            secs: o.get("secs", 5.0)?,
            client_threads: o.get("client-threads", 1)?,
            touch_all: o.get("touch-all", false)?,
        };
        if s.conns == 0 || s.window == 0 || s.secs <= 0.0 {
            return Err("--conns, --window and --secs must be positive".into());
        }
        Ok(s)
    }

    fn describe(&self) -> String {
        let rate = if self.rate > 0.0 {
            format!("{:.0} cmd/s", self.rate)
        } else {
            "unbounded".into()
        };
        format!(
            "{} conns x window {}, mix {}, payload {} B, {} twins{}, acks {}, {} subscribers, rate {}, {:.0}+{:.0} s",
            self.conns,
            self.window,
            self.mix_text,
            self.payload,
            self.twins,
            if self.touch_all {
                " (each modified once before)"
            } else {
                ""
            },
            if self.acks_none { "none" } else { "twin-persisted" },
            self.subscribers,
            rate,
            self.warmup,
            self.secs
        )
    }
}

/// Creates twins `0..n` over `conns` connections (pipelined, no durability wait).
pub async fn populate(addr: SocketAddr, n: u32, payload: usize, conns: u32) -> Result<(), String> {
    let conns = conns.clamp(1, n.max(1));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let frames: Vec<String> = (0..n)
            .filter(|k| k % conns == c)
            .map(|k| put_twin(k, &format!("setup.{k}"), payload))
            .collect();
        let ws = wsconn::connect(addr).await?;
        tasks.push(smol::spawn(wsconn::send_all(ws, frames, 256)));
    }
    for t in tasks {
        let errors = t.await?;
        if errors > 0 {
            return Err(format!("populate: {errors} error responses"));
        }
    }
    Ok(())
}

/// The first modify of every twin `0..n` (random order, `conns` connections of `window`
/// commands in flight, answers without waiting for the disk): what it cost (cmd/s, server CPU
/// us per command). After it a window measures twins that were written before (the steady
/// state); a window right after [`populate`] mostly measures first modifies at 10k+ twins,
/// which pay the history's deferred creation event and a policy read that later ones do not.
pub async fn touch_all(
    server: &Server,
    n: u32,
    payload: usize,
    conns: usize,
    window: usize,
) -> Result<(f64, f64), String> {
    let conns = conns.clamp(1, n.max(1) as usize);
    let mut order: Vec<u32> = (0..n).collect();
    fastrand::Rng::with_seed(21).shuffle(&mut order);
    let value = "y".repeat(payload);
    let mut frames: Vec<Vec<String>> = vec![Vec::new(); conns];
    for (i, k) in order.into_iter().enumerate() {
        frames[i % conns].push(format!(
            r#"{{"topic":"{}/t{k}/things/twin/commands/modify","headers":{{"correlation-id":"touch.{k}","requested-acks":[]}},"path":"/attributes/a0","value":"{value}"}}"#,
            crate::workload::NS
        ));
    }
    let mut wss = Vec::new();
    for _ in 0..conns {
        wss.push(wsconn::connect(server.addr).await?);
    }
    let (t0, c0) = (Instant::now(), cpu_time(server.pid));
    let tasks: Vec<_> = wss
        .into_iter()
        .zip(frames)
        .map(|(ws, f)| smol::spawn(wsconn::send_all(ws, f, window)))
        .collect();
    for t in tasks {
        let errors = t.await?;
        if errors > 0 {
            return Err(format!("touch-all: {errors} error responses"));
        }
    }
    let (secs, c1) = (t0.elapsed().as_secs_f64(), cpu_time(server.pid));
    let cpu = match (c0, c1) {
        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok((n as f64 / secs, cpu * 1e6 / f64::from(n.max(1))))
}

/// Runs the scenario against a server (subscribers only where `events` is true).
pub fn measure(sc: &Scenario, server: &Server, events: bool) -> Result<Outcome, String> {
    let ex = Arc::new(Executor::new());
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let helpers: Vec<_> = (1..sc.client_threads.max(1))
        .map(|_| {
            let (ex, stop) = (ex.clone(), stop_rx.clone());
            std::thread::spawn(move || smol::block_on(ex.run(stop.recv())))
        })
        .collect();
    let out = smol::block_on(ex.run(measure_on(&ex, sc, server, events)));
    drop(stop_tx);
    for h in helpers {
        let _ = h.join();
    }
    out
}

async fn measure_on(
    ex: &Arc<Executor<'static>>,
    sc: &Scenario,
    server: &Server,
    events: bool,
) -> Result<Outcome, String> {
    let mut conns = Vec::new();
    for _ in 0..sc.conns {
        conns.push(wsconn::connect(server.addr).await?);
    }
    let mut subs = Vec::new();
    for _ in 0..if events { sc.subscribers } else { 0 } {
        subs.push(wsconn::subscribe(server.addr).await?);
    }
    let plan = Plan {
        epoch: Instant::now(),
        from: (sc.warmup * 1e9) as u64,
        until: ((sc.warmup + sc.secs) * 1e9) as u64,
        rate: sc.rate / sc.conns as f64,
        window: sc.window,
    };
    if std::env::var_os("LOADGEN_SLOW_US").is_some() {
        // the epoch on the monotonic clock (to line the SLOW lines up with a `perf -k 1` trace)
        eprintln!(
            "EPOCH {:?} server_pid={} loadgen_pid={}",
            plan.epoch,
            server.pid,
            std::process::id()
        );
    }
    let (sub_stop_tx, sub_stop_rx) = async_channel::bounded::<()>(1);
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|ws| {
            let rx = sub_stop_rx.clone();
            ex.spawn(wsconn::receive_events(ws, plan, async move {
                let _ = rx.recv().await;
            }))
        })
        .collect();
    let pid = server.pid;
    let me = std::process::id();
    let cpu_probe = ex.spawn(async move {
        smol::Timer::at(plan.epoch + Duration::from_nanos(plan.from)).await;
        let (s0, c0, m0) = (cpu_time(pid), cpu_time(me), machine_busy());
        let x0 = context_switches(pid).unwrap_or(0);
        let (w0, v0) = (run_delay(pid), run_delay(me));
        smol::Timer::at(plan.epoch + Duration::from_nanos(plan.until)).await;
        let (s1, c1, m1) = (cpu_time(pid), cpu_time(me), machine_busy());
        let switches = context_switches(pid).unwrap_or(0).saturating_sub(x0);
        let (w1, v1) = (run_delay(pid), run_delay(me));
        let secs = (plan.until - plan.from) as f64 / 1e9;
        let d = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64() / secs,
            _ => f64::NAN,
        };
        let (server, client) = (d(s0, s1), d(c0, c1));
        let others = (d(m0, m1) - server - client).max(0.0);
        let waits = (d(w0, w1), d(v0, v1));
        (
            server,
            client,
            others,
            switches,
            rss_kib(pid).unwrap_or(0),
            waits,
        )
    });
    let drivers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let wl = Workload::new(i, sc.twins, sc.mix.clone(), sc.payload, sc.acks_none);
            ex.spawn(wsconn::drive(ws, wl, plan))
        })
        .collect();
    let mut o = Outcome {
        throughput: 0.0,
        latency: Samples::default(),
        events: Samples::default(),
        events_after_handled: Samples::default(),
        events_received: 0,
        errors: 0,
        lost: 0,
        rss_kib: 0,
        hwm_kib: 0,
        server_cpu: 0.0,
        client_cpu: 0.0,
        other_cpu: 0.0,
        subscribers_closed: 0,
        switches_per_cmd: 0.0,
        server_wait: 0.0,
        client_wait: 0.0,
    };
    let mut answered = 0;
    for d in drivers {
        let r = d.await?;
        answered += r.answered;
        o.errors += r.errors;
        o.lost += r.lost;
        o.latency.extend(r.latency);
    }
    o.throughput = answered as f64 / sc.secs;
    let switches;
    let waits;
    (
        o.server_cpu,
        o.client_cpu,
        o.other_cpu,
        switches,
        o.rss_kib,
        waits,
    ) = cpu_probe.await;
    (o.server_wait, o.client_wait) = waits;
    o.switches_per_cmd = switches as f64 / (answered as f64).max(1.0);
    // Events trail their responses by at most a commit; give them a moment.
    smol::Timer::after(Duration::from_millis(300)).await;
    drop(sub_stop_tx);
    for t in sub_tasks {
        let r = t.await;
        o.events.extend(r.latency);
        o.events_after_handled.extend(r.after_handled);
        o.events_received += r.received;
        o.subscribers_closed += usize::from(r.closed);
    }
    o.hwm_kib = status_kib(pid, "VmHWM").unwrap_or(0);
    Ok(o)
}

fn print(name: &str, sc: &Scenario, o: &mut Outcome) {
    let cmds = o.throughput;
    println!(
        "  [{name}] throughput {cmds:.0} cmd/s  errors {}  unanswered {}",
        o.errors, o.lost
    );
    println!(
        "  [{name}] cmd->response {}",
        format_latency(&mut o.latency)
    );
    if o.events_received > 0 || (name == "edgetwin" && sc.subscribers > 0) {
        println!(
            "  [{name}] cmd->event    {}  ({} events received{})",
            format_latency(&mut o.events),
            o.events_received,
            if o.subscribers_closed > 0 {
                format!(
                    ", {} subscribers closed by the server",
                    o.subscribers_closed
                )
            } else {
                String::new()
            }
        );
    }
    if !o.events_after_handled.0.is_empty() {
        println!(
            "  [{name}] of it after the server applied the command (event timestamp, ms resolution): {}",
            format_latency(&mut o.events_after_handled)
        );
    }
    let per_cmd = if cmds > 0.0 {
        o.server_cpu * 1e6 / cmds
    } else {
        f64::NAN
    };
    println!(
        "  [{name}] server rss {:.1} MiB (peak {:.1} MiB), cpu {:.2} cores = {per_cmd:.1} us/cmd, {:.3} context switches/cmd; client cpu {:.2} cores; other processes {:.2} cores; threads waiting for a CPU: server {:.3}, client {:.3}",
        mib(o.rss_kib),
        mib(o.hwm_kib),
        o.server_cpu,
        o.switches_per_cmd,
        o.client_cpu,
        o.other_cpu,
        o.server_wait,
        o.client_wait
    );
    let p = o.latency.percentiles().unwrap_or([f64::NAN; 3]);
    let e = o.events.percentiles().unwrap_or([f64::NAN; 3]);
    println!(
        "RESULT label={} target={name} tput={cmds:.0} p50_us={:.0} p99_us={:.0} p999_us={:.0} ev_p50_us={:.0} ev_p99_us={:.0} ev_p999_us={:.0} events={} subs_closed={} errors={} rss_kib={} hwm_kib={} server_cores={:.2} us_per_cmd={per_cmd:.1} switches_per_cmd={:.3} client_cores={:.2} other_cores={:.2} server_wait={:.3} client_wait={:.3}",
        sc.label, p[0], p[1], p[2], e[0], e[1], e[2], o.events_received, o.subscribers_closed, o.errors, o.rss_kib, o.hwm_kib, o.server_cpu, o.switches_per_cmd, o.client_cpu, o.other_cpu, o.server_wait, o.client_wait
    );
}

/// Runs `loadgen load`.
pub fn run(o: &Opts) -> Result<(), String> {
    let sc = Scenario::from_opts(o)?;
    let target = o.get("target", "both".to_string())?;
    let store = o.get("store", "sled".to_string())?;
    let threads: usize = o.get("server-threads", 0)?;
    let bin = o
        .opt("server-bin")
        .map(Into::into)
        .unwrap_or_else(default_edgetwin_bin);
    let data_base = o.opt("data-base").map(std::path::PathBuf::from);
    // settings appended to the server's config file, `;` between lines (A/B of a setting)
    let server_toml = o.get("server-toml", String::new())?.replace(';', "\n");
    let external = match (o.opt("addr"), o.opt("pid")) {
        (Some(a), Some(p)) => Some(Server::external(
            a.parse().map_err(|e| format!("--addr: {e}"))?,
            p.parse().map_err(|e| format!("--pid: {e}"))?,
        )),
        (None, None) => None,
        _ => return Err("--addr and --pid go together".into()),
    };
    o.check_all_used()?;
    // the echo baseline runs as many executor threads as edgetwin (its default for 0)
    let server_threads = edgetwin::app::thread_count(threads);
    println!("== {}: {}", sc.label, sc.describe());
    let mut echo_tput = None;
    if target == "both" || target == "echo" {
        let echo = Server::echo(server_threads)?;
        let mut r = measure(&sc, &echo, false)?;
        print("echo", &sc, &mut r);
        echo_tput = Some(r.throughput);
    }
    if target == "both" || target == "edgetwin" {
        let tmp = TempDir::new(data_base.as_deref(), &sc.label)?;
        let own;
        let server = match &external {
            Some(s) => s,
            None => {
                own = Server::edgetwin_with(
                    &bin,
                    &tmp.0.join("data"),
                    &store,
                    threads,
                    sc.conns + sc.subscribers + 4,
                    &server_toml,
                )?;
                &own
            }
        };
        if !sc.mix.read_only() || sc.twins > 0 {
            smol::block_on(populate(server.addr, sc.twins, sc.payload, 2))?;
        }
        if sc.touch_all && sc.twins > 0 {
            let (tput, per_cmd) =
                smol::block_on(touch_all(server, sc.twins, sc.payload, sc.conns, sc.window))?;
            println!(
                "  [edgetwin] first modify of each of the {} twins (before the window, random order): {tput:.0} cmd/s, {per_cmd:.1} us/cmd server CPU",
                sc.twins
            );
            println!(
                "FIRST label={} target=edgetwin tput={tput:.0} us_per_cmd={per_cmd:.1}",
                sc.label
            );
        }
        let mut r = measure(&sc, server, true)?;
        print("edgetwin", &sc, &mut r);
        if let Some(e) = echo_tput.filter(|e| *e > 0.0) {
            let ratio = r.throughput / e;
            println!("  ratio edgetwin/echo throughput: {:.1} %", ratio * 100.0);
            println!("RATIO label={} ratio={ratio:.3}", sc.label);
        }
    }
    Ok(())
}
