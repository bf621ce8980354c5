//! The sync shell: the state the uplink's tasks share, the runner that takes dirty things
//! while a session is open (at most `max_in_flight` jobs at once), and one job: it waits until
//! the local change is durable, reads the thing and its record, and drives `plan::Job` with the
//! cloud's and the hub's answers until the record can be stored.

use super::config::UplinkConfig;
use super::conn::{Link, LinkError};
use super::dirty::{Dirty, Outcome, Work};
use super::local::LocalSide;
use super::plan::{CloudCmd, CloudReply, Job, Side, Step};
use super::status::{add, Kind, Refusal, Stats};
use super::wire;
use crate::exec::Executor;
use event_listener::Event;
use smol::lock::Semaphore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the uplink's tasks share.
pub struct Shared {
    /// `[uplink]`
    pub cfg: UplinkConfig,
    /// the door into the hub
    pub local: LocalSide,
    /// status and counters
    pub stats: Arc<Stats>,
    /// the gateway thing's ID
    pub gateway: String,
    /// the executor
    pub ex: Arc<Executor>,
    dirty: Mutex<Dirty>,
    work: Event,
    link: Mutex<Option<Arc<Link>>>,
    link_changed: Event,
    /// set once shutting down
    pub stopping: AtomicBool,
    /// notified on `stopping`
    pub stop: Event,
    /// cloud live commands / messages being delivered locally at once
    pub live_slots: Arc<Semaphore>,
}

impl Shared {
    /// The shared state (no tasks started).
    pub fn new(
        cfg: UplinkConfig,
        local: LocalSide,
        gateway: String,
        ex: Arc<Executor>,
    ) -> Arc<Shared> {
        let live = cfg.max_in_flight.max(1) * 4;
        Arc::new(Shared {
            cfg,
            local,
            stats: Arc::new(Stats::default()),
            gateway,
            ex,
            dirty: Mutex::new(Dirty::default()),
            work: Event::new(),
            link: Mutex::new(None),
            link_changed: Event::new(),
            stopping: AtomicBool::new(false),
            stop: Event::new(),
            live_slots: Arc::new(Semaphore::new(live)),
        })
    }

    fn dirty(&self) -> std::sync::MutexGuard<'_, Dirty> {
        self.dirty.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_pending(&self, d: &Dirty) {
        self.stats.pending.store(d.pending(), Ordering::Relaxed);
    }

    /// A local change of a thing (the hub's change hook and the startup scan).
    pub fn mark_local(&self, id: &str, seq: u64) {
        let mut d = self.dirty();
        d.mark_local(id, seq);
        self.publish_pending(&d);
        drop(d);
        self.stats.unrefuse(id);
        self.work.notify(1);
    }

    /// A cloud change of a thing (an event, or the revision sweep).
    pub fn mark_cloud(&self, id: &str, rev: Option<u64>) {
        self.dirty().mark_cloud(id, rev);
        self.stats.unrefuse(id);
        self.work.notify(1);
    }

    /// True if the thing is mirrored: its namespace is, and it exists here or has a record.
    pub fn tracks(&self, id: &str) -> bool {
        let ns_ok = id
            .split_once(':')
            .is_some_and(|(ns, _)| self.cfg.mirrors(ns));
        ns_ok
            && (matches!(self.local.thing(id), Ok(Some(_)))
                || matches!(self.local.record(id), Ok(Some(_))))
    }

    /// The open session, if any.
    pub fn link(&self) -> Option<Arc<Link>> {
        self.link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|l| !l.is_closed())
    }

    /// Sets (or clears) the open session.
    pub fn set_link(&self, link: Option<Arc<Link>>) {
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = link;
        self.link_changed.notify(usize::MAX);
    }

    /// Sleeps for `d`, or less if shutting down.
    pub async fn sleep(&self, d: Duration) {
        let stop = self.stop.listen();
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        futures_lite::future::or(
            async {
                smol::Timer::after(d).await;
            },
            stop,
        )
        .await;
    }

    async fn wait_link(&self) -> Arc<Link> {
        loop {
            let changed = self.link_changed.listen();
            if let Some(l) = self.link() {
                return l;
            }
            changed.await;
        }
    }

    async fn next_work(&self) -> (String, Work) {
        loop {
            let listener = self.work.listen();
            let due = {
                let mut d = self.dirty();
                let due = d.promote(crate::clock::now_millis());
                if let Some(w) = d.take() {
                    return w;
                }
                due
            };
            match due {
                Some(at) => {
                    let wait = (at - crate::clock::now_millis()).max(1) as u64;
                    futures_lite::future::or(listener, async {
                        smol::Timer::after(Duration::from_millis(wait)).await;
                    })
                    .await
                }
                None => listener.await,
            }
        }
    }

    fn finish(&self, id: &str, outcome: &Outcome) {
        let cap = Duration::from_secs(self.cfg.reconnect_max_secs);
        let mut d = self.dirty();
        d.finish(
            id,
            outcome,
            crate::clock::now_millis(),
            cap,
            self.cfg.max_attempts,
            fastrand::f64(),
        );
        self.publish_pending(&d);
        drop(d);
        self.work.notify(1);
    }
}

