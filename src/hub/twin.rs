//! Twin commands through the hub: per-thing lock, load, `engine::apply`, submit to the store,
//! publish the event, and answer with Ditto's response envelope. Also retrieve-multiple and
//! the ack request rules (`response-required`, `requested-acks`, `timeout`).

use super::{Hub, Requester};
use crate::engine::{self, Ctx, Outcome, ThingState};
use crate::error::DittoError;
use crate::protocol::{
    error_envelope, Action, Channel, Envelope, Headers, RetrieveThings, Signal, ThingCommand,
};
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

/// The ack-related request headers, resolved with Ditto's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AckRequest {
    /// send a response at all
    pub response_required: bool,
    /// requested acknowledgement labels
    pub labels: Vec<String>,
    /// timeout in ms
    pub timeout_ms: u64,
}

impl AckRequest {
    /// Resolves `response-required`, `requested-acks` and `timeout` for a command on `channel`.
    pub fn from_headers(h: &Headers, channel: Channel) -> Result<AckRequest, DittoError> {
        let default_timeout = if channel == Channel::Live {
            10_000
        } else {
            60_000
        };
        let timeout_ms = h.timeout_ms(60_000)?.unwrap_or(default_timeout);
        let response_required = h.bool("response-required")?.unwrap_or(timeout_ms != 0);
        let builtin = if channel == Channel::Live {
            "live-response"
        } else {
            "twin-persisted"
        };
        let labels = match h.list("requested-acks")? {
            None if response_required && timeout_ms != 0 => vec![builtin.to_owned()],
            None => vec![],
            Some(l) => l
                .into_iter()
                .filter(|x| match x.as_str() {
                    "twin-persisted" | "search-persisted" => channel == Channel::Twin,
                    "live-response" => channel == Channel::Live && response_required,
                    _ => true,
                })
                .collect(),
        };
        if !response_required && !labels.is_empty() {
            return Err(DittoError::new(400, "header.invalid", "For WebSocket, it is forbidden to request acknowledgements while 'response-required' is set to false.")
                .describe("Please set 'requested-acks' to [] or 'response-required' to true."));
        }
        if response_required && timeout_ms == 0 {
            return Err(DittoError::new(400, "header.invalid", "The value '0' of the header 'timeout' is not allowed while 'response-required' is true.")
                .describe("Set 'response-required' to false or use a timeout greater than zero."));
        }
        Ok(AckRequest {
            response_required,
            labels,
            timeout_ms,
        })
    }

    /// True if the response waits for durability.
    pub fn wants_persisted(&self) -> bool {
        self.labels.iter().any(|l| l == "twin-persisted")
    }
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
    let mut env = Envelope::new(cmd.topic.clone(), headers, cmd.raw_path.clone());
    env.status = Some(outcome.status);
    env.value = outcome.value.clone();
    env
}

impl Hub {
    /// Loads the stored state of a thing (tombstones included).
    pub fn load_thing(&self, id: &str) -> Result<Option<ThingState>, DittoError> {
        let bytes = self.store().get(Tree::Things, id.as_bytes()).map_err(|e| {
            tracing::error!(thing = id, error = %e, "store read failed");
            DittoError::unavailable(id)
        })?;
        bytes.map(|b| ThingState::from_bytes(&b)).transpose()
    }

    /// Loads a stored policy.
    pub fn load_policy(&self, id: &str) -> Option<Value> {
        let b = self.store().get(Tree::Policies, id.as_bytes()).ok()??;
        serde_json::from_slice(&b).ok()
    }

