//! The well-behaved part of the soak load, one thread per client, each until `stop`: WS command
//! clients (modify / retrieve / merge on 50 twins), WS event subscribers, HTTP CRUD (a fresh
//! connection per request), SSE streams that reconnect every minute, and MQTT telemetry
//! through mosquitto (homie preset). Everything counts into `Counters`.

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_lite::{future, StreamExt};
use serde_json::{json, Value};
use smol::net::TcpStream as AsyncTcp;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const AUTH: &str = "Basic ZGl0dG86ZGl0dG8=";

/// What the clients did (totals).
#[derive(Default)]
pub struct Counters {
    pub ws_cmds: AtomicU64,
    pub events: AtomicU64,
    pub http: AtomicU64,
    pub sse_events: AtomicU64,
    pub mqtt: AtomicU64,
    pub abuse: AtomicU64,
    pub reconnects: AtomicU64,
    pub errors: AtomicU64,
}

/// Shared by every client thread.
pub struct Ctx {
    pub addr: SocketAddr,
    pub stop: AtomicBool,
    pub n: Counters,
}

impl Ctx {
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    pub fn count(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Sleeps `d` unless stopping (checked every 100 ms).
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while self.running() && Instant::now() < until {
            std::thread::sleep(d.min(Duration::from_millis(100)));
        }
    }
}

type Ws = WebSocketStream<AsyncTcp>;

pub async fn ws_connect(addr: SocketAddr) -> Result<Ws, String> {
    let mut req = format!("ws://{addr}/ws/2")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut()
        .insert("authorization", AUTH.parse().map_err(|_| "header")?);
    let tcp = AsyncTcp::connect(addr).await.map_err(|e| e.to_string())?;
    let (ws, _) = async_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Next text frame within `wait` (`Ok(None)` on timeout, `Err` when the stream ended).
async fn next_text(ws: &mut Ws, wait: Duration) -> Result<Option<String>, ()> {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(Some(t.to_string())),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(()),
                Some(Ok(_)) => {}
            }
        }
    };
    future::or(next, async {
        smol::Timer::after(wait).await;
        Ok(None)
    })
    .await
}

/// Sends `cmd` and waits for the reply with its correlation-id; its status.
pub async fn request(ws: &mut Ws, cmd: Value) -> Result<u64, ()> {
    let cid = cmd["headers"]["correlation-id"].clone();
    ws.send(Message::text(cmd.to_string()))
        .await
        .map_err(|_| ())?;
    loop {
        let Some(t) = next_text(ws, Duration::from_secs(10)).await? else {
            return Err(());
        };
        let v: Value = serde_json::from_str(&t).map_err(|_| ())?;
        if v["headers"]["correlation-id"] == cid {
            return Ok(v["status"].as_u64().unwrap_or(0));
        }
    }
}

fn envelope(thing: &str, action: &str, path: &str, value: Value, cid: String) -> Value {
    let name = thing.trim_start_matches("soak:");
    let mut v = json!({"topic": format!("soak/{name}/things/twin/commands/{action}"),
        "headers": {"correlation-id": cid}, "path": path, "value": value});
    if action == "merge" {
        v["headers"]["content-type"] = "application/merge-patch+json".into();
    }
    if action == "retrieve" {
        v.as_object_mut().map(|o| o.remove("value"));
    }
    v
}

/// A WS command client: ~40 commands/s on twins `soak:t0..t49`, reconnecting on errors.
pub fn ws_commands(ctx: Arc<Ctx>, id: usize) {
    smol::block_on(async {
        let mut n: u64 = 0;
        while ctx.running() {
            let Ok(mut ws) = ws_connect(ctx.addr).await else {
                Ctx::count(&ctx.n.errors);
                smol::Timer::after(Duration::from_secs(1)).await;
                continue;
            };
            Ctx::count(&ctx.n.reconnects);
            while ctx.running() {
                n += 1;
                let thing = format!("soak:t{}", n % 50);
                let cid = format!("c{id}-{n}");
                let cmd = match n % 20 {
                    _ if n <= 50 => {
                        envelope(&thing, "modify", "/", json!({"attributes": {"n": n}}), cid)
                    }
                    0 => envelope(
                        &thing,
                        "merge",
                        "/attributes",
                        json!({"m": n, "s": "x".repeat(200)}),
                        cid,
                    ),
                    5 | 15 => envelope(&thing, "retrieve", "/", Value::Null, cid),
                    _ => envelope(&thing, "modify", "/attributes/n", json!(n), cid),
                };
                match request(&mut ws, cmd).await {
                    Ok(s) if s < 500 => Ctx::count(&ctx.n.ws_cmds),
                    Ok(_) => Ctx::count(&ctx.n.errors),
                    Err(()) => {
                        Ctx::count(&ctx.n.errors);
                        break;
                    }
                }
                smol::Timer::after(Duration::from_millis(25)).await;
            }
            let _ = ws.close(None).await;
        }
    });
}

