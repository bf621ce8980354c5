//! The session loop: read the credentials, connect (exponential backoff with a cap, reset after
//! a session that lasted), subscribe with `START-SEND-*` and wait for their acks, then keep the
//! gateway twin online, sweep the cloud revisions of every synced thing, hand a changed token
//! file to the open session (`JWT-TOKEN`), and sort what the cloud sends, until the session
//! ends; then the same again.

use super::auth::Credentials;
use super::client::{self, ConnectError};
use super::conn::{self, End, Handler, Link};
use super::faults::{backoff, FIRST_BACKOFF};
use super::status::{add, Kind};
use super::sync::Shared;
use super::wire::{self, Incoming};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A session that lasted this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(30);
/// How often the token file is looked at during a session.
const TOKEN_POLL: Duration = Duration::from_secs(1);
/// Largest frame from the cloud (a thing is at most 100 kB in Ditto; retrieve-multiple
/// answers of the sweep carry only IDs and revisions).
const MAX_FRAME: usize = 2 * 1024 * 1024;

/// Sorts what the cloud sends outside of answers.
struct CloudHandler {
    up: Arc<Shared>,
    link: Arc<Link>,
    acks: async_channel::Sender<String>,
}

impl Handler for CloudHandler {
    fn incoming(&self, frame: Incoming) {
        let now = crate::clock::now_millis();
        match frame {
            Incoming::Ack(t) => {
                let _ = self.acks.try_send(t);
            }
            Incoming::Event(id, rev) => {
                add(&self.up.stats.c.events, 1);
                if self.up.tracks(&id) {
                    self.up.mark_cloud(&id, rev);
                }
            }
            Incoming::Live(env) => super::live::deliver(&self.up, &self.link, *env),
            Incoming::Error(env) => {
                let (s, code, msg) = wire::error_of(&env);
                self.up.stats.fault(
                    now,
                    Kind::Connection,
                    format_args!("cloud: {s} {code}: {msg}"),
                );
            }
            Incoming::Malformed(why) => {
                add(&self.up.stats.c.malformed, 1);
                self.up
                    .stats
                    .fault(now, Kind::Protocol, format_args!("unreadable frame: {why}"));
            }
            Incoming::Answer(..) | Incoming::Other => {}
        }
    }
}

/// The credentials, shared by the session loop and the token watcher.
type Creds = Arc<Mutex<Credentials>>;

/// Runs sessions until shutdown.
pub async fn run(up: Arc<Shared>, creds: Credentials) {
    let creds: Creds = Arc::new(Mutex::new(creds));
    let Some(url) = up.cfg.cloud() else { return };
    let tls = match (url.tls, client::tls_config(up.cfg.ca_file.as_deref())) {
        (false, _) => None,
        (true, Ok(c)) => Some(c),
        (true, Err(e)) => {
            up.stats
                .fault(now(), Kind::Connection, format_args!("TLS setup: {e}"));
            None
        }
    };
    let timeout = Duration::from_secs(up.cfg.request_timeout_secs);
    let cap = Duration::from_secs(up.cfg.reconnect_max_secs);
    let mut failures = 0u32;
    while !up.stopping.load(Ordering::Acquire) {
        let started = Instant::now();
        match session(&up, &creds, &url, tls.as_ref(), timeout).await {
            Ok(end) => {
                let why = match &end {
                    End::Closed(r) => format!("closed by the cloud {r}"),
                    End::Failed(e) => e.clone(),
                    End::Stalled => format!("no sign of life for {}s (stalled)", timeout.as_secs()),
                    End::Local => "closed".into(),
                };
                // the fault is recorded before the status says disconnected
                if end != End::Local || !up.stopping.load(Ordering::Acquire) {
                    add(&up.stats.c.connection_errors, 1);
                    let fault = format_args!("session ended: {why}");
                    up.stats
                        .session_ended(now(), Some((Kind::Connection, fault)));
                } else {
                    up.stats.session_ended(now(), None);
                }
            }
            Err(e) => {
                add(&up.stats.c.connection_errors, 1);
                up.stats.fault(now(), Kind::Connection, format_args!("{e}"));
            }
        }
        failures = match started.elapsed() >= HEALTHY {
            true => 1,
            false => failures + 1,
        };
        let wait = backoff(failures, FIRST_BACKOFF, cap, fastrand::f64());
        up.stats
            .next_attempt
            .store(now() + wait.as_millis() as i64, Ordering::Relaxed);
        up.sleep(wait).await;
        up.stats.next_attempt.store(0, Ordering::Relaxed);
    }
}

fn now() -> i64 {
    crate::clock::now_millis()
}

