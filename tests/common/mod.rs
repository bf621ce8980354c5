//! Black-box test harness: starts the real `edgetwin` binary on a free port with its data in
//! a temp dir, and talks to it over real WebSockets (async-tungstenite client on smol).
#![allow(dead_code)]

pub mod certs;
pub mod disk;
pub mod docs;
pub mod http;
pub mod mqtt;
pub mod raw_ws;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use base64::Engine;
use futures_lite::{future, StreamExt};
use serde_json::Value;
use smol::net::TcpStream;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Default wait for anything expected to arrive.
pub const WAIT: Duration = Duration::from_secs(10);

/// The command that runs edgetwin: this crate's binary, or `EDGETWIN_BIN` (a cross-built one)
/// started through `EDGETWIN_RUNNER` (e.g. `qemu-aarch64`) when those are set (cross/test.sh).
pub fn edgetwin_command() -> Command {
    let bin =
        std::env::var("EDGETWIN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_edgetwin").into());
    match std::env::var("EDGETWIN_RUNNER") {
        Ok(r) if !r.is_empty() => {
            let mut c = Command::new(r);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    }
}

/// A running edgetwin process.
pub struct Server {
    pub addr: SocketAddr,
    pub child: Child,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts edgetwin with a fresh temp data dir.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Server::start_in(&data, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts edgetwin on `data` with extra arguments.
    pub fn start_in(data: &Path, extra: &[&str]) -> Server {
        Server::spawn(edgetwin_command(), data, extra)
    }

    /// Starts `cmd` (from `edgetwin_command()`, e.g. with extra env) on `data`.
    pub fn spawn(mut cmd: Command, data: &Path, extra: &[&str]) -> Server {
        cmd.args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra);
        // no broker for tests that do not bring their own (tests/common/mqtt.rs)
        if !extra.contains(&"--mqtt") {
            cmd.args(["--mqtt", "none"]);
        }
        // stderr: inherited unless `cmd` redirects it
        cmd.stdout(Stdio::piped());
        let own_log = cmd.get_envs().any(|(k, _)| k == "RUST_LOG");
        if std::env::var("RUST_LOG").is_err() && !own_log {
            cmd.env("RUST_LOG", "error");
        }
        let mut child = cmd.spawn().expect("spawn edgetwin");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listen line");
        let addr = line
            .trim()
            .strip_prefix("edgetwin listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .expect("address");
        Server {
            addr,
            child,
            data: data.to_path_buf(),
            _tmp: None,
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }

    /// `ws://addr/ws/2` with the dev user.
    pub async fn ws(&self) -> Ws {
        Ws::connect(self.addr, Some(("ditto", "ditto")))
            .await
            .expect("ws connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stream under a test WebSocket: plain TCP, or TLS (tests/tls.rs).
pub trait WsIo: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send {}
impl<T: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send> WsIo for T {}

/// A test WebSocket client.
pub struct Ws {
    pub stream: WebSocketStream<Box<dyn WsIo>>,
    next_id: u64,
}

/// `Basic ...` header value.
pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

impl Ws {
    /// A session on an already upgraded stream (e.g. over TLS).
    pub fn from_stream(stream: WebSocketStream<Box<dyn WsIo>>) -> Ws {
        Ws { stream, next_id: 0 }
    }

    /// Connects (optionally with Basic credentials); Err carries the HTTP error.
    pub async fn connect(addr: SocketAddr, creds: Option<(&str, &str)>) -> Result<Ws, String> {
        let mut req = format!("ws://{addr}/ws/2")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some((u, p)) = creds {
            req.headers_mut()
                .insert("authorization", basic(u, p).parse().map_err(|_| "header")?);
        }
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (stream, _resp) = async_tungstenite::client_async(req, Box::new(tcp) as Box<dyn WsIo>)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Ws { stream, next_id: 0 })
    }

    /// Connects to `ws://addr{path_and_query}` with extra upgrade headers (auth tests); Err
    /// carries the HTTP error.
    pub async fn connect_with(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Ws, String> {
        let mut req = format!("ws://{addr}{path_and_query}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        for (k, v) in headers {
            let name: async_tungstenite::tungstenite::http::HeaderName =
                k.parse().map_err(|_| "header name")?;
            req.headers_mut()
                .insert(name, v.parse().map_err(|_| "header value")?);
        }
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (stream, _resp) = async_tungstenite::client_async(req, Box::new(tcp) as Box<dyn WsIo>)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Ws { stream, next_id: 0 })
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, t: &str) {
        self.stream
            .send(Message::text(t.to_owned()))
            .await
            .expect("send");
    }

    /// Sends a JSON envelope.
    pub async fn send(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Next text frame, or `None` on timeout/close.
    pub async fn try_recv_text(&mut self, wait: Duration) -> Option<String> {
        let next = async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                }
            }
        };
        future::or(next, async {
            smol::Timer::after(wait).await;
            None
        })
        .await
    }

    /// Next text frame (panics after `WAIT`).
    pub async fn recv_text(&mut self) -> String {
        self.try_recv_text(WAIT)
            .await
            .expect("expected a frame within the wait time")
    }

    /// Next frame as JSON.
    pub async fn recv(&mut self) -> Value {
        let t = self.recv_text().await;
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
    }

    /// Sends a command (adding a fresh correlation-id if it has none) and returns the frame with
    /// the same correlation-id, skipping others.
    pub async fn request(&mut self, mut cmd: Value) -> Value {
        let cid = match cmd["headers"]["correlation-id"].as_str() {
            Some(c) => c.to_owned(),
            None => {
                self.next_id += 1;
                let c = format!("t-{}", self.next_id);
                if !cmd["headers"].is_object() {
                    cmd["headers"] = serde_json::json!({});
                }
                cmd["headers"]["correlation-id"] = Value::String(c.clone());
                c
            }
        };
        self.send(&cmd).await;
        loop {
            let v = self.recv().await;
            if v["headers"]["correlation-id"] == cid.as_str()
                && !v["topic"].as_str().unwrap_or("").contains("/events/")
            {
                return v;
            }
        }
    }

    /// Sends a control message and waits for its `:ACK`.
    pub async fn control(&mut self, msg: &str) {
        self.send_text(msg).await;
        let name = msg.split('?').next().unwrap_or(msg);
        loop {
            let t = self.recv_text().await;
            if t == format!("{name}:ACK") {
                return;
            }
            assert!(!t.contains("/errors"), "control message {msg} failed: {t}");
        }
    }

    /// Waits for the next event frame (topic containing `/events/`).
    pub async fn next_event(&mut self, wait: Duration) -> Option<Value> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let t = self.try_recv_text(left).await?;
            let v: Value = serde_json::from_str(&t).ok()?;
            if v["topic"].as_str().unwrap_or("").contains("/events/") {
                return Some(v);
            }
        }
    }
}

/// Runs a future on smol (tests are plain `#[test]` functions).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    smol::block_on(f)
}

/// A modify command envelope.
pub fn modify(thing: &str, path: &str, value: Value) -> Value {
    let (ns, name) = thing.split_once(':').expect("ns:name");
    serde_json::json!({"topic": format!("{ns}/{name}/things/twin/commands/modify"), "headers": {}, "path": path, "value": value})
}

/// A command envelope of any action.
pub fn command(thing: &str, action: &str, path: &str, value: Option<Value>) -> Value {
    let (ns, name) = thing.split_once(':').expect("ns:name");
    let mut v = serde_json::json!({"topic": format!("{ns}/{name}/things/twin/commands/{action}"), "headers": {}, "path": path});
    if let Some(x) = value {
        v["value"] = x;
    }
    if action == "merge" {
        v["headers"]["content-type"] = "application/merge-patch+json".into();
    }
    v
}
