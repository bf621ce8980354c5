//! Incoming device messages on the hub side, one at a time in arrival order: Ditto Protocol on
//! `<prefix>/<thingId>/ditto` (handled like a WS message of the bridge subject, replies on
//! `.../ditto/reply`), mapped telemetry and availability (merged into the twin; devices without
//! twin created or ignored). The acker then acknowledges each QoS 1 message in the same order
//! once its change is applied (telemetry is second durability class: on disk within the store's
//! flush interval), and publishes a reply when the hub's answer step says it may go (a
//! passthrough command that asked for it: once durable). While the store refuses writes (disk
//! full) telemetry waits, so the broker keeps it.

use super::mapping::{connection_status, Inbound, Target, FOREVER};
use super::stats::{inc, Kind};
use super::twins;
use super::Bridge;
use crate::error::DittoError;
use crate::hub::{Answer, Outbound, Outgoing};
use crate::protocol::{error_envelope, Action, Criterion, Envelope, Signal, ThingCommand};
use crate::rules::acks::AckRequest;
use async_channel::{Receiver, Sender};
use rumqttc::{Publish, QoS};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// What handling a message left to do: the reply to publish on its MQTT topic when the
/// hub's answer step lets it go (`Outbound::ready`).
type Reply = Option<(String, Outbound)>;

/// One entry of the acker's queue.
pub(super) struct Item {
    reply: Reply,
    publish: Option<Publish>,
}

/// The thing id of a passthrough topic `<prefix>/<thingId>/ditto`.
fn ditto_thing<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let id = rest.strip_suffix("/ditto")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// 400 `mqtt:thing.mismatch`: a passthrough message about another thing than its topic names.
fn mismatch(topic_id: &str, env: &Envelope) -> DittoError {
    DittoError::new(
        400,
        "mqtt:thing.mismatch",
        format!(
            "The message on the MQTT topic of thing '{topic_id}' is about '{}'.",
            env.topic.entity_id().unwrap_or_else(|| "_".into())
        ),
    )
    .describe(
        "Publish Ditto Protocol messages on <prefix>/<thingId>/ditto of the thing they address.",
    )
}

/// Handles incoming messages until the connection thread ends.
pub(super) async fn run(b: Arc<Bridge>, rx: Receiver<Publish>, acks: Sender<Item>) {
    while let Ok(p) = rx.recv().await {
        b.wait_until_writable(&p.topic).await;
        let reply = b.handle(&p).await;
        let publish = (p.qos != QoS::AtMostOnce).then_some(p);
        if reply.is_none() && publish.is_none() {
            continue;
        }
        if acks.send(Item { reply, publish }).await.is_err() {
            break;
        }
    }
}

/// Publishes replies and acknowledges QoS 1 messages in arrival order, each once its change is
/// applied and its reply may go (the answer step: a passthrough command that asked for it
/// waits until durable; one that never became durable gets its error and no ack). Acks wait
/// in a local queue while the client's request queue is full (never blocking the pipeline, so
/// the connection thread can always drain it).
pub(super) async fn acker(b: Arc<Bridge>, rx: Receiver<Item>) {
    let gate = b.hub.gate();
    let mut unsent: VecDeque<Publish> = VecDeque::new();
    loop {
        while let Some(p) = unsent.front() {
            if b.client.try_ack(p).is_err() {
                break;
            }
            unsent.pop_front();
            inc(&b.stats.c.acked);
        }
        let item = if unsent.is_empty() {
            rx.recv().await.ok()
        } else {
            let retry = async {
                smol::Timer::after(Duration::from_millis(5)).await;
                None
            };
            match futures_lite::future::or(async { Some(rx.recv().await.ok()) }, retry).await {
                Some(i) => i,
                None => continue,
            }
        };
        let Some(item) = item else { return };
        let mut ok = true;
        if let Some((topic, out)) = item.reply {
            let text = match out.ready(&gate).await {
                Ok(text) => Some(text),
                Err(failed) => {
                    ok = false;
                    failed
                }
            };
            if let Some(text) = text {
                let _ = b.publish(topic, text.as_bytes().to_vec());
            }
        }
        match (ok, item.publish) {
            (true, Some(p)) => unsent.push_back(p),
            (false, Some(p)) => b.stats.warn(
                Kind::Failed,
                format_args!("change from '{}' not durable; not acknowledged", p.topic),
            ),
            _ => {}
        }
    }
}

impl Bridge {
    /// Holds a mapped message while the store refuses writes (disk full): not acknowledged, the
    /// broker keeps it and what follows; passthrough messages go on (they get the error).
    async fn wait_until_writable(&self, topic: &str) {
        if ditto_thing(&self.cfg.topic_prefix, topic).is_some() {
            return;
        }
        let store = self.hub.store();
        while let Err(e) = store.writable() {
            if store.is_stopped() {
                return;
            }
            self.stats.warn(
                Kind::Failed,
                format_args!("telemetry held: {e} (the broker keeps the messages)"),
            );
            smol::Timer::after(Duration::from_millis(250)).await;
        }
    }

