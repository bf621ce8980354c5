//! The processes of a soak run and what is measured on them: a mosquitto on a free port, the
//! release edgetwin (next to this example) configured for the run, RSS and open file
//! descriptors from /proc, and `/status/health`.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// mosquitto on `port`, or `None` if it is not installed.
pub fn mosquitto(dir: &Path, port: u16) -> Option<Proc> {
    let bin = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"),
    )
    .ok()?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t.elapsed() > Duration::from_secs(10) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(Proc(child))
}

/// The release edgetwin next to this example, with `toml` as its config and backend `store`.
pub fn edgetwin(dir: &Path, toml: &str, store: &str, mqtt: Option<u16>) -> (Proc, SocketAddr) {
    let exe = std::env::current_exe().expect("exe");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("edgetwin"))
        .filter(|p| p.exists())
        .expect("target/release/edgetwin (cargo build --release --bin edgetwin)");
    let conf = dir.join("edgetwin.toml");
    std::fs::write(&conf, toml).expect("config");
    let mqtt = match mqtt {
        Some(p) => format!("mqtt://127.0.0.1:{p}"),
        None => "none".into(),
    };
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&conf)
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--mqtt", &mqtt, "--store", store])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("edgetwin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listen line");
    let addr = line
        .trim()
        .strip_prefix("edgetwin listening on ")
        .and_then(|a| a.parse().ok())
        .expect("address");
    (Proc(child), addr)
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `/status/health` (`Null` if it could not be read).
pub fn health(addr: SocketAddr) -> Value {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Value::Null;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "GET /status/health HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ZGl0dG86ZGl0dG8=\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}
