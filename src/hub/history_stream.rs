//! Persisted events of one thing or policy as a cursor (Ditto's `SubscribeForPersistedEvents`,
//! served over SSE `from-historical-*` and WS `streaming/subscribeForPersistedEvents`): the range in
//! revisions (negative = relative to the current revision, `to` 0 = the current one) or in
//! time (events strictly after `from`, strictly before `to`, as Ditto's
//! `AbstractPersistenceSupervisor`), READ-filtered under the thing's policy *now*, then the RQL
//! `filter` on the event as partial thing JSON (`ThingSupervisorActor.applyPersistedEventFilter`).
//! A policy's events (WS `policies/streaming/...`) need READ on all of `policy:/` now and are
//! not filtered (`PolicySupervisorActor.applyPersistedEventFilter` keeps every event).

use super::Hub;
use crate::engine::ThingState;
use crate::error::DittoError;
use crate::history::{Kind, Record};
use crate::model::EntityId as ThingId;
use crate::policy::{Enforcer, READ};
use crate::protocol::{Channel, Criterion, Envelope, EventAction, Group, Headers, Topic};
use crate::rql::{Env, Query as Rql};
use crate::rules::events::{event_shape, event_view, placeholder};
use serde_json::Value;
use std::sync::Arc;

/// Events read from the store per step.
const PAGE: usize = 64;

/// The range and filter of a persisted-events request.
#[derive(Debug, Clone, Default)]
pub struct PersistedQuery {
    pub from_revision: Option<i64>,
    pub to_revision: Option<i64>,
    /// epoch millis
    pub from_timestamp: Option<i64>,
    pub to_timestamp: Option<i64>,
    pub filter: Option<Rql>,
}

/// A position in the persisted events of one thing or policy.
pub struct Persisted {
    hub: Hub,
    kind: Kind,
    id: ThingId,
    subjects: Arc<[String]>,
    /// the thing's policy now (events READ-filtered); `None` for a policy's own events
    enforcer: Option<Arc<Enforcer>>,
    current: u64,
    next: u64,
    last: u64,
    after_ts: Option<i64>,
    before_ts: Option<i64>,
    filter: Option<Rql>,
    done: bool,
}

/// `r` relative to `current` when negative.
fn absolute(r: i64, current: u64) -> u64 {
    if r < 0 {
        current.saturating_sub(r.unsigned_abs())
    } else {
        r as u64
    }
}

fn unavailable(kind: Kind, id: &str) -> DittoError {
    match kind {
        Kind::Thing => DittoError::unavailable(id),
        Kind::Policy => crate::policy::errors::unavailable(id),
    }
}

/// The event envelope of a kept record (`historical-headers` when headers are kept).
pub fn record_envelope(id: &ThingId, rev: u64, r: &Record, with_headers: bool) -> Envelope {
    kind_envelope(Kind::Thing, id, rev, r, with_headers)
}

/// As `record_envelope`, for a thing's or a policy's record.
fn kind_envelope(kind: Kind, id: &ThingId, rev: u64, r: &Record, with_headers: bool) -> Envelope {
    let mut headers = Headers::new();
    if r.action == EventAction::Merged {
        headers.insert("content-type", "application/merge-patch+json");
    }
    if with_headers {
        headers.insert("historical-headers", Value::Object(r.headers.clone()));
    }
    let mut topic = Topic::thing(
        &id.namespace,
        &id.name,
        Channel::Twin,
        Criterion::Events(r.action),
    );
    if kind == Kind::Policy {
        topic.group = Group::Policies;
        topic.channel = Channel::None;
    }
    let mut env = Envelope::new(topic, headers, r.path.clone());
    env.value = r.value.clone();
    env.revision = Some(rev);
    env.timestamp = Some(crate::clock::format_millis(r.timestamp));
    env.metadata = r.metadata.clone();
    env
}

impl Hub {
    /// Opens the persisted events of thing `id` for `subjects`: 404 `things:thing.notfound`
    /// unless the thing exists now and they may READ some of it.
    pub fn persisted_events(
        &self,
        subjects: Arc<[String]>,
        id: &ThingId,
        q: PersistedQuery,
    ) -> Result<Persisted, DittoError> {
        let key = id.to_string();
        let now = self.now();
        let not_found =
            || crate::engine::errors::not_found(&key, &crate::protocol::ThingPath::Root);
        let state: ThingState = self
            .load_thing(&key)?
            .filter(|s| !s.deleted)
            .ok_or_else(not_found)?;
        let enforcer = self.thing_enforcer(&state, &id.namespace, now)?;
        let enforcer = enforcer
            .filter(|e| e.has_partial(&subjects, "thing", &[], READ))
            .ok_or_else(not_found)?;
        self.open(Kind::Thing, id, subjects, Some(enforcer), state.revision, q)
    }

