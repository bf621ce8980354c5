//! The uplink's shared status (served at `GET /status/uplink`): connection state and since
//! when, pending things, commands in flight, counters and bytes, the last error, the things
//! the cloud (or the edge) refused, and the bounded logging of faults: at most one line per
//! kind every 10 s with the number suppressed (the MQTT bridge's `Gate`).

use crate::clock::format_millis;
use crate::mqtt::stats::Gate;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Refused things listed at most (the count goes on).
pub const MAX_REFUSED_LISTED: usize = 100;

/// Kinds of rate-limited log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// connecting, TLS, DNS, credentials, a stalled or lost socket
    Connection = 0,
    /// a cloud error about a thing
    Cloud = 1,
    /// a frame the uplink could not read
    Protocol = 2,
    /// the local hub refused a change from the cloud
    Local = 3,
}

macro_rules! counters {
    ($($field:ident => $json:literal : $doc:literal),* $(,)?) => {
        /// The counters.
        #[derive(Debug, Default)]
        pub struct Counters { $(#[doc = $doc] pub $field: AtomicU64,)* }
        impl Counters {
            fn to_json(&self) -> Map<String, Value> {
                let mut m = Map::new();
                $(m.insert($json.into(), self.$field.load(Ordering::Relaxed).into());)*
                m
            }
        }
    };
}

counters! {
    connects => "connects": "sessions opened with the cloud",
    connection_errors => "connectionErrors": "failed attempts and lost sessions",
    created => "created": "things created in the cloud",
    updated => "updated": "merges the cloud confirmed as persisted",
    deleted => "deleted": "things deleted in the cloud",
    retrieved => "retrieved": "things read from the cloud to merge",
    stale => "stale": "writes refused as stale (412/409) and merged again",
    retries => "retries": "cloud commands that failed transiently and are tried again",
    timeouts => "timeouts": "cloud commands without an answer within request_timeout_secs",
    down => "changesDown": "cloud changes applied locally (desired properties, ...)",
    events => "cloudEvents": "twin events received from the cloud",
    live => "liveDown": "cloud live commands and messages delivered locally",
    answers => "answersUp": "answers to those sent back to the cloud",
    malformed => "malformed": "frames from the cloud that were no Ditto Protocol",
    sent_bytes => "bytesSent": "bytes of text frames sent",
    received_bytes => "bytesReceived": "bytes of text frames received",
}

/// One refused thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `cloud` or `local`
    pub side: &'static str,
    /// status
    pub status: u16,
    /// why
    pub error: String,
    /// when (epoch millis)
    pub at: i64,
}

/// Shared uplink status.
#[derive(Debug, Default)]
pub struct Stats {
    /// counters
    pub c: Counters,
    connected: AtomicBool,
    since: AtomicI64,
    /// things with local changes the cloud has not confirmed
    pub pending: AtomicUsize,
    /// cloud commands waiting for their answer
    pub in_flight: AtomicUsize,
    /// true until the startup scan found every dirty thing
    pub scanning: AtomicBool,
    /// when the next connection attempt is due (epoch millis, 0: none)
    pub next_attempt: AtomicI64,
    /// `exp` of the token in use (epoch millis, 0: none)
    pub token_expires: AtomicI64,
    gates: Mutex<[Gate; 4]>,
    last_error: Mutex<Option<(i64, Kind, String)>>,
    refused: Mutex<BTreeMap<String, Refusal>>,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Connection => "connection",
        Kind::Cloud => "cloud",
        Kind::Protocol => "protocol",
        Kind::Local => "local",
    }
}

impl Stats {
    /// Marks the session up or down at `now` (the status shows since when). A session that
    /// ends goes down through `session_ended`, which records why first.
    pub fn set_connected(&self, up: bool, now: i64) {
        // Release: whoever reads `connected` (Acquire) sees the fault recorded before it
        if self.connected.swap(up, Ordering::AcqRel) != up
            || self.since.load(Ordering::Relaxed) == 0
        {
            self.since.store(now, Ordering::Relaxed);
        }
    }

    /// True while a session with the cloud is open and subscribed.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The session ended at `now`: records why (`fault`, if it was one), then marks it down,
    /// so the status never says disconnected without the error that caused it.
    pub fn session_ended(&self, now: i64, fault: Option<(Kind, std::fmt::Arguments<'_>)>) {
        if let Some((kind, msg)) = fault {
            self.fault(now, kind, msg);
        }
        self.set_connected(false, now);
    }

    /// Records a fault: the last error, and a warning at most once per kind every 10 s.
    pub fn fault(&self, now: i64, kind: Kind, msg: std::fmt::Arguments<'_>) {
        let text = msg.to_string();
        let pass = self.gates.lock().unwrap_or_else(|e| e.into_inner())[kind as usize].pass(now);
        if let Some(suppressed) = pass {
            tracing::warn!(kind = kind_name(kind), suppressed, "uplink: {text}");
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, kind, text));
    }

