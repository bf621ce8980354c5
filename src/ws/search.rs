//! The search protocol on a WebSocket session (`_/_/things/twin/search/{subscribe,request,
//! cancel}` -> `created`, `next`, `complete`, `failed`): one task per subscription
//! (`search_task`) computes one page per demanded `next` (demand counts pages), lazily — an invalid filter or option is
//! reported as `failed` on the first `request`, as in Ditto. Demand <= 0 fails the subscription
//! (reactive-streams rule 3.9); a subscription without `request` for the idle timeout fails with
//! `thing-search:subscription.timeout`; unknown IDs get `failed` with
//! `thing-search:subscription.not.found`; an ended subscription stays a "zombie" for 10 s
//! (requests to it fail with a protocol error). Open subscriptions per session are bounded.
//! Input that is no search command at all is answered on `_/_/things/search/errors`.

use super::search_task::Task;
use crate::error::DittoError;
use crate::hub::{Outbound, Requester, SessionHandle};
use crate::protocol::{error_envelope, Channel, Criterion, Envelope, Headers, Topic};
use crate::search::{self, Endpoint, Params};
use crate::state::State;
use event_listener::Event;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an ended subscription still answers requests with a protocol error (Ditto: 10 s).
const ZOMBIE_LIFETIME: Duration = Duration::from_secs(10);

pub(super) const RULE_3_9: &str = "Rule 3.9: While the Subscription is not cancelled, Subscription.request(long n) MUST signal onError with a java.lang.IllegalArgumentException if the argument is <= 0. The cause message SHOULD explain that non-positive request signals are illegal.";
pub(super) const RULE_3_9_DESCRIPTION: &str = "The intent of this rule is to prevent faulty implementations to proceed operation without any exceptions being raised. Requesting a negative or 0 number of elements, since requests are additive, most likely to be the result of an erroneous calculation on the behalf of the Subscriber.";

pub(super) fn protocol_error(message: &str, description: Option<&'static str>) -> DittoError {
    let e = DittoError::new(400, "thing-search:subscription.protocol.error", message);
    match description {
        Some(d) => e.describe(d),
        None => e,
    }
}

fn not_found(id: &str) -> DittoError {
    DittoError::new(
        404,
        "thing-search:subscription.not.found",
        format!("No subscription with ID '{id}' exists."),
    )
}

pub(super) fn timed_out(id: &str) -> DittoError {
    DittoError::new(
        408,
        "thing-search:subscription.timeout",
        format!("The subscription '{id}' stopped due to a lack of interaction."),
    )
}

/// What the reader tells a subscription task.
#[derive(Default)]
pub(super) struct Ctl {
    /// pages requested and not yet sent
    pub demand: AtomicU64,
    /// a request with demand <= 0 arrived
    pub bad_demand: AtomicBool,
    pub cancelled: AtomicBool,
    /// correlation-id of the latest command (events carry it, as in Ditto)
    pub cid: Mutex<Option<String>>,
    pub wake: Event,
}

pub(super) struct Slot {
    pub ctl: Arc<Ctl>,
    /// set when the subscription ended (complete, failed, cancelled)
    pub ended: Option<Instant>,
}

pub(super) type Slots = Arc<Mutex<HashMap<String, Slot>>>;

pub(super) fn lock(s: &Slots) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The search subscriptions of one session; dropping it cancels them all.
pub struct Searches {
    slots: Slots,
    next: u64,
    /// the session's persisted-event subscriptions (the same flow control, `ws::persisted`)
    pub(super) persisted: super::persisted::Streams,
}

impl Default for Searches {
    fn default() -> Self {
        Searches {
            slots: Arc::new(Mutex::new(HashMap::new())),
            next: 0,
            persisted: super::persisted::Streams::default(),
        }
    }
}

impl Drop for Searches {
    fn drop(&mut self) {
        for s in lock(&self.slots).values() {
            s.ctl.cancelled.store(true, Ordering::SeqCst);
            s.ctl.wake.notify(usize::MAX);
        }
    }
}

/// A search event envelope (`created`, `next`, `complete`, `failed`).
pub(super) fn event(action: &str, cid: Option<&str>, value: Value) -> Arc<str> {
    let topic = Topic::thing("_", "_", Channel::Twin, Criterion::Search(action.into()));
    let mut h = Headers::new();
    h.insert("content-type", "application/json");
    if let Some(c) = cid {
        h.insert("correlation-id", c);
    }
    let mut env = Envelope::new(topic, h, "/");
    env.value = Some(value);
    env.to_shared_text()
}

