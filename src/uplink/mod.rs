//! The uplink: edgetwin as a client of a cloud Ditto. Local things of the mirrored namespaces
//! are mirrored into the cloud over Ditto's WebSocket (confirmed by `twin-persisted`,
//! conditional on the cloud revision), cloud changes of desired properties and cloud live
//! commands and messages come down through the hub, and everything keeps working offline: what
//! changed is derived from revisions and per-thing sync records in the store (docs/uplink.md).
//!
//! Pure core: `config`, `merge`, `record`, `plan`, `dirty`, `faults`, `wire`, `status`.
//! IO shells: `auth` (credentials), `client` (TCP/TLS/upgrade), `conn` (one session), `session`
//! (the reconnect loop), `sync` (jobs), `local` (the door into the hub), `live`, `gateway`.

pub mod auth;
pub mod client;
pub mod config;
pub mod conn;
pub mod dirty;
pub mod faults;
pub mod gateway;
pub mod live;
pub mod local;
pub mod merge;
pub mod plan;
pub mod record;
mod session;
pub mod status;
pub mod sync;
pub mod wire;

use crate::exec::Executor;
use crate::hub::Hub;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use sync::Shared;

/// What the rest of the process holds: the status for `/status/uplink`, and shutdown.
pub struct Handle {
    up: Option<Arc<Shared>>,
    url: String,
}

/// Starts the uplink unless `[uplink] url` is empty. A cloud that cannot be reached never
/// fails the start: the session loop keeps trying in the background.
pub fn start(cfg: &crate::config::Config, hub: Hub, ex: Arc<Executor>) -> Result<Handle, String> {
    let u = &cfg.uplink;
    let Some(url) = config::parse_url(&u.url)? else {
        return Ok(Handle::disabled());
    };
    let creds = auth::Credentials::from_config(u).ok_or("uplink: no credentials configured")?;
    let gateway = u.gateway(&host_name());
    let local = local::LocalSide::new(hub.clone(), &u.subject);
    let up = Shared::new(u.clone(), local, gateway.clone(), ex.clone());
    let weak = Arc::downgrade(&up);
    let hooked = hub.on_thing_change(Box::new(move |id, seq| {
        if let Some(up) = weak.upgrade() {
            if id.split_once(':').is_some_and(|(ns, _)| up.cfg.mirrors(ns)) {
                up.mark_local(id, seq);
            }
        }
    }));
    if !hooked {
        return Err("uplink: the hub's change hook is taken".into());
    }
    up.stats.scanning.store(true, Ordering::Relaxed);
    let scanner = up.clone();
    ex.spawn(async move {
        let up = scanner.clone();
        let found = smol::unblock(move || {
            let mut ids = Vec::new();
            let mirrors = |ns: &str| scanner.cfg.mirrors(ns);
            scanner
                .local
                .scan_dirty(&mirrors, |id| ids.push(id.to_owned()))
                .map(|()| ids)
        })
        .await;
        match found {
            Ok(ids) => {
                tracing::info!(dirty = ids.len(), "uplink: startup scan done");
                for id in ids {
                    up.mark_local(&id, 0);
                }
            }
            Err(e) => up.stats.fault(
                crate::clock::now_millis(),
                status::Kind::Local,
                format_args!("startup scan failed: {e}"),
            ),
        }
        up.stats.scanning.store(false, Ordering::Relaxed);
    })
    .detach();
    ex.spawn(sync::run_jobs(up.clone())).detach();
    ex.spawn(session::run(up.clone(), creds)).detach();
    tracing::info!(url = %url.to_url(), gateway = %gateway, "uplink: started");
    Ok(Handle {
        up: Some(up),
        url: url.to_url(),
    })
}

/// The host name (Linux), for the default gateway thing ID.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl Handle {
    /// A handle for a disabled uplink.
    pub fn disabled() -> Handle {
        Handle {
            up: None,
            url: String::new(),
        }
    }

    /// True if the uplink runs.
    pub fn enabled(&self) -> bool {
        self.up.is_some()
    }

    /// `connected`, `disconnected` or `disabled` (for `/status/health`).
    pub fn state(&self) -> &'static str {
        match &self.up {
            None => "disabled",
            Some(u) if u.stats.connected() => "connected",
            Some(_) => "disconnected",
        }
    }

    /// The `/status/uplink` document; with `thingId=<id>` in the query, also that thing's
    /// revisions (local, confirmed by the cloud, the cloud's) and whether it is pending.
    pub fn status(&self, query: Option<&str>) -> Value {
        let Some(up) = &self.up else {
            return status::disabled();
        };
        let mut v = up.stats.to_json(&self.url, &up.gateway);
        let id = query
            .and_then(crate::protocol::control::parse_query)
            .and_then(|q| q.into_iter().find(|(k, _)| k == "thingId").map(|(_, v)| v));
        if let Some(id) = id {
            let state = up.local.thing(&id).ok().flatten();
            let rec = up.local.record(&id).ok().flatten();
            v["thing"] = json!({
                "thingId": id,
                "localRevision": state.as_ref().filter(|s| !s.deleted).map(|s| s.revision),
                "syncedLocalRevision": rec.as_ref().map(|r| r.local_rev),
                "cloudRevision": rec.as_ref().map(|r| r.cloud_rev),
                "dirty": record::is_dirty(state.as_ref(), rec.as_ref()),
                "refused": up.stats.is_refused(&id),
            });
        }
        v
    }

    /// Shutdown: the gateway twin goes offline (at most a second) and the session closes.
    pub async fn stop(&self) {
        let Some(up) = &self.up else { return };
        up.stopping.store(true, Ordering::Release);
        up.stop.notify(usize::MAX);
        let until = std::time::Instant::now() + Duration::from_millis(1500);
        while up.link().is_some() && std::time::Instant::now() < until {
            smol::Timer::after(Duration::from_millis(20)).await;
        }
    }
}