    /// Reports a thing as refused (kept per thing, so bounded by the number of things;
    /// the status lists the first `MAX_REFUSED_LISTED`).
    pub fn refuse(&self, thing_id: &str, r: Refusal) {
        let mut m = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(thing_id.to_owned(), r);
    }

    /// The thing changed or synced: no longer refused.
    pub fn unrefuse(&self, thing_id: &str) {
        let mut m = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(thing_id);
    }

    /// True if the thing is parked as refused.
    pub fn is_refused(&self, thing_id: &str) -> bool {
        let m = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        m.contains_key(thing_id)
    }

    /// Number of refused things.
    pub fn refused_count(&self) -> usize {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The `/status/uplink` document.
    pub fn to_json(&self, url: &str, gateway: &str) -> Value {
        let iso = |ms: i64| (ms > 0).then(|| format_millis(ms));
        // connected first: a session that ended recorded its fault before it went down
        let connected = self.connected();
        // the list and its count under one lock (a refusal between two looks gave a count of 1
        // with an empty list, seen in CI), read before the last error, which a refusal sets first
        let (refused_count, refused) = {
            let m = self.refused.lock().unwrap_or_else(|e| e.into_inner());
            let listed: Vec<Value> = m
                .iter()
                .take(MAX_REFUSED_LISTED)
                .map(|(id, r)| {
                    json!({"thingId": id, "side": r.side, "status": r.status,
                           "error": r.error, "at": format_millis(r.at)})
                })
                .collect();
            (m.len(), listed)
        };
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(|(at, k, m)| json!({"at": format_millis(at), "kind": kind_name(k), "message": m}));
        let c = self.c.to_json();
        json!({
            "enabled": true,
            "url": url,
            "gatewayId": gateway,
            "connected": connected,
            "since": iso(self.since.load(Ordering::Relaxed)),
            "pending": self.pending.load(Ordering::Relaxed),
            "scanning": self.scanning.load(Ordering::Relaxed),
            "inFlight": self.in_flight.load(Ordering::Relaxed),
            "refusedCount": refused_count,
            "refused": refused,
            "lastError": last,
            "nextAttempt": iso(self.next_attempt.load(Ordering::Relaxed)),
            "tokenExpires": iso(self.token_expires.load(Ordering::Relaxed)),
            "bytes": {"sent": c["bytesSent"], "received": c["bytesReceived"]},
            "counters": c,
        })
    }
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// The document of a disabled uplink.
pub fn disabled() -> Value {
    json!({"enabled": false, "connected": false, "pending": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_state_errors_and_refusals() {
        let s = Stats::default();
        s.set_connected(true, 1_000);
        s.pending.store(3, Ordering::Relaxed);
        add(&s.c.updated, 2);
        s.fault(2_000, Kind::Cloud, format_args!("boom"));
        s.refuse(
            "n:t",
            Refusal {
                side: "cloud",
                status: 403,
                error: "no".into(),
                at: 3_000,
            },
        );
        let j = s.to_json("ws://c/ws/2", "n:gw");
        assert_eq!(j["connected"], true);
        assert_eq!(j["since"], "1970-01-01T00:00:01.000Z");
        assert_eq!(j["pending"], 3);
        assert_eq!(j["counters"]["updated"], 2);
        assert_eq!(j["lastError"]["message"], "boom");
        assert_eq!(j["lastError"]["kind"], "cloud");
        assert_eq!(j["refused"][0]["thingId"], "n:t");
        assert_eq!(j["refusedCount"], 1);
        s.unrefuse("n:t");
        assert_eq!(s.refused_count(), 0);
        s.set_connected(false, 5_000);
        assert_eq!(s.to_json("", "")["since"], "1970-01-01T00:00:05.000Z");
    }

    #[test]
    fn a_lost_session_never_shows_disconnected_without_its_error() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        for _ in 0..300 {
            let s = Arc::new(Stats::default());
            s.set_connected(true, 1_000);
            let reading = Arc::new(AtomicBool::new(false));
            let reader = {
                let (s, reading) = (s.clone(), reading.clone());
                std::thread::spawn(move || loop {
                    let j = s.to_json("", "");
                    reading.store(true, Ordering::Release);
                    if j["connected"] == false {
                        return j;
                    }
                })
            };
            while !reading.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            s.session_ended(
                2_000,
                Some((Kind::Connection, format_args!("session ended: closed"))),
            );
            let j = reader.join().unwrap();
            assert_eq!(j["lastError"]["message"], "session ended: closed", "{j}");
        }
    }

    #[test]
    fn the_refused_list_is_bounded() {
        let s = Stats::default();
        for i in 0..MAX_REFUSED_LISTED + 10 {
            let r = Refusal {
                side: "cloud",
                status: 400,
                error: String::new(),
                at: 0,
            };
            s.refuse(&format!("n:t{i}"), r);
        }
        let j = s.to_json("", "");
        assert_eq!(j["refused"].as_array().unwrap().len(), MAX_REFUSED_LISTED);
        assert_eq!(j["refusedCount"], MAX_REFUSED_LISTED + 10);
    }
}
