//! Twin commands through the hub: per-thing lock, load, `engine::apply`, submit to the store,
//! publish the event, and answer with Ditto's response envelope. Also retrieve-multiple.
//! (The ack request rules live in `hub::acks`, protocol dispatch in `hub::dispatch`.)

pub use super::acks::AckRequest;
use super::twins::Cached;
use super::{Durability, Hub, Requester};
use crate::engine::enforce::Access;
use crate::engine::{self, Ctx, Outcome, ThingState};
use crate::error::DittoError;
use crate::policy::PolicyState;
use crate::protocol::{Action, Envelope, Headers, RetrieveThings, ThingCommand};
use crate::store::{Op, Tree};
use serde_json::Value;
use std::sync::Arc;

/// Result of a twin command that passed the engine.
#[derive(Debug)]
pub struct TwinDone {
    /// what the engine decided
    pub outcome: Outcome,
    /// store sequence of the write, if it wrote
    pub seq: Option<u64>,
}

/// What to send back to a protocol client (WS, MQTT passthrough).
#[derive(Debug, Clone)]
pub struct Reply {
    /// the response or error envelope
    pub envelope: Envelope,
    /// send it only after this store sequence is durable (`twin-persisted`)
    pub after: Option<u64>,
}

/// A fresh random correlation-id (UUID v4 format).
pub fn new_correlation_id() -> String {
    let a = fastrand::u128(..);
    let b = (a & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The success response to a thing command: same topic and path, `status`, `value` where the
/// action returns one, `correlation-id` and `etag` headers.
pub fn response_envelope(cmd: &ThingCommand, outcome: &Outcome) -> Envelope {
    let mut headers = Headers::new();
    if let Some(c) = cmd.headers.correlation_id() {
        headers.insert("correlation-id", c);
    }
    if let Some(e) = &outcome.etag {
        headers.insert("etag", e.as_str());
    }
    if let Some(s) = outcome
        .state
        .as_ref()
        .filter(|_| cmd.action != Action::Retrieve)
    {
        headers.insert("entity-revision", s.revision);
    }
    if let Some(md) = &outcome.ditto_metadata {
        headers.insert("ditto-metadata", md.clone());
    }
    if let Some(h) = &outcome.historical_headers {
        headers.insert("historical-headers", h.clone());
    }
    let mut env = Envelope::new(cmd.topic.clone(), headers, cmd.raw_path.clone());
    env.status = Some(outcome.status);
    env.value = outcome.value.clone();
    env
}

impl Hub {
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
        self.twins().get(id)
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
    pub async fn twin_command(
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
                    &e,
                ));
            }
        }
        let now = crate::clock::now_millis();
        let id = cmd.thing_id.to_string();
        let _guard = self.lock_for(&id).lock().unwrap_or_else(|e| e.into_inner());
        let cached = self.cached_twin(&id);
        let current = match &cached {
            Some(c) => Some(c.state.clone()),
            None => self.read_thing(&id)?.map(Arc::new),
        };
        let current = current.as_deref();
        let ns = cmd.thing_id.namespace.as_str();
        let policy_of = |s: Option<&ThingState>| {
            s.and_then(|s| s.thing.get("policyId"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let old_pid = policy_of(ThingState::live(current));
        let enforcer = old_pid
            .as_deref()
            .and_then(|pid| self.enforcer(pid, ns, now));
        let lookup = |pid: &str| self.load_policy(pid);
        let things = |tid: &str| self.load_thing(tid).ok().flatten();
        let ctx = Ctx {
            now,
            subject: who.subject(),
            policy: &lookup,
            thing: &things,
            access: Some(Access {
                subjects: &who.subjects,
                enforcer: enforcer.as_deref(),
            }),
        };
        let cid = cmd.headers.correlation_id();
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
        let mut seq = None;
        if let Some(bytes) = &outcome.bytes {
            let mut ops = vec![Op {
                tree: Tree::Things,
                key: id.clone().into_bytes(),
                value: Some(bytes.clone()),
            }];
            // search index delta, in the same atomic unit as the thing (src/search)
            let (index, size) = crate::search::delta::write_ops(
                current,
                cached.as_ref().map(|c| c.size),
                outcome.state.as_ref(),
            );
            ops.extend(index);
            // the change's history, in the same atomic unit (src/hub/history_write.rs)
            ops.extend(self.thing_history_ops(cmd, who, &outcome, bytes)?);
            if let Some((pid, policy)) = &outcome.policy {
                let state = PolicyState::new(policy.clone(), now);
                ops.push(Op {
                    tree: Tree::Policies,
                    key: pid.clone().into_bytes(),
                    value: Some(state.to_bytes()),
                });
                ops.extend(self.created_policy_history(pid, &state, cmd, who)?);
                // a new policy: marked in the expiry index if it has expiring subjects
                ops.extend(crate::policy::expiry_index::marker_op(
                    pid,
                    false,
                    Some(policy),
                ));
            }
            seq = Some(self.submit_with_event(ops, durability, || {
                if let Some((pid, policy)) = &outcome.policy {
                    self.policy_written(pid, Some(policy));
                }
                let (ev, state) = (outcome.event.as_ref()?, outcome.state.as_ref()?);
                // Events are visible under the thing's policy after the change (before, for
                // a delete).
                let new_pid = policy_of(Some(state)).or(old_pid.clone());
                let ev_enforcer = match (&new_pid, &old_pid) {
                    (Some(n), Some(o)) if n == o => enforcer.clone(),
                    (Some(n), _) => self.enforcer(n, ns, now),
                    (None, _) => None,
                };
                self.twin_event(cmd, ev, state, who, ev_enforcer)
            }));
            if let Some(state) = outcome.state.take() {
                let c = Cached {
                    state: Arc::new(state),
                    size,
                };
                self.twins().put(&id, c, bytes.len());
            }
            if let Some(s) = seq {
                // the uplink learns of the change here (src/uplink/sync.rs), once a read of
                // the thing (cache included) sees it
                self.thing_changed(&id, s);
            }
        }
        tracing::debug!(thing = %id, correlation_id = cid, subject = who.subject(),
            status = outcome.status, seq, "twin command");
        Ok(TwinDone { outcome, seq })
    }

    /// Retrieve multiple things: the readable ones, in request order.
    pub fn retrieve_things(
        &self,
        who: &Requester,
        r: &RetrieveThings,
    ) -> Result<Value, DittoError> {
        let fields = engine::read::parse_fields(r.fields.as_deref(), true)?;
        let lookup = |pid: &str| self.load_policy(pid);
        let things = |tid: &str| self.load_thing(tid).ok().flatten();
        let now = crate::clock::now_millis();
        let mut out = Vec::with_capacity(r.thing_ids.len());
        for id in &r.thing_ids {
            let Some(state) = self.load_thing(&id.to_string())?.filter(|s| !s.deleted) else {
                continue;
            };
            let enforcer = state
                .thing
                .get("policyId")
                .and_then(Value::as_str)
                .and_then(|pid| self.enforcer(pid, &id.namespace, now));
            let ctx = Ctx {
                now,
                subject: who.subject(),
                policy: &lookup,
                thing: &things,
                access: Some(Access {
                    subjects: &who.subjects,
                    enforcer: enforcer.as_deref(),
                }),
            };
            if let Some(v) = engine::read::readable_thing_view(&state, fields.as_ref(), &ctx) {
                out.push(v);
            }
        }
        Ok(Value::Array(out))
    }
}

/// 400 `signal.unsupported`.
pub(crate) fn unsupported(topic: &crate::protocol::Topic) -> DittoError {
    DittoError::new(
        400,
        "signal.unsupported",
        format!("The signal with topic '{topic}' is not supported by this edgetwin version."),
    )
    .describe("Supported are thing commands (twin and live), live events, messages, acknowledgements and policy commands.")
}

/// 503 `<group>:<entity>.unavailable` for a write the store refuses (disk full, read-only or
/// failed store): Ditto's answer when its persistence cannot take a change, with the reason.
pub(crate) fn not_writable(
    group: &str,
    entity: &str,
    id: &str,
    why: &crate::store::StoreError,
) -> DittoError {
    let name = if entity == "thing" { "Thing" } else { "Policy" };
    DittoError::new(
        503,
        format!("{group}:{entity}.unavailable"),
        format!("The {name} with ID '{id}' cannot be changed now: the gateway's storage refuses writes."),
    )
    .describe(format!(
        "{}. Reads keep working; writes resume by themselves once the storage accepts them again.",
        why.0
    ))
}

/// Shared text of an envelope (one allocation shared by all receivers).
pub fn shared_text(env: &Envelope) -> Arc<str> {
    Arc::from(env.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::Signal;
    use crate::store::{Backend, Entries, SledBackend, Store, StoreError};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// sled, with commits that fail once `fail` is set.
    struct Failing(SledBackend, Arc<AtomicBool>);

    impl Backend for Failing {
        fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
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
            if self.1.load(Ordering::SeqCst) {
                return Err(StoreError::new("injected"));
            }
            self.0.commit(ops)
        }
        fn name(&self) -> &'static str {
            "failing"
        }
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
        let store =
            Store::with_backend(Box::new(Failing(sled, fail.clone())), dir.path(), &opts).unwrap();
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
    fn correlation_ids_look_like_uuids() {
        let c = new_correlation_id();
        assert_eq!(c.len(), 36);
        assert_eq!(&c[14..15], "4");
        assert_ne!(c, new_correlation_id());
    }
}
