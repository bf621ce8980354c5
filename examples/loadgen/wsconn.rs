//! WebSocket client side of the generator: connect (with the dev user's Basic credentials),
//! drive one connection with pipelined commands (window and/or rate bound, frames batched into
//! one flush), record command->response latency, and run a subscriber that records
//! command->event latency from the correlation-id carried by each event.

use crate::stats::Samples;
use crate::workload::{sent_ns, status, Workload};
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use event_listener::Event;
use futures_lite::{future, StreamExt};
use futures_util::SinkExt;
use smol::net::TcpStream;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Opens `ws://addr/ws/2` as `ditto:ditto` (the echo server ignores the header).
pub async fn connect(addr: SocketAddr) -> Result<Ws, String> {
    let mut req = format!("ws://{addr}/ws/2")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "authorization",
        "Basic ZGl0dG86ZGl0dG8=".parse().map_err(|_| "header")?,
    );
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (ws, _) = async_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| format!("ws connect {addr}: {e}"))?;
    Ok(ws)
}

/// Timing of a run, shared by all connections. Times are ns since `epoch`.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub epoch: Instant,
    /// samples count from here (end of warm-up)
    pub from: u64,
    /// sending stops here
    pub until: u64,
    /// commands per second for this connection, 0 = as fast as the window allows
    pub rate: f64,
    /// most commands in flight on this connection
    pub window: usize,
}

impl Plan {
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    fn in_window(&self, ns: u64) -> bool {
        ns >= self.from && ns < self.until
    }
}

/// What one connection measured.
#[derive(Default, Debug)]
pub struct ConnResult {
    /// responses received inside the measuring window
    pub answered: u64,
    /// error responses (status >= 400) over the whole run
    pub errors: u64,
    /// command -> response latency of commands sent inside the window
    pub latency: Samples,
    /// commands still unanswered when the drain deadline passed
    pub lost: usize,
}

/// Drives one connection: sends `wl` frames until `plan.until`, then waits for the answers
/// (at most 10 s).
pub async fn drive(ws: Ws, mut wl: Workload, plan: Plan) -> Result<ConnResult, String> {
    let (mut tx, mut rx) = ws.split();
    let inflight = Arc::new(AtomicUsize::new(0));
    let done_sending = AtomicBool::new(false);
    let answered = Event::new();
    let finished = Event::new();
    let sender = async {
        let mut frame = String::new();
        let mut sent = 0u64;
        loop {
            let now = plan.now();
            if now >= plan.until {
                break;
            }
            let mut n = plan.window.saturating_sub(inflight.load(Ordering::Acquire));
            if plan.rate > 0.0 {
                let due = (now as f64 * plan.rate / 1e9) as u64;
                if sent >= due {
                    let next = ((sent + 1) as f64 * 1e9 / plan.rate) as u64;
                    smol::Timer::at(plan.at(next.min(plan.until))).await;
                    continue;
                }
                n = n.min((due - sent) as usize);
            }
            if n == 0 {
                let l = answered.listen();
                if inflight.load(Ordering::Acquire) >= plan.window {
                    let stop = async {
                        smol::Timer::at(plan.at(plan.until)).await;
                    };
                    future::or(l, stop).await;
                }
                continue;
            }
            for _ in 0..n.min(256) {
                wl.next_frame(plan.now(), &mut frame);
                inflight.fetch_add(1, Ordering::AcqRel);
                tx.feed(Message::text(frame.clone()))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                sent += 1;
            }
            tx.flush().await.map_err(|e| format!("flush: {e}"))?;
        }
        done_sending.store(true, Ordering::Release);
        finished.notify(usize::MAX);
        Ok::<_, String>(())
    };
    // LOADGEN_SLOW_US=N: print every response slower than N us with its send instant (stderr
    // `SLOW sent_ms=.. lat_ms=..`): tells whether a tail is a few long stalls or spread out
    let slow_ns = std::env::var("LOADGEN_SLOW_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|us| us * 1000);
    let receiver = async {
        let mut r = ConnResult::default();
        let deadline = plan.at(plan.until) + Duration::from_secs(10);
        loop {
            let finished = finished.listen();
            if done_sending.load(Ordering::Acquire) && inflight.load(Ordering::Acquire) == 0 {
                break;
            }
            let next = async { Some(rx.next().await) };
            let wake = async {
                future::or(finished, async {
                    smol::Timer::at(deadline).await;
                })
                .await;
                None
            };
            let msg = match future::or(next, wake).await {
                None if Instant::now() >= deadline => break,
                None => continue,
                Some(None) => return Err("server closed the connection".to_string()),
                Some(Some(m)) => m.map_err(|e| format!("recv: {e}"))?,
            };
            let Message::Text(t) = msg else { continue };
            let now = plan.now();
            if let Some(sent) = sent_ns(&t) {
                if plan.in_window(sent) {
                    let lat = now.saturating_sub(sent);
                    r.latency.0.push(lat);
                    if slow_ns.is_some_and(|s| lat > s) {
                        eprintln!(
                            "SLOW sent_ms={:.3} lat_ms={:.3}",
                            sent as f64 / 1e6,
                            lat as f64 / 1e6
                        );
                    }
                }
            }
            if plan.in_window(now) {
                r.answered += 1;
            }
            if status(&t).is_some_and(|s| s >= 400) {
                if r.errors == 0 {
                    eprintln!("first error response: {t}");
                }
                r.errors += 1;
            }
            inflight.fetch_sub(1, Ordering::AcqRel);
            answered.notify(1);
        }
        r.lost = inflight.load(Ordering::Acquire);
        Ok(r)
    };
    let (s, r) = future::zip(sender, receiver).await;
    s?;
    let r = r?;
    let _ = tx.close(None).await;
    Ok(r)
}

/// Sends every frame of `frames` pipelined (`window` in flight) and waits for all answers;
/// returns the number of error responses.
pub async fn send_all(ws: Ws, frames: Vec<String>, window: usize) -> Result<u64, String> {
    let (mut tx, mut rx) = ws.split();
    let total = frames.len();
    let mut it = frames.into_iter();
    let (mut sent, mut got, mut errors) = (0usize, 0usize, 0u64);
    while got < total {
        let mut batch = 0;
        while sent < total && sent - got < window {
            if let Some(f) = it.next() {
                tx.feed(Message::text(f))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
            }
            sent += 1;
            batch += 1;
        }
        if batch > 0 {
            tx.flush().await.map_err(|e| format!("flush: {e}"))?;
        }
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                if status(&t).is_some_and(|s| s >= 400) {
                    if errors == 0 {
                        eprintln!("first error response: {t}");
                    }
                    errors += 1;
                }
                got += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("recv: {e}")),
            None => return Err("server closed the connection".into()),
        }
    }
    let _ = tx.close(None).await;
    Ok(errors)
}

