//! Running as a service: systemd readiness and watchdog (`notify`), log routing to journald or
//! text (`logging`), `check-config` (`check`), the `edgetwin ws` client (`ws_client`) and
//! `edgetwin backup`/`restore` (`backup`). `Systemd` is what `app::run` talks to; all of it is
//! a no-op when the process was not started by systemd.

pub mod backup;
pub mod check;
pub mod logging;
pub mod loglevel;
pub mod notify;
pub mod ws_client;

use notify::Notifier;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The service manager as seen from the process (absent outside systemd).
#[derive(Debug, Clone, Default)]
pub struct Systemd {
    notifier: Option<Arc<Notifier>>,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID`.
    pub fn from_env() -> Systemd {
        let notifier = Notifier::from_env().map(Arc::new);
        let watchdog = notifier.as_ref().and(notify::watchdog_from_env());
        Systemd { notifier, watchdog }
    }

    fn send(&self, state: &str) {
        if let Some(n) = &self.notifier {
            if let Err(e) = n.notify(state) {
                tracing::warn!(error = %e, state, "sd_notify failed");
            }
        }
    }

    /// `READY=1`: the store is open and the listener is bound.
    pub fn ready(&self, addr: SocketAddr) {
        self.send(&format!("READY=1\nSTATUS=listening on {addr}"));
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// The watchdog loop, to be spawned ON THE EXECUTOR that serves requests: it pings
    /// `WATCHDOG=1` every half timeout while `healthy()` holds, so a stuck executor stops
    /// pinging and systemd restarts the service; once `healthy()` fails it sends
    /// `WATCHDOG=trigger` and stops. `None` if systemd did not ask for a watchdog.
    pub fn watchdog_task(
        &self,
        healthy: impl Fn() -> Result<(), String> + Send + 'static,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let (n, timeout) = (self.notifier.clone()?, self.watchdog?);
        let every = notify::ping_interval(timeout);
        tracing::info!(?timeout, "systemd watchdog enabled");
        Some(async move {
            loop {
                match healthy() {
                    Ok(()) => {
                        if let Err(e) = n.notify("WATCHDOG=1") {
                            tracing::warn!(error = %e, "watchdog ping failed");
                        }
                    }
                    Err(why) => {
                        tracing::error!(reason = %why, "unhealthy: asking systemd to restart the service");
                        // WATCHDOG=trigger acts at once (systemd >= 243); older ones time out.
                        let _ = n.notify(&format!("STATUS=unhealthy: {why}\nWATCHDOG=trigger"));
                        return;
                    }
                }
                smol::Timer::after(every).await;
            }
        })
    }
}
