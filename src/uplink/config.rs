//! The `[uplink]` configuration section: the cloud Ditto's WebSocket URL (`ws://`, `wss://`),
//! Basic credentials or a JWT file, the mirrored namespaces, the cloud policy of created things,
//! and the bounds of the link (commands in flight, timeouts, retries). Pure data plus checks.

use serde::Deserialize;
use std::path::PathBuf;

/// Most commands in flight on one cloud WebSocket: Ditto's gateway queues at most 100 per
/// socket (`ditto.gateway.streaming.websocket.subscriber.backpressure-queue-size`, gateway.conf).
pub const DITTO_MAX_IN_FLIGHT: usize = 100;

/// `[uplink]` (see docs/uplink.md). An empty `url` turns the uplink off.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkConfig {
    /// the cloud Ditto's WebSocket endpoint, `ws://host[:port]/ws/2` or `wss://...`
    pub url: String,
    /// HTTP Basic user on the upgrade
    pub username: Option<String>,
    /// HTTP Basic password
    pub password: Option<String>,
    /// a file holding a bearer JWT, re-read when it changes (instead of username/password)
    pub token_file: Option<PathBuf>,
    /// local things in these namespaces are mirrored (empty: all)
    pub namespaces: Vec<String>,
    /// `policyId` of things the uplink creates in the cloud (default: the cloud's default
    /// policy for the edge's subject)
    pub policy_id: Option<String>,
    /// PEM CA bundle trusted for `wss://` (default: the system's trust store)
    pub ca_file: Option<PathBuf>,
    /// local subject of what comes down from the cloud (desired properties, live commands,
    /// messages): local policies must grant it, as for the MQTT bridge's subject
    pub subject: String,
    /// the box's own thing in the cloud (with a `ConnectionStatus` feature); default
    /// `<first namespace, else "edgetwin">:<host name>`
    pub gateway_id: Option<String>,
    /// cloud commands in flight at once (at most 100, Ditto's per-socket queue)
    pub max_in_flight: usize,
    /// seconds a cloud answer may take; a socket silent this long (pings unanswered) is closed
    pub request_timeout_secs: u64,
    /// longest wait between reconnect attempts, seconds (backoff doubles from 0.5 s)
    pub reconnect_max_secs: u64,
    /// attempts per change before a thing that keeps failing is parked as refused
    pub max_attempts: u32,
    /// the gateway's `readyUntil` lies this far ahead and is renewed at a third of it, seconds
    pub status_ttl_secs: u64,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            url: String::new(),
            username: None,
            password: None,
            token_file: None,
            namespaces: Vec::new(),
            policy_id: None,
            ca_file: None,
            subject: "integration:edgetwin-uplink".into(),
            gateway_id: None,
            max_in_flight: DITTO_MAX_IN_FLIGHT,
            request_timeout_secs: 30,
            reconnect_max_secs: 60,
            max_attempts: 8,
            status_ttl_secs: 180,
        }
    }
}

/// A parsed cloud URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudUrl {
    /// `wss://`
    pub tls: bool,
    /// host name or address (without IPv6 brackets)
    pub host: String,
    /// port
    pub port: u16,
    /// path and query (`/ws/2`)
    pub path: String,
}

impl CloudUrl {
    /// The URL again, for the upgrade request and the status (never with credentials).
    pub fn to_url(&self) -> String {
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// Parses `ws://host[:port][/path]` or `wss://...`; `None` for an empty URL (uplink off).
pub fn parse_url(url: &str) -> Result<Option<CloudUrl>, String> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let (tls, rest) = match url.split_once("://") {
        Some(("ws", r)) => (false, r),
        Some(("wss", r)) => (true, r),
        Some((s, _)) => return Err(format!("unsupported scheme '{s}' (use ws:// or wss://)")),
        None => return Err("missing scheme (use ws:// or wss://)".into()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/ws/2"),
    };
    if authority.contains('@') {
        return Err(
            "put credentials in [uplink] username/password or token_file, not in the URL".into(),
        );
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("invalid port '{p}'"))?,
        ),
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok(Some(CloudUrl {
        tls,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    }))
}

impl UplinkConfig {
    /// True if an uplink is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The cloud URL, `None` when the uplink is off.
    pub fn cloud(&self) -> Option<CloudUrl> {
        parse_url(&self.url).ok().flatten()
    }

