//! MQTT test harness: a real mosquitto on a free port with its own persistence directory
//! (started, stopped, killed and restarted by PID), edgetwin started against it with a TOML
//! `[mqtt]` section, and a small rumqttc device client (QoS 1 publishes counted by PUBACK,
//! received messages collected per topic).

use super::Server;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The mosquitto binary (`scripts/test.sh` installs the Debian package).
fn mosquitto() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "mosquitto".into()
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A mosquitto broker owned by a test.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts mosquitto on a free port with persistence in a temp dir.
    pub fn start() -> Broker {
        Broker::start_on(free_port())
    }

    /// Starts mosquitto on `port`.
    pub fn start_on(port: u16) -> Broker {
        Broker::start_with(port, |_| String::new())
    }

    /// Starts mosquitto on `port` with more configuration (e.g. a TLS listener) made from the
    /// broker's directory.
    pub fn start_with(port: u16, extra: impl FnOnce(&Path) -> String) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        // mosquitto started as root drops to its own user: let it write its files here
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777));
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             autosave_interval 1\nmax_queued_messages 100000\nlog_dest file {}/mosquitto.log\n",
            dir.path().display(),
            dir.path().display()
        );
        let conf = conf + &extra(dir.path());
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("write conf");
        let mut b = Broker {
            port,
            child: None,
            dir,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let child = Command::new(mosquitto())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mosquitto (apt-get install mosquitto; scripts/test.sh does)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's directory (configuration, persistence, log, test certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// SIGTERM (mosquitto saves its persistence file) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    /// SIGKILL and wait.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port with the same persistence.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts again after `stop`/`kill9`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker still running");
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// edgetwin against a broker, with `toml` as its config file (an `[mqtt]` section, usually).
pub struct Edge {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub broker_url: String,
}

impl Edge {
    /// Starts edgetwin with a fresh data dir; `client_id` is set to something unique.
    pub fn start(broker_url: &str, toml: &str) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("edgetwin.toml");
        let toml = if toml.contains("[mqtt]") {
            toml.replacen(
                "[mqtt]",
                &format!("[mqtt]\nclient_id = \"edgetwin-test-{}\"", free_port()),
                1,
            )
        } else {
            format!(
                "{toml}\n[mqtt]\nclient_id = \"edgetwin-test-{}\"\n",
                free_port()
            )
        };
        std::fs::write(&conf, toml).expect("write config");
        let server = Edge::launch(dir.path(), broker_url);
        Edge {
            server,
            dir,
            broker_url: broker_url.to_owned(),
        }
    }

    fn launch(dir: &Path, url: &str) -> Server {
        let conf = dir.join("edgetwin.toml");
        let conf = conf.to_str().expect("utf-8 path");
        Server::start_in(&dir.join("data"), &["--config", conf, "--mqtt", url])
    }

    /// SIGKILL and start again on the same data and config (same client id: the broker
    /// resumes the persistent session).
    pub fn kill_and_restart(&mut self) {
        self.server.kill9();
        self.server = Edge::launch(self.dir.path(), &self.broker_url);
    }

    /// SIGKILL, replace the config by `toml` (an `[mqtt]` section; the client id is kept, so the
    /// broker resumes the session) and start again.
    pub fn reconfigure(&mut self, toml: &str) {
        self.server.kill9();
        let path = self.dir.path().join("edgetwin.toml");
        let old = std::fs::read_to_string(&path).expect("config");
        let id = old
            .lines()
            .find(|l| l.starts_with("client_id"))
            .expect("client_id line")
            .to_owned();
        let new = toml.replacen("[mqtt]", &format!("[mqtt]\n{id}"), 1);
        std::fs::write(&path, new).expect("write config");
        self.start_again();
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.server.kill9();
    }

    /// Starts again after `kill9`.
    pub fn start_again(&mut self) {
        self.server = Edge::launch(self.dir.path(), &self.broker_url);
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }
}