    fn bad(&self, counter: &std::sync::atomic::AtomicU64, topic: &str, why: &str) {
        inc(counter);
        self.stats.warn(
            Kind::Bad,
            format_args!("message on '{topic}' skipped: {why}"),
        );
    }

    async fn handle(self: &Arc<Self>, p: &Publish) -> Reply {
        let ditto = ditto_thing(&self.cfg.topic_prefix, &p.topic);
        if p.payload.len() > self.max_payload {
            self.bad(&self.stats.c.bad_payload, &p.topic, "payload too large");
            return match ditto {
                Some(id) => self.reply_error(
                    id,
                    None,
                    None,
                    &too_large(p.payload.len(), self.max_payload),
                ),
                None => None,
            };
        }
        if let Some(id) = ditto {
            return self.ditto(id, &p.topic, &p.payload).await;
        }
        // Telemetry is of the second durability class: its QoS 1 message is acknowledged once
        // the change is applied, and is on disk within the store's flush interval (README).
        let _applied = match self
            .mappings
            .classify(&p.topic, &p.payload, &self.cfg.namespace)
        {
            Inbound::Telemetry(t, patch) => self.apply(&t, patch).await,
            Inbound::Availability(t, online) => self.availability(&t, online).await,
            Inbound::Ignored => {
                inc(&self.stats.c.ignored);
                None
            }
            Inbound::Unknown => {
                self.bad(
                    &self.stats.c.unknown_topic,
                    &p.topic,
                    "no mapping for this topic",
                );
                None
            }
            Inbound::BadTopic(why) => {
                self.bad(&self.stats.c.unknown_topic, &p.topic, &why);
                None
            }
            Inbound::Bad(why) => {
                self.bad(&self.stats.c.bad_payload, &p.topic, &why);
                None
            }
        };
        None
    }

    fn reply_error(
        &self,
        thing_id: &str,
        topic: Option<&crate::protocol::Topic>,
        cid: Option<&str>,
        e: &DittoError,
    ) -> Reply {
        let text = error_envelope(topic, cid, e).to_text();
        Some((
            format!("{}/{thing_id}/ditto/reply", self.cfg.topic_prefix),
            Outbound::Now(Arc::from(text)),
        ))
    }