    /// Applies a twin command: the one write path shared by every binding.
    pub async fn twin_command(
        &self,
        who: &Requester,
        cmd: &ThingCommand,
    ) -> Result<TwinDone, DittoError> {
        if cmd.action != Action::Retrieve {
            self.store().ready().await;
        }
        let now = crate::clock::now_millis();
        let id = cmd.thing_id.to_string();
        let _guard = self.lock_for(&id).lock().unwrap_or_else(|e| e.into_inner());
        let current = self.load_thing(&id)?;
        let lookup = |pid: &str| self.load_policy(pid);
        let ctx = Ctx {
            now,
            subject: who.subject(),
            policy: &lookup,
        };
        let cid = cmd.headers.correlation_id();
        let outcome = engine::apply(current.as_ref(), cmd, &ctx).inspect_err(|e| {
            let (status, error) = (e.status, &e.error);
            tracing::debug!(thing = %id, correlation_id = cid, subject = who.subject(), status,
                %error, "twin command refused");
        })?;
        let mut seq = None;
        if let Some(bytes) = &outcome.bytes {
            let mut ops = vec![Op {
                tree: Tree::Things,
                key: id.clone().into_bytes(),
                value: Some(bytes.clone()),
            }];
            if let Some((pid, policy)) = &outcome.policy {
                ops.push(Op {
                    tree: Tree::Policies,
                    key: pid.clone().into_bytes(),
                    value: Some(policy.to_string().into_bytes()),
                });
            }
            seq = Some(self.store().submit(ops));
        }
        if let (Some(ev), Some(state)) = (&outcome.event, &outcome.state) {
            self.publish_twin_event(cmd, ev, state, who, seq);
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
        let ctx = Ctx {
            now: crate::clock::now_millis(),
            subject: who.subject(),
            policy: &lookup,
        };
        let mut out = Vec::with_capacity(r.thing_ids.len());
        for id in &r.thing_ids {
            if let Some(state) = self.load_thing(&id.to_string())?.filter(|s| !s.deleted) {
                out.push(engine::read::thing_view(&state, fields.as_ref(), &ctx));
            }
        }
        Ok(Value::Array(out))
    }

    /// Handles one Ditto Protocol message from a client; `None` = nothing to answer.
    pub async fn handle_protocol(&self, who: &Requester, mut env: Envelope) -> Option<Reply> {
        if env.headers.correlation_id().is_none() {
            env.headers.insert("correlation-id", new_correlation_id());
        }
        let cid = env.headers.correlation_id().map(str::to_owned);
        let topic = env.topic.clone();
        let fail = |e: &DittoError| {
            Some(Reply {
                envelope: error_envelope(Some(&topic), cid.as_deref(), e),
                after: None,
            })
        };
        let acks = match AckRequest::from_headers(&env.headers, topic.channel) {
            Ok(a) => a,
            Err(e) => return fail(&e),
        };
        let signal = match Signal::from_envelope(env) {
            Ok(s) => s,
            Err(e) => {
                return if acks.response_required {
                    fail(&e)
                } else {
                    None
                }
            }
        };
        let result = match signal {
            Signal::Thing(cmd) if cmd.channel == Channel::Twin => {
                self.twin_command(who, &cmd).await.map(|done| Reply {
                    envelope: response_envelope(&cmd, &done.outcome),
                    after: done.seq.filter(|_| acks.wants_persisted()),
                })
            }
            Signal::RetrieveThings(r) => self.retrieve_things(who, &r).map(|v| {
                let mut h = Headers::new();
                if let Some(c) = &cid {
                    h.insert("correlation-id", c.as_str());
                }
                let mut e = Envelope::new(r.topic.clone(), h, "/");
                e.status = Some(200);
                e.value = Some(v);
                Reply {
                    envelope: e,
                    after: None,
                }
            }),
            _ => Err(DittoError::new(
                400,
                "signal.unsupported",
                format!(
                    "The signal with topic '{topic}' is not supported by this edgetwin version."
                ),
            )
            .describe("Supported are twin commands of the things group.")),
        };
        match result {
            Ok(r) if acks.response_required => Some(r),
            Ok(_) => None,
            Err(e) if acks.response_required => fail(&e),
            Err(_) => None,
        }
    }
}

/// Shared text of an envelope (one allocation shared by all receivers).
pub fn shared_text(env: &Envelope) -> Arc<str> {
    Arc::from(env.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(v: Value) -> Headers {
        Headers::from_map(v.as_object().cloned().unwrap_or_default()).unwrap()
    }

    #[test]
    fn ack_defaults_follow_ditto() {
        let a = AckRequest::from_headers(&h(json!({})), Channel::Twin).unwrap();
        assert_eq!(
            (a.response_required, a.labels.clone(), a.timeout_ms),
            (true, vec!["twin-persisted".to_owned()], 60_000)
        );
        let a = AckRequest::from_headers(&h(json!({"response-required": false})), Channel::Twin)
            .unwrap();
        assert!(!a.response_required && a.labels.is_empty());
        let a = AckRequest::from_headers(&h(json!({"timeout": "0"})), Channel::Twin).unwrap();
        assert!(!a.response_required);
        let a = AckRequest::from_headers(&h(json!({"requested-acks": []})), Channel::Twin).unwrap();
        assert!(a.response_required && !a.wants_persisted());
        let e = AckRequest::from_headers(
            &h(json!({"response-required": false, "requested-acks": ["twin-persisted"]})),
            Channel::Twin,
        )
        .unwrap_err();
        assert_eq!(e.error, "header.invalid");
        let a = AckRequest::from_headers(
            &h(json!({"requested-acks": ["live-response", "x:y"]})),
            Channel::Twin,
        )
        .unwrap();
        assert_eq!(a.labels, vec!["x:y".to_owned()]);
        assert_eq!(
            AckRequest::from_headers(&h(json!({"timeout": "70s"})), Channel::Twin)
                .unwrap_err()
                .error,
            "timeout.invalid"
        );
    }

    #[test]
    fn correlation_ids_look_like_uuids() {
        let c = new_correlation_id();
        assert_eq!(c.len(), 36);
        assert_eq!(&c[14..15], "4");
        assert_ne!(c, new_correlation_id());
    }
}