    /// Opens the persisted events of policy `id` for `subjects`: 404 `policies:policy.notfound`
    /// unless the policy exists now and they may READ all of it (`policy:/`) now.
    pub fn persisted_policy_events(
        &self,
        subjects: Arc<[String]>,
        id: &ThingId,
        q: PersistedQuery,
    ) -> Result<Persisted, DittoError> {
        let key = id.to_string();
        let not_found = || crate::policy::errors::policy_not_found(&key);
        let state = self.load_policy_state(&key)?.ok_or_else(not_found)?;
        let load = |i: &str| self.load_policy(i);
        let enforcer = crate::policy::imports::enforcer_of(&state.policy, self.now(), &load)?;
        if !enforcer.has_unrestricted(&subjects, "policy", &[], READ) {
            return Err(not_found());
        }
        self.open(Kind::Policy, id, subjects, None, state.revision, q)
    }

    fn open(
        &self,
        kind: Kind,
        id: &ThingId,
        subjects: Arc<[String]>,
        enforcer: Option<Arc<Enforcer>>,
        current: u64,
        q: PersistedQuery,
    ) -> Result<Persisted, DittoError> {
        let key = id.to_string();
        let store_err = |e: crate::store::StoreError| {
            tracing::error!(entity = %key, error = %e, "history read failed");
            unavailable(kind, &key)
        };
        let mut next = absolute(q.from_revision.unwrap_or(0), current).max(1);
        let last = match q.to_revision {
            None | Some(0) => current,
            Some(r) => absolute(r, current).min(current),
        };
        if let (Some(t), Some(h)) = (q.from_timestamp, self.history()) {
            next = h
                .first_after(kind, &key, t, current)
                .map_err(store_err)?
                .unwrap_or(current + 1);
        }
        Ok(Persisted {
            hub: self.clone(),
            kind,
            id: id.clone(),
            subjects,
            enforcer,
            current,
            next,
            last,
            after_ts: q.from_timestamp,
            before_ts: q.to_timestamp,
            filter: q.filter.filter(|_| kind == Kind::Thing),
            done: self.history().is_none(),
        })
    }
}

impl Persisted {
    /// True once every event of the range was returned.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The next events (at most a page read from the store, possibly none that pass the
    /// filters while not yet `done`).
    pub fn next_batch(&mut self) -> Result<Vec<Envelope>, DittoError> {
        let Some(h) = self.hub.history().cloned() else {
            self.done = true;
            return Ok(Vec::new());
        };
        if self.done || self.next > self.last {
            self.done = true;
            return Ok(Vec::new());
        }
        let key = self.id.to_string();
        let now = self.hub.now();
        let page = h
            .events(
                self.kind,
                &key,
                self.next..=self.last,
                self.current,
                now,
                PAGE,
            )
            .map_err(|e| {
                tracing::error!(entity = %key, error = %e, "history read failed");
                unavailable(self.kind, &key)
            })?;
        if page.len() < PAGE {
            self.done = true;
        }
        let with_headers = !h.config().headers_to_persist.is_empty();
        let mut out = Vec::with_capacity(page.len());
        for (rev, r) in page {
            self.next = rev + 1;
            if self.after_ts.is_some_and(|t| r.timestamp <= t) {
                continue;
            }
            if self.before_ts.is_some_and(|t| r.timestamp >= t) {
                self.done = true;
                break;
            }
            let env = kind_envelope(self.kind, &self.id, rev, &r, with_headers);
            if let Some(seen) = self.visible(env, r.timestamp) {
                out.push(seen);
            }
        }
        Ok(out)
    }

    /// The event as the subjects may READ it now and if it passes the filter.
    fn visible(&self, env: Envelope, ts: i64) -> Option<Envelope> {
        let Some(enforcer) = &self.enforcer else {
            return Some(env);
        };
        let seen = match event_view(&env, enforcer, &self.subjects)? {
            None => env,
            Some(filtered) => filtered,
        };
        if let Some(q) = &self.filter {
            let id = self.id.to_string();
            let resolve = |pre: &str, n: &str| placeholder(&seen, &id, pre, n);
            let rql_env = Env {
                now_millis: ts,
                placeholders: Some(&resolve),
            };
            if !q.matches(&event_shape(&seen, &id), &rql_env) {
                return None;
            }
        }
        Some(seen)
    }
}