/// Takes dirty things while a session is open, at most `max_in_flight` jobs at once.
pub async fn run_jobs(up: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(up.cfg.max_in_flight.max(1)));
    loop {
        let link = up.wait_link().await;
        let permit = slots.acquire_arc().await;
        let (id, work) = futures_lite::future::or(async { Some(up.next_work().await) }, async {
            // a session that ends while nothing is due: wait for the next one
            while !link.is_closed() {
                let changed = up.link_changed.listen();
                if link.is_closed() {
                    break;
                }
                changed.await;
            }
            None
        })
        .await
        .unzip();
        let (Some(id), Some(work)) = (id, work) else {
            continue;
        };
        let up2 = up.clone();
        up.ex
            .spawn(async move {
                let outcome = job(&up2, &link, &id, work).await;
                up2.finish(&id, &outcome);
                drop(permit);
            })
            .detach();
    }
}

/// Reconciles one thing.
async fn job(up: &Shared, link: &Link, id: &str, work: Work) -> Outcome {
    // The change is not waited for to be durable (that would force a sync nobody asked for):
    // the store keeps a prefix of the writes after a crash, so the record this job writes
    // later is never kept without the change; a change the cloud got but the edge lost comes
    // back down as a cloud change (the revision sweep after the reconnect finds it).
    tracing::debug!(
        thing = id,
        seq = work.seq,
        local = work.local,
        cloud = work.cloud,
        "uplink: job"
    );
    let (local, rec) = match (up.local.local(id), up.local.record(id)) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(e), _) | (_, Err(crate::store::StoreError(e))) => {
            up.stats.fault(
                now(),
                Kind::Local,
                format_args!("'{id}': store read failed: {e}"),
            );
            return Outcome::Retry { fault: true };
        }
    };
    let cloud_changed = work.cloud
        && (work.cloud_rev == 0 || rec.as_ref().is_none_or(|r| work.cloud_rev > r.cloud_rev));
    let mut job = Job::new(
        id,
        up.cfg.policy_id.as_deref(),
        local,
        rec.clone(),
        cloud_changed,
    );
    let mut step = job.start();
    loop {
        step = match step {
            Step::Cloud(cmd) => match cloud(up, link, id, &cmd).await {
                Ok(reply) => job.on_cloud(reply),
                Err(outcome) => return outcome,
            },
            Step::Local(cmd) => {
                let r = up.local.apply(id, &cmd).await;
                if r.is_ok() {
                    add(&up.stats.c.down, 1);
                }
                job.on_local(r)
            }
            Step::Restart => match up.local.local(id) {
                Ok(l) => job.restart(l),
                Err(_) => return Outcome::Retry { fault: true },
            },
            Step::Done(new) => {
                if new != rec {
                    up.local.save(id, new.as_ref());
                }
                return Outcome::Synced;
            }
            Step::Clean => return Outcome::Synced,
            Step::Refused {
                side,
                status,
                error,
            } => {
                let (kind, side) = match side {
                    Side::Cloud => (Kind::Cloud, "cloud"),
                    Side::Local => (Kind::Local, "local"),
                };
                up.stats.fault(
                    now(),
                    kind,
                    format_args!("'{id}' refused by the {side} ({status}): {error}"),
                );
                let at = now();
                let r = Refusal {
                    side,
                    status,
                    error,
                    at,
                };
                up.stats.refuse(id, r);
                return Outcome::Refused;
            }
            Step::Retry {
                status,
                error,
                fault,
            } => {
                add(&up.stats.c.retries, 1);
                up.stats.fault(
                    now(),
                    Kind::Cloud,
                    format_args!("'{id}' failed ({status}), retrying: {error}"),
                );
                return Outcome::Retry { fault };
            }
        };
    }
}

fn now() -> i64 {
    crate::clock::now_millis()
}

/// Sends one command and turns the answer into a `CloudReply` (counted); `Err` when the
/// session ended or the answer did not come in time.
async fn cloud(up: &Shared, link: &Link, id: &str, cmd: &CloudCmd) -> Result<CloudReply, Outcome> {
    let cid = crate::protocol::headers::new_correlation_id();
    let Some(text) = wire::command(id, cmd, &cid, up.cfg.request_timeout_secs) else {
        return Ok(CloudReply::Err {
            status: 400,
            code: "things:id.invalid".into(),
            message: format!("'{id}' is no valid thing ID"),
        });
    };
    let env = match link.request(text, &cid).await {
        Ok(env) => env,
        Err(LinkError::Closed) => return Err(Outcome::Interrupted),
        Err(LinkError::Timeout) => {
            up.stats.fault(
                now(),
                Kind::Connection,
                format_args!(
                    "no answer about '{id}' within {}s",
                    up.cfg.request_timeout_secs
                ),
            );
            return Err(Outcome::Retry { fault: false });
        }
    };
    let status = env.status.unwrap_or(500);
    let c = &up.stats.c;
    if status >= 400 {
        let (status, code, message) = wire::error_of(&env);
        if matches!(status, 409 | 412) {
            add(&c.stale, 1);
        }
        if status == 401 {
            // credentials gone stale in the session: reconnect with fresh ones
            link.close();
            return Err(Outcome::Interrupted);
        }
        return Ok(CloudReply::Err {
            status,
            code,
            message,
        });
    }
    add(
        match cmd {
            CloudCmd::Retrieve => &c.retrieved,
            CloudCmd::Create(_) => &c.created,
            CloudCmd::Patch { .. } => &c.updated,
            CloudCmd::Delete => &c.deleted,
        },
        1,
    );
    Ok(CloudReply::Ok {
        revision: wire::revision_of(&env.headers),
        thing: env.value,
    })
}
