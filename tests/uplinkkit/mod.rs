//! Uplink test kit: TWO real edgetwin processes, one as the cloud (a second edgetwin speaks the
//! Ditto protocol the uplink uses and stands in for a cloud Ditto) on a fixed free port so it
//! can be killed and started again, one as the edge with an `[uplink]` section pointed at it
//! (directly or through `Proxy`, a TCP proxy that can stall without closing); helpers that
//! poll `/status/uplink` and things on either side.
#![allow(dead_code)]

use crate::common::http::Http;
use crate::common::mqtt::free_port;
use crate::common::Server;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a convergence may take in these tests before they fail.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// The edgetwin playing the cloud Ditto: dev user `ditto`/`ditto`, fixed port, own data dir.
pub struct Cloud {
    pub server: Option<Server>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Cloud {
    /// Starts a cloud with zero config (the dev user).
    pub fn start() -> Cloud {
        Cloud::start_with("")
    }

    /// Starts a cloud with `toml` as its config file.
    pub fn start_with(toml: &str) -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("cloud.toml");
        std::fs::write(&conf, toml).expect("cloud config");
        let mut c = Cloud {
            server: None,
            port: free_port(),
            extra: vec!["--config".into(), conf.to_string_lossy().into_owned()],
            dir,
        };
        c.start_again();
        c
    }

    /// Starts again (same port and data) after `kill9`.
    pub fn start_again(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut args: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        args.extend(["--listen", &listen]);
        self.server = Some(Server::start_in(&self.dir.path().join("data"), &args));
    }

    /// SIGKILL (the cloud is gone at once; the edge notices when its socket closes).
    pub fn kill9(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.kill9();
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The edge's `url` for this cloud.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/2", self.port)
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr())
    }
}

/// An edgetwin with an `[uplink]` section (and whatever else `toml` holds).
pub struct Edge {
    pub server: Server,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

/// The `[uplink]` section for a cloud URL, with short timeouts for tests.
pub fn uplink_toml(url: &str) -> String {
    format!(
        "[uplink]\nurl = \"{url}\"\nusername = \"ditto\"\npassword = \"ditto\"\nnamespaces = [\"edge\"]\n\
         gateway_id = \"edge:gateway\"\nrequest_timeout_secs = 3\nreconnect_max_secs = 2\n"
    )
}

impl Edge {
    /// Starts an edge with `toml` as its config file; `extra` are more arguments (`--mqtt`).
    pub fn start(toml: &str, extra: &[&str]) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("edge.toml"), toml).expect("edge config");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let server = Edge::launch(dir.path(), &extra);
        Edge { server, dir, extra }
    }

    fn launch(dir: &Path, extra: &[String]) -> Server {
        let conf = dir.join("edge.toml");
        let mut args = vec!["--config".to_owned(), conf.to_string_lossy().into_owned()];
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start_in(&dir.join("data"), &args)
    }

    /// SIGKILL and start again on the same data and config.
    pub fn kill_and_restart(&mut self) {
        self.server.kill9();
        self.server = Edge::launch(self.dir.path(), &self.extra);
    }

    /// The config file (to change it before `kill_and_restart`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("edge.toml")
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr())
    }

    /// `/status/uplink` (with `?thingId=` if given).
    pub async fn status(&self, thing: Option<&str>) -> Value {
        let path = match thing {
            Some(t) => format!("/status/uplink?thingId={t}"),
            None => "/status/uplink".into(),
        };
        self.http().get(&path).await.json()
    }

    /// Polls `/status/uplink` until `pred` holds (panics after `wait` with the last status).
    pub async fn wait_status(&self, wait: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let s = self.status(None).await;
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "uplink status never matched: {s}"
            );
            smol::Timer::after(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the uplink is connected.
    pub async fn wait_connected(&self) -> Value {
        self.wait_status(CONVERGE, |s| s["connected"] == true).await
    }

    /// Waits until connected with nothing pending, nothing in flight and the scan done.
    pub async fn wait_synced(&self, wait: Duration) -> Value {
        self.wait_status(wait, |s| {
            s["connected"] == true
                && s["pending"] == 0
                && s["inFlight"] == 0
                && s["scanning"] == false
        })
        .await
    }
}

/// Polls `GET /api/2/things/{id}` on `addr` until `pred` holds on the body (`Null` for 404);
/// panics after `wait` with the last body.
pub async fn wait_thing(
    addr: SocketAddr,
    id: &str,
    wait: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let http = Http::new(addr);
    let deadline = Instant::now() + wait;
    loop {
        let r = http.get(&format!("/api/2/things/{id}")).await;
        let v = if r.status == 200 {
            r.json()
        } else {
            Value::Null
        };
        if pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "thing {id} on {addr} never matched: {} {}",
            r.status,
            r.text()
        );
        smol::Timer::after(Duration::from_millis(50)).await;
    }
}

/// The revision of a thing as its server reports it (`_revision` field), `None` if absent.
pub async fn revision(addr: SocketAddr, id: &str) -> Option<u64> {
    let r = Http::new(addr)
        .get(&format!("/api/2/things/{id}?fields=_revision"))
        .await;
    (r.status == 200)
        .then(|| r.json()["_revision"].as_u64())
        .flatten()
}