pub(super) fn failed(id: &str, cid: Option<&str>, e: &DittoError) -> Arc<str> {
    event(
        "failed",
        cid,
        json!({"subscriptionId": id, "error": e.to_json()}),
    )
}

pub(super) fn field_type(field: &str, expected: &str) -> DittoError {
    DittoError::json_format(format!(
        "Value for field </{field}> is not of the expected type {expected}."
    ))
}

/// The subscribe payload as search parameters; `Err` = no search command at all.
fn subscribe_params(env: &Envelope) -> Result<Params, DittoError> {
    let v = match &env.value {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(field_type("value", "JsonObject")),
    };
    let text = |k: &str, e: fn() -> DittoError| match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(e()),
    };
    let filter = text("filter", || {
        crate::rql::RqlError::new(0, "the filter must be a string").to_ditto()
    })?;
    let options = text("options", || {
        DittoError::new(
            400,
            "thing-search:search.option.invalid",
            "The options must be a string such as 'size(10),sort(+thingId)'.",
        )
        .describe("At least one provided option is invalid.")
    })?;
    let namespaces = match v.get("namespaces") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    DittoError::new(
                        400,
                        "thing-search:search.namespaces.invalid",
                        "The namespaces must be an array of strings.",
                    )
                })?,
        ),
        Some(_) => return Err(field_type("namespaces", "JsonArray")),
    };
    Ok(Params {
        filters: filter.into_iter().collect(),
        options,
        fields: env.fields.clone(),
        namespaces,
    })
}

/// `subscriptionId` (and `demand` for requests) of a request/cancel payload (search and
/// persisted-event streams: Ditto's reactive-streams protocol reads both alike).
pub(super) fn target(env: &Envelope, with_demand: bool) -> Result<(String, i64), DittoError> {
    let v = env.value.as_ref();
    let id = match v.and_then(|v| v.get("subscriptionId")) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(field_type("subscriptionId", "String")),
        None => return Err(DittoError::field_missing("/subscriptionId")),
    };
    if !with_demand {
        return Ok((id, 0));
    }
    let demand = match v.and_then(|v| v.get("demand")) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(_) => return Err(field_type("demand", "long")),
        None => return Err(DittoError::field_missing("/demand")),
    };
    Ok((id, demand))
}

