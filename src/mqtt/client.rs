//! The broker connection, the only place tokio runs: one OS thread drives rumqttc's `EventLoop`
//! on its own current-thread runtime, hands PUBLISH packets to the hub side over a bounded
//! channel (QoS 0 dropped when full, QoS 1 waits: the broker holds the rest), subscribes on a
//! new session and reconnects with exponential backoff. The rest talks to it via `AsyncClient`.

use super::config::{BrokerUrl, MqttConfig};
use super::outage::{Line, Outage};
use super::stats::{inc, Kind, Stats};
use async_channel::{Receiver, Sender, TrySendError};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, Request, Subscribe,
    SubscribeFilter,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// First wait after a failed connection; doubles up to `reconnect_max_secs`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The hub side's handle on the connection.
pub struct Link {
    /// publish / ack / disconnect
    pub client: AsyncClient,
    /// incoming PUBLISH packets, in arrival order
    pub inbound: Receiver<Publish>,
    /// set to end the connection thread
    pub stop: Arc<AtomicBool>,
}

fn options(cfg: &MqttConfig, broker: &BrokerUrl, max_packet: usize) -> Result<MqttOptions, String> {
    let mut o = MqttOptions::new(cfg.client_id.clone(), broker.host.clone(), broker.port);
    o.set_keep_alive(Duration::from_secs(cfg.keep_alive_secs.max(5)))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(max_packet, max_packet)
        .set_inflight(100);
    if let Some(u) = &cfg.username {
        o.set_credentials(u.clone(), cfg.password.clone().unwrap_or_default());
    }
    if broker.tls {
        o.set_transport(tls(cfg)?);
    }
    Ok(o)
}

#[cfg(feature = "mqtt-tls")]
fn tls(cfg: &MqttConfig) -> Result<rumqttc::Transport, String> {
    // ring is the one provider compiled in; installing it is idempotent across restarts.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let ca_path = cfg
        .ca_file
        .clone()
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let ca = read(&ca_path)?;
    let client_auth = match (&cfg.client_cert_file, &cfg.client_key_file) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    Ok(rumqttc::Transport::tls(ca, client_auth, None))
}

#[cfg(not(feature = "mqtt-tls"))]
fn tls(_cfg: &MqttConfig) -> Result<rumqttc::Transport, String> {
    Err("mqtts:// needs edgetwin built with `--features mqtt-tls`".into())
}

/// Connects (in the background) and starts the connection thread.
pub fn start(
    cfg: &MqttConfig,
    broker: &BrokerUrl,
    filters: Vec<String>,
    max_packet: usize,
    stats: Arc<Stats>,
) -> Result<Link, String> {
    let opts = options(cfg, broker, max_packet)?;
    let (client, eventloop) = AsyncClient::new(opts, cfg.queue);
    let (tx, inbound) = async_channel::bounded(cfg.queue);
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("mqtt runtime: {e}"))?;
    let conn = Conn {
        broker: broker.to_string(),
        outage: Outage::default(),
        eventloop,
        rt,
        tx,
        filters,
        stats,
        stop: stop.clone(),
        max_backoff: Duration::from_secs(cfg.reconnect_max_secs),
    };
    std::thread::Builder::new()
        .name("edgetwin-mqtt".into())
        .stack_size(crate::bounds::THREAD_STACK_BYTES)
        .spawn(move || conn.run())
        .map_err(|e| format!("mqtt thread: {e}"))?;
    Ok(Link {
        client,
        inbound,
        stop,
    })
}

struct Conn {
    /// `mqtt[s]://host:port`, for log lines
    broker: String,
    outage: Outage,
    eventloop: EventLoop,
    rt: tokio::runtime::Runtime,
    tx: Sender<Publish>,
    filters: Vec<String>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    max_backoff: Duration,
}

impl Conn {
    fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        let mut subscribed = false;
        while !self.stop.load(Ordering::Relaxed) {
            match self.rt.block_on(self.eventloop.poll()) {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = FIRST_BACKOFF;
                    self.stats.set_connected(true);
                    inc(&self.stats.c.connects);
                    match self.outage.connected(crate::clock::now_millis()) {
                        Some((attempts, secs)) => tracing::info!(
                            session_present = ack.session_present,
                            "mqtt: connected to {} after {attempts} failed attempts in {secs} s",
                            self.broker
                        ),
                        None => tracing::info!(
                            session_present = ack.session_present,
                            "mqtt: connected to {}",
                            self.broker
                        ),
                    }
                    // A resumed session keeps its subscriptions; a new one (or a new process,
                    // whose mappings may have changed) subscribes, ahead of queued requests.
                    if (!ack.session_present || !subscribed) && !self.filters.is_empty() {
                        let sub = Subscribe::new_many(
                            self.filters
                                .iter()
                                .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)),
                        );
                        self.eventloop.pending.push_front(Request::Subscribe(sub));
                        subscribed = true;
                        self.stats.set_subscribed(false);
                    } else {
                        self.stats.set_subscribed(true);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    inc(&self.stats.c.received);
                    Stats::stamp(&self.stats.last_received);
                    if p.qos == QoS::AtMostOnce {
                        if let Err(TrySendError::Full(p)) = self.tx.try_send(p) {
                            inc(&self.stats.c.dropped);
                            self.stats.warn(
                                Kind::Dropped,
                                format_args!(
                                    "inbound queue full: QoS 0 message on '{}' dropped",
                                    p.topic
                                ),
                            );
                        }
                    } else if self.tx.send_blocking(p).is_err() {
                        break; // the hub side is gone
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => self.stats.set_subscribed(true),
                Ok(Event::Incoming(Packet::Disconnect)) => self.stats.set_connected(false),
                Ok(_) => {}
                Err(e) => {
                    if self.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    self.stats.set_connected(false);
                    self.stats.set_subscribed(false);
                    inc(&self.stats.c.connection_errors);
                    self.stats.set_error(e.to_string());
                    self.log_failure(&e, backoff);
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
        self.stats.set_connected(false);
        tracing::info!("mqtt: connection thread ends");
    }

    /// Logs a failed attempt: the first of an outage at once, then one line per ten minutes
    /// (also kept in the connection view's log).
    fn log_failure(&mut self, e: &rumqttc::ConnectionError, backoff: Duration) {
        let b = &self.broker;
        let now = crate::clock::now_millis();
        let line = match self.outage.failed(now) {
            Some(Line::First { lost: false }) => format!(
                "no broker at {b} ({e}); the device bridge keeps retrying in the background \
                 while HTTP and WebSocket serve (`--mqtt none` or [mqtt] url = \"none\" turns it off)"
            ),
            Some(Line::First { lost: true }) => {
                format!("lost the broker at {b} ({e}); reconnecting in the background")
            }
            Some(Line::Still { attempts, minutes }) => {
                format!("still no broker at {b} after {attempts} attempts in {minutes} min ({e})")
            }
            None => return tracing::debug!("mqtt: broker at {b}: {e}; retrying in {backoff:?}"),
        };
        tracing::warn!("mqtt: {line}");
        self.stats.log(now, Kind::Broker, &line, false);
    }

    /// Sleeps in short slices so a stop request is seen quickly.
    fn sleep(&self, total: Duration) {
        let slice = Duration::from_millis(100);
        let mut left = total;
        while !left.is_zero() && !self.stop.load(Ordering::Relaxed) {
            let d = left.min(slice);
            std::thread::sleep(d);
            left = left.saturating_sub(d);
        }
    }
}
