//! `loadgen footprint`: memory and start-up figures of edgetwin with a given number of twins
//! on a given backend: populate, restart (cold start = spawn until the first retrieve is
//! answered), idle RSS, and RSS per idle WebSocket connection.

use crate::load::populate;
use crate::opts::Opts;
use crate::procs::{default_edgetwin_bin, du, du_allocated, Server, TempDir};
use crate::stats::{mib, rss_kib};
use crate::wsconn;
use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use std::time::{Duration, Instant};

fn settle_rss(pid: u32) -> u64 {
    // Idle = nothing in flight for a while (the blocking pool's threads exit after 0.5 s idle).
    std::thread::sleep(Duration::from_millis(1500));
    rss_kib(pid).unwrap_or(0)
}

/// Runs `loadgen footprint`.
pub fn run(o: &Opts) -> Result<(), String> {
    let store = o.get("store", "sled".to_string())?;
    let twins: u32 = o.get("twins", 0)?;
    let payload: usize = o.get("payload", 16)?;
    let idle_conns: usize = o.get("idle-conns", 0)?;
    let threads: usize = o.get("server-threads", 0)?;
    let bin = o
        .opt("server-bin")
        .map(Into::into)
        .unwrap_or_else(default_edgetwin_bin);
    let data_base = o.opt("data-base").map(std::path::PathBuf::from);
    let breakdown: bool = o.get("breakdown", false)?;
    // extra config lines (`\n` for a newline), e.g. `[history]\nenabled = false`
    let config = o.get("config", String::new())?.replace("\\n", "\n");
    o.check_all_used()?;
    let tmp = TempDir::new(data_base.as_deref(), &format!("fp-{store}-{twins}"))?;
    let data = tmp.0.join("data");
    let label = format!("{store}_{twins}");
    println!("== footprint: {store}, {twins} twins (payload {payload} B)");
    let mut populate_secs = 0.0;
    let mut loaded_kib = 0;
    if twins > 0 {
        let mut s = Server::edgetwin_with(&bin, &data, &store, threads, idle_conns + 4, &config)?;
        let t = Instant::now();
        smol::block_on(populate(s.addr, twins, payload, 2))?;
        populate_secs = t.elapsed().as_secs_f64();
        loaded_kib = rss_kib(s.pid).unwrap_or(0);
        // Let the server end the closed sessions, so the stop is a clean shutdown.
        std::thread::sleep(Duration::from_millis(300));
        s.stop()?;
        println!(
            "  populate {twins} twins: {populate_secs:.2} s ({:.0} twins/s), rss after {:.1} MiB",
            twins as f64 / populate_secs,
            mib(loaded_kib)
        );
    }
    let t0 = Instant::now();
    let s = Server::edgetwin_with(&bin, &data, &store, threads, idle_conns + 4, &config)?;
    let first = smol::block_on(async {
        let mut ws = wsconn::connect(s.addr).await?;
        let cmd = r#"{"topic":"bench/t0/things/twin/commands/retrieve","headers":{"correlation-id":"cold"},"path":"/"}"#;
        ws.send(Message::text(cmd))
            .await
            .map_err(|e| e.to_string())?;
        let answer = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => break t.to_string(),
                Some(Ok(_)) => continue,
                _ => return Err("no answer to the first retrieve".to_string()),
            }
        };
        let want = if twins > 0 {
            "\"status\":200"
        } else {
            "\"status\":404"
        };
        if !answer.contains(want) {
            return Err(format!("unexpected first answer: {answer}"));
        }
        let _ = ws.close(None).await;
        Ok::<_, String>(t0.elapsed())
    })?;
    let listen_ms = s.startup.as_secs_f64() * 1e3;
    println!(
        "  cold start: listening after {:.1} ms, first retrieve answered after {:.1} ms",
        listen_ms,
        first.as_secs_f64() * 1e3
    );
    let idle = settle_rss(s.pid);
    println!("  idle rss {:.2} MiB", mib(idle));
    let mut per_conn = f64::NAN;
    if idle_conns > 0 {
        let conns = smol::block_on(async {
            let mut v = Vec::with_capacity(idle_conns);
            for _ in 0..idle_conns {
                v.push(wsconn::connect(s.addr).await?);
            }
            Ok::<_, String>(v)
        })?;
        let with = settle_rss(s.pid);
        per_conn = (with.saturating_sub(idle)) as f64 / idle_conns as f64;
        println!(
            "  {idle_conns} idle ws connections: rss {:.2} MiB = {per_conn:.1} KiB per connection",
            mib(with)
        );
        drop(conns);
    }
    drop(s);
    let (disk, alloc) = (du(&data), du_allocated(&data));
    println!(
        "  disk {:.1} MiB (file lengths), {:.1} MiB allocated on the disk",
        disk as f64 / 1048576.0,
        alloc as f64 / 1048576.0
    );
    if breakdown {
        crate::breakdown::print(&data, &store, twins, alloc)?;
    }
    println!(
        "FOOTPRINT label={label} store={store} twins={twins} populate_s={populate_secs:.2} loaded_rss_kib={loaded_kib} listen_ms={:.1} first_ms={:.1} idle_rss_kib={idle} idle_conns={idle_conns} kib_per_conn={per_conn:.1} disk_bytes={disk} disk_alloc_bytes={alloc}",
        listen_ms,
        first.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Runs `loadgen idle`: holds N idle connections to a running server for a while (for heap
/// profilers attached to that server).
pub fn idle(o: &Opts) -> Result<(), String> {
    let addr: std::net::SocketAddr = o
        .get("addr", "127.0.0.1:8080".to_string())?
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    let n: usize = o.get("conns", 1000)?;
    let hold: f64 = o.get("hold", 5.0)?;
    o.check_all_used()?;
    smol::block_on(async {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(wsconn::connect(addr).await?);
        }
        println!("{n} idle connections open, holding {hold} s");
        smol::Timer::after(Duration::from_secs_f64(hold)).await;
        Ok(())
    })
}
