//! Process wiring: opens the store, builds the hub and server state, runs the executor on the
//! configured number of threads, prints the bound address, tells systemd READY (and pings its
//! watchdog from the executor), and shuts down gracefully on SIGTERM/SIGINT (stop accepting,
//! commit pending writes while replies go out, close the store, exit 0).

use crate::auth::Authenticator;
use crate::config::Config;
use crate::exec::Executor;
use crate::hub::Hub;
use crate::ops::Systemd;
use crate::server;
use crate::state::State;
use crate::store::Store;
use futures_lite::StreamExt;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait at shutdown for submitted writes to commit while sessions deliver their replies.
const DRAIN: Duration = Duration::from_secs(2);

/// With the listener closed, keeps the executor running until every submitted write is durable
/// (so replies waiting for the disk still reach their clients), at most `DRAIN`. Whatever is
/// left after that is written by `Store::close`.
async fn drain(store: &Store) {
    let durable = store.durable(store.last_seq());
    let timeout = async {
        smol::Timer::after(DRAIN).await;
        Ok(())
    };
    let _ = futures_lite::future::or(durable, timeout).await;
    // One more turn so writer tasks woken by the last sync can send their frames.
    smol::Timer::after(Duration::from_millis(20)).await;
}

/// Number of executor threads for a config value (0 = CPUs, capped at 4). One thread per two
/// CPUs was tried (round 8, exe8): 0.8 instead of 2.2 switches and 20-37 % less CPU per command
/// at 10 % load, but on a quiet 2-CPU machine 25-30 % less throughput at peak and one command
/// at a time, and no better event p99 (BENCHMARKS.md, "End of the Dec 7 night session").
/// The workers run `exec::Executor`, which keeps a woken task on the thread that woke it
/// (round 9, lat9); against it `threads = 1` still costs 5-33 % less CPU per command at 10 %
/// load on 2 CPUs and about the same at peak (round 10, lat10): the setting for a box that idles.
pub fn thread_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
}

/// Runs edgetwin until SIGTERM or SIGINT.
pub fn run(cfg: Config) -> Result<(), String> {
    let problems = cfg.problems();
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let kind = cfg.store.resolve(&cfg.data_dir)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("data dir {}: {e}", cfg.data_dir.display()))?;
    let opts = cfg.store.options(cfg.cache_mib * 1024 * 1024);
    let store = Store::open_with(kind, &cfg.data_dir, &opts).map_err(|e| format!("store: {e}"))?;
    tracing::info!(backend = store.backend_name(), dir = %cfg.data_dir.display(),
        flush_interval_ms = cfg.store.flush_interval_ms, "store open");
    // search index: rebuilt from the things if missing or of an old format (src/search)
    crate::search::ensure_index(&store).map_err(|e| format!("search index: {e}"))?;
    // policy expiry index: built once for data dirs from before it (src/policy/expiry_index.rs)
    crate::policy::expiry_index::ensure_index(&store)
        .map_err(|e| format!("policy expiry index: {e}"))?;
    let tls = cfg.tls.acceptor()?;
    if tls.is_none() && !cfg.listen.ip().is_loopback() && !cfg.users.is_empty() {
        tracing::warn!(listen = %cfg.listen, "HTTP Basic passwords cross the network in clear text: configure [tls] (cert_file, key_file)");
    }
    if cfg.dev_user_active() {
        tracing::warn!("development user 'ditto'/'ditto' is active (no users configured, loopback only); configure [[users]] for real use");
    }
    let ex = Arc::new(Executor::new());
    let (listener, addr) = smol::block_on(server::bind(cfg.listen))
        .map_err(|e| format!("listen {}: {e}", cfg.listen))?;
    let threads = thread_count(cfg.threads);
    let hub = Hub::new(store.clone());
    hub.set_max_pending(cfg.limits.max_pending_requests);
    hub.set_twin_cache((cfg.twin_cache_mib as usize).saturating_mul(1 << 20));
    hub.set_policy_cache_bytes((cfg.policy_cache_mib as usize).saturating_mul(1 << 20));
    if let Some(n) = cfg.policy_cache {
        tracing::warn!(policy_cache = n, "policy_cache is deprecated and ignored: the policy cache is bounded in bytes by policy_cache_mib");
    }
    hub.access_map()
        .set_max_bytes((cfg.search.count_map_kib as usize).saturating_mul(1024));
    // history of things and policies, and its retention thread (src/history)
    let retention = hub.start_history(cfg.history.clone())?;
    // MQTT device bridge: never fails the start because of the broker (it reconnects)
    let mqtt = crate::mqtt::start(&cfg, hub.clone(), ex.clone())?;
    let conns = crate::conn::Tracker::new(&cfg.limits);
    // uplink to a cloud Ditto: never fails the start because of the cloud (it reconnects)
    let uplink = crate::uplink::start(&cfg, hub.clone(), ex.clone())?;
    let st = Arc::new(State {
        hub,
        conns,
        auth: Authenticator::new(&cfg),
        cfg,
        ex: ex.clone(),
        mqtt,
        tls,
        uplink,
    });
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let workers: Vec<_> = (1..threads)
        .map(|i| {
            let (ex, stop) = (ex.clone(), stop_rx.clone());
            std::thread::Builder::new()
                .name(format!("edgetwin-{i}"))
                .stack_size(crate::bounds::THREAD_STACK_BYTES)
                .spawn(move || smol::block_on(ex.run(stop.recv())))
                .map_err(|e| format!("spawn thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(|e| format!("signals: {e}"))?;
    tracing::info!(%addr, threads, tls = st.tls.is_some(), "edgetwin listening");
    let _ = writeln!(std::io::stdout(), "edgetwin listening on {addr}");
    let _ = std::io::stdout().flush();
    let systemd = Systemd::from_env();
    systemd.ready(addr);
    smol::block_on(ex.run(async {
        let accept = ex.spawn(server::accept_loop(st.clone(), listener));
        // subject expiry + policy announcements (auth + policies)
        let policy_timer = ex.spawn(st.hub.clone().run_policy_timer());
        let health = store.clone();
        // a full disk is no reason to restart (it would not help): only a failed store is
        let watchdog = systemd.watchdog_task(move || match health.is_failed() {
            true => Err("store failed (fail-stop); a restart recovers what was durable".into()),
            false => Ok(()),
        });
        let watchdog = watchdog.map(|w| ex.spawn(w));
        let sig = signals.next().await;
        tracing::info!(signal = ?sig, "shutting down");
        systemd.stopping();
        drop(accept.cancel());
        drop(policy_timer.cancel());
        drain(&store).await;
        st.uplink.stop().await;
        if let Some(r) = retention {
            r.stop();
        }
        drop(watchdog);
        st.mqtt.stop();
    }));
    stop_tx.close();
    for w in workers {
        let _ = w.join();
    }
    store.close().map_err(|e| format!("store close: {e}"))?;
    tracing::info!("store closed, bye");
    Ok(())
}
