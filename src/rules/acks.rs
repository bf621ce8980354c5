//! Acknowledgements as plain data: the request rules (`response-required`, `requested-acks`,
//! `timeout` with Ditto's defaults per signal kind and binding), label syntax, single acks
//! (received, weak, timed out, owed by a gone subscriber) and the aggregation of acks into
//! the one answer a requester gets (acks.md sections 2 and 3).

pub use super::live_errors::*;
use crate::error::DittoError;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Topic};
use serde_json::{Map, Value};

/// The built-in labels; clients never issue them.
pub const TWIN_PERSISTED: &str = "twin-persisted";
/// Built-in: a subscriber answered the live command / message.
pub const LIVE_RESPONSE: &str = "live-response";
/// Built-in: the search index reflects the change (edgetwin: durable, like `twin-persisted`).
pub const SEARCH_PERSISTED: &str = "search-persisted";
/// All built-in labels.
pub const BUILT_IN: [&str; 3] = [TWIN_PERSISTED, LIVE_RESPONSE, SEARCH_PERSISTED];

/// What kind of signal the acks are requested for (decides defaults and the built-in label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// twin command (`twin-persisted`; timeout default and max 60 s)
    Twin,
    /// live command or live event (`live-response`; default 10 s, max 60 s)
    Live,
    /// message (`live-response`; default 10 s, max 60 s)
    Message,
    /// HTTP claim message (`live-response`; default 60 s, max 600 s)
    Claim,
}

impl AckKind {
    /// The kind of a signal: messages; live signals and smart-channel retrieves
    /// (`live-channel-condition`); twin commands.
    pub fn of(topic: &Topic, headers: &Headers) -> AckKind {
        let smart = topic.criterion == Criterion::Commands(Action::Retrieve)
            && headers.get("live-channel-condition").is_some();
        match &topic.criterion {
            Criterion::Messages(_) => AckKind::Message,
            _ if topic.channel == Channel::Live || smart => AckKind::Live,
            _ => AckKind::Twin,
        }
    }
}

/// The binding a request came in over (the rules differ slightly, acks.md 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// WebSocket / Ditto Protocol
    Ws,
    /// HTTP API
    Http,
}

/// The ack-related request headers, resolved with Ditto's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct AckRequest {
    /// send a response at all
    pub response_required: bool,
    /// requested acknowledgement labels, in request order, without duplicates
    pub labels: Vec<String>,
    /// timeout in ms
    pub timeout_ms: u64,
}

/// 400 `acknowledgement:label.invalid` unless `l` matches `[a-zA-Z0-9-_:]{3,165}`.
pub fn validate_label(l: &str) -> Result<(), DittoError> {
    let ok = (3..=165).contains(&l.len())
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'));
    if ok {
        Ok(())
    } else {
        Err(DittoError::new(
            400,
            "acknowledgement:label.invalid",
            format!("Acknowledgement label <{l}> is invalid."),
        )
        .describe("An acknowledgement label must conform to the regular expression of Ditto documentation."))
    }
}

/// True for `twin-persisted`, `live-response` and `search-persisted`.
pub fn is_built_in(l: &str) -> bool {
    BUILT_IN.contains(&l)
}

fn timeout_invalid(binding: Binding, ms: u64, max_ms: u64) -> DittoError {
    let code = match binding {
        Binding::Ws => "timeout.invalid",
        Binding::Http => "gateway:timeout.invalid",
    };
    DittoError::new(
        400,
        code,
        format!("The timeout <{ms}ms> is not inside its allowed bounds <0ms - {max_ms}ms>"),
    )
    .describe("Choose a timeout inside the bounds.")
}

impl AckRequest {
    /// No response and no acks: the write is not waited for (the interval class). What the
    /// MQTT bridge's telemetry writes ask for.
    pub fn unwaited() -> AckRequest {
        AckRequest {
            response_required: false,
            labels: Vec::new(),
            timeout_ms: 60_000,
        }
    }

