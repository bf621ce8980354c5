//! The streaming subscription protocol on a WebSocket session (Ditto's
//! `protocol-specification-streaming-subscription`): `<ns>/<name>/things/twin/streaming/` and
//! `<ns>/<name>/policies/streaming/` `{subscribeForPersistedEvents,request,cancel}` -> `created`, `next` (one persisted event per
//! item, as a Ditto Protocol event), `complete`, `failed`. One task per subscription sends at
//! most what was requested; `complete` / `failed` never come before the first `request` (an
//! unknown or unreadable thing fails then). Demand <= 0 fails (rule 3.9); a subscription
//! without a `request` for the search idle timeout fails with `streaming.subscription.timeout`.
//! Open subscriptions per session share the search bound.

use super::search::{
    field_type, lock, target, update, Ctl, Slot, Slots, RULE_3_9, RULE_3_9_DESCRIPTION,
};
use crate::error::DittoError;
use crate::hub::history_stream::{Persisted, PersistedQuery};
use crate::hub::{Outbound, Requester, SessionHandle};
use crate::model::EntityId;
use crate::protocol::{error_envelope, Channel, Criterion, Envelope, Group, Headers, Topic};
use crate::state::State;
use futures_lite::future;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn error(code: &'static str, status: u16, message: String) -> DittoError {
    DittoError::new(status, code, message)
}

fn not_found(id: &str) -> DittoError {
    error(
        "streaming.subscription.not.found",
        404,
        format!("No subscription with ID '{id}' exists."),
    )
}

fn protocol_error(message: &str) -> DittoError {
    error("streaming.subscription.protocol.error", 400, message.into())
}

/// The persisted-event subscriptions of one session; dropping it cancels them all.
pub struct Streams {
    slots: Slots,
    next: u64,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            slots: Arc::new(Mutex::new(HashMap::new())),
            next: 0,
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        for s in lock(&self.slots).values() {
            s.ctl.cancelled.store(true, Ordering::SeqCst);
            s.ctl.wake.notify(usize::MAX);
        }
    }
}

/// A streaming event envelope of `topic`'s thing or policy.
fn event(topic: &Topic, action: &str, cid: Option<&str>, value: Value) -> Arc<str> {
    let mut t = topic.clone();
    t.criterion = Criterion::Streaming(action.into());
    if t.group == Group::Things {
        t.channel = Channel::Twin;
    }
    let mut h = Headers::new();
    h.insert("content-type", "application/json");
    if let Some(c) = cid {
        h.insert("correlation-id", c);
    }
    let mut env = Envelope::new(t, h, "/");
    env.value = Some(value);
    env.to_shared_text()
}

/// The subscribe payload: revisions, timestamps (ISO-8601) and `filter`.
fn query(env: &Envelope) -> Result<PersistedQuery, DittoError> {
    let v = match &env.value {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(field_type("value", "JsonObject")),
    };
    let rev = |k: &str| match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_i64().map(Some).ok_or_else(|| field_type(k, "long")),
    };
    let ts = |k: &str| match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::clock::parse_iso(s)
            .map(Some)
            .ok_or_else(|| field_type(k, "ISO-8601 timestamp")),
        Some(_) => Err(field_type(k, "String")),
    };
    let filter = match v.get("filter") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(crate::rql::parse(s).map_err(|e| e.to_ditto())?),
        Some(_) => return Err(field_type("filter", "String")),
    };
    Ok(PersistedQuery {
        from_revision: rev("fromHistoricalRevision")?,
        to_revision: rev("toHistoricalRevision")?,
        from_timestamp: ts("fromHistoricalTimestamp")?,
        to_timestamp: ts("toHistoricalTimestamp")?,
        filter,
    })
}

impl Streams {
    /// Handles one inbound envelope whose topic is a streaming topic.
    pub async fn handle(
        &mut self,
        st: &Arc<State>,
        session: &Arc<SessionHandle>,
        who: &Requester,
        env: Envelope,
    ) {
        let cid = env.headers.correlation_id().map(str::to_owned);
        let action = match &env.topic.criterion {
            Criterion::Streaming(a) => a.clone(),
            _ => String::new(),
        };
        let reply = |text: Arc<str>| async move {
            session.reply(Outbound::Now(text)).await;
        };
        let err_env =
            |e: DittoError| error_envelope(Some(&env.topic), cid.as_deref(), &e).to_shared_text();
        lock(&self.slots).retain(|_, s| {
            s.ended
                .is_none_or(|t| t.elapsed() < Duration::from_secs(10))
        });
        let failed = |id: &str, e: &DittoError| {
            event(
                &env.topic,
                "failed",
                cid.as_deref(),
                json!({"subscriptionId": id, "error": e.to_json()}),
            )
        };
        match action.as_str() {
            "subscribeForPersistedEvents" => {
                let q = query(&env);
                let id = EntityId::from_parts(&env.topic.namespace, &env.topic.name);
                let opened = q.and_then(|q| {
                    let (id, subjects) = (id?, who.subjects.clone());
                    match env.topic.group {
                        Group::Policies => st.hub.persisted_policy_events(subjects, &id, q),
                        _ => st.hub.persisted_events(subjects, &id, q),
                    }
                });
                self.subscribe(st, session, &env.topic, opened, cid.clone())
                    .await
            }
            "request" | "cancel" => {
                let (id, demand) = match target(&env, action == "request") {
                    Ok(x) => x,
                    Err(e) => return reply(err_env(e)).await,
                };
                let slot = lock(&self.slots).get(&id).map(|s| (s.ctl.clone(), s.ended));
                match slot {
                    None => reply(failed(&id, &not_found(&id))).await,
                    Some((_, Some(_))) if action == "request" => {
                        let e = protocol_error("This subscription is considered cancelled. No more messages are processed.");
                        reply(failed(&id, &e)).await
                    }
                    Some((_, Some(_))) => {}
                    Some((ctl, None)) => {
                        *ctl.cid.lock().unwrap_or_else(|e| e.into_inner()) = cid.clone();
                        if action == "cancel" {
                            ctl.cancelled.store(true, Ordering::SeqCst);
                            if let Some(s) = lock(&self.slots).get_mut(&id) {
                                s.ended.get_or_insert_with(Instant::now);
                            }
                        } else if demand <= 0 {
                            ctl.bad_demand.store(true, Ordering::SeqCst);
                        } else {
                            update(&ctl.demand, |d| d.saturating_add(demand as u64));
                        }
                        ctl.wake.notify(usize::MAX);
                    }
                }
            }
            other => {
                let e = DittoError::new(
                    400,
                    "signal.unsupported",
                    format!("The streaming action '{other}' cannot be sent by a client."),
                )
                .describe("Clients send subscribeForPersistedEvents, request and cancel.");
                reply(err_env(e)).await
            }
        }
    }

