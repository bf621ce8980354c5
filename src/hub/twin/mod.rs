//! Twin commands through the hub: per-thing lock, load, `engine::apply`, submit to the store,
//! publish the event, and answer with Ditto's response envelope. Also retrieve-multiple.
//! The twin cache is `cache`; the write itself is built by `engine::ready`, every request
//! enters through `hub::door`.

pub(super) mod cache;

use super::lookup::HubLookup;
use super::{Hub, Requester};
use crate::engine::enforce::Access;
use crate::engine::Durability;
use crate::engine::{self, Ctx, Outcome, ThingState};
use crate::error::DittoError;
use crate::protocol::{Action, Envelope, RetrieveThings, ThingCommand};
use crate::rules::responses::not_writable;
use crate::store::Tree;
use cache::Cached;
use serde_json::Value;
use std::sync::Arc;

/// A cached twin taken out by a write in progress: back into the cache when dropped, unless the
/// write replaced it (`cached` = `None`).
struct Taken<'h> {
    hub: &'h Hub,
    id: &'h str,
    cached: Option<Cached>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.cached.take() {
            self.hub.twins().restore(self.id, c);
        }
    }
}

/// Result of a twin command that passed the engine.
#[derive(Debug)]
pub struct TwinDone {
    /// what the engine decided
    pub outcome: Outcome,
    /// store sequence of the write, if it wrote
    pub seq: Option<u64>,
}

/// An answer ready now (`hub::Answer::Now`).
#[derive(Debug, Clone)]
pub struct Reply {
    /// the response or error envelope
    pub envelope: Envelope,
    /// send it only after this store sequence is durable (`twin-persisted`)
    pub after: Option<u64>,
    /// the store sequence of the write, whether or not the answer waits for it
    pub seq: Option<u64>,
}

impl Hub {
    /// Sets the twin cache's budget in bytes (`twin_cache_mib`; 0 caches nothing).
    pub fn set_twin_cache(&self, bytes: usize) {
        self.twins().set_budget(bytes);
    }

    /// The twin cache (lock order: a leaf, nothing is taken under it).
    fn twins(&self) -> std::sync::MutexGuard<'_, cache::Twins> {
        self.inner.twins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the stored state of a thing (tombstones included).
    pub fn load_thing(&self, id: &str) -> Result<Option<ThingState>, DittoError> {
        if let Some(c) = self.cached_twin(id) {
            return Ok(Some((*c.state).clone()));
        }
        self.read_thing(id)
    }

    /// The cached twin, unless the store stopped (a failed store's reads fail, and the cache may
    /// hold writes that never became durable).
    fn cached_twin(&self, id: &str) -> Option<Cached> {
        if self.store().is_stopped() {
            return None;
        }
        let hit = self.twins().get(id);
        hit?.cached()
    }

    /// `cached_twin`, taken out of the cache for a write (`cache::Twins::take`).
    fn take_cached_twin(&self, id: &str) -> Option<Cached> {
        if self.store().is_stopped() {
            return None;
        }
        let hit = self.twins().take(id);
        hit?.cached()
    }

    fn read_thing(&self, id: &str) -> Result<Option<ThingState>, DittoError> {
        let bytes = self.store().get(Tree::Things, id.as_bytes()).map_err(|e| {
            tracing::error!(thing = id, error = %e, "store read failed");
            DittoError::unavailable(id)
        })?;
        bytes.map(|b| ThingState::from_bytes(&b)).transpose()
    }

