//! The bridge as a read-only Ditto connection (type `mqtt`, id `mqtt-bridge`): the connection
//! document, its status, its metrics over Ditto's windows and its log entries, in the shapes of
//! Ditto's connectivity API (`/api/2/connections`), built from the bridge's real configuration,
//! broker state and counters.

use super::stats::{Counters, Stats, WINDOWED};
use crate::clock::format_millis;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The connection id of the bridge.
pub const CONNECTION_ID: &str = "mqtt-bridge";

/// Ditto's metric windows: name and length in ms.
const WINDOWS: [(&str, i64); 3] = [("PT1M", 60_000), ("PT1H", 3_600_000), ("PT24H", 86_400_000)];

// indices into `totals`
const CONSUMED: usize = 0;
const MAPPED: usize = 1;
const MAP_FAILED: usize = 2;
const DROPPED_IN: usize = 3;
const ACKED: usize = 4;
const PUBLISHED: usize = 5;
const PUBLISH_FAILED: usize = 6;

/// The windowed totals of the counters (sampled by [`sampler`]).
pub fn totals(c: &Counters) -> [u64; WINDOWED] {
    let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let dropped_out = v(&c.dropped_outbound);
    [
        v(&c.received),
        v(&c.telemetry) + v(&c.ditto),
        v(&c.bad_payload) + v(&c.unknown_topic),
        v(&c.ignored) + v(&c.unknown_device) + v(&c.dropped).saturating_sub(dropped_out),
        v(&c.acked),
        v(&c.published),
        dropped_out,
    ]
}

/// Samples the totals every `monitor::SAMPLE_EVERY_MS` (runs for the life of the process).
pub async fn sampler(stats: Arc<Stats>) {
    loop {
        let t = totals(&stats.c);
        stats
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(crate::clock::now_millis(), t);
        let every = super::monitor::SAMPLE_EVERY_MS as u64;
        smol::Timer::after(std::time::Duration::from_millis(every)).await;
    }
}

/// What the connection document says about the bridge (fixed at start).
#[derive(Debug, Clone)]
pub struct View {
    /// `tcp://host:port` or `ssl://host:port` (Ditto's MQTT URI schemes; no credentials)
    pub uri: String,
    /// MQTT client id
    pub client_id: String,
    /// the subject of everything arriving over MQTT
    pub subject: String,
    /// MQTT keep-alive, seconds
    pub keep_alive_secs: u64,
    /// subscription filters
    pub sources: Vec<String>,
    /// the live topic template and the mappings' command templates
    pub targets: Vec<(String, Vec<&'static str>)>,
}

impl View {
    /// The connection document (`GET /api/2/connections/mqtt-bridge`).
    pub fn connection(&self) -> Value {
        let auth = json!([self.subject]);
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|(address, topics)| {
                json!({"address": address, "topics": topics, "qos": 1,
                       "authorizationContext": auth, "headerMapping": {}})
            })
            .collect();
        json!({
            "id": CONNECTION_ID,
            "name": "MQTT device bridge",
            "connectionType": "mqtt",
            "connectionStatus": "open",
            "uri": self.uri,
            "sources": [{"addresses": self.sources, "consumerCount": 1, "qos": 1,
                         "authorizationContext": auth, "headerMapping": {}}],
            "targets": targets,
            "clientCount": 1,
            "failoverEnabled": true,
            "validateCertificates": true,
            "processorPoolSize": 1,
            "specificConfig": {"clientId": self.client_id,
                               "keepAlive": format!("{}s", self.keep_alive_secs),
                               "cleanSession": "false"},
            "tags": ["edgetwin", "read-only"]
        })
    }

    /// The status (`.../status`): the broker connection and subscriptions as they are now.
    pub fn status(&self, stats: &Stats, subscribed: bool) -> Value {
        let connected = stats.connected();
        let errors = stats.c.connection_errors.load(Ordering::Relaxed);
        let since = stats.connected_since.load(Ordering::Relaxed);
        let (live, recovery) = match (connected, errors) {
            (true, _) => ("open", "succeeded"),
            (false, 0) => ("closed", "unknown"),
            (false, _) => ("failed", "ongoing"),
        };
        let details = if connected {
            format!("Connected to {}.", self.uri)
        } else {
            match stats.last_error() {
                Some(e) => format!("Connecting to {} failed: {e}; retrying.", self.uri),
                None => format!("Connecting to {}.", self.uri),
            }
        };
        let resource = |kind: &str, address: Option<&str>, status: &str, details: &str| {
            let mut m = Map::new();
            m.insert("type".into(), kind.into());
            m.insert("client".into(), self.client_id.clone().into());
            if let Some(a) = address {
                m.insert("address".into(), a.into());
            }
            m.insert("status".into(), status.into());
            m.insert("statusDetails".into(), details.into());
            if connected && since > 0 {
                m.insert("inStateSince".into(), format_millis(since).into());
            }
            Value::Object(m)
        };
        let (src, src_details) = match (connected, subscribed) {
            (true, true) => ("open", "Subscribed with QoS 1."),
            (true, false) => ("closed", "Subscribing."),
            (false, _) => (live, "Not connected to the broker."),
        };
        let mut m = Map::new();
        m.insert("connectionId".into(), CONNECTION_ID.into());
        m.insert("connectionStatus".into(), "open".into());
        m.insert("liveStatus".into(), live.into());
        m.insert("recoveryStatus".into(), recovery.into());
        if connected && since > 0 {
            m.insert("connectedSince".into(), format_millis(since).into());
        }
        m.insert(
            "clientStatus".into(),
            json!([resource("client", None, live, &details)]),
        );
        m.insert(
            "sourceStatus".into(),
            self.sources
                .iter()
                .map(|a| resource("source", Some(a), src, src_details))
                .collect(),
        );
        let tgt_details = if connected {
            "Publishing with QoS 1."
        } else {
            "Not connected to the broker."
        };
        m.insert(
            "targetStatus".into(),
            self.targets
                .iter()
                .map(|(a, _)| resource("target", Some(a), live, tgt_details))
                .collect(),
        );
        m.insert("sshTunnelStatus".into(), json!([]));
        Value::Object(m)
    }