    /// A response once the write is durable (`twin-persisted`, 60 s): what the HTTP policy
    /// routes always wait for (they take no ack headers).
    pub fn durable() -> AckRequest {
        AckRequest {
            response_required: true,
            labels: vec![TWIN_PERSISTED.to_owned()],
            timeout_ms: 60_000,
        }
    }

    /// The WebSocket rules for a command on `channel` (twin or live).
    pub fn from_headers(h: &Headers, channel: Channel) -> Result<AckRequest, DittoError> {
        let kind = if channel == Channel::Live {
            AckKind::Live
        } else {
            AckKind::Twin
        };
        AckRequest::resolve(h, kind, Binding::Ws)
    }

    /// Resolves `response-required`, `requested-acks` and `timeout` (acks.md 2): the one
    /// implementation behind every binding.
    pub fn resolve(h: &Headers, kind: AckKind, binding: Binding) -> Result<AckRequest, DittoError> {
        let (default_ms, max_ms) = match kind {
            AckKind::Twin => (60_000, 60_000),
            AckKind::Live | AckKind::Message => (10_000, 60_000),
            AckKind::Claim => (60_000, 600_000),
        };
        let timeout_ms = match h.timeout_ms(u64::MAX)? {
            Some(ms) if ms > max_ms => return Err(timeout_invalid(binding, ms, max_ms)),
            Some(ms) => ms,
            None => default_ms,
        };
        let response_required = h.bool("response-required")?.unwrap_or(timeout_ms != 0);
        let twin = kind == AckKind::Twin;
        let builtin = if twin { TWIN_PERSISTED } else { LIVE_RESPONSE };
        let labels = match h.list("requested-acks")? {
            None if response_required && timeout_ms != 0 => vec![builtin.to_owned()],
            None => vec![],
            Some(list) => {
                let mut out: Vec<String> = Vec::with_capacity(list.len() + 1);
                for l in list {
                    validate_label(&l)?;
                    let fits = match l.as_str() {
                        TWIN_PERSISTED | SEARCH_PERSISTED => twin,
                        LIVE_RESPONSE => !twin && response_required,
                        _ => true,
                    };
                    if fits && !out.contains(&l) {
                        out.push(l);
                    }
                }
                let has_live = out.iter().any(|l| l == LIVE_RESPONSE);
                if !twin && response_required && !out.is_empty() && !has_live {
                    out.insert(0, LIVE_RESPONSE.to_owned());
                }
                out
            }
        };
        if binding == Binding::Ws && !response_required && !labels.is_empty() {
            return Err(DittoError::new(400, "header.invalid", "For WebSocket, it is forbidden to request acknowledgements while 'response-required' is set to false.")
                .describe("Please set 'requested-acks' to [] or 'response-required' to true."));
        }
        if timeout_ms == 0 && (response_required || !labels.is_empty()) {
            return Err(DittoError::new(400, "header.invalid", "The value '0' of the header 'timeout' is not allowed while 'response-required' is true or acknowledgements are requested.")
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
        self.labels
            .iter()
            .any(|l| l == TWIN_PERSISTED || l == SEARCH_PERSISTED)
    }

    /// The labels subscribers answer (everything but the built-in ones).
    pub fn custom(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter(|l| !is_built_in(l))
            .cloned()
            .collect()
    }

    /// True if the answer is an aggregation (anything but the channel's built-in label was
    /// requested, acks.md 3.2).
    pub fn aggregated(&self) -> bool {
        self.labels.iter().any(|l| !is_built_in(l)) || self.labels.len() > 1
    }
}

/// The custom labels of a signal's `requested-acks` header (what subscribers get to see).
pub fn custom_labels(h: &Headers) -> Vec<String> {
    h.list("requested-acks")
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter(|l| !is_built_in(l) && validate_label(l).is_ok())
        .collect()
}

/// The weak-ack payload text (Ditto's).
pub const WEAK_ACK_TEXT: &str = "Acknowledgement was issued automatically as weak ack, because the signal is not relevant for the subscriber. Possible reasons are: the subscriber did not subscribe for the signal type, or the signal was dropped by a configured RQL filter.";

/// One acknowledgement as it appears in an aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// status
    pub status: u16,
    /// payload (`value` of the ack / response)
    pub payload: Option<Value>,
    /// headers
    pub headers: Headers,
}

fn cid_headers(cid: &str) -> Headers {
    let mut h = Headers::new();
    h.insert("correlation-id", cid);
    h
}

impl Ack {
    /// From a received ack or response envelope.
    pub fn from_envelope(env: &Envelope) -> Ack {
        Ack {
            status: env.status.unwrap_or(200),
            payload: env.value.clone(),
            headers: env.headers.clone(),
        }
    }