    async fn subscribe(
        &mut self,
        st: &Arc<State>,
        session: &Arc<SessionHandle>,
        topic: &Topic,
        opened: Result<Persisted, DittoError>,
        cid: Option<String>,
    ) {
        let max = st.cfg.search.max_subscriptions_per_session;
        let open = lock(&self.slots)
            .values()
            .filter(|s| s.ended.is_none())
            .count();
        if open >= max {
            let e = protocol_error(&format!(
                "Too many open streaming subscriptions in this session (at most {max})."
            ));
            let text = error_envelope(Some(topic), cid.as_deref(), &e).to_text();
            session.reply(Outbound::Now(Arc::from(text))).await;
            return;
        }
        let id = self.next.to_string();
        self.next += 1;
        let ctl = Arc::new(Ctl {
            cid: Mutex::new(cid.clone()),
            ..Ctl::default()
        });
        lock(&self.slots).insert(
            id.clone(),
            Slot {
                ctl: ctl.clone(),
                ended: None,
            },
        );
        let created = event(
            topic,
            "created",
            cid.as_deref(),
            json!({"subscriptionId": id}),
        );
        session.reply(Outbound::Now(created)).await;
        let task = Task {
            session: session.clone(),
            topic: topic.clone(),
            id,
            ctl,
            slots: self.slots.clone(),
            idle: Duration::from_secs(st.cfg.search.subscription_idle_timeout_secs),
        };
        st.ex.spawn(task.run(opened)).detach();
    }
}

struct Task {
    session: Arc<SessionHandle>,
    topic: Topic,
    id: String,
    ctl: Arc<Ctl>,
    slots: Slots,
    idle: Duration,
}

impl Task {
    fn send_event(&self, action: &str, value: Value) -> Arc<str> {
        let cid = self
            .ctl
            .cid
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        event(&self.topic, action, cid.as_deref(), value)
    }

    async fn send(&self, text: Arc<str>) -> bool {
        !self.ctl.cancelled.load(Ordering::SeqCst) && self.session.reply(Outbound::Now(text)).await
    }

    /// Waits for demand: `Ok(true)` = demand, `Ok(false)` = cancelled, `Err` = fail.
    async fn demand(&self) -> Result<bool, DittoError> {
        let deadline = Instant::now() + self.idle;
        loop {
            let listener = self.ctl.wake.listen();
            if self.ctl.cancelled.load(Ordering::SeqCst) {
                return Ok(false);
            }
            if self.ctl.bad_demand.load(Ordering::SeqCst) {
                let e = protocol_error(RULE_3_9).describe(RULE_3_9_DESCRIPTION);
                return Err(e);
            }
            if self.ctl.demand.load(Ordering::SeqCst) > 0 {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(error(
                    "streaming.subscription.timeout",
                    408,
                    format!(
                        "The subscription '{}' stopped due to a lack of interaction.",
                        self.id
                    ),
                ));
            }
            future::or(listener, async {
                smol::Timer::after(left).await;
            })
            .await;
        }
    }

    async fn run(self, opened: Result<Persisted, DittoError>) {
        let outcome = self.stream(opened).await;
        if let Err(e) = outcome {
            let v = json!({"subscriptionId": self.id, "error": e.to_json()});
            self.send(self.send_event("failed", v)).await;
        }
        if let Some(s) = lock(&self.slots).get_mut(&self.id) {
            s.ended.get_or_insert_with(Instant::now);
        }
    }

    async fn stream(&self, opened: Result<Persisted, DittoError>) -> Result<(), DittoError> {
        // nothing (not even a failure) before the first request
        if !self.demand().await? {
            return Ok(());
        }
        let mut cursor = opened?;
        let mut buffer = std::collections::VecDeque::new();
        loop {
            while buffer.is_empty() && !cursor.done() {
                buffer.extend(cursor.next_batch()?);
                future::yield_now().await;
            }
            let Some(item) = buffer.pop_front() else {
                let v = json!({"subscriptionId": self.id});
                self.send(self.send_event("complete", v)).await;
                return Ok(());
            };
            if !self.demand().await? {
                return Ok(());
            }
            update(&self.ctl.demand, |d| d.saturating_sub(1));
            let item: Value = serde_json::from_str(&item.to_text()).unwrap_or(Value::Null);
            let v = json!({"subscriptionId": self.id, "item": item});
            if !self.send(self.send_event("next", v)).await {
                return Ok(());
            }
        }
    }
}
