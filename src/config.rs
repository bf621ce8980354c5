//! Configuration: a TOML file whose every field has a default that runs out of the box,
//! overridden by command-line flags. Zero config = 127.0.0.1:8080, `./data`, redb, and the
//! development user `ditto`/`ditto` (only while listening on loopback with no users set).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use crate::auth::jwt::JwtIssuer;
pub use crate::limits::Limits;

/// A Basic-auth user (subject `nginx:<name>`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// user name
    pub name: String,
    /// argon2 PHC string, as printed by `edgetwin hash-password`
    pub password_hash: String,
}

// ---- [auth] (authentication beyond Basic users; see docs/auth.md) ----

/// `[auth]`: pre-authentication behind a reverse proxy, JWT issuers, failed-login limits and
/// the password verifier pool (docs: "Login limits").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// honour `x-ditto-pre-authenticated` (only from `trusted_proxies`)
    pub pre_authenticated: bool,
    /// peer addresses allowed to send `x-ditto-pre-authenticated`
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// failed logins for one user name from one address per window before 429 (0 = no
    /// failed-login limits at all)
    pub max_failed_logins: u32,
    /// failed logins from one address per window, any user names (0 = no ceiling)
    pub max_failed_logins_per_address: u32,
    /// failed logins for one user name per window, any addresses (0 = no ceiling)
    pub max_failed_logins_per_user: u32,
    /// window of the failed-login limits, seconds
    pub failed_login_window_secs: u64,
    /// addresses, user names and address+user pairs tracked (each table)
    pub max_tracked: usize,
    /// threads verifying passwords (each keeps one argon2 memory block while busy)
    pub verifiers: usize,
    /// password verifications waiting for a verifier (more: 429)
    pub verify_queue: usize,
    /// verified credentials and tokens remembered (no second argon2 run for them)
    pub verified_cache: usize,
    /// trusted JWT issuers
    pub jwt: Vec<JwtIssuer>,
    /// Basic users (from `[[users]]`) allowed on `/devops` and `/api/2/connections`; none by
    /// default (everyone gets 401 there, the dev user too)
    pub devops_users: Vec<String>,
}

impl Auth {
    /// Problems of the `[auth]` limits.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.verifiers == 0 || self.verify_queue == 0 {
            p.push("auth: verifiers and verify_queue must be positive".into());
        }
        if self.max_tracked < 16 {
            p.push("auth: max_tracked must be at least 16".into());
        }
        if self.failed_login_window_secs == 0 {
            p.push("auth: failed_login_window_secs must be positive".into());
        }
        p
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            pre_authenticated: false,
            trusted_proxies: Vec::new(),
            max_failed_logins: 5,
            max_failed_logins_per_address: 20,
            max_failed_logins_per_user: 50,
            failed_login_window_secs: 60,
            max_tracked: 4096,
            verifiers: 1,
            verify_queue: 16,
            verified_cache: 256,
            jwt: Vec::new(),
            devops_users: Vec::new(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// address for HTTP, WebSocket and SSE
    pub listen: SocketAddr,
    /// directory of the embedded store
    pub data_dir: PathBuf,
    /// the store (`[store]`, or the backend alone as `store = "redb"`)
    #[serde(deserialize_with = "crate::store::config::deserialize")]
    pub store: crate::store::StoreConfig,
    /// store cache size in MiB
    pub cache_mib: u64,
    /// twins kept in memory, MiB (up to 2 decoded, the rest compact; 0 = none)
    pub twin_cache_mib: u64,
    /// policy enforcers kept in memory, MiB (at least 1; cleared when full)
    pub policy_cache_mib: u64,
    /// deprecated (a count of cached policies, before `policy_cache_mib`): accepted so old
    /// files still load, ignored with a warning at start
    pub policy_cache: Option<usize>,
    /// executor threads (0 = number of CPUs, at most 4)
    pub threads: usize,
    /// log level filter (overridden by `RUST_LOG`)
    pub log_level: String,
    /// Basic-auth users
    pub users: Vec<User>,
    /// limits
    pub limits: Limits,
    /// authentication beyond Basic users
    pub auth: Auth,
    /// MQTT device bridge (`[mqtt]`, see docs/mqtt.md)
    pub mqtt: crate::mqtt::config::MqttConfig,
    /// search (see docs/search.md)
    pub search: crate::search::SearchConfig,
    /// TLS on the listener (`[tls]`: HTTPS and WSS)
    pub tls: crate::tls::TlsConfig,
    /// CORS for browser apps on other origins (`[cors]`, off by default)
    pub cors: crate::http::cors::CorsConfig,
    /// mirroring into a cloud Ditto (`[uplink]`, off by default; see docs/uplink.md)
    pub uplink: crate::uplink::config::UplinkConfig,
    /// history of things and policies (`[history]`, see docs/history.md)
    pub history: crate::history::HistoryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            store: crate::store::StoreConfig::default(),
            cache_mib: 8,
            twin_cache_mib: 16,
            policy_cache_mib: crate::hub::policy::CACHE_MIB,
            policy_cache: None,
            threads: 0,
            log_level: "info".into(),
            users: Vec::new(),
            limits: Limits::default(),
            auth: Auth::default(),
            mqtt: crate::mqtt::config::MqttConfig::default(),
            search: crate::search::SearchConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            cors: crate::http::cors::CorsConfig::default(),
            uplink: crate::uplink::config::UplinkConfig::default(),
            history: crate::history::HistoryConfig::default(),
        }
    }
}

