//! The uplink's Ditto Protocol on the cloud WebSocket (pure): the commands it sends (conditional
//! merges with `if-match` and `requested-acks: twin-persisted`, creates, deletes, retrieves,
//! retrieve-multiple for the revision sweep), the `START-SEND-*` and `JWT-TOKEN` texts, and the
//! sorting of what the cloud sends: answers, twin events, live commands and messages, acks.
//! Everything used here is in Ditto 3.x's documented WebSocket protocol
//! (docs "protocol-specification", "httpapi-protocol-bindings-websocket").

use super::plan::CloudCmd;
use crate::model::parse_thing_id;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Topic};
use serde_json::{json, Value};

/// Fields retrieved from the cloud: the synced part and the revision (`_revision` is one of
/// Ditto's selectable special fields, docs "basic-thing" / `fields` parameter).
pub const RETRIEVE_FIELDS: &str = "thingId,definition,attributes,features,_revision";

/// Things per retrieve-multiple of the revision sweep.
pub const SWEEP_BATCH: usize = 50;

/// The subscriptions a session starts, in order (docs "httpapi-protocol-bindings-websocket":
/// `START-SEND-EVENTS`, `START-SEND-LIVE-COMMANDS`, `START-SEND-MESSAGES` with `namespaces`).
pub fn subscriptions(namespaces: &[String]) -> Vec<String> {
    let q = match namespaces.is_empty() {
        true => String::new(),
        false => format!("?namespaces={}", namespaces.join(",")),
    };
    [
        "START-SEND-EVENTS",
        "START-SEND-LIVE-COMMANDS",
        "START-SEND-MESSAGES",
    ]
    .iter()
    .map(|s| format!("{s}{q}"))
    .collect()
}

/// The text that hands a fresh token to an open session (Ditto: "JWT token refresh").
pub fn jwt_refresh(token: &str) -> String {
    format!("JWT-TOKEN?jwtToken={token}")
}

fn topic_of(thing_id: &str, action: Action) -> Option<Topic> {
    let id = parse_thing_id(thing_id).ok()?;
    Some(Topic::thing(
        &id.namespace,
        &id.name,
        Channel::Twin,
        Criterion::Commands(action),
    ))
}

/// The etag Ditto uses for a thing revision (`"rev:5"`, quotes included).
pub fn rev_tag(rev: u64) -> String {
    format!("\"rev:{rev}\"")
}

/// A twin command for the cloud. Writes request `twin-persisted` (the answer comes once the
/// cloud persisted the change: docs "basic-acknowledgements"); merges are conditional on the
/// cloud revision the edge merged against (`if-match`, docs "httpapi-concepts" conditional
/// requests), so a concurrent cloud change is never overwritten.
pub fn command(thing_id: &str, cmd: &CloudCmd, cid: &str, timeout_secs: u64) -> Option<String> {
    let action = match cmd {
        CloudCmd::Retrieve => Action::Retrieve,
        CloudCmd::Create(_) => Action::Create,
        CloudCmd::Patch { .. } => Action::Merge,
        CloudCmd::Delete => Action::Delete,
    };
    let mut h = Headers::new();
    h.insert("correlation-id", cid);
    h.insert("response-required", true);
    h.insert("timeout", format!("{timeout_secs}s"));
    if action != Action::Retrieve {
        h.insert("requested-acks", json!(["twin-persisted"]));
    }
    let mut env = Envelope::new(topic_of(thing_id, action)?, Headers::new(), "/");
    match cmd {
        CloudCmd::Retrieve => env.fields = Some(RETRIEVE_FIELDS.into()),
        CloudCmd::Create(thing) => env.value = Some(thing.clone()),
        CloudCmd::Patch { patch, if_match } => {
            h.insert("content-type", "application/merge-patch+json");
            if *if_match > 0 {
                h.insert("if-match", rev_tag(*if_match));
            }
            env.value = Some(patch.clone());
        }
        CloudCmd::Delete => {}
    }
    env.headers = h;
    Some(env.to_text())
}

