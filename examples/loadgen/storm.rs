//! `loadgen login-storm`: failed Basic logins against edgetwin (each with a new wrong password
//! for a configured user, `--concurrency` at a time) and the server's peak RSS (`VmHWM`) before
//! and after; then the time a known user with a wrong password and an unknown user take to be
//! refused, side by side (they should cost the same). `--runner qemu-aarch64` runs a cross-built
//! binary under emulation (the RSS is then qemu's, guest memory included).

use crate::opts::Opts;
use crate::procs::{default_edgetwin_bin, Server, TempDir};
use crate::stats::{mib, status_kib};
use base64::Engine;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// One `GET path` with Basic credentials; returns the status and the body.
fn get(addr: SocketAddr, path: &str, user: &str, pass: &str) -> (u16, String) {
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Basic {creds}\r\nconnection: close\r\n\r\n"
    );
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(600)))?;
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        Ok((status, body.unwrap_or_default()))
    };
    attempt().unwrap_or((0, String::new()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs `loadgen login-storm`.
pub fn run(o: &Opts) -> Result<(), String> {
    let attempts: usize = o.get("attempts", 2000)?;
    let concurrency: usize = o.get("concurrency", 100)?;
    let timing: usize = o.get("timing", 20)?;
    let auth = o.get("auth-toml", "max_failed_logins = 0".to_string())?;
    let runner = o.opt("runner");
    let bin = o
        .opt("server-bin")
        .map(Into::into)
        .unwrap_or_else(default_edgetwin_bin);
    let data_base = o.opt("data-base").map(std::path::PathBuf::from);
    o.check_all_used()?;
    let tmp = TempDir::new(data_base.as_deref(), "storm")?;
    let hash = edgetwin::auth::hash_password("right-password")?;
    let cfg = tmp.0.join("edgetwin.toml");
    let toml = format!(
        "[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n[auth]\n{}\n",
        auth.replace(';', "\n")
    );
    std::fs::write(&cfg, toml).map_err(|e| e.to_string())?;
    let mut cmd = match &runner {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.args([
        "run",
        "--listen",
        "127.0.0.1:0",
        "--mqtt",
        "none",
        "--config",
    ])
    .arg(&cfg)
    .arg("--data")
    .arg(tmp.0.join("data"));
    let s = Server::spawn(cmd, "edgetwin listening on ")?;
    let (addr, pid) = (s.addr, s.pid);
    let kib = |f: &str| status_kib(pid, f).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(1000));
    println!(
        "== login storm: {attempts} failed logins, {concurrency} at a time, against {}{} ([auth] {auth})",
        bin.display(),
        runner.as_deref().map(|r| format!(" under {r}")).unwrap_or_default()
    );
    let idle = kib("VmRSS");
    println!(
        "  idle: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        mib(idle),
        mib(kib("VmHWM"))
    );
    let t0 = Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut sent = 0;
    while sent < attempts {
        let n = concurrency.min(attempts - sent);
        let batch: Vec<_> = (sent..sent + n)
            .map(|i| {
                std::thread::spawn(move || {
                    get(addr, "/api/2/whoami", "alice", &format!("wrong-{i}")).0
                })
            })
            .collect();
        for h in batch {
            *statuses.entry(h.join().unwrap_or(0)).or_default() += 1;
        }
        sent += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    let peak = kib("VmHWM");
    println!(
        "  storm: {secs:.1} s, answers {statuses:?}; peak VmHWM {:.1} MiB (+{:.1} over idle), VmRSS after {:.1} MiB",
        mib(peak),
        mib(peak.saturating_sub(idle)),
        mib(kib("VmRSS"))
    );
    std::thread::sleep(Duration::from_millis(2000));
    println!("  2 s later: VmRSS {:.1} MiB", mib(kib("VmRSS")));
    let (st, body) = get(addr, "/status/health", "alice", "right-password");
    let auth_stats = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("auth").cloned());
    println!(
        "  /status/health ({st}): auth {}",
        auth_stats.map(|a| a.to_string()).unwrap_or("-".into())
    );
    if timing > 0 {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        let mut codes = BTreeMap::new();
        for i in 0..timing {
            for (user, out) in [("alice", &mut known), ("nobody", &mut unknown)] {
                let t = Instant::now();
                let (code, _) = get(addr, "/api/2/whoami", user, &format!("timing-{i}"));
                out.push(t.elapsed().as_secs_f64() * 1000.0);
                *codes.entry((user, code)).or_insert(0) += 1;
            }
        }
        let (k, u) = (median(known), median(unknown));
        println!(
            "  refusal time (median of {timing}, sequential): known user {k:.2} ms, unknown user {u:.2} ms, unknown/known {:.2}; answers {codes:?}",
            if k > 0.0 { u / k } else { 0.0 }
        );
    }
    let peak = kib("VmHWM");
    println!("  LOGIN_STORM_PEAK_MIB={:.1}", mib(peak));
    drop(s);
    Ok(())
}
