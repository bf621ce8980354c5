//! Policies in the hub: loading stored policies, a bounded cache of enforcers per policy
//! (imports resolved; invalidated when the policy or one it imports is written, rebuilt when a
//! subject expires; equal entries share one enforcer), policy commands under the per-entity
//! lock, and the expiry timer that removes expired subjects and delivers `subjectDeletion`
//! announcements to `START-SEND-POLICY-ANNOUNCEMENTS` sessions of the affected subjects.

mod permissions;
mod shared;

use super::bus::session::{Outbound, StreamKind};
use super::twin::cache::Memo;
use super::{Hub, Requester};
use crate::engine::ThingState;
use crate::error::DittoError;
use crate::policy::apply::apply;
use crate::policy::expiry::{self, Announcement};
use crate::policy::{expiry_index, imports};
use crate::policy::{Enforcer, PolicyCommand, PolicyOutcome, PolicyState};
use crate::protocol::{Criterion, Envelope, Group, Headers, Topic};
use crate::store::Tree;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default budget of the policy cache, MiB (`policy_cache_mib`; the cache is cleared when a new
/// entry would pass it). Each cached ID is charged `slot_bytes` (~100 B + the ID), each enforcer
/// the hub builds for it `enforcer_bytes` (~3.4 KB for Ditto's default policy of one device,
/// measured: tests/policy_heap.rs): 16 MiB hold ~150k IDs of policies sharing one enforcer
/// (100k things with a policy each, all alike; at 8,192 IDs those twins missed the cache on
/// nearly every command, BENCHMARKS.md round 8, k100) or ~4,800 policies of distinct entries.
pub const CACHE_MIB: u64 = 16;
/// Most remembered "announced before expiry" marks (cleared when full: worst case a repeat).
const ANNOUNCED_MAX: usize = 65_536;
/// How often the expiry timer looks for due work.
const TICK: Duration = Duration::from_millis(500);

type CacheKey = (String, String);

/// The cached enforcers by policy ID and the bytes charged for them since the last clear.
#[derive(Default)]
struct Cache {
    by_id: crate::fasthash::Map<Box<str>, CachedEnforcer>,
    charged: usize,
}

/// Bytes charged per cached ID: its slot and control byte twice (the table grows by doubling,
/// so it is between 7/16 and 7/8 full) and the ID's allocation.
fn slot_bytes(policy_id: &str) -> usize {
    2 * (std::mem::size_of::<(Box<str>, CachedEnforcer)>() + 1) + policy_id.len()
}

/// Bytes charged for an enforcer the hub built: its heap, itself and the `Arc`'s counts.
fn enforcer_bytes(e: &Enforcer) -> usize {
    e.heap_bytes() + std::mem::size_of::<Enforcer>() + 2 * std::mem::size_of::<usize>()
}

/// The cached enforcer of one policy ID (`Policies::cache`): built for things of `namespace`
/// (`None`: the policy ID's own namespace, the usual case, which allocates nothing; one
/// namespace per ID, a lookup for another replaces it), valid until `until`.
struct CachedEnforcer {
    namespace: Option<Box<str>>,
    until: i64,
    enforcer: Arc<Enforcer>,
}

impl CachedEnforcer {
    /// The namespace to keep for an enforcer of `policy_id` built for `namespace`.
    fn namespace_of(policy_id: &str, namespace: &str) -> Option<Box<str>> {
        match policy_id.split_once(':') {
            Some((own, _)) if own == namespace => None,
            _ => Some(namespace.into()),
        }
    }

    fn is_for(&self, policy_id: &str, namespace: &str) -> bool {
        match &self.namespace {
            None => policy_id.split_once(':').map(|(own, _)| own) == Some(namespace),
            Some(ns) => **ns == *namespace,
        }
    }
}

/// Policy bookkeeping of the hub.
#[derive(Default)]
pub struct Policies {
    /// policy ID -> its enforcer (charged at most `cache_bytes`, cleared when full)
    cache: Mutex<Cache>,
    /// (policy entries as JSON text, namespace) -> enforcer: what an enforcer depends on
    shared: Mutex<shared::Shared>,
    /// imported policy ID -> cached policies that import it (their enforcers include its entries)
    importers: Mutex<HashMap<String, HashSet<String>>>,
    generation: AtomicU64,
    due: Mutex<BTreeSet<(i64, String)>>,
    due_of: Mutex<HashMap<String, i64>>,
    announced: Mutex<HashSet<(String, String, i64)>>,
    /// budget of `cache` in bytes (`policy_cache_mib`), 0 = `CACHE_MIB`
    cache_bytes: AtomicUsize,
}

/// Result of a policy command that passed the engine.
#[derive(Debug)]
pub struct PolicyDone {
    /// what the engine decided
    pub outcome: PolicyOutcome,
    /// store sequence of the write, if it wrote
    pub seq: Option<u64>,
    /// a retrieve at a past revision / time: the headers kept with that change
    pub historical_headers: Option<Value>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Sets the budget of the policy cache in bytes (`policy_cache_mib`, at least 1).
    pub fn set_policy_cache_bytes(&self, bytes: usize) {
        self.policies()
            .cache_bytes
            .store(bytes.max(1), Ordering::Relaxed);
    }

    fn policy_cache_bytes(&self) -> usize {
        match self.policies().cache_bytes.load(Ordering::Relaxed) {
            0 => (CACHE_MIB as usize) << 20,
            n => n,
        }
    }

    fn policies(&self) -> &Policies {
        &self.inner.policies
    }

    /// Loads a stored policy with its revision.
    pub fn load_policy_state(&self, id: &str) -> Result<Option<PolicyState>, DittoError> {
        Ok(self
            .policy_bytes(id)?
            .and_then(|b| PolicyState::from_bytes(&b)))
    }

    fn policy_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, DittoError> {
        self.store()
            .get(Tree::Policies, id.as_bytes())
            .map_err(|e| {
                tracing::error!(policy = id, error = %e, "store read failed");
                crate::policy::errors::unavailable(id)
            })
    }

    /// Loads a stored policy's JSON.
    pub fn load_policy(&self, id: &str) -> Result<Option<Value>, DittoError> {
        Ok(self.load_policy_state(id)?.map(|s| s.policy))
    }

    /// The enforcer of the policy `thing` names (its `policyId`), as [`Hub::enforcer`]; `None`
    /// if it names none or there is no such policy.
    pub fn thing_enforcer(
        &self,
        thing: &ThingState,
        namespace: &str,
        now: i64,
    ) -> Result<Option<Arc<Enforcer>>, DittoError> {
        match thing.thing.get("policyId").and_then(Value::as_str) {
            Some(pid) => self.enforcer(pid, namespace, now),
            None => Ok(None),
        }
    }

    /// The enforcer of a policy for things in `namespace` at `now` (cached); `None` if there is
    /// no such policy, an error if it cannot be read.
    pub fn enforcer(
        &self,
        policy_id: &str,
        namespace: &str,
        now: i64,
    ) -> Result<Option<Arc<Enforcer>>, DittoError> {
        Ok(self
            .enforcer_until(policy_id, namespace, now)?
            .map(|(e, _)| e))
    }

    /// [`Hub::enforcer`], and its memo as a cached twin keeps it (see [`Hub::memo_enforcer`]).
    pub(in crate::hub) fn enforcer_memo(
        &self,
        policy_id: &str,
        namespace: &str,
        now: i64,
    ) -> Result<Option<(Memo, Arc<Enforcer>)>, DittoError> {
        // read before the lookup: a policy written meanwhile makes the memo stale at once
        let generation = self.policies().generation.load(Ordering::SeqCst);
        Ok(self
            .enforcer_until(policy_id, namespace, now)?
            .map(|(enforcer, until)| {
                let memo = Memo {
                    generation,
                    until,
                    enforcer: Arc::downgrade(&enforcer),
                };
                (memo, enforcer)
            }))
    }

    /// The enforcer of a twin's memo while it holds at `now`: no policy was written since it
    /// was looked up, no subject of it expired, and the policy cache still keeps it.
    pub(in crate::hub) fn memo_enforcer(&self, m: &Memo, now: i64) -> Option<Arc<Enforcer>> {
        let valid =
            now < m.until && m.generation == self.policies().generation.load(Ordering::SeqCst);
        valid.then(|| m.enforcer.upgrade()).flatten()
    }

    /// [`Hub::enforcer`] with the time until which it holds.
    fn enforcer_until(
        &self,
        policy_id: &str,
        namespace: &str,
        now: i64,
    ) -> Result<Option<(Arc<Enforcer>, i64)>, DittoError> {
        if let Some(c) = lock(&self.policies().cache).by_id.get(policy_id) {
            if now < c.until && c.is_for(policy_id, namespace) {
                return Ok(Some((c.enforcer.clone(), c.until)));
            }
        }
        let generation = self.policies().generation.load(Ordering::SeqCst);
        let Some(bytes) = self.policy_bytes(policy_id)? else {
            return Ok(None);
        };
        // no imports, no expiring subjects: the entries' text alone decides, and a policy with
        // the same text as one seen before costs no decode (Ditto gives every thing its own
        // policy, all alike: at 100k twins most lookups miss the cache and land here)
        let plain = PolicyState::plain_entries(&bytes)
            .and_then(|text| self.plain_enforcer(text, namespace, now));
        let ((e, built), until, imported) = match plain {
            Some(e) => (e, i64::MAX, Vec::new()),
            None => {
                let Some(stored) = PolicyState::from_bytes(&bytes).map(|s| s.policy) else {
                    return Ok(None);
                };
                let (policy, imported) = imports::resolve(stored, &|id| self.load_policy(id))?;
                let until = expiry::next_due(&policy, &|_, _| true).unwrap_or(i64::MAX);
                let e = self.shared_enforcer(&policy, namespace, now, until);
                (e, until, imported)
            }
        };
        let mut cache = lock(&self.policies().cache);
        if self.policies().generation.load(Ordering::SeqCst) == generation {
            let mut importers = lock(&self.policies().importers);
            // an enforcer taken from `shared` is not charged: it is kept there anyway (charged
            // there, bounded separately), and 100k policies alike share one
            let mut slot = match cache.by_id.contains_key(policy_id) {
                true => 0,
                false => slot_bytes(policy_id),
            };
            if cache.charged + slot + built > self.policy_cache_bytes() {
                cache.by_id.clear();
                cache.charged = 0;
                importers.clear();
                slot = slot_bytes(policy_id);
            }
            cache.charged += slot + built;
            for i in imported {
                importers.entry(i).or_default().insert(policy_id.to_owned());
            }
            let cached = CachedEnforcer {
                namespace: CachedEnforcer::namespace_of(policy_id, namespace),
                until,
                enforcer: e.clone(),
            };
            cache.by_id.insert(policy_id.into(), cached);
        }
        Ok(Some((e, until)))
    }

    /// Bookkeeping after a policy was written (`None` = deleted): cache and expiry index.
    pub(crate) fn policy_written(&self, id: &str, policy: Option<&Value>) {
        let p = self.policies();
        p.generation.fetch_add(1, Ordering::SeqCst);
        let importers = lock(&p.importers).remove(id).unwrap_or_default();
        {
            // by key: a scan of the whole cache per policy write (every thing created with its
            // policy) would cost O(cached policies) each
            // an ID's slot is given back; the enforcers' charge stays until the cache is cleared
            // (conservative: one may still be kept in `shared` or a twin's memo)
            let mut cache = lock(&p.cache);
            for i in std::iter::once(id).chain(importers.iter().map(String::as_str)) {
                if cache.by_id.remove(i).is_some() {
                    cache.charged = cache.charged.saturating_sub(slot_bytes(i));
                }
            }
        }
        // again once the cache holds no enforcer of the old policy: a twin's memo taken
        // between the two (`enforcer_memo`) may hold the old one, and is stale by this
        p.generation.fetch_add(1, Ordering::SeqCst);
        let announced = lock(&p.announced);
        let next = policy.and_then(|v| {
            expiry::next_due(v, &|s, at| {
                announced.contains(&(id.to_owned(), s.to_owned(), at))
            })
        });
        drop(announced);
        let mut due = lock(&p.due);
        let mut due_of = lock(&p.due_of);
        if let Some(old) = due_of.remove(id) {
            due.remove(&(old, id.to_owned()));
        }
        if let Some(at) = next {
            due.insert((at, id.to_owned()));
            due_of.insert(id.to_owned(), at);
        }
    }

    /// Applies a policy command (the one write path of policies for every binding).
    pub(in crate::hub) async fn policy_command(
        &self,
        who: &Requester,
        cmd: &PolicyCommand,
    ) -> Result<PolicyDone, DittoError> {
        if cmd.action != crate::protocol::Action::Retrieve {
            self.store().ready().await;
            if let Err(e) = self.store().writable() {
                let id = cmd.policy_id.as_str();
                return Err(crate::rules::responses::not_writable(
                    "policies", "policy", id, &e.0,
                ));
            }
        }
        let now = self.now();
        let id = cmd.policy_id.as_str();
        let _guard = self
            .lock_for(&format!("policy:{id}"))
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut current = self.load_policy_state(id)?;
        let mut historical_headers = None;
        if let Some((past, h)) = self.policy_retrieve_in_past(who, cmd, current.as_ref(), now)? {
            current = Some(past);
            historical_headers = h;
        }
        let resolved = cmd.action == crate::protocol::Action::Retrieve
            && imports::wants_resolved(&cmd.headers)?;
        if resolved {
            // the merged view: its ETag would only follow this policy's revision, so none is
            // sent and conditional headers do not apply (as in Ditto)
            let mut view = cmd.clone();
            view.headers.remove("if-match");
            view.headers.remove("if-none-match");
            let load = |i: &str| self.load_policy(i);
            if let Some(s) = current.as_mut() {
                s.policy = imports::resolved_view(&s.policy, &load, Some(&who.subjects), now)?;
            }
            let mut outcome = apply(current.as_ref(), &view, now, Some(&who.subjects), &load)?;
            outcome.etag = None;
            return Ok(PolicyDone {
                outcome,
                seq: None,
                historical_headers,
            });
        }
        let load = |i: &str| self.load_policy(i);
        let outcome = apply(current.as_ref(), cmd, now, Some(&who.subjects), &load)?;
        if outcome.state.is_none() && !outcome.deleted {
            return Ok(PolicyDone {
                outcome,
                seq: None,
                historical_headers,
            });
        }
        // the policy and its expiry marker, one atomic unit (src/policy/ready.rs)
        let before = current.as_ref().map(|s| &s.policy);
        let mut ops = crate::policy::ready::write_ops(id, before, outcome.state.as_ref());
        let now_policy = outcome.state.as_ref().map(|s| &s.policy);
        // the change's history, in the same atomic unit (src/hub/history_write.rs)
        ops.extend(self.policy_history_of(who, cmd, current.is_some(), &outcome)?);
        let seq = self.store().submit(ops);
        self.policy_written(id, now_policy);
        Ok(PolicyDone {
            outcome,
            seq: Some(seq),
            historical_headers: None,
        })
    }

    /// Indexes the expiries of the stored policies with expiring subjects (at start): reads only
    /// the policies marked in the persisted expiry index, not every policy (that scan kept the
    /// whole policy tree resident in the store cache).
    pub fn index_policy_expiries(&self) {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch =
                match self
                    .store()
                    .scan(Tree::Meta, expiry_index::PREFIX, after.as_deref(), 256)
                {
                    Ok(b) => b,
                    Err(e) => return tracing::error!(error = %e, "policy expiry index scan failed"),
                };
            let Some((last, _)) = batch.last() else {
                return;
            };
            after = Some(last.clone());
            for (k, _) in &batch {
                let Some(id) = expiry_index::policy_id(k) else {
                    continue;
                };
                match self.load_policy_state(id) {
                    Ok(Some(s)) => self.policy_written(id, Some(&s.policy)),
                    Ok(None) => {}
                    // logged by the read; the policy is indexed when it is written next
                    Err(_) => {}
                }
            }
        }
    }

    /// Runs the expiry timer forever (spawn it on the executor): every `TICK` of the hub's
    /// clock, `expire_due`.
    pub async fn run_policy_timer(self) {
        self.index_policy_expiries();
        loop {
            let clock = self.clock();
            clock.sleep_until(clock.instant() + TICK).await;
            self.expire_due().await;
        }
    }

    /// Removes the expired subjects and delivers the announcements that are due now.
    pub async fn expire_due(&self) {
        let now = self.now();
        loop {
            let next = {
                let mut due = lock(&self.policies().due);
                match due.first().cloned() {
                    Some((at, id)) if at <= now => {
                        due.remove(&(at, id.clone()));
                        lock(&self.policies().due_of).remove(&id);
                        Some(id)
                    }
                    _ => None,
                }
            };
            let Some(id) = next else { break };
            self.store().ready().await;
            self.expire_policy(&id, now);
        }
    }

    fn expire_policy(&self, id: &str, now: i64) {
        let _guard = self
            .lock_for(&format!("policy:{id}"))
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut state = match self.load_policy_state(id) {
            Ok(Some(s)) => s,
            // a failed read is logged by the read (a failed store is fail-stop)
            Ok(None) | Err(_) => return,
        };
        let before = state.policy.clone();
        let done = {
            let announced = lock(&self.policies().announced);
            expiry::process(id, &state.policy, now, &|s, at| {
                announced.contains(&(id.to_owned(), s.to_owned(), at))
            })
        };
        {
            let mut announced = lock(&self.policies().announced);
            if announced.len() + done.announced.len() > ANNOUNCED_MAX {
                announced.clear();
            }
            for (s, at) in &done.announced {
                announced.insert((id.to_owned(), s.clone(), *at));
            }
        }
        if let Some(p) = done.policy {
            state.policy = p;
            state.revision += 1;
            state.modified = now;
            let mut ops = crate::policy::ready::write_ops(id, Some(&before), Some(&state));
            let Some(history) = self.expired_subjects_history(id, &state) else {
                return;
            };
            ops.extend(history);
            self.store().submit(ops);
        }
        self.policy_written(id, Some(&state.policy));
        for a in &done.announcements {
            self.publish_announcement(a);
        }
    }

    /// Delivers an announcement to subscribed sessions authenticated as one of its subjects.
    pub fn publish_announcement(&self, a: &Announcement) {
        let (ns, name) = a.policy_id.split_once(':').unwrap_or(("", &a.policy_id));
        let topic = Topic {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            group: Group::Policies,
            channel: crate::protocol::Channel::None,
            criterion: Criterion::Announcements("subjectDeletion".into()),
        };
        let mut headers = Headers::new();
        headers.insert(
            "correlation-id",
            crate::protocol::headers::new_correlation_id(),
        );
        let mut env = Envelope::new(topic, headers, "/");
        env.value = Some(a.value());
        let text: Arc<str> = Arc::from(env.to_text());
        self.for_subscribers(StreamKind::PolicyAnnouncements, |s| {
            if !s.subjects.iter().any(|x| a.subject_ids.contains(x)) {
                return;
            }
            let ok = s
                .with_subscription(StreamKind::PolicyAnnouncements, |sub| sub.namespace_ok(ns))
                .unwrap_or(false);
            if ok {
                s.push(Outbound::Now(text.clone()));
            }
        });
    }
}

#[cfg(test)]
mod tests;
