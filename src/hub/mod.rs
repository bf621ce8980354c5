//! The hub routes signals between the bindings and the core: twin commands to the engine under
//! a per-thing lock (one writer per thing, order preserved), writes to the store (group commit),
//! events to subscribed sessions once durable, the live channel (live commands, live events,
//! messages) and the correlation of their answers and acknowledgements.

pub mod events;
pub mod history;
pub mod history_read;
pub mod history_stream;
mod history_write;
pub mod ordered;
mod permissions;
pub mod policy;
mod publisher;
pub use publisher::Gate;
pub mod session;
pub mod twin;
mod twins;
// ---- live channel, messages and acknowledgements ----
pub mod acks;
mod correlate;
pub mod dispatch;
mod fanout;
pub mod live;
pub mod live_errors;
pub mod messages;
pub mod pending;
pub mod waiter;
// ----

pub use dispatch::Answer;
pub use session::{Outbound, OutboundRx, SessionHandle, StreamKind, Subscription};
pub use twin::{Reply, TwinDone};

use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

const LOCK_SHARDS: usize = 256;

/// The two durability classes of a write (what the requester waits for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Someone waits for it to be on disk (`twin-persisted` / `search-persisted` requested, the
    /// default of client commands): answered once synced (group commit), and its event is
    /// published only then.
    Waited,
    /// Nobody waits (`requested-acks: []`, `response-required: false`, MQTT telemetry): on disk
    /// within `store.flush_interval_ms` together with every other write of that interval, a
    /// crash loses at most that interval; its event is published at once.
    Interval,
}

impl Durability {
    /// `Waited` if the requester waits for the write to be persisted.
    pub fn waited_if(persisted: bool) -> Durability {
        if persisted {
            Durability::Waited
        } else {
            Durability::Interval
        }
    }
}

/// Told of every thing write: the thing ID and the store sequence of the write. Called under
/// the thing's lock right after the submit, once reads (the twin cache too) see the change; it
/// must return at once (the uplink marks the thing dirty, src/uplink/sync.rs).
pub type ChangeHook = Box<dyn Fn(&str, u64) + Send + Sync>;

/// Who sends a request: the authorization subjects and, for a WS session, its id (events caused
/// by a session are not echoed back to it).
#[derive(Debug, Clone)]
pub struct Requester {
    /// subjects, first = default subject
    pub subjects: Arc<[String]>,
    /// originating session
    pub origin: Option<u64>,
}

impl Requester {
    /// The default (first) subject.
    pub fn subject(&self) -> &str {
        self.subjects.first().map(String::as_str).unwrap_or("")
    }
}

pub(crate) struct Inner {
    store: Store,
    publisher: Arc<publisher::Shared>,
    locks: Vec<Mutex<()>>,
    sessions: RwLock<HashMap<u64, Arc<SessionHandle>>>,
    subscribers: RwLock<HashMap<StreamKind, Vec<Arc<SessionHandle>>>>,
    next_session: AtomicU64,
    policies: policy::Policies,
    pending: Mutex<pending::Table>,
    twins: Mutex<twins::Twins>,
    change_hook: OnceLock<ChangeHook>,
    history: OnceLock<Arc<crate::history::History>>,
}

/// Cheap-to-clone handle on the hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// A hub over an open store.
    pub fn new(store: Store) -> Hub {
        let events = Arc::new(publisher::Shared::default());
        let hub = Hub {
            inner: Arc::new(Inner {
                store: store.clone(),
                publisher: events.clone(),
                locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
                sessions: RwLock::new(HashMap::new()),
                subscribers: RwLock::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                policies: policy::Policies::default(),
                pending: Mutex::new(pending::Table::new(correlate::DEFAULT_MAX_PENDING)),
                twins: Mutex::default(),
                change_hook: OnceLock::new(),
                history: OnceLock::new(),
            }),
        };
        publisher::start(Arc::downgrade(&hub.inner), store, events);
        hub
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Installs the hook told of every thing write (at most one; the uplink). False if one
    /// was installed already.
    pub fn on_thing_change(&self, hook: ChangeHook) -> bool {
        self.inner.change_hook.set(hook).is_ok()
    }

    /// Keeps history of things and policies from now on (at most once; `app` at start).
    pub fn set_history(&self, history: Arc<crate::history::History>) -> bool {
        self.inner.history.set(history).is_ok()
    }

    /// The history, if it is kept.
    pub fn history(&self) -> Option<&Arc<crate::history::History>> {
        self.inner.history.get().filter(|h| h.enabled())
    }

    /// Tells the change hook, if any, that `thing_id` was written by store sequence `seq`.
    pub(crate) fn thing_changed(&self, thing_id: &str, seq: u64) {
        if let Some(h) = self.inner.change_hook.get() {
            h(thing_id, seq);
        }
    }

    /// The lock serializing all changes of one thing.
    fn twins(&self) -> std::sync::MutexGuard<'_, twins::Twins> {
        self.inner.twins.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_for(&self, thing_id: &str) -> &Mutex<()> {
        // FNV-1a: cheap and stable; only spreads IDs over shards.
        let h = thing_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        &self.inner.locks[(h % LOCK_SHARDS as u64) as usize]
    }

    /// Registers a new session and returns its handle and outbound queue.
    pub fn open_session(
        &self,
        subjects: Arc<[String]>,
        queue: usize,
        max_inflight: usize,
    ) -> (Arc<SessionHandle>, OutboundRx) {
        let id = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let (h, rx) = SessionHandle::new(id, subjects, queue, max_inflight);
        self.inner
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, h.clone());
        (h, rx)
    }

    /// Removes a session and all its subscriptions; its pending requests are dropped and what
    /// it owed (live answers, acks) is answered for it at once.
    pub fn close_session(&self, id: u64) {
        if let Some(h) = self
            .inner
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        {
            h.close();
        }
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for list in subs.values_mut() {
            list.retain(|s| s.id != id);
        }
        drop(subs);
        // after the session is marked closed: a concurrent fan-out either sees it closed or
        // records it before this runs (both under the pending lock, see `acks_dispatched`)
        self.pending().session_closed(id);
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Starts (or replaces) a subscription of a session.
    pub fn subscribe(&self, session: &Arc<SessionHandle>, kind: StreamKind, sub: Subscription) {
        session.subscribe(kind, sub);
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let list = subs.entry(kind).or_default();
        if !list.iter().any(|s| s.id == session.id) {
            list.push(session.clone());
        }
    }

    /// Stops a subscription of a session.
    pub fn unsubscribe(&self, session: &SessionHandle, kind: StreamKind) {
        session.unsubscribe(kind);
        let mut subs = self
            .inner
            .subscribers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get_mut(&kind) {
            list.retain(|s| s.id != session.id);
        }
    }

    /// True if any session is subscribed to `kind` (lets publishers skip building a signal).
    pub fn has_subscribers(&self, kind: StreamKind) -> bool {
        self.inner
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kind)
            .is_some_and(|l| !l.is_empty())
    }

    /// Runs `f` for every session subscribed to `kind` (under a read lock: no awaits inside).
    pub fn for_subscribers(&self, kind: StreamKind, mut f: impl FnMut(&Arc<SessionHandle>)) {
        let subs = self
            .inner
            .subscribers
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get(&kind) {
            list.iter().for_each(&mut f);
        }
    }
}