/// A WS subscriber counting events (`START-SEND-EVENTS`, one of them with a filter).
pub fn ws_subscriber(ctx: Arc<Ctx>, filter: bool) {
    smol::block_on(async {
        while ctx.running() {
            let Ok(mut ws) = ws_connect(ctx.addr).await else {
                Ctx::count(&ctx.n.errors);
                smol::Timer::after(Duration::from_secs(1)).await;
                continue;
            };
            Ctx::count(&ctx.n.reconnects);
            let start = if filter {
                "START-SEND-EVENTS?namespaces=soak&filter=exists(attributes/n)"
            } else {
                "START-SEND-EVENTS?namespaces=soak"
            };
            if ws.send(Message::text(start)).await.is_err() {
                continue;
            }
            while ctx.running() {
                match next_text(&mut ws, Duration::from_secs(1)).await {
                    Ok(Some(t)) if t.contains("/events/") => Ctx::count(&ctx.n.events),
                    Ok(_) => {}
                    Err(()) => {
                        Ctx::count(&ctx.n.errors);
                        break;
                    }
                }
            }
            let _ = ws.close(None).await;
        }
    });
}

/// One HTTP request on a fresh connection; the status (0 if there was no answer).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let ct = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// HTTP CRUD: create, read, patch, delete `soak:h0..h19` and its implicit policy (deleting a
/// thing keeps its policy, as in Ditto, and a create with that policy id would fail), ~40/s.
pub fn http_crud(ctx: Arc<Ctx>) {
    let mut k = 0u64;
    while ctx.running() {
        k += 1;
        let p = format!("/api/2/things/soak:h{}", k % 20);
        let policy = format!("/api/2/policies/soak:h{}", k % 20);
        let steps: [(&str, &str, Option<Value>); 5] = [
            (
                "PUT",
                &p,
                Some(json!({"attributes": {"k": k, "pad": "y".repeat(500)}})),
            ),
            ("GET", &p, None),
            ("PATCH", &p, Some(json!({"attributes": {"k2": k}}))),
            ("DELETE", &p, None),
            ("DELETE", &policy, None),
        ];
        for (m, path, b) in steps {
            let status = http(ctx.addr, m, path, b.as_ref());
            if (200..300).contains(&status) {
                Ctx::count(&ctx.n.http);
            } else {
                Ctx::count(&ctx.n.errors);
            }
            ctx.pause(Duration::from_millis(25));
        }
    }
}

/// Opens an SSE stream on `path`; the connection after a 200 head.
pub fn sse_open(addr: SocketAddr, path: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\nAccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    head.starts_with(b"HTTP/1.1 200").then_some(s)
}

/// An SSE reader that reconnects every minute, counting `data:` frames.
pub fn sse_reader(ctx: Arc<Ctx>) {
    while ctx.running() {
        let Some(mut s) = sse_open(ctx.addr, "/api/2/things?namespaces=soak&fields=thingId") else {
            Ctx::count(&ctx.n.errors);
            ctx.pause(Duration::from_secs(1));
            continue;
        };
        Ctx::count(&ctx.n.reconnects);
        let until = Instant::now() + Duration::from_secs(60);
        let mut buf = vec![0u8; 16384];
        while ctx.running() && Instant::now() < until {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let c = buf[..n].windows(5).filter(|w| w == b"data:").count();
                    ctx.n.sse_events.fetch_add(c as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => break,
            }
        }
    }
}

/// MQTT telemetry: ~20 QoS 1 messages/s from 20 homie devices through mosquitto.
pub fn mqtt_telemetry(ctx: Arc<Ctx>, port: u16) {
    use rumqttc::{Client, MqttOptions, QoS};
    let mut o = MqttOptions::new("soak-devices", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (c, mut conn) = Client::new(o, 1000);
    let pump = std::thread::spawn(move || {
        for ev in conn.iter() {
            if ev.is_err() {
                return; // disconnected at the end (or the broker went away)
            }
        }
    });
    let mut i = 0u64;
    while ctx.running() {
        i += 1;
        let topic = format!("homie/dev{}/env/temp", i % 20);
        match c.publish(topic, QoS::AtLeastOnce, false, format!("{}.5", i % 40)) {
            Ok(()) => Ctx::count(&ctx.n.mqtt),
            Err(_) => Ctx::count(&ctx.n.errors),
        }
        ctx.pause(Duration::from_millis(50));
    }
    let _ = c.disconnect();
    let _ = pump.join();
}
