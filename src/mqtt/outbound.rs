//! Signals for devices, read from the bridge's hub session: live commands, live events and
//! messages go to `<prefix>/<thingId>/live` as Ditto Protocol JSON (the device answers on
//! `.../ditto` with the same correlation-id). For a mapped device (`attributes/mqtt` names a
//! mapping with a command topic) live modify/merge commands, inbox messages and desired-property
//! changes become messages on its command topic instead, answered by the bridge (204 / 202).

use super::commands::{command_messages, desired_from, Desired};
use super::mapping::Command;
use super::stats::{inc, Kind};
use super::Bridge;
use crate::error::DittoError;
use crate::hub::{Outbound, OutboundRx};
use crate::protocol::{
    error_envelope, Action, Channel, Criterion, Direction, Envelope, EventAction, MessagePath,
};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Forwards the session's signals until the bridge ends; reopens an overflowed session.
pub(super) async fn run(b: Arc<Bridge>, mut rx: OutboundRx) {
    loop {
        while let Ok(out) = rx.recv().await {
            let text = match out {
                Outbound::Now(t) | Outbound::Durable { text: t, .. } => t,
            };
            b.forward(&text);
        }
        let session = b.session();
        if !session.overflowed() {
            return;
        }
        // Signals arrived faster than the broker took them: what was queued is lost (counted);
        // pending live requests owed by the old session are answered as "no responder".
        inc(&b.stats.c.session_restarts);
        b.stats.warn(
            Kind::Dropped,
            format_args!("bridge session queue overflowed; signals for devices were dropped"),
        );
        b.hub.close_session(session.id);
        let (fresh, fresh_rx) = super::open_session(&b.hub, &b.cfg.subject);
        *b.session.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        rx = fresh_rx;
    }
}

impl Bridge {
    /// The command route of a mapped thing, from the `attributes/mqtt` extra field.
    fn mapped<'a>(&'a self, env: &'a Envelope) -> Option<(&'a Command, &'a str)> {
        let m = env.extra.as_ref()?.pointer("/attributes/mqtt")?;
        let device = m.get("device")?.as_str()?;
        let cmd = self.mappings.command(m.get("mapping")?.as_str()?)?;
        Some((cmd, device))
    }

    /// Publishes a mapped device's commands: `None` if there were none, else whether every
    /// one was taken by the client.
    fn send_commands(&self, cmd: &Command, device: &str, desired: &Desired) -> Option<bool> {
        let msgs = command_messages(cmd, device, desired);
        if msgs.is_empty() {
            return None;
        }
        let mut all = true;
        for (topic, payload) in msgs {
            all &= self.publish(topic, payload);
        }
        Some(all)
    }

    /// The bridge answers a live signal it turned into device commands: `status` once they
    /// were published, 503 if the client could not take them.
    fn answer(&self, env: &Envelope, status: u16, published: bool) {
        if env.headers.bool("response-required").ok().flatten() == Some(false) {
            return;
        }
        let cid = env.headers.correlation_id();
        let a = if published {
            let mut a = Envelope::new(env.topic.clone(), Default::default(), env.path.clone());
            if let Some(c) = cid {
                a.headers.insert("correlation-id", c);
            }
            a.status = Some(status);
            a
        } else {
            error_envelope(Some(&env.topic), cid, &broker_unavailable())
        };
        self.hub.incoming_answer(Some(self.session().id), a);
    }

    fn forward(&self, text: &str) {
        let Ok(mut env) = Envelope::parse(text) else {
            return;
        };
        let Some(thing_id) = env.topic.entity_id() else {
            return;
        };
        let mapped = self.mapped(&env);
        match (&env.topic.channel, &env.topic.criterion) {
            (Channel::Twin, Criterion::Events(a)) => {
                if let (Some((cmd, device)), false) = (mapped, *a == EventAction::Deleted) {
                    let d = desired_from(&env.path, env.value.as_ref(), &["desiredProperties"]);
                    let _ = self.send_commands(cmd, device, &d);
                }
                return;
            }
            (Channel::Live, Criterion::Commands(Action::Modify | Action::Merge)) => {
                if let Some((cmd, device)) = mapped {
                    let keys = ["properties", "desiredProperties"];
                    let d = desired_from(&env.path, env.value.as_ref(), &keys);
                    if let Some(ok) = self.send_commands(cmd, device, &d) {
                        return self.answer(&env, 204, ok);
                    }
                }
            }
            (Channel::Live, Criterion::Messages(_)) => {
                if let (Some((cmd, device)), Some(p)) = (mapped, MessagePath::parse(&env.path)) {
                    if p.direction == Direction::Inbox && !p.is_claim() {
                        let feature = p.feature.clone().or_else(|| cmd.feature.clone());
                        let mut props = Map::new();
                        props.insert(p.subject.clone(), env.value.clone().unwrap_or(Value::Null));
                        let d = vec![(feature.unwrap_or_default(), props)];
                        if let Some(ok) = self.send_commands(cmd, device, &d) {
                            return self.answer(&env, 202, ok);
                        }
                    }
                }
            }
            _ => {}
        }
        env.extra = None;
        let topic = format!("{}/{thing_id}/live", self.cfg.topic_prefix);
        let _ = self.publish(topic, env.to_text().into_bytes());
    }
}

/// 503 `mqtt:broker.unavailable`: a mapped device's command could not be queued for the broker.
fn broker_unavailable() -> DittoError {
    DittoError::new(
        503,
        "mqtt:broker.unavailable",
        "The command could not be handed to the MQTT broker for the device.",
    )
    .describe("The broker is unreachable or slow; check /status/mqtt and try again later.")
}