    /// The weak ack Ditto issues for a declaring subscriber that did not get the signal.
    pub fn weak(cid: &str) -> Ack {
        let mut headers = cid_headers(cid);
        headers.insert("ditto-weak-ack", true);
        Ack {
            status: 200,
            payload: Some(Value::String(WEAK_ACK_TEXT.to_owned())),
            headers,
        }
    }

    /// An ack standing for an error (timeout, unanswerable).
    pub fn error(cid: &str, e: &DittoError) -> Ack {
        Ack {
            status: e.status,
            payload: Some(e.to_json()),
            headers: cid_headers(cid),
        }
    }

    /// `{"status", "payload"?, "headers"?}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("status".into(), self.status.into());
        if let Some(p) = &self.payload {
            m.insert("payload".into(), p.clone());
        }
        if !self.headers.is_empty() {
            m.insert("headers".into(), Value::Object(self.headers.to_map()));
        }
        Value::Object(m)
    }

    /// Only the status (HTTP with `response-required: false`).
    pub fn minimal(&self) -> Value {
        serde_json::json!({ "status": self.status })
    }

    /// 2xx.
    pub fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The overall status of an aggregation: one ack -> its status; all 2xx -> 200; else 424.
pub fn aggregate_status(acks: &[(String, Ack)]) -> u16 {
    match acks {
        [(_, one)] => one.status,
        _ if acks.iter().all(|(_, a)| a.success()) => 200,
        _ => 424,
    }
}

/// The aggregated value: label -> ack object.
pub fn aggregate_value(acks: &[(String, Ack)], minimal: bool) -> Value {
    Value::Object(
        acks.iter()
            .map(|(l, a)| {
                let v = if minimal { a.minimal() } else { a.to_json() };
                (l.clone(), v)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(v: Value) -> Headers {
        Headers::from_map(v.as_object().cloned().unwrap_or_default()).unwrap()
    }

    fn ws(v: Value, kind: AckKind) -> Result<AckRequest, DittoError> {
        AckRequest::resolve(&h(v), kind, Binding::Ws)
    }

    #[test]
    fn ack_defaults_follow_ditto() {
        let a = AckRequest::from_headers(&h(json!({})), Channel::Twin).unwrap();
        assert_eq!(
            (a.response_required, a.labels.clone(), a.timeout_ms),
            (true, vec!["twin-persisted".to_owned()], 60_000)
        );
        assert!(!a.aggregated());
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
        assert!(a.aggregated(), "a single custom label is still aggregated");
        assert_eq!(
            AckRequest::from_headers(&h(json!({"timeout": "70s"})), Channel::Twin)
                .unwrap_err()
                .error,
            "timeout.invalid"
        );
    }

    #[test]
    fn live_rules_add_and_remove_live_response() {
        let a = ws(json!({}), AckKind::Live).unwrap();
        assert_eq!(
            (a.labels.clone(), a.timeout_ms),
            (vec!["live-response".to_owned()], 10_000)
        );
        let a = ws(json!({"requested-acks": ["my-ack"]}), AckKind::Message).unwrap();
        assert_eq!(a.labels, vec!["live-response", "my-ack"]);
        assert!(a.aggregated());
        assert_eq!(a.custom(), vec!["my-ack"]);
        let a = ws(json!({"requested-acks": []}), AckKind::Live).unwrap();
        assert!(a.labels.is_empty() && a.response_required);
        let a = ws(
            json!({"requested-acks": ["twin-persisted", "live-response"]}),
            AckKind::Live,
        )
        .unwrap();
        assert_eq!(a.labels, vec!["live-response"]);
        assert!(!a.aggregated(), "only the built-in label: plain response");
        let a = AckRequest::resolve(
            &h(json!({"response-required": false, "requested-acks": ["live-response", "x-y"]})),
            AckKind::Message,
            Binding::Http,
        )
        .unwrap();
        assert_eq!(
            a.labels,
            vec!["x-y"],
            "live-response removed without response"
        );
        let a = ws(json!({"timeout": "0"}), AckKind::Message).unwrap();
        assert!(!a.response_required && a.labels.is_empty());
    }

    #[test]
    fn binding_differences_and_bounds() {
        let rr_false = json!({"response-required": false, "requested-acks": ["a-b"]});
        assert_eq!(
            ws(rr_false.clone(), AckKind::Twin).unwrap_err().error,
            "header.invalid"
        );
        let a = AckRequest::resolve(&h(rr_false), AckKind::Twin, Binding::Http).unwrap();
        assert!(!a.response_required && a.labels == vec!["a-b"]);
        let e = AckRequest::resolve(&h(json!({"timeout": "61"})), AckKind::Twin, Binding::Http)
            .unwrap_err();
        assert_eq!(e.error, "gateway:timeout.invalid");
        let a = AckRequest::resolve(&h(json!({"timeout": "300"})), AckKind::Claim, Binding::Http)
            .unwrap();
        assert_eq!(a.timeout_ms, 300_000);
        let a = AckRequest::resolve(&h(json!({})), AckKind::Claim, Binding::Http).unwrap();
        assert_eq!(a.timeout_ms, 60_000);
        let e = ws(
            json!({"timeout": "0", "response-required": true}),
            AckKind::Live,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        let e = ws(json!({"requested-acks": ["no"]}), AckKind::Twin).unwrap_err();
        assert_eq!(e.error, "acknowledgement:label.invalid");
        assert_eq!(e.message, "Acknowledgement label <no> is invalid.");
    }

    #[test]
    fn labels_and_texts() {
        assert!(validate_label("my-app:ack_1").is_ok());
        assert!(validate_label("ab").is_err());
        assert!(validate_label("a b c").is_err());
        assert!(validate_label(&"x".repeat(166)).is_err());
        assert_eq!(
            custom_labels(&h(
                json!({"requested-acks": ["twin-persisted", "c-1", "x"]})
            )),
            vec!["c-1"]
        );
        assert_eq!(thousands(1_337), "1,337");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            ack_timeout(1_337).message,
            "The acknowledgement request reached the specified timeout of 1,337ms."
        );
        assert_eq!(
            command_timeout(60_000).message,
            "The Command reached the specified timeout of 60,000ms."
        );
    }

    #[test]
    fn aggregation_status_rules() {
        let ok = |s| Ack {
            status: s,
            payload: None,
            headers: Headers::new(),
        };
        let one = vec![("a".to_owned(), ok(202))];
        assert_eq!(aggregate_status(&one), 202);
        let all = vec![("a".to_owned(), ok(201)), ("b".to_owned(), ok(204))];
        assert_eq!(aggregate_status(&all), 200);
        let mixed = vec![("a".to_owned(), ok(201)), ("b".to_owned(), ok(408))];
        assert_eq!(aggregate_status(&mixed), 424);
        let w = Ack::weak("c");
        assert_eq!(
            w.to_json(),
            json!({"status": 200, "payload": WEAK_ACK_TEXT,
                   "headers": {"correlation-id": "c", "ditto-weak-ack": true}})
        );
        assert_eq!(
            aggregate_value(&mixed, true),
            json!({"a": {"status": 201}, "b": {"status": 408}})
        );
    }
}
