//! The hub routes signals between the bindings and the core. Every binding enters through
//! one door (`door`: `Hub::call`, `Hub::handle_protocol`) and sends what one step makes of the
//! answer (`answer`). Behind the door it is split by job: twin commands and their writes
//! (`twin`), policies (`policy`), the live channel and the correlation of answers and acks
//! (`live`), sessions and event fan-out (`bus`). The rules it applies live in `rules`; the
//! lock order is written on `Inner` below.

// the one door and the answer step
pub mod answer;
pub mod door;

// sessions, subscriptions, event publishing and fan-out
pub mod bus;

// live commands, live events, messages: correlation of answers and acks, timeouts
pub mod live;

// the policy cache, policy commands, subject expiry
pub mod policy;

// twin commands: the write path and the twin cache; the engine's reads
mod lookup;
pub mod twin;

// the read side beside the door: search queries (`Hub::search`)
mod search;

// history: install and retention, write hooks, past states, persisted-event streams
pub mod history;
pub mod history_read;
pub mod history_stream;
mod history_write;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod door_tests;
#[cfg(test)]
mod sim_tests;

pub use answer::{Late, Outgoing};
pub use bus::publisher::Gate;
pub use bus::session::{Outbound, OutboundRx, SessionHandle, StreamKind};
pub use door::Answer;
pub use live::waiter::Waiter;
pub use lookup::HubLookup;
pub use twin::{Reply, TwinDone};

use crate::clock::{Clock, WallClock};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

const LOCK_SHARDS: usize = 256;

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

/// The hub's state. One owner per job: `twin` (the write path and the twin cache), `policy`
/// (the enforcer cache and the expiry timer), `live` (pending requests: correlation, acks,
/// timeouts), `bus` (sessions, subscriptions, the event publisher).
///
/// Lock order (a lock is only ever taken while holding locks listed before it; no lock is held
/// across an `.await`; poisoning is ignored because every critical section leaves consistent
/// data):
/// 1. `locks[shard]`: one thing's (or policy's, `policy:<id>`) writer, for the whole command;
/// 2. `publisher.queue` (`bus::publisher`): a write's submit and its event enter their queues
///    together; under it the event's audience is decided (3, 4) and acks recorded (5);
/// 3. `policies.cache` > `policies.importers`; `policies.shared`; `policies.announced`;
///    `policies.due` > `policies.due_of` (`policy`): never two of these groups at once;
/// 4. `subscribers` (read) > a session's subscription lock (`SessionHandle::with_subscription`);
/// 5. `pending` (`live`): the pending-request table;
/// 6. `twins` (the twin cache) and `sessions`: leaves, nothing is taken under them;
/// 7. the store's own locks (`Store::submit`, reads): innermost.
pub(crate) struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    // (1) per-entity writers
    locks: Vec<Mutex<()>>,
    // (2) event queue and gate
    publisher: Arc<bus::publisher::Shared>,
    // (3) policy cache and expiry bookkeeping
    policies: policy::Policies,
    // (4) subscriptions per stream kind, (6) open sessions
    subscribers: RwLock<HashMap<StreamKind, Vec<Arc<SessionHandle>>>>,
    sessions: RwLock<HashMap<u64, Arc<SessionHandle>>>,
    next_session: AtomicU64,
    // (5) pending requests (correlation, acks, timeouts)
    pending: Mutex<crate::rules::pending::Table>,
    // (6) decoded twins
    twins: Mutex<twin::cache::Twins>,
    change_hook: OnceLock<ChangeHook>,
    history: OnceLock<Arc<crate::history::History>>,
    // (6) the search index's access entries in memory (`search::access_map`): a leaf
    access_map: Arc<crate::search::access_map::AccessMap>,
}

/// Cheap-to-clone handle on the hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// A hub over an open store, on the system clock.
    pub fn new(store: Store) -> Hub {
        Hub::with_clock(store, Arc::new(WallClock))
    }

    /// A hub over an open store whose time (timestamps, expiries, timeouts) comes from `clock`.
    pub fn with_clock(store: Store, clock: Arc<dyn Clock>) -> Hub {
        let events = Arc::new(bus::publisher::Shared::default());
        let hub = Hub {
            inner: Arc::new(Inner {
                store: store.clone(),
                publisher: events.clone(),
                locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
                sessions: RwLock::new(HashMap::new()),
                subscribers: RwLock::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                policies: policy::Policies::default(),
                pending: Mutex::new(crate::rules::pending::Table::new(
                    live::correlate::DEFAULT_MAX_PENDING,
                )),
                twins: Mutex::default(),
                change_hook: OnceLock::new(),
                history: OnceLock::new(),
                access_map: Arc::default(),
                clock,
            }),
        };
        bus::publisher::start(Arc::downgrade(&hub.inner), store, events);
        hub
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The search index's access entries in memory (counts; `[search] count_map_kib`).
    pub fn access_map(&self) -> &Arc<crate::search::access_map::AccessMap> {
        &self.inner.access_map
    }

    /// The hub's clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// Now, in epoch millis (the one time read of a request).
    pub fn now(&self) -> i64 {
        self.inner.clock.now_millis()
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

    /// The lock serializing all changes of one thing (or policy: `policy:<id>`).
    fn lock_for(&self, thing_id: &str) -> &Mutex<()> {
        // FNV-1a: cheap and stable; only spreads IDs over shards.
        let h = thing_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        &self.inner.locks[(h % LOCK_SHARDS as u64) as usize]
    }
}
