//! CPU per twin command when the twin is not hot, counted in process: a hub over a real redb
//! (or sled) store in a temp dir (history on, as `edgetwin run` has it), N twins created as loadgen's
//! populate does, then a modify of one attribute of a random twin through the protocol door,
//! with a given twin cache budget. Prints the process's CPU time (all threads, the store's
//! writer included) per command for the first modify of each twin and for modifies after that.
//! Usage: cargo run --release --example cold_bench [-- TWINS [CACHE_MIB [COMMANDS [redb|sled]]]]
//! (issue 21)

#[path = "support/inproc.rs"]
mod inproc;

use edgetwin::store::BackendKind;

/// CPU time of this process (user + system), seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the command's closing parenthesis: utime and stime are the 12th and 13th
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), String> {
    let arg = |i: usize, d: usize| -> Result<usize, String> {
        std::env::args().nth(i).map_or(Ok(d), |a| {
            a.parse().map_err(|e| format!("argument {i}: {e}"))
        })
    };
    let (twins, cache_mib) = (arg(1, 100_000)?, arg(2, 48)?);
    let commands = arg(3, twins)?;
    let kind = match std::env::args().nth(4).as_deref() {
        Some("sled") => BackendKind::Sled,
        _ => BackendKind::Redb,
    };
    let g = inproc::InProc::open(kind, Some(cache_mib << 20))?;
    let send = |text: String| g.send(&text);
    let p = "x".repeat(16);
    for k in 0..twins {
        send(format!(
            r#"{{"topic":"loadgen/t{k}/things/twin/commands/modify","headers":{{"correlation-id":"s{k}","requested-acks":[]}},"path":"/","value":{{"attributes":{{"a0":"{p}"}},"features":{{"f":{{"properties":{{"p0":"{p}"}}}}}}}}}}"#
        ))?;
    }
    let mut rng = fastrand::Rng::with_seed(1);
    let modify = |k: usize, j: u32, i: usize| {
        format!(
            r#"{{"topic":"loadgen/t{k}/things/twin/commands/modify","headers":{{"correlation-id":"m{i}","requested-acks":[]}},"path":"/attributes/a{j}","value":"{p}"}}"#
        )
    };
    // the first modify of each twin (in a random order), then random ones
    let mut order: Vec<usize> = (0..twins).collect();
    rng.shuffle(&mut order);
    let first: Vec<String> = order
        .iter()
        .enumerate()
        .map(|(i, &k)| modify(k, rng.u32(0..8), i))
        .collect();
    let later: Vec<String> = (0..commands)
        .map(|i| modify(rng.usize(0..twins), rng.u32(0..8), twins + i))
        .collect();
    for (label, texts) in [("first", first), ("later", later)] {
        let n = texts.len();
        let t0 = cpu_secs();
        for t in texts {
            send(t)?;
        }
        let us = (cpu_secs() - t0) * 1e6 / n as f64;
        println!(
            "RESULT twins={twins} cache_mib={cache_mib} phase={label} commands={n} cpu_us_per_cmd={us:.1} rss_kib={}",
            rss_kib()
        );
    }
    g.store.close().map_err(|e| e.to_string())?;
    Ok(())
}
