//! Twin commands through the hub: per-thing lock, load, `engine::apply`, submit to the store,
//! publish the event, and answer with Ditto's response envelope. Also retrieve-multiple.
//! The twin cache is `cache`; the write itself is built by `engine::ready`, every request
//! enters through `hub::door`.

mod arena;
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
        let id = cmd.thing_id.text();
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
        // the policy ID of a state, borrowed (compared per write: no copy of it made)
        fn pid_of(s: Option<&ThingState>) -> Option<&str> {
            s.and_then(|s| s.thing.get("policyId"))
                .and_then(Value::as_str)
        }
        let old_pid = pid_of(ThingState::live(current.as_deref())).map(str::to_owned);
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
            let kept = memo.filter(|_| pid_of(Some(&r.state)) == old_pid.as_deref());
            self.persist(r, kept, |state, event| {
                // Events are visible under the thing's policy after the change (before, for a
                // delete).
                let new_pid = pid_of(Some(state)).or(old_pid.as_deref());
                let ev_enforcer = match (new_pid, old_pid.as_deref()) {
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
mod tests;