/// Retrieve-multiple of the revision sweep: `_/_/things/twin/commands/retrieve` with
/// `thingIds` and only `thingId,_revision` (docs "protocol-examples-retrievethings").
pub fn retrieve_revisions(ids: &[String], cid: &str, timeout_secs: u64) -> String {
    let topic = Topic::thing(
        "_",
        "_",
        Channel::Twin,
        Criterion::Commands(Action::Retrieve),
    );
    let mut h = Headers::new();
    h.insert("correlation-id", cid);
    h.insert("timeout", format!("{timeout_secs}s"));
    let mut env = Envelope::new(topic, h, "/");
    env.value = Some(json!({ "thingIds": ids }));
    env.fields = Some("thingId,_revision".into());
    env.to_text()
}

/// `(thingId, revision)` of each thing in a retrieve-multiple answer.
pub fn revisions_of(answer: &Envelope) -> Vec<(String, u64)> {
    let Some(Value::Array(things)) = &answer.value else {
        return Vec::new();
    };
    things
        .iter()
        .filter_map(|t| {
            let id = t.get("thingId")?.as_str()?.to_owned();
            Some((id, t.get("_revision")?.as_u64()?))
        })
        .collect()
}

/// The revision an answer reports: `entity-revision`, else an `etag` of the form `"rev:N"`.
pub fn revision_of(h: &Headers) -> Option<u64> {
    if let Some(r) = h.get("entity-revision") {
        let n = match r {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if n.is_some() {
            return n;
        }
    }
    let tag = h.get_str("etag")?;
    let t = tag.trim().trim_start_matches("W/").trim_matches('"');
    t.strip_prefix("rev:")?.parse().ok()
}

/// What a text frame from the cloud is.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `START-SEND-...:ACK`
    Ack(String),
    /// an answer (response or error) carrying a correlation-id
    Answer(String, Box<Envelope>),
    /// a twin event: the thing and its new revision
    Event(String, Option<u64>),
    /// a live command or message to deliver locally (not an answer)
    Live(Box<Envelope>),
    /// an error nobody asked about (e.g. the session expired)
    Error(Box<Envelope>),
    /// anything else (live events, search, announcements): ignored
    Other,
    /// not a Ditto Protocol message
    Malformed(String),
}

/// Sorts one text frame.
pub fn classify(text: &str) -> Incoming {
    let t = text.trim();
    if t.starts_with("START-SEND-") || t.starts_with("STOP-SEND-") {
        return Incoming::Ack(t.to_owned());
    }
    let env = match Envelope::parse(t) {
        Ok(e) => e,
        Err(f) => return Incoming::Malformed(f.error.message),
    };
    let live = env.topic.channel == Channel::Live;
    match (&env.topic.criterion, env.status) {
        (Criterion::Events(_), None) if env.topic.channel == Channel::Twin => {
            match env.topic.entity_id() {
                Some(id) => Incoming::Event(id, env.revision),
                None => Incoming::Other,
            }
        }
        (Criterion::Commands(_) | Criterion::Messages(_), None) if live => {
            Incoming::Live(Box::new(env))
        }
        (_, Some(_)) => match env.headers.correlation_id().map(str::to_owned) {
            Some(cid) => Incoming::Answer(cid, Box::new(env)),
            None if env.topic.criterion == Criterion::Errors => Incoming::Error(Box::new(env)),
            None => Incoming::Other,
        },
        _ => Incoming::Other,
    }
}

