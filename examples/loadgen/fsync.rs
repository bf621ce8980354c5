//! `loadgen fsync`: what durability costs on this disk. Raw `write + fdatasync` latency of a
//! small append, and the latency of one store commit (submit one op, await `durable`) for each
//! backend: the floor under `twin-persisted` responses and under event delivery.

use crate::opts::Opts;
use crate::procs::TempDir;
use crate::stats::{format_latency, Samples};
use edgetwin::store::{BackendKind, Op, Store, Tree};
use std::io::Write;
use std::time::Instant;

/// Runs `loadgen fsync`.
pub fn run(o: &Opts) -> Result<(), String> {
    let n: usize = o.get("n", 300)?;
    let size: usize = o.get("size", 256)?;
    let base = o.opt("data-base").map(std::path::PathBuf::from);
    o.check_all_used()?;
    let tmp = TempDir::new(base.as_deref(), "fsync")?;
    println!("== fsync: {n} x {size} B on {}", tmp.0.display());
    let mut raw = Samples::default();
    let mut f = std::fs::File::create(tmp.0.join("f")).map_err(|e| e.to_string())?;
    let buf = vec![b'x'; size];
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&buf).map_err(|e| e.to_string())?;
        f.sync_data().map_err(|e| e.to_string())?;
        raw.0.push(t.elapsed().as_nanos() as u64);
    }
    println!("  write+fdatasync      {}", format_latency(&mut raw));
    line("raw", &mut raw);
    for kind in BackendKind::ALL {
        let dir = tmp.0.join(kind.as_str());
        let store = Store::open(kind, &dir, 8 << 20).map_err(|e| e.to_string())?;
        let mut s = Samples::default();
        for i in 0..n {
            let t = Instant::now();
            let seq = store.submit(vec![Op::put(
                Tree::Things,
                format!("bench:t{}", i % 100),
                buf.clone(),
            )]);
            smol::block_on(store.durable(seq)).map_err(|e| e.to_string())?;
            s.0.push(t.elapsed().as_nanos() as u64);
        }
        store.close().map_err(|e| e.to_string())?;
        println!("  {kind} commit (1 op) {}", format_latency(&mut s));
        line(kind.as_str(), &mut s);
    }
    Ok(())
}

fn line(what: &str, s: &mut Samples) {
    let p = s.percentiles().unwrap_or([f64::NAN; 3]);
    println!(
        "FSYNC what={what} p50_us={:.0} p99_us={:.0} p999_us={:.0}",
        p[0], p[1], p[2]
    );
}