/// Subscribes to twin events of the benchmark namespace; returns once acknowledged.
pub async fn subscribe(addr: SocketAddr) -> Result<Ws, String> {
    let mut ws = connect(addr).await?;
    let start = format!("START-SEND-EVENTS?namespaces={}", crate::workload::NS);
    ws.send(Message::text(start))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == "START-SEND-EVENTS:ACK" => return Ok(ws),
            Some(Ok(_)) => {}
            _ => return Err("no START-SEND-EVENTS:ACK".into()),
        }
    }
}

/// What a subscriber measured.
#[derive(Default, Debug)]
pub struct EventsResult {
    /// command -> event latency of commands sent inside the window
    pub latency: Samples,
    /// the part of it after the server handled the command: event `timestamp` (the server's
    /// wall clock when it applied the command, ms) -> received here (ms resolution)
    pub after_handled: Samples,
    /// events received
    pub received: u64,
    /// the server closed the subscription first (a subscriber that cannot keep up: 1013)
    pub closed: bool,
}

/// The `timestamp` of an event frame, ms since the epoch.
fn event_millis(frame: &str) -> Option<i64> {
    const KEY: &str = r#""timestamp":""#;
    let start = frame.find(KEY)? + KEY.len();
    edgetwin::clock::parse_iso(&frame[start..start + frame[start..].find('"')?])
}

fn wall_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Receives events until `stop` resolves.
pub async fn receive_events(
    mut ws: Ws,
    plan: Plan,
    stop: impl std::future::Future<Output = ()>,
) -> EventsResult {
    let mut lat = Samples::default();
    let mut after = Samples::default();
    let mut n = 0u64;
    let mut closed = false;
    // LOADGEN_SLOW_US=N: every event slower than N us too (`SLOWEV sent_ms=.. lat_ms=..`)
    let slow_ns = std::env::var("LOADGEN_SLOW_US")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|us| us * 1000);
    let recv = async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Close(_) = msg {
                break;
            }
            let Message::Text(t) = msg else { continue };
            if !t.contains("/things/twin/events/") {
                continue;
            }
            n += 1;
            if let Some(sent) = sent_ns(&t) {
                if plan.in_window(sent) {
                    let l = plan.now().saturating_sub(sent);
                    lat.0.push(l);
                    if slow_ns.is_some_and(|s| l > s) {
                        eprintln!(
                            "SLOWEV sent_ms={:.3} lat_ms={:.3}",
                            sent as f64 / 1e6,
                            l as f64 / 1e6
                        );
                    }
                    if let Some(at) = event_millis(&t) {
                        after.0.push((wall_millis() - at).max(0) as u64 * 1_000_000);
                    }
                }
            }
        }
        closed = true;
    };
    future::or(recv, stop).await;
    EventsResult {
        latency: lat,
        after_handled: after,
        received: n,
        closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_timestamp_is_read_in_millis() {
        let ev = r#"{"topic":"bench/t1/things/twin/events/modified","headers":{"correlation-id":"c0.1.5"},"path":"/attributes/a0","value":"x","revision":2,"timestamp":"2021-01-18T09:42:12.345Z"}"#;
        assert_eq!(event_millis(ev), Some(1_610_962_932_345));
        assert_eq!(event_millis(r#"{"topic":"a"}"#), None);
    }
}
