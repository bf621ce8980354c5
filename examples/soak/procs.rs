//! The processes of a soak run: the release edgetwin (next to this example) configured for the
//! run, and its `/status/health`; the rest (mosquitto, ports, /proc readings) is
//! `examples/support/procs.rs`.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[allow(dead_code)]
#[path = "../support/procs.rs"]
mod support;
pub use support::{fds, free_port, loadavg, mosquitto, rss_kib, spawn_edgetwin, Proc};

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
    spawn_edgetwin(
        Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&conf)
            .arg("--data")
            .arg(dir.join("data"))
            .args(["--mqtt", &mqtt, "--store", store])
            .stderr(Stdio::inherit()),
    )
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
