//! Process wiring: opens the store, builds the hub and server state, runs the executor on the
//! configured number of threads, prints the bound address, and shuts down gracefully on
//! SIGTERM/SIGINT (stop accepting, commit pending writes, close the store).

use crate::auth::Authenticator;
use crate::config::Config;
use crate::hub::Hub;
use crate::server::{self, State};
use crate::store::{BackendKind, Store};
use futures_lite::StreamExt;
use smol::Executor;
use std::io::Write;
use std::sync::Arc;

/// Number of executor threads for a config value (0 = CPUs, capped at 4).
pub fn thread_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

/// Runs edgetwin until SIGTERM or SIGINT.
pub fn run(cfg: Config) -> Result<(), String> {
    let problems = cfg.problems();
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let kind: BackendKind = cfg.store.parse().map_err(|e| format!("{e}"))?;
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("data dir {}: {e}", cfg.data_dir.display()))?;
    let store = Store::open(kind, &cfg.data_dir, cfg.cache_mib * 1024 * 1024)
        .map_err(|e| format!("store: {e}"))?;
    tracing::info!(backend = store.backend_name(), dir = %cfg.data_dir.display(), "store open");
    // search index: rebuilt from the things if missing or of an old format (src/search)
    crate::search::ensure_index(&store).map_err(|e| format!("search index: {e}"))?;
    if cfg.dev_user_active() {
        tracing::warn!("development user 'ditto'/'ditto' is active (no users configured, loopback only); configure [[users]] for real use");
    }
    let ex = Arc::new(Executor::new());
    let (listener, addr) = smol::block_on(server::bind(cfg.listen))
        .map_err(|e| format!("listen {}: {e}", cfg.listen))?;
    let threads = thread_count(cfg.threads);
    let hub = Hub::new(store.clone());
    hub.set_max_pending(cfg.limits.max_pending_requests);
    let st = Arc::new(State {
        hub,
        auth: Authenticator::new(&cfg),
        cfg,
        ex: ex.clone(),
    });
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let workers: Vec<_> = (1..threads)
        .map(|i| {
            let (ex, stop) = (ex.clone(), stop_rx.clone());
            std::thread::Builder::new()
                .name(format!("edgetwin-{i}"))
                .spawn(move || smol::block_on(ex.run(stop.recv())))
                .map_err(|e| format!("spawn thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    tracing::info!(%addr, threads, "edgetwin listening");
    println!("edgetwin listening on {addr}");
    let _ = std::io::stdout().flush();
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(|e| format!("signals: {e}"))?;
    smol::block_on(ex.run(async {
        let accept = ex.spawn(server::accept_loop(st.clone(), listener));
        // subject expiry + policy announcements (auth + policies)
        let policy_timer = ex.spawn(st.hub.clone().run_policy_timer());
        let sig = signals.next().await;
        tracing::info!(signal = ?sig, "shutting down");
        drop(accept.cancel());
        drop(policy_timer.cancel());
    }));
    stop_tx.close();
    for w in workers {
        let _ = w.join();
    }
    store.close().map_err(|e| format!("store close: {e}"))?;
    tracing::info!("store closed, bye");
    Ok(())
}