impl Searches {
    /// Handles one inbound envelope whose topic is a search topic.
    pub async fn handle(
        &mut self,
        st: &Arc<State>,
        session: &Arc<SessionHandle>,
        who: &Requester,
        env: Envelope,
    ) {
        let cid = env.headers.correlation_id().map(str::to_owned);
        let action = match &env.topic.criterion {
            Criterion::Search(a) => a.clone(),
            _ => String::new(),
        };
        let reply = |text: Arc<str>| async move {
            session.reply(Outbound::Now(text)).await;
        };
        let error =
            |e: DittoError| error_envelope(Some(&env.topic), cid.as_deref(), &e).to_shared_text();
        self.prune();
        match action.as_str() {
            "subscribe" => match subscribe_params(&env) {
                Ok(p) => self.subscribe(st, session, who, p, cid.clone()).await,
                Err(e) => reply(error(e)).await,
            },
            "request" | "cancel" => {
                let (id, demand) = match target(&env, action == "request") {
                    Ok(x) => x,
                    Err(e) => return reply(error(e)).await,
                };
                let slot = lock(&self.slots).get(&id).map(|s| (s.ctl.clone(), s.ended));
                match slot {
                    None => reply(failed(&id, cid.as_deref(), &not_found(&id))).await,
                    Some((_, Some(_))) if action == "request" => {
                        let e = protocol_error(
                            "This subscription is considered cancelled. No more messages are processed.",
                            None,
                        );
                        reply(failed(&id, cid.as_deref(), &e)).await
                    }
                    Some((_, Some(_))) => {} // cancelling an ended subscription: nothing to do
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
                            let add = demand as u64;
                            update(&ctl.demand, |d| d.saturating_add(add));
                        }
                        ctl.wake.notify(usize::MAX);
                    }
                }
            }
            other => {
                let e = DittoError::new(
                    400,
                    "signal.unsupported",
                    format!("The search action '{other}' cannot be sent by a client."),
                )
                .describe("Clients send subscribe, request and cancel.");
                reply(error(e)).await
            }
        }
    }

    /// Forgets zombies past their lifetime.
    fn prune(&self) {
        lock(&self.slots).retain(|_, s| s.ended.is_none_or(|t| t.elapsed() < ZOMBIE_LIFETIME));
    }

    async fn subscribe(
        &mut self,
        st: &Arc<State>,
        session: &Arc<SessionHandle>,
        who: &Requester,
        params: Params,
        cid: Option<String>,
    ) {
        let max = st.cfg.search.max_subscriptions_per_session;
        let open = {
            let mut slots = lock(&self.slots);
            let open = slots.values().filter(|s| s.ended.is_none()).count();
            if slots.len() >= 2 * max {
                slots.retain(|_, s| s.ended.is_none()); // too many zombies: forget them early
            }
            open
        };
        if open >= max {
            let e = protocol_error(
                &format!("Too many open search subscriptions in this session (at most {max})."),
                Some("Cancel a subscription or request it to completion before subscribing again."),
            );
            let topic = Topic::thing(
                "_",
                "_",
                Channel::Twin,
                Criterion::Search("subscribe".into()),
            );
            let text = error_envelope(Some(&topic), cid.as_deref(), &e).to_text();
            session.reply(Outbound::Now(Arc::from(text))).await;
            return;
        }
        self.next += 1;
        let id = format!("{}-{}", session.id, self.next);
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
        let created = event("created", cid.as_deref(), json!({"subscriptionId": id}));
        session.reply(Outbound::Now(created)).await;
        let resolved = search::resolve(&params, Endpoint::Stream);
        let task = Task {
            st: st.clone(),
            session: session.clone(),
            who: who.clone(),
            id,
            ctl,
            slots: self.slots.clone(),
        };
        st.ex.spawn(task.run(resolved)).detach();
    }
}

/// `a = f(a)`, atomically. (`AtomicU64::fetch_update` is deprecated from Rust 1.99 on, and its
/// successor `try_update` is newer than the crate's minimum Rust.)
pub(super) fn update(a: &AtomicU64, f: impl Fn(u64) -> u64) {
    let mut cur = a.load(Ordering::SeqCst);
    while let Err(actual) = a.compare_exchange_weak(cur, f(cur), Ordering::SeqCst, Ordering::SeqCst)
    {
        cur = actual;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: Value) -> Envelope {
        Envelope::parse(&v.to_string()).unwrap()
    }

    #[test]
    fn payload_checks() {
        let e = env(
            json!({"topic": "_/_/things/twin/search/subscribe", "path": "/",
            "value": {"filter": "eq(attributes/a,1)", "options": "size(2)", "namespaces": ["a"]},
            "fields": "thingId"}),
        );
        let p = subscribe_params(&e).unwrap();
        assert_eq!(
            (p.filters.len(), p.options.as_deref(), p.fields.as_deref()),
            (1, Some("size(2)"), Some("thingId"))
        );
        let bad = |value: Value| {
            let e = env(
                json!({"topic": "_/_/things/twin/search/subscribe", "path": "/", "value": value}),
            );
            subscribe_params(&e).unwrap_err().error.to_string()
        };
        assert_eq!(
            bad(json!({"options": 5})),
            "thing-search:search.option.invalid"
        );
        assert_eq!(bad(json!({"filter": 5})), "rql.expression.invalid");
        assert_eq!(
            bad(json!({"namespaces": [1]})),
            "thing-search:search.namespaces.invalid"
        );
        assert_eq!(bad(json!([1])), "json.format.invalid");
        let r = |value: Value| {
            target(
                &env(
                    json!({"topic": "_/_/things/twin/search/request", "path": "/", "value": value}),
                ),
                true,
            )
        };
        assert_eq!(
            r(json!({"subscriptionId": "1", "demand": 3})).unwrap(),
            ("1".into(), 3)
        );
        assert_eq!(
            r(json!({"subscriptionId": "1", "demand": 1e30})).unwrap().1,
            i64::MAX
        );
        assert_eq!(
            r(json!({"subscriptionId": "1"})).unwrap_err().error,
            "json.field.missing"
        );
        assert_eq!(
            r(json!({"demand": 1})).unwrap_err().error,
            "json.field.missing"
        );
    }
}
