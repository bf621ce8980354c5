//! Bridge counters (served at `/status/mqtt`, summarized in `/status/health`) and the bounded
//! logging of bad input: at most one line per kind every 10 s, carrying the number of similar
//! lines suppressed since the last one (broker outages: `outage.rs`).

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Minimum time between two log lines of one kind.
pub const LOG_EVERY_MS: i64 = 10_000;

/// Kinds of rate-limited log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// bad payloads and topics
    Bad = 0,
    /// dropped messages (full queues)
    Dropped = 1,
    /// twin changes that failed
    Failed = 2,
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
    acked => "acked": "QoS 1 messages acknowledged after their change was durable",
    bad_payload => "badPayload": "payloads that are not JSON / not the expected type, or rejected by the twin",
    unknown_topic => "unknownTopic": "messages on topics no mapping matches (or invalid thing ids)",
    unknown_device => "unknownDevice": "telemetry of devices without twin, ignored by config",
    ignored => "ignored": "messages deliberately skipped (Homie $ attributes, unknown LWT states, repeats)",
    dropped => "dropped": "messages dropped: QoS 0 with the inbound queue full, or outgoing with the client queue full",
    published => "published": "messages published to devices (live, replies, commands)",
    connects => "connects": "successful connections to the broker",
    connection_errors => "connectionErrors": "failed connection attempts and lost connections",
    session_restarts => "sessionRestarts": "times the bridge's hub session overflowed and was reopened",
}

/// Shared bridge status.
#[derive(Debug, Default)]
pub struct Stats {
    /// counters
    pub c: Counters,
    connected: AtomicBool,
    subscribed: AtomicBool,
    gates: Mutex<[Gate; 3]>,
    last_error: Mutex<Option<String>>,
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Marks the broker connection up or down.
    pub fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// Marks the bridge's subscriptions confirmed (SUBACK, or a resumed session) or not.
    pub fn set_subscribed(&self, yes: bool) {
        self.subscribed.store(yes, Ordering::Relaxed);
    }

    /// True while connected to the broker.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
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