/// One session: `Err` if it could not be opened, else how it ended (the caller marks it down,
/// `Stats::session_ended`).
async fn session(
    up: &Arc<Shared>,
    creds: &Creds,
    url: &super::config::CloudUrl,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<End, String> {
    let (header, exp) = {
        let mut c = creds.lock().unwrap_or_else(|e| e.into_inner());
        let header = c.header().map_err(|e| format!("credentials: {e}"))?;
        let exp = match &*c {
            Credentials::Bearer(f) => f.token().and_then(|t| t.expires),
            Credentials::Basic(_) => None,
        };
        (header, exp)
    };
    if let Some(exp) = exp {
        up.stats.token_expires.store(exp, Ordering::Relaxed);
        if exp > 0 && exp <= now() {
            return Err(format!(
                "the token in {} expired at {}; waiting for a new one",
                up.cfg
                    .token_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                crate::clock::format_millis(exp)
            ));
        }
    }
    let (socket, sent) = client::connect(url, &header, tls, timeout, MAX_FRAME)
        .await
        .map_err(|e| match e {
            ConnectError::Unauthorized(b) => {
                format!("the cloud refused the credentials (401): {b}")
            }
            other => format!("connecting to {}: {other}", url.to_url()),
        })?;
    add(&up.stats.c.sent_bytes, sent);
    let link = Link::new(up.cfg.max_in_flight, timeout, up.stats.clone());
    let (acks_tx, acks_rx) = async_channel::bounded(8);
    let handler = Arc::new(CloudHandler {
        up: up.clone(),
        link: link.clone(),
        acks: acks_tx,
    });
    let running = up.ex.spawn(conn::run(socket, link.clone(), handler));
    if let Err(e) = subscribe(up, &link, &acks_rx, timeout).await {
        link.close();
        running.await;
        return Err(e);
    }
    add(&up.stats.c.connects, 1);
    up.stats.set_connected(true, now());
    tracing::info!(url = %url.to_url(), "uplink: connected to the cloud");
    up.set_link(Some(link.clone()));
    let gateway = up
        .ex
        .spawn(super::gateway::keep_online(up.clone(), link.clone()));
    let sweep = up.ex.spawn(sweep(up.clone(), link.clone()));
    let watcher = up
        .ex
        .spawn(watch_token(up.clone(), link.clone(), creds.clone()));
    let stop = async {
        loop {
            let l = up.stop.listen();
            if up.stopping.load(Ordering::Acquire) {
                break;
            }
            l.await;
        }
        super::gateway::go_offline(up, &link, Duration::from_secs(1)).await;
        link.close();
    };
    let end = futures_lite::future::or(running, async {
        stop.await;
        End::Local
    })
    .await;
    link.close();
    up.set_link(None);
    drop((gateway.cancel(), sweep.cancel(), watcher.cancel()));
    Ok(end)
}

/// Sends the `START-SEND-*` messages and waits for each ack.
async fn subscribe(
    up: &Shared,
    link: &Link,
    acks: &async_channel::Receiver<String>,
    timeout: Duration,
) -> Result<(), String> {
    let subs = wire::subscriptions(&up.cfg.namespaces);
    for s in &subs {
        if !link.send(s.clone()).await {
            return Err("the session ended while subscribing".into());
        }
    }
    let deadline = Instant::now() + timeout;
    let mut missing: Vec<String> = subs
        .iter()
        .map(|s| s.split('?').next().unwrap_or_default().to_owned())
        .collect();
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let ack = futures_lite::future::or(async { acks.recv().await.ok() }, async {
            smol::Timer::after(left).await;
            None
        })
        .await
        .ok_or_else(|| {
            format!(
                "no acknowledgement of {} within {}s",
                missing.join(", "),
                timeout.as_secs()
            )
        })?;
        missing.retain(|m| ack.trim() != format!("{m}:ACK"));
    }
    Ok(())
}

/// While the session is up, hands a changed token to it (`JWT-TOKEN`, Ditto's refresh).
async fn watch_token(up: Arc<Shared>, link: Arc<Link>, creds: Creds) {
    while !link.is_closed() {
        smol::Timer::after(TOKEN_POLL).await;
        let fresh = {
            let mut c = creds.lock().unwrap_or_else(|e| e.into_inner());
            let Credentials::Bearer(f) = &mut *c else {
                return;
            };
            match f.refresh() {
                Ok(true) => f.token().cloned(),
                Ok(false) => None,
                Err(e) => {
                    up.stats
                        .fault(now(), Kind::Connection, format_args!("token file: {e}"));
                    None
                }
            }
        };
        if let Some(t) = fresh {
            up.stats
                .token_expires
                .store(t.expires.unwrap_or(0), Ordering::Relaxed);
            tracing::info!("uplink: token file changed, refreshing the session's token");
            link.send(wire::jwt_refresh(&t.jwt)).await;
        }
    }
}

/// After a (re)connect: compares the cloud revision of every synced thing with its record
/// (retrieve-multiple, `wire::SWEEP_BATCH` at a time) and marks those the cloud changed or
/// lost while the box was away.
async fn sweep(up: Arc<Shared>, link: Arc<Link>) {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let super::local::Page {
            last,
            len: n,
            records: page,
        } = match up.local.records_page(after.as_deref(), wire::SWEEP_BATCH) {
            Ok(p) => p,
            Err(e) => {
                up.stats.fault(
                    now(),
                    Kind::Local,
                    format_args!("sweep: store read failed: {e}"),
                );
                return;
            }
        };
        let Some(last) = last else {
            return;
        };
        let known: HashMap<String, u64> = page
            .iter()
            .filter(|(id, _)| id.split_once(':').is_some_and(|(ns, _)| up.cfg.mirrors(ns)))
            .map(|(id, rec)| (id.clone(), rec.cloud_rev))
            .collect();
        if !known.is_empty() {
            let ids: Vec<String> = known.keys().cloned().collect();
            let cid = crate::protocol::headers::new_correlation_id();
            let text = wire::retrieve_revisions(&ids, &cid, up.cfg.request_timeout_secs);
            let Ok(answer) = link.request(text, &cid).await else {
                return;
            };
            if answer.status.unwrap_or(500) >= 400 {
                let (s, code, msg) = wire::error_of(&answer);
                up.stats
                    .fault(now(), Kind::Cloud, format_args!("sweep: {s} {code}: {msg}"));
                return;
            }
            let seen: HashMap<String, u64> = wire::revisions_of(&answer).into_iter().collect();
            for (id, rev) in &known {
                match seen.get(id) {
                    Some(r) if r == rev => {}
                    Some(r) => up.mark_cloud(id, Some(*r)),
                    None => up.mark_cloud(id, None),
                }
            }
        }
        if n < wire::SWEEP_BATCH {
            return;
        }
        after = Some(last);
    }
}
