//! The `[mqtt]` configuration section: broker URL (`mqtt://`, `mqtts://`, `none`), client id,
//! credentials, TLS files, the bridge's subject and the policy of auto-created twins, the
//! Ditto Protocol topic prefix, presets and `[[mqtt.mappings]]`. Pure data plus checks.

use serde::Deserialize;
use std::path::PathBuf;

/// Default broker (the local mosquitto).
pub const DEFAULT_URL: &str = "mqtt://127.0.0.1:1883";

/// What the bridge does with telemetry of a device that has no twin yet.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnknownDevices {
    /// create the twin (in `namespace`, with the bridge policy)
    #[default]
    Create,
    /// drop the message (counted as `unknownDevice`)
    Ignore,
}

/// How a telemetry payload lands in the twin.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PayloadMode {
    /// `value` when a property is known (captured or configured), else `properties`
    #[default]
    Auto,
    /// the payload (JSON, else the text) is the value of `{feature}/properties/{property}`
    Value,
    /// a JSON object merged into `{feature}/properties`
    Properties,
    /// a JSON object: object members become features, other members properties of `{feature}`
    Features,
}

/// One `[[mqtt.mappings]]` entry (presets are lists of these too, see `mqtt::presets`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// name stored in the twin (`attributes/mqtt/mapping`); command routing looks it up
    #[serde(default)]
    pub name: Option<String>,
    /// telemetry topic pattern with `{thing}`, `{feature}`, `{property}` captures
    #[serde(default)]
    pub topic: Option<String>,
    /// how the payload lands in the twin
    #[serde(default)]
    pub payload: PayloadMode,
    /// feature when the pattern captures none
    #[serde(default)]
    pub feature: Option<String>,
    /// property when the pattern captures none
    #[serde(default)]
    pub property: Option<String>,
    /// availability (LWT) topic pattern with a `{thing}` capture: drives `ConnectionStatus`
    #[serde(default)]
    pub availability: Option<String>,
    /// availability payloads meaning online (case-insensitive; also a JSON `{"state": ..}`)
    #[serde(default)]
    pub online: Option<Vec<String>>,
    /// availability payloads meaning offline
    #[serde(default)]
    pub offline: Option<Vec<String>>,
    /// command topic template for desired properties and live commands (`{thing}`,
    /// `{feature}`, `{property}`); with `{property}` one message per property carrying the
    /// value, else one JSON object per feature
    #[serde(default)]
    pub command: Option<String>,
}

/// `[mqtt]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host:port`, `mqtts://host:port` (TLS) or `none` (bridge off)
    pub url: String,
    /// MQTT client id; the broker keeps the persistent session under it
    pub client_id: String,
    /// broker user name
    pub username: Option<String>,
    /// broker password
    pub password: Option<String>,
    /// PEM CA bundle for `mqtts://` (default: the system bundle)
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for `mqtts://` (with `client_key_file`)
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate
    pub client_key_file: Option<PathBuf>,
    /// MQTT keep-alive, seconds
    pub keep_alive_secs: u64,
    /// longest wait between reconnect attempts, seconds (backoff doubles from 0.5 s)
    pub reconnect_max_secs: u64,
    /// subject of everything arriving over MQTT (policy checks)
    pub subject: String,
    /// subjects granted READ+WRITE on `thing:/`, `policy:/`, `message:/` of auto-created twins
    pub owners: Vec<String>,
    /// namespace of twins created for devices of the mappings
    pub namespace: String,
    /// `create` or `ignore` telemetry of devices without a twin
    pub unknown_devices: UnknownDevices,
    /// first topic level of the Ditto Protocol topics (`<prefix>/<thingId>/ditto`, `.../live`)
    pub topic_prefix: String,
    /// built-in mappings: `zigbee2mqtt`, `tasmota`, `homie`
    pub presets: Vec<String>,
    /// own mappings
    pub mappings: Vec<MappingConfig>,
    /// messages between the MQTT thread and the hub (QoS 0 beyond it is dropped and counted;
    /// QoS 1 waits: the broker holds it)
    pub queue: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: DEFAULT_URL.into(),
            client_id: "edgetwin".into(),
            username: None,
            password: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive_secs: 30,
            reconnect_max_secs: 30,
            subject: "integration:edgetwin-mqtt".into(),
            owners: vec!["nginx:ditto".into()],
            namespace: "edge".into(),
            unknown_devices: UnknownDevices::Create,
            topic_prefix: "edgetwin".into(),
            presets: Vec::new(),
            mappings: Vec::new(),
            queue: 1024,
        }
    }
}

