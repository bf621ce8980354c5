//! History in the hub: installing it and the retention thread (counts what is kept at start,
//! then sweeps a step at a time under the per-entity locks, so that a sweep never interleaves
//! with a write of the same entity).

use super::Hub;
use crate::history::{History, HistoryConfig, Kind};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Pause between sweep steps when the last one found nothing more to do.
const IDLE: Duration = Duration::from_secs(1);

/// The running retention thread; `stop` ends it (before the store closes).
pub struct Retention {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Retention {
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Retention {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Hub {
    /// Keeps history from now on as `cfg` says, with its retention thread (`None` when off).
    pub fn start_history(&self, cfg: HistoryConfig) -> Result<Option<Retention>, String> {
        if !cfg.enabled {
            return Ok(None);
        }
        let history = Arc::new(History::new(cfg, self.store().clone()));
        // before any write of this run (writes store the totals once they are known)
        let loaded = history
            .load_counts()
            .map_err(|e| format!("history: reading its totals: {e}"))?;
        self.set_history(history.clone());
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (hub, flag) = (self.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("history-retention".into())
            .stack_size(crate::bounds::THREAD_STACK_BYTES)
            .spawn(move || hub.retention_loop(&history, &flag, loaded))
            .map_err(|e| format!("spawn history retention thread: {e}"))?;
        Ok(Some(Retention {
            stop,
            thread: Some(thread),
        }))
    }

    fn retention_loop(&self, history: &History, stop: &(Mutex<bool>, Condvar), loaded: bool) {
        let stopped = || *stop.0.lock().unwrap_or_else(|e| e.into_inner());
        if !loaded {
            if let Err(e) = history.count() {
                tracing::error!(error = %e, "history: counting what is kept failed");
            }
        }
        let locked = |kind: Kind, id: &str, f: &mut dyn FnMut()| {
            let key = match kind {
                Kind::Thing => id.to_owned(),
                Kind::Policy => format!("policy:{id}"),
            };
            smol::block_on(self.store().ready());
            let _g = self
                .lock_for(&key)
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            f();
        };
        while !stopped() {
            let more = match history.sweep(self.now(), &locked) {
                Ok(s) => s.more,
                Err(e) => {
                    tracing::error!(error = %e, "history retention step failed");
                    false
                }
            };
            if !more {
                let g = stop.0.lock().unwrap_or_else(|e| e.into_inner());
                if !*g {
                    let _ = stop.1.wait_timeout(g, IDLE);
                }
            }
        }
    }
}