impl Config {
    /// Parses TOML text; errors carry the line and column.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            format!("{at}{}", e.message())
        })
    }

    /// Semantic checks beyond parsing (each problem one line).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        p.extend(self.store.problems());
        if self.policy_cache_mib == 0 {
            p.push("policy_cache_mib must be at least 1".into());
        }
        if !self.listen.ip().is_loopback() && !self.has_credentials() {
            p.push(format!(
                "listen: {} is not a loopback address, so users must be configured ([[users]], [[auth.jwt]] or [auth] pre_authenticated)",
                self.listen
            ));
        }
        p.extend(self.auth.problems());
        if self.auth.pre_authenticated && self.auth.trusted_proxies.is_empty() {
            p.push("auth: pre_authenticated needs trusted_proxies".into());
        }
        for j in &self.auth.jwt {
            if let Err(e) = crate::auth::jwt::load_keys(j) {
                p.push(format!("auth.jwt '{}': {e}", j.issuer));
            }
            if j.prefix.is_empty() || j.prefix.contains(':') {
                p.push(format!(
                    "auth.jwt '{}': invalid prefix '{}'",
                    j.issuer, j.prefix
                ));
            }
        }
        for u in &self.users {
            if u.name.is_empty() || u.name.contains(':') {
                p.push(format!("users: invalid user name '{}'", u.name));
            }
            if !u.password_hash.starts_with("$argon2") {
                p.push(format!("users: '{}' password_hash is not an argon2 hash (run `edgetwin hash-password`)", u.name));
            }
        }
        for d in &self.auth.devops_users {
            if !self.users.iter().any(|u| &u.name == d) {
                p.push(format!(
                    "auth: devops user '{d}' is not among [[users]] (DevOps users log in with Basic)"
                ));
            }
        }
        if let Err(e) = crate::ops::logging::check_level(&self.log_level) {
            p.push(format!("log_level: {e}"));
        }
        if self.limits.outbound_queue == 0
            || self.limits.max_message_kib == 0
            || self.limits.body_timeout_secs == 0
            || self.limits.max_connections == 0
            || self.limits.max_connections_per_address == 0
            || self.limits.send_timeout_secs == 0
            || self.limits.ws_idle_timeout_secs == 0
            || self.limits.close_timeout_secs == 0
        {
            p.push("limits: values must be positive".into());
        }
        p.extend(self.mqtt.problems());
        p.extend(self.search.problems());
        p.extend(self.tls.problems());
        p.extend(self.cors.problems());
        p.extend(self.uplink.problems());
        p.extend(self.history.problems());
        p
    }

    /// True if any authentication mechanism is configured.
    pub fn has_credentials(&self) -> bool {
        !self.users.is_empty() || !self.auth.jwt.is_empty() || self.auth.pre_authenticated
    }

    /// True if the zero-config development user `ditto`/`ditto` is active: listening on
    /// loopback with no users, JWT issuers or pre-authentication configured.
    pub fn dev_user_active(&self) -> bool {
        !self.has_credentials() && self.listen.ip().is_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_out_of_the_box() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert!(c.dev_user_active());
        assert!(c.problems().is_empty());
    }

    #[test]
    fn parses_fields_and_reports_lines() {
        let c = Config::from_toml(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/edgetwin\"\nstore = \"redb\"\n[[users]]\nname = \"a\"\npassword_hash = \"$argon2id$x\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(!c.dev_user_active());
        assert!(c.problems().is_empty());
        let e = Config::from_toml("listen = \"127.0.0.1:1\"\nbogus = 1\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let c = Config::from_toml("listen = \"0.0.0.0:9000\"\n").unwrap();
        assert_eq!(c.problems().len(), 1);
    }

    #[test]
    fn cache_budgets_are_settings() {
        let c = Config::from_toml("twin_cache_mib = 24\npolicy_cache_mib = 32\n").unwrap();
        assert_eq!((c.twin_cache_mib, c.policy_cache_mib), (24, 32));
        assert!(c.problems().is_empty());
        let c = Config::from_toml("policy_cache_mib = 0\n").unwrap();
        assert_eq!(
            c.problems(),
            vec!["policy_cache_mib must be at least 1".to_string()]
        );
        // the old count still loads (ignored, with a warning at start)
        let c = Config::from_toml("policy_cache = 100000\n").unwrap();
        assert_eq!(c.policy_cache, Some(100_000));
        assert!(c.problems().is_empty());
    }
}