    /// True if a thing of namespace `ns` is mirrored.
    pub fn mirrors(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }

    /// The gateway thing's ID: configured, else `<first namespace or "edgetwin">:<host>`.
    pub fn gateway(&self, host_name: &str) -> String {
        if let Some(g) = &self.gateway_id {
            return g.clone();
        }
        let ns = self.namespaces.first().map_or("edgetwin", String::as_str);
        let host: String = host_name
            .chars()
            .filter(|c| !c.is_control() && *c != '/')
            .collect();
        let host = if host.is_empty() { "edgetwin" } else { &host };
        format!("{ns}:{host}")
    }

    /// Semantic problems, one line each, starting with the dotted key (`uplink.url: ...`).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let url = match parse_url(&self.url) {
            Err(e) => {
                p.push(format!("uplink.url: '{}': {e}", self.url));
                return p;
            }
            Ok(None) => return p,
            Ok(Some(u)) => u,
        };
        match (&self.username, &self.password, &self.token_file) {
            (Some(_), None, _) => p.push("uplink.username: needs password".into()),
            (None, Some(_), _) => p.push("uplink.password: needs username".into()),
            (Some(_), Some(_), Some(_)) => p.push(
                "uplink.token_file: use either username/password or token_file, not both".into(),
            ),
            (None, None, None) => p.push(
                "uplink.url: the cloud needs credentials (username/password or token_file)".into(),
            ),
            _ => {}
        }
        if let Some(u) = &self.username {
            if u.is_empty() || u.contains(':') {
                p.push(format!("uplink.username: invalid user name '{u}'"));
            }
        }
        if let Some(f) = &self.token_file {
            if let Err(e) = std::fs::metadata(f) {
                p.push(format!("uplink.token_file: {}: {e}", f.display()));
            }
        }
        if let Some(f) = &self.ca_file {
            if !url.tls {
                p.push("uplink.ca_file: only used with wss://".into());
            }
            if let Err(e) = super::client::load_ca_file(f) {
                p.push(format!("uplink.ca_file: {e}"));
            }
        }
        for ns in &self.namespaces {
            if ns.is_empty() || !crate::model::is_valid_namespace(ns) {
                p.push(format!("uplink.namespaces: invalid namespace '{ns}'"));
            }
        }
        if let Some(pid) = &self.policy_id {
            if crate::model::parse_policy_id(pid).is_err() {
                p.push(format!("uplink.policy_id: invalid policy ID '{pid}'"));
            }
        }
        if let Some(g) = &self.gateway_id {
            if crate::model::parse_thing_id(g).is_err() {
                p.push(format!("uplink.gateway_id: invalid thing ID '{g}'"));
            }
        }
        if !self
            .subject
            .split_once(':')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        {
            p.push(format!(
                "uplink.subject: '{}' must look like 'issuer:subject'",
                self.subject
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > DITTO_MAX_IN_FLIGHT {
            p.push(format!(
                "uplink.max_in_flight: must be 1 to {DITTO_MAX_IN_FLIGHT} (Ditto queues at most {DITTO_MAX_IN_FLIGHT} commands per WebSocket)"
            ));
        }
        for (k, v) in [
            ("request_timeout_secs", self.request_timeout_secs),
            ("reconnect_max_secs", self.reconnect_max_secs),
            ("max_attempts", u64::from(self.max_attempts)),
            ("status_ttl_secs", self.status_ttl_secs),
        ] {
            if v == 0 {
                p.push(format!("uplink.{k}: must be positive"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("").unwrap(), None);
        let u = parse_url("wss://ditto.example.com/ws/2").unwrap().unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "ditto.example.com", 443, "/ws/2")
        );
        let u = parse_url("ws://127.0.0.1:8080").unwrap().unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/ws/2"));
        assert_eq!(u.to_url(), "ws://127.0.0.1:8080/ws/2");
        let u = parse_url("ws://[::1]:9/ws/2").unwrap().unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.to_url(), "ws://[::1]:9/ws/2");
        assert!(parse_url("http://x/ws/2").is_err());
        assert!(parse_url("ditto.example.com").is_err());
        assert!(parse_url("ws://u:p@x/ws/2").is_err());
        assert!(parse_url("ws://x:99999/ws/2").is_err());
        assert!(parse_url("ws:///ws/2").is_err());
    }

    #[test]
    fn off_by_default_and_sound_when_set() {
        let c = UplinkConfig::default();
        assert!(!c.enabled());
        assert!(c.problems().is_empty());
        let c = UplinkConfig {
            url: "ws://127.0.0.1:1/ws/2".into(),
            username: Some("edge-1".into()),
            password: Some("pw".into()),
            namespaces: vec!["edge".into()],
            policy_id: Some("fleet:edge".into()),
            ..UplinkConfig::default()
        };
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert!(c.mirrors("edge") && !c.mirrors("other"));
        assert_eq!(c.gateway("pi-7"), "edge:pi-7");
    }

    #[test]
    fn problems_are_reported() {
        let c = UplinkConfig {
            url: "ws://h/ws/2".into(),
            username: Some("a".into()),
            namespaces: vec!["bad ns".into()],
            policy_id: Some("nocolon".into()),
            max_in_flight: 101,
            subject: "x".into(),
            reconnect_max_secs: 0,
            ..UplinkConfig::default()
        };
        let p = c.problems();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p.iter().all(|l| l.starts_with("uplink.")), "{p:?}");
        let none = UplinkConfig {
            url: "ws://h/ws/2".into(),
            ..UplinkConfig::default()
        };
        assert_eq!(none.problems().len(), 1, "credentials are required");
    }

    #[test]
    fn check_config_points_at_the_line() {
        let text = "[uplink]\nurl = \"ws://h/ws/2\"\nusername = \"a\"\npassword = \"b\"\nmax_in_flight = 500\nbogus = 1\n";
        let (cfg, problems) = crate::ops::check::check_text(text);
        assert!(cfg.is_none());
        let lines: Vec<_> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(5), Some(6)], "{problems:?}");
        assert!(problems[0].message.starts_with("uplink.max_in_flight"));
        let ok = "[uplink]\nurl = \"wss://ditto.example.com/ws/2\"\nusername = \"edge-1\"\npassword = \"x\"\nnamespaces = [\"edge\"]\npolicy_id = \"fleet:edge\"\n";
        let (cfg, problems) = crate::ops::check::check_text(ok);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(cfg.unwrap().uplink.enabled());
    }

    /// Every TOML block of docs/uplink.md is a valid config (the ten-line setup first).
    #[test]
    fn the_documented_configs_pass_check_config() {
        let doc = include_str!("../../docs/uplink.md");
        let blocks: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), 2);
        for b in blocks {
            let (cfg, problems) = crate::ops::check::check_text(b);
            assert!(problems.is_empty(), "{b}: {problems:?}");
            assert!(cfg.is_some());
        }
        let setup = crate::config::Config::from_toml(
            doc.split("```toml\n")
                .nth(1)
                .unwrap_or_default()
                .split("```")
                .next()
                .unwrap_or_default(),
        )
        .unwrap();
        assert!(setup.uplink.enabled());
        assert_eq!(setup.uplink.policy_id.as_deref(), Some("fleet:edge"));
    }
}