    /// Applies a twin command: the one write path shared by every binding. `durability` says
    /// whether the requester waits for the write to be on disk (see `Durability`). Writes are
    /// refused with 503 while the store does not accept them (disk full).
    pub(in crate::hub) async fn twin_command(
        &self,
        who: &Requester,
        cmd: &ThingCommand,
        durability: Durability,
    ) -> Result<TwinDone, DittoError> {
        if cmd.action != Action::Retrieve {
            self.store().ready().await;
            if let Err(e) = self.store().writable() {
                return Err(not_writable(
                    "things",
                    "thing",
                    &cmd.thing_id.to_string(),
                    &e.0,
                ));
            }
        }
        let now = self.now();
        let id = cmd.thing_id.to_string();
        let _guard = self.lock_for(&id).lock().unwrap_or_else(|e| e.into_inner());
        // a write takes the cached twin out (`Taken` puts it back unless the write replaces it),
        // so that a modify can change it in place
        let writes = cmd.action != Action::Retrieve;
        let mut taken = Taken {
            hub: self,
            id: &id,
            cached: None,
        };
        let cached = if writes {
            self.take_cached_twin(&id)
        } else {
            self.cached_twin(&id)
        };
        let mut size = cached.as_ref().map(|c| c.size);
        // what else the cache kept of it: its policy's enforcer, its compact form
        let (memo, compact) = cached
            .as_ref()
            .map_or((None, None), |c| (c.policy.clone(), c.compact.clone()));
        let keep = |state: Arc<ThingState>, size| Cached {
            state,
            size,
            policy: memo.clone(),
            compact: compact.clone(),
        };
        let mut current = match cached {
            Some(c) => Some(c.state),
            None => self.read_thing(&id)?.map(Arc::new),
        };
        if writes {
            taken.cached = current.clone().zip(size).map(|(s, n)| keep(s, n));
        }
        let ns = cmd.thing_id.namespace.as_str();
        let policy_of = |s: Option<&ThingState>| {
            s.and_then(|s| s.thing.get("policyId"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let old_pid = policy_of(ThingState::live(current.as_deref()));
        // the cached twin's memo is of its policy (`persist`), while no policy was written
        let memo = match old_pid.as_deref() {
            Some(pid) => match memo.clone().filter(|m| self.memo_valid(m, now)) {
                Some(m) => Some(m),
                None => self.enforcer_memo(pid, ns, now)?,
            },
            None => None,
        };
        let enforcer = memo.as_ref().map(|m| m.enforcer.clone());
        let ctx = Ctx {
            now,
            subject: who.subject(),
            lookup: &HubLookup(self),
            access: Some(Access {
                subjects: &who.subjects,
                enforcer: enforcer.as_deref(),
            }),
        };
        let cid = cmd.headers.correlation_id();
        // a modify written into the twin itself when it is ours alone (no event or reader holds
        // it): no copy of the twin; anything else, or a refusal, takes `engine::apply`
        let mut in_place = None;
        if cmd.action == Action::Modify {
            taken.cached = None;
            if let Some(state) = current.take() {
                match Arc::try_unwrap(state) {
                    Ok(state) if !state.deleted => {
                        if size.is_none() {
                            // read from the store: the delta needs how it is indexed
                            size = Some(crate::search::index::sized_entries(&state).1);
                        }
                        match engine::apply_in_place(state, cmd, &ctx) {
                            Ok(done) => in_place = Some(done),
                            Err(back) => current = Some(Arc::new(back)),
                        }
                    }
                    Ok(state) => current = Some(Arc::new(state)),
                    Err(shared) => current = Some(shared),
                }
            }
            if in_place.is_none() {
                taken.cached = current.clone().zip(size).map(|(s, n)| keep(s, n));
            }
        }
        let (mut outcome, replaced) = match in_place {
            Some((outcome, replaced)) => (outcome, Some(replaced)),
            None => {
                let current = current.as_deref();
                // a retrieve of a past state answers from history, READ under today's policy
                let past = self.retrieve_in_past(cmd, ThingState::live(current), now)?;
                let answered = past.as_ref().map_or(current, |p| Some(&p.0));
                let mut outcome = engine::apply(answered, cmd, &ctx).inspect_err(|e| {
                    let (status, error) = (e.status, &e.error);
                    tracing::debug!(thing = %id, correlation_id = cid, subject = who.subject(), status,
                        %error, "twin command refused");
                })?;
                if let Some((_, headers)) = past {
                    outcome.historical_headers = headers;
                }
                (outcome, None)
            }
        };
        let before = match &replaced {
            Some(r) => engine::Before::Replaced(r),
            None => engine::Before::State(current.as_deref()),
        };
        let mut ready = engine::ready(&id, before, size, &mut outcome, now, durability);
        if let Some(r) = ready.as_mut() {
            // the change's history, in the same atomic unit (src/hub/history_write.rs)
            let history = self.thing_history_ops(cmd, who, r, now)?;
            r.ops.extend(history);
        }
        let seq = ready.map(|r| {
            // the write replaces the cached twin (nothing to put back)
            taken.cached = None;
            // the new state keeps the enforcer if it keeps the policy
            let kept = memo.filter(|_| policy_of(Some(&r.state)) == old_pid);
            self.persist(r, kept, |state, event| {
                // Events are visible under the thing's policy after the change (before, for a
                // delete).
                let new_pid = policy_of(Some(state)).or(old_pid.clone());
                let ev_enforcer = match (&new_pid, &old_pid) {
                    (Some(n), Some(o)) if n == o => enforcer.clone(),
                    (Some(n), _) => match self.enforcer(n, ns, now) {
                        Ok(e) => e,
                        Err(e) => {
                            // the write is done; its event has no audience it could be
                            // checked against (the store failed: fail-stop)
                            tracing::error!(thing = %id, error = %e, "event not published");
                            None
                        }
                    },
                    (None, _) => None,
                };
                self.twin_event(cmd, event, state, who, ev_enforcer)
            })
        });
        tracing::debug!(thing = %id, correlation_id = cid, subject = who.subject(),
            status = outcome.status, seq, "twin command");
        Ok(TwinDone { outcome, seq })
    }

    /// Submits a twin write as the core built it (under the thing's lock) and returns its store
    /// sequence: its ops and its event (`event` decides who may see it) enter their queues
    /// together, the policy cache learns of a policy created with the thing, the twin cache
    /// takes the new state, and then the change hook is told.
    fn persist(
        &self,
        r: engine::Ready,
        memo: Option<cache::Memo>,
        event: impl FnOnce(&Arc<ThingState>, &engine::Event) -> Option<super::bus::events::PendingEvent>,
    ) -> u64 {
        // its compact form, made here (outside the cache's lock) when the cache is full, i.e.
        // it will be evicted into the compact tier
        let compact = match self.twins().evicting() {
            true => r
                .ops
                .first()
                .filter(|op| op.tree == Tree::Things)
                .and_then(|op| op.value.as_deref())
                .and_then(cache::compact),
            false => None,
        };
        // one Arc of the new twin for the cache and the event
        let state = Arc::new(r.state);
        let seq = self.submit_with_event(r.ops, r.durability, || {
            if let Some((pid, policy)) = &r.policy {
                self.policy_written(pid, Some(policy));
            }
            event(&state, r.event.as_ref()?)
        });
        let cached = Cached {
            state,
            size: r.size,
            policy: memo,
            compact,
        };
        // twins pushed out of the decoded tier are dropped here, not under the cache's lock
        let dropped = self.twins().put(&r.thing_id, cached, r.encoded_len);
        drop(dropped);
        // the uplink learns of the change here (src/uplink/sync.rs), once a read of the thing
        // (cache included) sees it
        self.thing_changed(&r.thing_id, seq);
        seq
    }

    /// Retrieve multiple things: the readable ones, in request order.
    pub(in crate::hub) fn retrieve_things(
        &self,
        who: &Requester,
        r: &RetrieveThings,
    ) -> Result<Value, DittoError> {
        let fields = engine::read::parse_fields(r.fields.as_deref(), true)?;
        let now = self.now();
        let mut out = Vec::with_capacity(r.thing_ids.len());
        for id in &r.thing_ids {
            let Some(state) = self.load_thing(&id.to_string())?.filter(|s| !s.deleted) else {
                continue;
            };
            let enforcer = self.thing_enforcer(&state, &id.namespace, now)?;
            let ctx = Ctx {
                now,
                subject: who.subject(),
                lookup: &HubLookup(self),
                access: Some(Access {
                    subjects: &who.subjects,
                    enforcer: enforcer.as_deref(),
                }),
            };
            if let Some(v) = engine::read::readable_thing_view(&state, fields.as_ref(), &ctx)? {
                out.push(v);
            }
        }
        Ok(Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::Signal;
    use crate::store::{Backend, Entries, Op, SledBackend, Store, StoreError};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What a `Failing` backend fails once its flag is set.
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        Commits,
        PolicyReads,
    }

    /// sled, failing `.1` once `.2` is set.
    struct Failing(SledBackend, Fault, Arc<AtomicBool>);

    impl Backend for Failing {
        fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            if self.1 == Fault::PolicyReads
                && tree == Tree::Policies
                && self.2.load(Ordering::SeqCst)
            {
                return Err(StoreError::new("injected read failure"));
            }
            self.0.get(tree, key)
        }
        fn scan(
            &self,
            tree: Tree,
            prefix: &[u8],
            after: Option<&[u8]>,
            limit: usize,
        ) -> Result<Entries, StoreError> {
            self.0.scan(tree, prefix, after, limit)
        }
        fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
            if self.1 == Fault::Commits && self.2.load(Ordering::SeqCst) {
                return Err(StoreError::new("injected"));
            }
            self.0.commit(ops)
        }
        fn name(&self) -> &'static str {
            "failing"
        }
    }

    #[test]
    fn a_failed_policy_read_is_an_error_not_a_missing_policy() {
        let dir = tempfile::tempdir().unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let sled = SledBackend::open(dir.path(), 1 << 20).unwrap();
        let backend = Box::new(Failing(sled, Fault::PolicyReads, fail.clone()));
        let store =
            Store::with_backend(backend, dir.path(), &crate::store::Options::default()).unwrap();
        let hub = Hub::new(store.clone());
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        let create = command(
            r#"{"topic":"n/t1/things/twin/commands/create","headers":{},"path":"/","value":{}}"#,
        );
        let done = smol::block_on(hub.twin_command(&who, &create, Durability::Waited)).unwrap();
        smol::block_on(store.durable(done.seq.unwrap())).unwrap();
        smol::block_on(store.checkpoint()).unwrap();
        fail.store(true, Ordering::SeqCst);
        // the policy n:t1 exists, but cannot be read: 503, not "the policy does not exist"
        let with_policy = command(
            r#"{"topic":"n/t2/things/twin/commands/create","headers":{},"path":"/","value":{"policyId":"n:t1"}}"#,
        );
        let e =
            smol::block_on(hub.twin_command(&who, &with_policy, Durability::Waited)).unwrap_err();
        assert_eq!((e.status, &*e.error), (503, "policies:policy.unavailable"));
        fail.store(false, Ordering::SeqCst);
        let done =
            smol::block_on(hub.twin_command(&who, &with_policy, Durability::Waited)).unwrap();
        assert_eq!(done.outcome.status, 201);
    }

    fn command(text: &str) -> ThingCommand {
        match Signal::from_envelope(Envelope::parse(text).unwrap()) {
            Ok(Signal::Thing(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_store_is_not_hidden_by_the_twin_cache() {
        let dir = tempfile::tempdir().unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let sled = SledBackend::open(dir.path(), 1 << 20).unwrap();
        let opts = crate::store::Options {
            max_pending_ops: 64,
            ..Default::default()
        };
        let store = Store::with_backend(
            Box::new(Failing(sled, Fault::Commits, fail.clone())),
            dir.path(),
            &opts,
        )
        .unwrap();
        let hub = Hub::new(store.clone());
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        let create = command(
            r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#,
        );
        let done = smol::block_on(hub.twin_command(&who, &create, Durability::Waited)).unwrap();
        smol::block_on(store.durable(done.seq.unwrap())).unwrap();
        assert!(hub.cached_twin("n:t").is_some(), "written twins are cached");
        fail.store(true, Ordering::SeqCst);
        let modify = command(
            r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#,
        );
        let done = smol::block_on(hub.twin_command(&who, &modify, Durability::Interval)).unwrap();
        // the checkpoint fails: fail-stop, the write never becomes durable
        assert!(smol::block_on(store.checkpoint()).is_err());
        assert!(smol::block_on(store.durable(done.seq.unwrap())).is_err());
        // the cache holds the write that never became durable: reads must fail like the store's
        assert!(hub.load_thing("n:t").is_err());
        assert!(hub.cached_twin("n:t").is_none());
    }

    #[test]
    fn a_refused_write_leaves_the_cached_twin_cached_and_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let hub = Hub::new(store);
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        let run = |text: &str| {
            smol::block_on(hub.twin_command(&who, &command(text), Durability::Interval))
        };
        run(r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#).unwrap();
        let done = run(r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#).unwrap();
        assert_eq!(done.outcome.status, 204);
        let before = hub
            .cached_twin("n:t")
            .expect("cached after the write")
            .state;
        // refused in place (a wrong if-match), and by the engine after writing in (too large)
        let refused = [
            r#"{"topic":"n/t/things/twin/commands/modify","headers":{"if-match":"\"rev:9\""},"path":"/attributes/a","value":3}"#.to_owned(),
            format!(r#"{{"topic":"n/t/things/twin/commands/modify","headers":{{}},"path":"/attributes/b","value":"{}"}}"#, "x".repeat(engine::MAX_THING_BYTES)),
        ];
        for text in &refused {
            assert!(run(text).is_err());
            let now = hub.cached_twin("n:t").expect("still cached");
            assert_eq!(now.state, before, "unchanged");
        }
        let done = run(r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":4}"#).unwrap();
        assert_eq!(
            done.outcome.state.map(|s| s.revision),
            None,
            "taken by ready"
        );
        let after = hub.load_thing("n:t").unwrap().unwrap();
        assert_eq!(
            (after.revision, &after.thing["attributes"]),
            (3, &serde_json::json!({"a": 4}))
        );
    }

    #[test]
    fn the_change_hook_sees_the_change_it_is_told_of() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::BackendKind::Sled, dir.path(), 1 << 20).unwrap();
        let hub = Hub::new(store);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, s) = (hub.clone(), seen.clone());
        assert!(hub.on_thing_change(Box::new(move |id, _seq| {
            let rev = h.load_thing(id).unwrap().map(|t| t.revision);
            s.lock().unwrap().push(rev);
        })));
        assert!(!hub.on_thing_change(Box::new(|_, _| {})), "one hook");
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        let create = command(
            r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{}}"#,
        );
        smol::block_on(hub.twin_command(&who, &create, Durability::Waited)).unwrap();
        let modify = command(
            r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#,
        );
        smol::block_on(hub.twin_command(&who, &modify, Durability::Interval)).unwrap();
        // a reader woken by the hook (the uplink) must not get the cached state before it
        assert_eq!(*seen.lock().unwrap(), vec![Some(1), Some(2)]);
    }

    #[test]
    fn a_cached_enforcer_does_not_outlive_a_policy_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let hub = Hub::new(store);
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        let modify = r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#;
        let run = |text: &str| {
            smol::block_on(hub.twin_command(&who, &command(text), Durability::Interval))
        };
        run(r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#).unwrap();
        assert_eq!(run(modify).unwrap().outcome.status, 204);
        let memo = hub.cached_twin("n:t").and_then(|c| c.policy);
        assert!(memo.is_some_and(|m| hub.memo_valid(&m, hub.now())), "kept");
        // the subject may now only read the thing (and still write the policy)
        let revoke = r#"{"topic":"n/t/policies/commands/modify","headers":{},"path":"/entries","value":{"DEFAULT":{"subjects":{"nginx:ditto":{"type":"t"}},"resources":{"thing:/":{"grant":["READ"],"revoke":[]},"policy:/":{"grant":["READ","WRITE"],"revoke":[]}}}}}"#;
        assert!(
            smol::block_on(hub.handle_protocol(&who, Envelope::parse(revoke).unwrap())).is_some()
        );
        let policy = hub.load_policy("n:t").unwrap().unwrap();
        let grant = &policy["entries"]["DEFAULT"]["resources"]["thing:/"]["grant"];
        assert_eq!(
            grant,
            &serde_json::json!(["READ"]),
            "the policy was written"
        );
        let e = run(modify).unwrap_err();
        assert_eq!(e.status, 403, "{e:?}");
    }

    #[test]
    fn twins_served_by_a_small_cache_equal_the_stored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let hub = Hub::new(store);
        // ~10 twins decoded, the rest of 300 compact or not cached at all
        hub.twins().set_budgets(32 * 1024, 224 * 1024);
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        let run = |text: String| {
            smol::block_on(hub.twin_command(&who, &command(&text), Durability::Interval)).unwrap()
        };
        let n = 300;
        for k in 0..n {
            run(format!(
                r#"{{"topic":"n/t{k}/things/twin/commands/create","headers":{{}},"path":"/","value":{{"attributes":{{"a":{k},"s":"{}"}}}}}}"#,
                "x".repeat(200)
            ));
        }
        for round in 0..3 {
            for k in (0..n).rev() {
                let done = run(format!(
                    r#"{{"topic":"n/t{k}/things/twin/commands/modify","headers":{{}},"path":"/attributes/a","value":{}}}"#,
                    k * 10 + round
                ));
                assert_eq!(done.outcome.status, 204);
            }
        }
        let mut compact = 0;
        for k in 0..n {
            let id = format!("n:t{k}");
            let cached = hub.load_thing(&id).unwrap().unwrap();
            assert_eq!(Some(cached.clone()), hub.read_thing(&id).unwrap(), "{id}");
            assert_eq!(cached.revision, 4);
            assert_eq!(cached.thing["attributes"]["a"], k * 10 + 2);
            let c = hub.cached_twin(&id);
            if c.as_ref().is_some_and(|c| c.compact.is_some()) {
                compact += 1;
                // the index size kept with it is the one of the state
                let size = crate::search::index::sized_entries(&cached).1;
                assert_eq!(c.unwrap().size, size);
            }
        }
        assert!(compact > 100, "most twins are cached compact: {compact}");
    }
}