    /// A Ditto Protocol message from a device.
    async fn ditto(self: &Arc<Self>, thing_id: &str, mqtt_topic: &str, payload: &[u8]) -> Reply {
        let Ok(text) = std::str::from_utf8(payload) else {
            self.bad(&self.stats.c.bad_payload, mqtt_topic, "not UTF-8");
            return self.reply_error(
                thing_id,
                None,
                None,
                &DittoError::json_invalid("<binary payload>"),
            );
        };
        let mut env = match Envelope::parse(text) {
            Ok(e) => e,
            Err(f) => {
                self.bad(&self.stats.c.bad_payload, mqtt_topic, &f.error.message);
                return self.reply_error(
                    thing_id,
                    f.topic.as_ref(),
                    f.correlation_id.as_deref(),
                    &f.error,
                );
            }
        };
        if env.topic.entity_id().as_deref() != Some(thing_id) {
            self.bad(
                &self.stats.c.bad_payload,
                mqtt_topic,
                "topic names another thing",
            );
            let cid = env.headers.correlation_id().map(str::to_owned);
            return self.reply_error(
                thing_id,
                Some(&env.topic),
                cid.as_deref(),
                &mismatch(thing_id, &env),
            );
        }
        let creating = matches!(
            env.topic.criterion,
            Criterion::Commands(Action::Create | Action::Modify)
        );
        if creating {
            let exists = self
                .hub
                .load_thing(thing_id)
                .ok()
                .flatten()
                .is_some_and(|s| !s.deleted);
            if twins::needs_bridge_policy(&env, exists) {
                let mut m = match env.value.take() {
                    Some(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                m.insert("_policy".into(), self.policy.clone());
                env.value = Some(Value::Object(m));
                env.headers.insert("allow-policy-lockout", true);
            }
        }
        inc(&self.stats.c.ditto);
        let answer = self.hub.handle_protocol(&self.requester(), env).await;
        // the QoS 1 ack waits only for what the reply waits for (the requested acks)
        let reply_topic = format!("{}/{thing_id}/ditto/reply", self.cfg.topic_prefix);
        match answer.map(Answer::outbound) {
            None => None,
            Some(Outgoing::Now(out)) => Some((reply_topic, out)),
            Some(Outgoing::Later(late)) => {
                let b = self.clone();
                self.ex
                    .spawn(async move {
                        if let Some(text) = late.text().await {
                            let _ = b.publish(reply_topic, text.as_bytes().to_vec());
                        }
                    })
                    .detach();
                None
            }
        }
    }

    /// Merges a mapped change into `/features`, creating the twin if needed and allowed.
    async fn apply(&self, t: &Target, patch: Value) -> Option<u64> {
        let cmd = match twins::merge(&t.thing_id, "/features", patch) {
            Ok(c) => c,
            Err(e) => {
                self.bad(&self.stats.c.bad_payload, &t.thing_id, &e.message);
                return None;
            }
        };
        let who = self.requester();
        match self.write(&who, &cmd).await {
            Ok(done) => {
                inc(&self.stats.c.telemetry);
                let attr = self.remember(t).await;
                return done.max(attr);
            }
            Err(e) if e.status == 404 && !self.exists(&t.thing_id) => {}
            Err(e) => {
                self.bad(&self.stats.c.bad_payload, &t.thing_id, &e.message);
                return None;
            }
        }
        if self.cfg.unknown_devices == super::config::UnknownDevices::Ignore {
            inc(&self.stats.c.unknown_device);
            return None;
        }
        let attr = twins::mqtt_attribute(&t.mapping, &t.device);
        match twins::create(&t.thing_id, self.policy.clone(), attr) {
            Ok(create) => match self.write(&who, &create).await {
                Ok(_) => {
                    inc(&self.stats.c.created);
                    tracing::info!(thing = %t.thing_id, mapping = %t.mapping, "mqtt: twin created for device");
                    self.seen(&t.thing_id);
                }
                Err(e) if e.status == 409 => {}
                Err(e) => {
                    self.stats.warn(
                        Kind::Failed,
                        format_args!("creating '{}': {}", t.thing_id, e.message),
                    );
                    return None;
                }
            },
            Err(e) => {
                self.bad(&self.stats.c.bad_payload, &t.thing_id, &e.message);
                return None;
            }
        }
        match self.write(&who, &cmd).await {
            Ok(done) => {
                inc(&self.stats.c.telemetry);
                done
            }
            Err(e) => {
                self.bad(&self.stats.c.bad_payload, &t.thing_id, &e.message);
                None
            }
        }
    }

    /// A twin write of the bridge through the hub's door: no response, no acks (the interval
    /// class); the store sequence of the write, if any.
    async fn write(
        &self,
        who: &crate::hub::Requester,
        cmd: &ThingCommand,
    ) -> Result<Option<u64>, DittoError> {
        let signal = Signal::Thing(cmd.clone());
        Ok(
            match self.hub.call(who, signal, &AckRequest::unwaited()).await? {
                Some(Answer::Now(r)) => r.seq,
                _ => None,
            },
        )
    }

    fn exists(&self, id: &str) -> bool {
        self.hub
            .load_thing(id)
            .ok()
            .flatten()
            .is_some_and(|s| !s.deleted)
    }

    /// Marks a thing as checked in this run; true if it was not yet.
    fn seen(&self, id: &str) -> bool {
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= super::SEEN_MAX {
            s.clear();
        }
        s.insert(id.to_owned())
    }

    /// Once per run and thing: writes `attributes/mqtt` if it does not name this mapping and
    /// device (commands find their way back through it). Best effort.
    async fn remember(&self, t: &Target) -> Option<u64> {
        if !self.seen(&t.thing_id) {
            return None;
        }
        let want = twins::mqtt_attribute(&t.mapping, &t.device);
        let state = self.hub.load_thing(&t.thing_id).ok().flatten()?;
        if state.thing.pointer("/attributes/mqtt") == Some(&want) {
            return None;
        }
        let cmd = twins::merge(
            &t.thing_id,
            "/attributes",
            serde_json::json!({"mqtt": want}),
        )
        .ok()?;
        match self.write(&self.requester(), &cmd).await {
            Ok(seq) => seq,
            Err(e) => {
                tracing::debug!(thing = %t.thing_id, error = %e.message, "mqtt: attributes/mqtt not written");
                None
            }
        }
    }

    /// Online / offline: `ConnectionStatus` (nothing written if it already says so).
    async fn availability(&self, t: &Target, online: bool) -> Option<u64> {
        if let Some(state) = self
            .hub
            .load_thing(&t.thing_id)
            .ok()
            .flatten()
            .filter(|s| !s.deleted)
        {
            let until = state
                .thing
                .pointer("/features/ConnectionStatus/properties/status/readyUntil")
                .and_then(Value::as_str);
            if online && until == Some(FOREVER) || !online && until.is_some_and(|u| u != FOREVER) {
                inc(&self.stats.c.ignored);
                return None;
            }
        }
        let now = crate::clock::format_millis(crate::clock::now_millis());
        self.apply(t, connection_status(online, &now)).await
    }
}

fn too_large(size: usize, max: usize) -> DittoError {
    DittoError::new(
        413,
        "messages:payload.toolarge",
        format!("The size of the message ({size} bytes) exceeds the maximum allowed size of {max} bytes."),
    )
    .describe("Reduce the size of the message or raise limits.max_message_kib in the configuration.")
}

#[cfg(test)]
mod tests {
    use super::ditto_thing;

    #[test]
    fn passthrough_topics() {
        assert_eq!(ditto_thing("edgetwin", "edgetwin/a:b/ditto"), Some("a:b"));
        assert_eq!(ditto_thing("edgetwin", "edgetwin/a:b/ditto/reply"), None);
        assert_eq!(ditto_thing("edgetwin", "edgetwin//ditto"), None);
        assert_eq!(ditto_thing("edgetwin", "edgetwin/x/y/ditto"), None);
        assert_eq!(ditto_thing("edgetwin", "edgetwinx/a:b/ditto"), None);
    }
}
