//! Messages in the hub: thing and feature messages (inbox / outbox) and claim messages. The
//! sender needs WRITE on `message:<path>` (claims need nothing), the thing must exist; the
//! message goes to `START-SEND-MESSAGES` sessions with READ on `message:<path>`, never stored;
//! the first answer of a receiver (status, payload, content-type) goes back to the sender.

use super::waiter::Waiter;
use super::{Hub, Requester};
use crate::error::DittoError;
use crate::hub::StreamKind;
use crate::policy::{READ, WRITE};
use crate::protocol::message::{payload_too_large, value_size, MAX_PAYLOAD_BYTES};
use crate::protocol::{Envelope, MessagePath};
use crate::rules::acks::AckRequest;
use crate::rules::fanout::Fanout;
use crate::rules::live::{delivered_headers, message_matcher};
pub use crate::rules::live_errors::send_not_allowed;
use crate::rules::outcome::Plan;
use serde_json::json;

impl Hub {
    /// Sends a message; returns the waiter for the answer / acks (`None`: fire and forget).
    pub(in crate::hub) fn message(
        &self,
        who: &Requester,
        env: &Envelope,
        path: &MessagePath,
        acks: &AckRequest,
    ) -> Result<Option<Waiter>, DittoError> {
        let id = format!("{}:{}", env.topic.namespace, env.topic.name);
        let thing_id = crate::model::parse_thing_id(&id).map_err(|e| DittoError {
            error: "messages:id.invalid".into(),
            ..e
        })?;
        if let Some(size) = env.value.as_ref().map(value_size) {
            if size > MAX_PAYLOAD_BYTES {
                return Err(payload_too_large(size));
            }
        }
        let now = self.now();
        let (state, enforcer) = self.live_target(&id, &thing_id.namespace, now)?;
        let Some(enforcer) = enforcer else {
            return Err(crate::engine::errors::not_found(
                &id,
                &crate::protocol::ThingPath::Root,
            ));
        };
        let res = path.resource();
        if !path.is_claim() && !enforcer.has_unrestricted(&who.subjects, "message", &res, WRITE) {
            return Err(send_not_allowed(&id));
        }
        let cid = env.headers.correlation_id().unwrap_or_default().to_owned();
        let mut out = env.clone();
        out.headers = delivered_headers(&env.headers, acks, who.subject());
        let waiter = if acks.response_required || !acks.labels.is_empty() {
            let plan = Plan::new(env.topic.clone(), acks.aggregated());
            let matcher = acks
                .response_required
                .then(|| message_matcher(id.clone(), path.subject.clone()));
            Some(self.register(who, &cid, &acks.labels, matcher, acks.timeout_ms, plan)?)
        } else {
            None
        };
        let doc = json!({"thingId": id, "_namespace": thing_id.namespace});
        self.deliver(
            &Fanout {
                kind: StreamKind::Messages,
                env: &out,
                thing_id: &id,
                namespace: &thing_id.namespace,
                state: &state,
                enforcer: &enforcer,
                origin: who.origin,
                now,
                view: &|subjects| {
                    enforcer
                        .has_unrestricted(subjects, "message", &res, READ)
                        .then_some(None)
                },
                shape: &|_| doc.clone(),
            },
            waiter.is_some(),
        );
        Ok(waiter)
    }
}