    /// The metrics (`.../metrics`) over the last minute, hour and day.
    pub fn metrics(&self, stats: &Stats, now: i64) -> Value {
        let t = totals(&stats.c);
        let counts: Vec<[u64; WINDOWED]> = {
            let m = stats.monitor.lock().unwrap_or_else(|e| e.into_inner());
            WINDOWS
                .iter()
                .map(|(_, len)| m.windows.count(now, *len, t))
                .collect()
        };
        let stamp = |ms: i64| (ms > 0).then(|| format_millis(ms));
        let window = |i: Option<usize>, last: Option<String>| {
            let mut m = Map::new();
            for (w, (name, _)) in WINDOWS.iter().enumerate() {
                m.insert((*name).into(), i.map_or(0, |i| counts[w][i]).into());
            }
            m.insert("lastMessageAt".into(), json!(last));
            Value::Object(m)
        };
        let typed = |ok: usize, failed: Option<usize>, last: Option<String>| json!({"success": window(Some(ok), last), "failure": window(failed, None)});
        let last_in = stamp(stats.last_received.load(Ordering::Relaxed));
        let last_out = stamp(stats.last_published.load(Ordering::Relaxed));
        let failures = counts[2][MAP_FAILED] + counts[2][PUBLISH_FAILED];
        json!({
            "connectionId": CONNECTION_ID,
            "containsFailures": failures > 0,
            "connectionMetrics": {
                "inbound": {
                    "consumed": typed(CONSUMED, None, last_in),
                    "mapped": typed(MAPPED, Some(MAP_FAILED), None),
                    "dropped": typed(DROPPED_IN, None, None),
                    "acknowledged": typed(ACKED, None, None),
                },
                "outbound": {
                    "published": typed(PUBLISHED, Some(PUBLISH_FAILED), last_out),
                }
            },
            "sourceMetrics": {"addressMetrics": {}},
            "targetMetrics": {"addressMetrics": {}}
        })
    }

    /// The log entries (`.../logs`): connects and the rate-limited warnings, newest last.
    pub fn logs(&self, stats: &Stats) -> Value {
        let m = stats.monitor.lock().unwrap_or_else(|e| e.into_inner());
        let entries: Vec<Value> = m
            .logs
            .iter()
            .map(|e| {
                json!({"correlationId": "<not-provided>", "timestamp": format_millis(e.at),
                       "category": e.category, "type": e.kind, "level": e.level,
                       "message": e.message})
            })
            .collect();
        let mut out = Map::new();
        out.insert("connectionId".into(), CONNECTION_ID.into());
        out.insert("connectionLogs".into(), entries.into());
        if let Some(s) = m.since {
            out.insert("enabledSince".into(), format_millis(s).into());
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::stats::inc;

    fn view() -> View {
        View {
            uri: "tcp://127.0.0.1:1883".into(),
            client_id: "edgetwin".into(),
            subject: "integration:edgetwin-mqtt".into(),
            keep_alive_secs: 30,
            sources: vec!["edgetwin/+/ditto".into()],
            targets: vec![(
                "edgetwin/{{ thing:id }}/live".into(),
                vec!["_/_/things/live/commands"],
            )],
        }
    }

    #[test]
    fn metrics_report_real_counts_per_window() {
        let s = Stats::default();
        s.monitor.lock().unwrap().sample(0, totals(&s.c));
        for _ in 0..3 {
            inc(&s.c.received);
            inc(&s.c.telemetry);
        }
        inc(&s.c.bad_payload);
        let m = view().metrics(&s, 1_000);
        let inb = &m["connectionMetrics"]["inbound"];
        assert_eq!(inb["consumed"]["success"]["PT1M"], 3);
        assert_eq!(inb["mapped"]["success"]["PT24H"], 3);
        assert_eq!(inb["mapped"]["failure"]["PT1H"], 1);
        assert_eq!(m["containsFailures"], true);
        assert_eq!(
            m["connectionMetrics"]["outbound"]["published"]["success"]["PT1M"],
            0
        );
    }

    #[test]
    fn status_follows_the_broker_connection() {
        let s = Stats::default();
        let st = view().status(&s, false);
        assert_eq!(st["liveStatus"], "closed");
        assert!(st.get("connectedSince").is_none());
        inc(&s.c.connection_errors);
        s.set_error("refused".into());
        let st = view().status(&s, false);
        assert_eq!(
            (st["liveStatus"].as_str(), st["recoveryStatus"].as_str()),
            (Some("failed"), Some("ongoing"))
        );
        assert!(st["clientStatus"][0]["statusDetails"]
            .as_str()
            .unwrap()
            .contains("refused"));
        s.set_connected(true);
        let st = view().status(&s, true);
        assert_eq!(st["liveStatus"], "open");
        assert_eq!(st["sourceStatus"][0]["status"], "open");
        assert!(st["connectedSince"].is_string());
        let logs = view().logs(&s);
        assert_eq!(
            logs["connectionLogs"][0]["message"],
            "connected to the broker"
        );
    }
}
