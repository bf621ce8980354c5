//! The uplink: edgetwin as a client of a cloud Ditto. Local things of the mirrored namespaces
//! are mirrored into the cloud over Ditto's WebSocket (confirmed by `twin-persisted`,
//! conditional on the cloud revision), cloud changes of desired properties and cloud live
//! commands and messages come down through the hub, and everything keeps working offline: what
//! changed is derived from revisions and per-thing sync records in the store (docs/uplink.md).
//!
//! Pure core: `config`, `merge`, `record`, `plan`, `faults`, `wire`, `status`.
//! IO shells: `auth` (credentials), `client` (TCP/TLS/upgrade), `conn` (one session).

pub mod auth;
pub mod client;
pub mod config;
pub mod conn;
pub mod faults;
pub mod merge;
pub mod plan;
pub mod record;
pub mod status;
pub mod wire;

use std::sync::Arc;

/// What the rest of the process holds: the status for `/status/uplink`, and shutdown.
pub struct Handle {
    stats: Option<Arc<status::Stats>>,
    url: String,
    gateway: String,
}

impl Handle {
    /// A handle for a disabled uplink.
    pub fn disabled() -> Handle {
        Handle {
            stats: None,
            url: String::new(),
            gateway: String::new(),
        }
    }

    /// True if the uplink runs.
    pub fn enabled(&self) -> bool {
        self.stats.is_some()
    }

    /// `connected`, `disconnected` or `disabled` (for `/status/health`).
    pub fn state(&self) -> &'static str {
        match &self.stats {
            None => "disabled",
            Some(s) if s.connected() => "connected",
            Some(_) => "disconnected",
        }
    }

    /// The `/status/uplink` document.
    pub fn status(&self) -> serde_json::Value {
        match &self.stats {
            None => status::disabled(),
            Some(s) => s.to_json(&self.url, &self.gateway),
        }
    }
}