/// A TCP proxy between the edge and the cloud that can stall: while stalled it keeps every
/// connection open but moves no byte (a middlebox or cloud that hangs without closing).
pub struct Proxy {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on a free port and forwards every connection to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (st, sp, cs) = (stalled.clone(), stop.clone(), conns.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(target) else {
                            continue;
                        };
                        for s in [&client, &server] {
                            if let Ok(c) = s.try_clone() {
                                cs.lock().unwrap().push(c);
                            }
                        }
                        pump(
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                            st.clone(),
                            sp.clone(),
                        );
                        pump(server, client, st.clone(), sp.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy {
            port,
            stalled,
            stop,
            conns,
        }
    }

    /// The edge's `url` through this proxy.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws/2", self.port)
    }

    /// Stops moving bytes (connections stay open).
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Moves bytes again.
    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Number of connections accepted so far (each counts its two sockets).
    pub fn connections(&self) -> usize {
        self.conns.lock().unwrap().len() / 2
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().iter() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Copies `from` -> `to` on a thread; while `stalled`, reads nothing (bytes pile up in the
/// kernel buffers until the sender's writes block).
fn pump(mut from: TcpStream, mut to: TcpStream, stalled: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = vec![0u8; 16 * 1024];
        while !stop.load(Ordering::Relaxed) {
            if stalled.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

/// Sends `cmds` on one WS session without waiting in between, then reads one answer per
/// command (events skipped); panics on an answer that is an error.
pub async fn pipeline(ws: &mut crate::common::Ws, cmds: &[Value]) {
    for c in cmds {
        ws.send(c).await;
    }
    let mut answered = 0;
    while answered < cmds.len() {
        let v = ws.recv().await;
        let topic = v["topic"].as_str().unwrap_or("");
        if topic.contains("/events/") {
            continue;
        }
        assert!(v["status"].as_u64().unwrap_or(500) < 400, "{v}");
        answered += 1;
    }
}

/// `thingId -> _revision` of `ids` on `addr` (retrieve multiple, 100 at a time).
pub async fn revisions(addr: SocketAddr, ids: &[String]) -> std::collections::HashMap<String, u64> {
    let http = Http::new(addr);
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(100) {
        let r = http
            .get(&format!(
                "/api/2/things?ids={}&fields=thingId,_revision",
                chunk.join(",")
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        for t in r.json().as_array().expect("array") {
            out.insert(
                t["thingId"].as_str().expect("id").to_owned(),
                t["_revision"].as_u64().expect("revision"),
            );
        }
    }
    out
}

/// The uplink's local subject (its default).
pub const UPLINK_SUBJECT: &str = "integration:edgetwin-uplink";

/// An inline policy for local things: the dev user owns them, the uplink may change them and
/// send them messages (what cloud changes and live commands need, docs/uplink.md).
pub fn policy_with_uplink() -> Value {
    let rw = serde_json::json!({"grant": ["READ", "WRITE"], "revoke": []});
    serde_json::json!({"entries": {
        "OWNER": {"subjects": {"nginx:ditto": {"type": "owner"}},
                  "resources": {"thing:/": rw, "policy:/": rw, "message:/": rw}},
        "UPLINK": {"subjects": {UPLINK_SUBJECT: {"type": "uplink"}},
                   "resources": {"thing:/": rw, "message:/": rw}}}})
}

/// A test CA and a certificate it signed for `localhost` / 127.0.0.1, made by `openssl` in
/// `dir`: `(ca.pem, cloud.pem, cloud.key)`, or why not (the test then prints SKIPPED).
pub fn certificates(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .map_err(|e| e.to_string())?;
    const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let steps = [
        format!("req -x509 {EC} -subj /CN=uplink-test-ca -days 2 -keyout ca.key -out ca.pem"),
        format!("req {EC} -subj /CN=localhost -keyout cloud.key -out cloud.csr"),
        "x509 -req -days 2 -CAcreateserial -in cloud.csr -CA ca.pem -CAkey ca.key \
         -out cloud.pem -extfile ext.cnf"
            .to_owned(),
    ];
    for args in steps {
        let out = std::process::Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl not available ({e}); scripts/test.sh installs it"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl {args} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok((
        dir.join("ca.pem"),
        dir.join("cloud.pem"),
        dir.join("cloud.key"),
    ))
}

/// A TLS endpoint in front of the cloud (the cloud Ditto's load balancer): accepts `wss://`
/// with the given certificate and forwards the plain bytes to `target`.
pub struct TlsFront {
    pub port: u16,
    _runner: std::thread::JoinHandle<()>,
    stop: async_channel::Sender<()>,
}

impl TlsFront {
    pub fn start(target: SocketAddr, crt: &Path, key: &Path) -> TlsFront {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(crt)
            .and_then(|it| it.collect::<Result<_, _>>())
            .expect("cert");
        let key = PrivateKeyDer::from_pem_file(key).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let runner = std::thread::spawn(move || {
            let ex = smol::LocalExecutor::new();
            let accept = async {
                let listener = smol::Async::new(listener).expect("async listener");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    ex.spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Ok(up) = smol::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let (r1, w1) = futures_lite::io::split(tls);
                        let (r2, w2) = (up.clone(), up);
                        let _ = futures_lite::future::or(
                            futures_lite::io::copy(r1, w2),
                            futures_lite::io::copy(r2, w1),
                        )
                        .await;
                    })
                    .detach();
                }
            };
            smol::block_on(ex.run(futures_lite::future::or(accept, async {
                let _ = stopped.recv().await;
            })));
        });
        TlsFront {
            port,
            _runner: runner,
            stop,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
    }
}