/// Status, error code and message of an error answer.
pub fn error_of(env: &Envelope) -> (u16, String, String) {
    let status = env.status.unwrap_or(500);
    let v = env.value.as_ref();
    let s = |k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (status, s("error"), s("message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_acks_conditions_and_fields() {
        let patch = CloudCmd::Patch {
            patch: json!({"attributes": {"a": 1}}),
            if_match: 7,
        };
        let t = command("edge:t1", &patch, "c1", 30).unwrap();
        let e = Envelope::parse(&t).unwrap();
        assert_eq!(e.topic.to_string(), "edge/t1/things/twin/commands/merge");
        assert_eq!(e.headers.get_str("if-match").as_deref(), Some("\"rev:7\""));
        assert_eq!(
            e.headers.get("requested-acks"),
            Some(&json!(["twin-persisted"]))
        );
        assert_eq!(
            e.headers.get_str("content-type").as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(e.path, "/");
        let t = command("edge:t1", &CloudCmd::Retrieve, "c2", 30).unwrap();
        let e = Envelope::parse(&t).unwrap();
        assert_eq!(e.fields.as_deref(), Some(RETRIEVE_FIELDS));
        assert!(e.headers.get("requested-acks").is_none());
        assert!(command("bad id", &CloudCmd::Delete, "c", 1).is_none());
        let t = retrieve_revisions(&["a:b".into()], "c3", 5);
        let e = Envelope::parse(&t).unwrap();
        assert_eq!(e.topic.to_string(), "_/_/things/twin/commands/retrieve");
        assert_eq!(e.value, Some(json!({"thingIds": ["a:b"]})));
    }

    #[test]
    fn subscriptions_and_refresh() {
        assert_eq!(
            subscriptions(&["edge".into(), "b".into()])[0],
            "START-SEND-EVENTS?namespaces=edge,b"
        );
        assert_eq!(subscriptions(&[])[2], "START-SEND-MESSAGES");
        assert_eq!(jwt_refresh("x.y.z"), "JWT-TOKEN?jwtToken=x.y.z");
    }

    #[test]
    fn revisions_from_headers() {
        let mut h = Headers::new();
        h.insert("etag", "\"rev:12\"");
        assert_eq!(revision_of(&h), Some(12));
        h.insert("entity-revision", "13");
        assert_eq!(revision_of(&h), Some(13));
        let mut h = Headers::new();
        h.insert("etag", "\"hash:abc\"");
        assert_eq!(revision_of(&h), None);
    }

    #[test]
    fn frames_are_sorted() {
        assert_eq!(
            classify("START-SEND-EVENTS:ACK"),
            Incoming::Ack("START-SEND-EVENTS:ACK".into())
        );
        let ev = r#"{"topic":"edge/t/things/twin/events/modified","headers":{},"path":"/attributes/a","value":1,"revision":4}"#;
        assert_eq!(classify(ev), Incoming::Event("edge:t".into(), Some(4)));
        let live = r#"{"topic":"edge/t/things/live/messages/hello","headers":{"correlation-id":"x"},"path":"/inbox/messages/hello","value":1}"#;
        assert!(matches!(classify(live), Incoming::Live(_)));
        let answer = r#"{"topic":"edge/t/things/twin/errors","headers":{"correlation-id":"k"},"path":"/","status":412,"value":{"status":412,"error":"things:precondition.failed","message":"m"}}"#;
        match classify(answer) {
            Incoming::Answer(cid, env) => {
                assert_eq!(cid, "k");
                assert_eq!(
                    error_of(&env),
                    (412, "things:precondition.failed".into(), "m".into())
                );
            }
            other => panic!("{other:?}"),
        }
        let expired = r#"{"topic":"_/_/things/twin/errors","headers":{},"path":"/","status":401,"value":{"status":401,"error":"gateway:websocket.session.expired","message":"m"}}"#;
        assert!(matches!(classify(expired), Incoming::Error(_)));
        assert!(matches!(classify("{nope"), Incoming::Malformed(_)));
        let many = r#"{"topic":"_/_/things/twin/commands/retrieve","headers":{"correlation-id":"s"},"path":"/","status":200,"value":[{"thingId":"a:b","_revision":3},{"thingId":"a:c"}]}"#;
        match classify(many) {
            Incoming::Answer(_, env) => {
                assert_eq!(revisions_of(&env), vec![("a:b".to_owned(), 3)])
            }
            other => panic!("{other:?}"),
        }
    }
}