/// A test device / client on the broker.
pub struct Device {
    pub client: Client,
    rx: Receiver<(String, Vec<u8>)>,
    acked: Arc<AtomicUsize>,
    subacks: Arc<AtomicUsize>,
    connected: Arc<AtomicBool>,
}

impl Device {
    /// Connects with a clean session (reconnects on its own if the broker restarts).
    pub fn connect(port: u16, id: &str) -> Device {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut conn) = Client::new(o, 100_000);
        let (tx, rx) = std::sync::mpsc::channel();
        let acked = Arc::new(AtomicUsize::new(0));
        let subacks = Arc::new(AtomicUsize::new(0));
        let connected = Arc::new(AtomicBool::new(false));
        let (a, s, c) = (acked.clone(), subacks.clone(), connected.clone());
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        s.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => c.store(true, Ordering::SeqCst),
                    Ok(_) => {}
                    Err(_) => {
                        c.store(false, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        });
        let d = Device {
            client,
            rx,
            acked,
            subacks,
            connected,
        };
        d.wait_until("connected", || d.connected.load(Ordering::SeqCst));
        d
    }

    fn wait_until(&self, what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "device: not {what} in time");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Subscribes (QoS 1) and waits for the SUBACK.
    pub fn subscribe(&self, filter: &str) {
        let before = self.subacks.load(Ordering::SeqCst);
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .expect("subscribe");
        self.wait_until("subscribed", || {
            self.subacks.load(Ordering::SeqCst) > before
        });
    }

    /// Publishes at QoS 1 (does not wait).
    pub fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .expect("publish");
    }

    /// Publishes at QoS 0.
    pub fn publish0(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .expect("publish");
    }

    /// Publishes retained at QoS 1.
    pub fn publish_retained(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .expect("publish");
    }

    /// Publishes at QoS 1 and waits until the broker acknowledged it.
    pub fn publish_acked(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        let before = self.acked.load(Ordering::SeqCst);
        self.publish(topic, payload);
        self.wait_acked(before + 1);
    }

    /// Waits until `n` PUBACKs arrived in total.
    pub fn wait_acked(&self, n: usize) {
        self.wait_until("acked", || self.acked.load(Ordering::SeqCst) >= n);
    }

    /// PUBACKs so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    /// The next message on `topic` within `wait` (others are skipped).
    pub fn recv_on(&self, topic: &str, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, p)) if t == topic => return Some(p),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// The next message on `topic` as JSON (panics after 10 s).
    pub fn json_on(&self, topic: &str) -> Value {
        let p = self
            .recv_on(topic, super::WAIT)
            .unwrap_or_else(|| panic!("nothing on {topic}"));
        serde_json::from_slice(&p).unwrap_or_else(|e| {
            panic!("not JSON on {topic} ({e}): {}", String::from_utf8_lossy(&p))
        })
    }

    /// The next message on `topic` as text (panics after 10 s).
    pub fn text_on(&self, topic: &str) -> String {
        let p = self
            .recv_on(topic, super::WAIT)
            .unwrap_or_else(|| panic!("nothing on {topic}"));
        String::from_utf8_lossy(&p).into_owned()
    }
}

/// Polls `/status/mqtt` until `pred` holds (panics after 20 s with the last status).
pub async fn wait_status(addr: std::net::SocketAddr, pred: impl Fn(&Value) -> bool) -> Value {
    let http = super::http::Http::new(addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = http.get("/status/mqtt").await.json();
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "bridge status never matched: {s}"
        );
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

/// Waits until the bridge is connected and its subscriptions are confirmed.
pub async fn wait_ready(addr: std::net::SocketAddr) -> Value {
    wait_status(addr, |s| s["connected"] == true && s["subscribed"] == true).await
}

/// Polls `GET /api/2/things/{id}` (as `ditto`) until `pred` holds on the JSON body (panics
/// after 20 s with the last body).
pub async fn wait_thing(
    addr: std::net::SocketAddr,
    id: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let http = super::http::Http::new(addr);
    let deadline = Instant::now() + Duration::from_secs(20);
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
            "thing {id} never matched: {} {}",
            r.status,
            r.text()
        );
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}