/// A parsed broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// host name or address
    pub host: String,
    /// port
    pub port: u16,
    /// TLS (`mqtts://`)
    pub tls: bool,
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Parses `mqtt://host[:port]`, `tcp://...` or `mqtts://` / `ssl://` (TLS); `None` for `none`.
pub fn parse_url(url: &str) -> Result<Option<BrokerUrl>, String> {
    let url = url.trim();
    if url.eq_ignore_ascii_case("none") || url.is_empty() {
        return Ok(None);
    }
    let (tls, rest) = match url.split_once("://") {
        Some(("mqtt" | "tcp", r)) => (false, r),
        Some(("mqtts" | "ssl" | "tls", r)) => (true, r),
        Some((s, _)) => {
            return Err(format!(
                "unsupported scheme '{s}' (use mqtt:// or mqtts://)"
            ))
        }
        None => (false, url),
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err("put credentials in [mqtt] username/password, not in the URL".into());
    }
    if rest.contains('/') {
        return Err("a broker URL has no path".into());
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match rest.rsplit_once(':') {
        // `[v6]:port` or `host:port`; a bare IPv6 address has more colons
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("invalid port '{p}'"))?,
        ),
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("missing host".into());
    }
    Ok(Some(BrokerUrl {
        host: host.to_owned(),
        port,
        tls,
    }))
}

impl MqttConfig {
    /// The broker, `None` when the bridge is disabled.
    pub fn broker(&self) -> Option<BrokerUrl> {
        parse_url(&self.url).ok().flatten()
    }

    /// Semantic problems, one line each, starting with the dotted key (`mqtt.url: ...`) so
    /// `check-config` can point at its line.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match parse_url(&self.url) {
            Err(e) => p.push(format!("mqtt.url: '{}': {e}", self.url)),
            Ok(Some(b)) if b.tls && !cfg!(feature = "mqtt-tls") => p.push(format!(
                "mqtt.url: '{}' needs TLS, but this edgetwin was built without the `mqtt-tls` feature",
                self.url
            )),
            _ => {}
        }
        if self.client_id.is_empty() || self.client_id.len() > 256 {
            p.push("mqtt.client_id: must have 1 to 256 characters".into());
        }
        if self.password.is_some() && self.username.is_none() {
            p.push("mqtt.password: needs username".into());
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            p.push("mqtt.client_cert_file: goes together with client_key_file".into());
        }
        if !is_subject(&self.subject) {
            p.push(format!(
                "mqtt.subject: '{}' must look like 'issuer:subject'",
                self.subject
            ));
        }
        for o in &self.owners {
            if !is_subject(o) {
                p.push(format!(
                    "mqtt.owners: '{o}' must look like 'issuer:subject'"
                ));
            }
        }
        if !crate::model::is_valid_namespace(&self.namespace) {
            p.push(format!(
                "mqtt.namespace: invalid namespace '{}'",
                self.namespace
            ));
        }
        if self.topic_prefix.is_empty() || self.topic_prefix.contains(['+', '#', '/', '\0']) {
            p.push(format!(
                "mqtt.topic_prefix: '{}' must be one non-empty topic level without wildcards",
                self.topic_prefix
            ));
        }
        for (k, v) in [
            ("queue", self.queue as u64),
            ("keep_alive_secs", self.keep_alive_secs),
            ("reconnect_max_secs", self.reconnect_max_secs),
        ] {
            if v == 0 {
                p.push(format!("mqtt.{k}: must be positive"));
            }
        }
        if let Err(e) = super::mapping::Mappings::build(self) {
            p.push(format!("mqtt.{e}"));
        }
        p
    }
}

fn is_subject(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("none").unwrap(), None);
        let b = parse_url("mqtt://127.0.0.1:1883").unwrap().unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("127.0.0.1", 1883, false));
        let b = parse_url("mqtts://broker.local").unwrap().unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.tls),
            ("broker.local", 8883, true)
        );
        let b = parse_url("localhost:1884").unwrap().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("localhost", 1884));
        let b = parse_url("mqtt://[::1]:1883").unwrap().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 1883));
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://u:p@x").is_err());
        assert!(parse_url("mqtt://x:99999").is_err());
        assert!(parse_url("mqtt://x/a").is_err());
    }

    #[test]
    fn defaults_are_sound() {
        let c = MqttConfig::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.broker().unwrap().port, 1883);
    }

    #[test]
    fn problems_are_reported() {
        let c = MqttConfig {
            subject: "nocolon".into(),
            topic_prefix: "a/b".into(),
            presets: vec!["nope".into()],
            ..MqttConfig::default()
        };
        let p = c.problems();
        assert_eq!(p.len(), 3, "{p:?}");
    }
}
