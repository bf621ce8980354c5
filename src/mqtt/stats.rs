//! Bridge counters (served at `/status/mqtt`, summarized in `/status/health`) and the bounded
//! logging of bad input: at most one line per kind every 10 s, carrying the number of similar
//! lines suppressed since the last one (broker outages are paced by `outage.rs`).

use super::monitor::{LogEntry, Monitor};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// Minimum time between two log lines of one kind.
pub const LOG_EVERY_MS: i64 = 10_000;

/// Kinds of rate-limited log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// broker connection (log entries of the connection view; outages: `outage.rs`)
    Broker = 0,
    /// bad payloads and topics
    Bad = 1,
    /// dropped messages (full queues)
    Dropped = 2,
    /// twin changes that failed
    Failed = 3,
}

/// When the last line of a kind was logged and how many were suppressed since.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gate {
    last: Option<i64>,
    suppressed: u64,
}

impl Gate {
    /// `Some(suppressed)` if a line may be logged at `now` (ms).
    pub fn pass(&mut self, now: i64) -> Option<u64> {
        match self.last {
            Some(t) if now - t < LOG_EVERY_MS => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

macro_rules! counters {
    ($($field:ident => $json:literal : $doc:literal),* $(,)?) => {
        /// The counters.
        #[derive(Debug, Default)]
        pub struct Counters { $(#[doc = $doc] pub $field: AtomicU64,)* }
        impl Counters {
            fn to_json(&self) -> serde_json::Map<String, Value> {
                let mut m = serde_json::Map::new();
                $(m.insert($json.into(), self.$field.load(Ordering::Relaxed).into());)*
                m
            }
        }
    };
}

counters! {
    received => "received": "PUBLISH packets received",
    telemetry => "telemetry": "twin changes made from mapped telemetry and availability",
    ditto => "ditto": "Ditto Protocol messages handled (passthrough topic)",
    created => "created": "twins created for unknown devices",
    acked => "acked": "QoS 1 messages acknowledged (after their change was applied)",
    bad_payload => "badPayload": "payloads that are not JSON / not the expected type, or rejected by the twin",
    unknown_topic => "unknownTopic": "messages on topics no mapping matches (or invalid thing ids)",
    unknown_device => "unknownDevice": "telemetry of devices without twin, ignored by config",
    ignored => "ignored": "messages deliberately skipped (Homie $ attributes, unknown LWT states, repeats)",
    dropped => "dropped": "messages dropped: QoS 0 with the inbound queue full, or outgoing with the client queue full",
    dropped_outbound => "droppedOutbound": "outgoing messages dropped with the client queue full (part of dropped)",
    published => "published": "messages published to devices (live, replies, commands)",
    connects => "connects": "successful connections to the broker",
    connection_errors => "connectionErrors": "failed connection attempts and lost connections",
    session_restarts => "sessionRestarts": "times the bridge's hub session overflowed and was reopened",
}

/// Counters the connection metrics report over time windows (`super::connection`).
pub const WINDOWED: usize = 7;

/// Shared bridge status.
#[derive(Debug, Default)]
pub struct Stats {
    /// counters
    pub c: Counters,
    connected: AtomicBool,
    subscribed: AtomicBool,
    gates: Mutex<[Gate; 4]>,
    last_error: Mutex<Option<String>>,
    /// when the broker connection came up (epoch millis, 0 = down)
    pub connected_since: AtomicI64,
    /// when the last PUBLISH arrived / was published (epoch millis, 0 = never)
    pub last_received: AtomicI64,
    /// when the last message was published
    pub last_published: AtomicI64,
    /// windows and log entries of the connection view
    pub monitor: Mutex<Monitor<WINDOWED>>,
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Marks the broker connection up or down (a new connection is logged).
    pub fn set_connected(&self, up: bool) {
        let was = self.connected.swap(up, Ordering::Relaxed);
        match (was, up) {
            (false, true) => {
                let now = crate::clock::now_millis();
                self.connected_since.store(now, Ordering::Relaxed);
                self.log(now, Kind::Broker, "connected to the broker", true);
            }
            (true, false) => self.connected_since.store(0, Ordering::Relaxed),
            _ => {}
        }
    }

    /// Keeps a connection log entry of `kind`.
    pub(crate) fn log(&self, at: i64, kind: Kind, message: &str, ok: bool) {
        let (category, what) = match kind {
            Kind::Broker => ("connection", "other"),
            Kind::Bad => ("source", "mapped"),
            Kind::Dropped => ("connection", "dropped"),
            Kind::Failed => ("source", "other"),
        };
        self.monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .log(LogEntry {
                at,
                category,
                kind: what,
                level: if ok { "success" } else { "failure" },
                message: message.to_owned(),
            });
    }

    /// Stamps `at` with now (for `last_received` / `last_published`).
    pub fn stamp(at: &AtomicI64) {
        at.store(crate::clock::now_millis(), Ordering::Relaxed);
    }

    /// Marks the bridge's subscriptions confirmed (SUBACK, or a resumed session) or not.
    pub fn set_subscribed(&self, yes: bool) {
        self.subscribed.store(yes, Ordering::Relaxed);
    }

    /// True while connected to the broker.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// True while the bridge's subscriptions are confirmed.
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// The last broker error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Remembers the last broker error (shown in `/status/mqtt`).
    pub fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }

    /// Logs a warning of `kind`, at most once per `LOG_EVERY_MS`.
    pub fn warn(&self, kind: Kind, msg: std::fmt::Arguments<'_>) {
        let now = crate::clock::now_millis();
        let pass = self.gates.lock().unwrap_or_else(|e| e.into_inner())[kind as usize].pass(now);
        if let Some(suppressed) = pass {
            tracing::warn!(suppressed, "mqtt: {msg}");
            let text = match suppressed {
                0 => msg.to_string(),
                n => format!("{msg} ({n} similar suppressed)"),
            };
            self.log(now, kind, &text, false);
        }
    }

    /// The `/status/mqtt` document.
    pub fn to_json(&self, broker: &str) -> Value {
        let mut m = self.c.to_json();
        m.insert("broker".into(), broker.into());
        m.insert("connected".into(), self.connected().into());
        m.insert(
            "subscribed".into(),
            self.subscribed.load(Ordering::Relaxed).into(),
        );
        let err = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        m.insert("lastError".into(), json!(err));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_limits_and_counts_suppressed() {
        let mut g = Gate::default();
        assert_eq!(g.pass(0), Some(0));
        assert_eq!(g.pass(1), None);
        assert_eq!(g.pass(9_999), None);
        assert_eq!(g.pass(10_000), Some(2));
        assert_eq!(g.pass(10_001), None);
    }

    #[test]
    fn json_has_every_counter() {
        let s = Stats::default();
        inc(&s.c.bad_payload);
        let j = s.to_json("mqtt://x:1");
        assert_eq!(j["badPayload"], 1);
        assert_eq!(j["connected"], false);
        assert_eq!(j["received"], 0);
    }
}
