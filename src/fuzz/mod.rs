//! Fuzzing in the project (test support, not used by the gateway): one harness per parser of
//! untrusted input, each checking properties beyond "does not panic" (round trips, the depth
//! bounds of `crate::bounds`, "accepted => readable"); a stable seeded mutator runs them
//! (`cargo test --lib fuzz::`, `scripts/fuzz.sh` for long runs). Harnesses return a `Verdict`.

mod driver;
mod edge;
mod protocol;
mod search;
mod store;
mod twin;

pub use driver::{run, show, Budget, Failure, Report};

use serde_json::Value;
use std::path::Path;

/// What a harness says about one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// the parser refused the input (as it should, or at least consistently)
    Rejected,
    /// the parser accepted it and every property held
    Accepted,
    /// a property did not hold: a finding
    Violated(String),
}

impl Verdict {
    /// `Violated(why)` unless `ok`.
    pub fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), Verdict> {
        if ok {
            Ok(())
        } else {
            Err(Verdict::Violated(why()))
        }
    }
}

/// Harness result: `Err(verdict)` ends a harness early (`?` on [`Verdict::ensure`]).
pub type Checked = Result<Verdict, Verdict>;

fn collapse(c: Checked) -> Verdict {
    c.unwrap_or_else(|v| v)
}

/// One fuzz target.
pub struct Target {
    /// name (test name, corpus directory, `scripts/fuzz.sh` argument)
    pub name: &'static str,
    /// the harness
    pub run: fn(&[u8]) -> Verdict,
    /// which conformance strings seed it
    pub seeds: SeedKind,
    /// tokens the mutator inserts
    pub dict: &'static [&'static str],
}

/// Which parts of the conformance corpus seed a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKind {
    /// whole envelopes (command, response, event)
    Envelopes,
    /// `topic` strings
    Topics,
    /// `headers` objects
    Headers,
    /// `path` strings
    Paths,
    /// `fields` strings
    Fields,
    /// RQL filters and conditions
    Filters,
    /// `value` payloads
    Values,
    /// only the harness's own seeds
    Own,
}

macro_rules! target {
    ($name:literal, $f:path, $seeds:ident, $dict:expr) => {
        Target {
            name: $name,
            run: |b| collapse($f(b)),
            seeds: SeedKind::$seeds,
            dict: $dict,
        }
    };
}

const JSON_DICT: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "null",
    "true",
    "false",
    "\"a\":",
    "{\"a\":1}",
    "[[]]",
    "\"\\u0000\"",
    "\"{{ ~a~ }}\":null",
    "1.0e2",
    "\"_metadata\"",
];
const PATH_DICT: &[&str] = &[
    "/",
    "//",
    "/attributes",
    "/features",
    "/f",
    "/properties",
    "/desiredProperties",
    "/definition",
    "/policyId",
    "~0",
    "~1",
    "*",
    "/inbox/messages/",
    "/entries/",
    "/subjects/",
    "/resources/",
    "thing:/",
    "%2F",
    "/a/a/a/a",
];
const RQL_DICT: &[&str] = &[
    "and(",
    "or(",
    "not(",
    "eq(",
    "ne(",
    "gt(",
    "ge(",
    "lt(",
    "le(",
    "in(",
    "like(",
    "ilike(",
    "exists(",
    "empty(",
    ")",
    ",",
    "\"",
    "'",
    "\\",
    "attributes/",
    "features/f/properties/",
    "thingId",
    "_modified",
    "time:now",
    "time:now_epoch_millis",
    "-1d",
    "topic:action",
    "resource:path",
    "sort(+",
    "size(",
    "cursor(",
    "limit(",
    "*",
    "?",
    "1.5",
    "true",
    "null",
];
const TOPIC_DICT: &[&str] = &[
    "/",
    "_",
    "things",
    "policies",
    "twin",
    "live",
    "none",
    "commands",
    "events",
    "messages",
    "errors",
    "search",
    "acks",
    "announcements",
    "streaming",
    "create",
    "modify",
    "merge",
    "retrieve",
    "delete",
    "created",
    "modified",
    "merged",
    "deleted",
    "subscribe",
    "request",
    "org.eclipse.ditto",
    "ns",
    ":",
    "twin-persisted",
];
const HEADER_DICT: &[&str] = &[
    "correlation-id",
    "timeout",
    "response-required",
    "requested-acks",
    "if-match",
    "if-none-match",
    "if-equal",
    "condition",
    "put-metadata",
    "get-metadata",
    "delete-metadata",
    "merge-thing-patch-conditions",
    "content-type",
    "application/merge-patch+json",
    "live-channel-condition",
    "channel",
    "\"rev:1\"",
    "\"hash:",
    "*",
    "skip",
    "update",
    "skip-minimizing-merge",
    "10s",
    "1m",
    "0",
    "[\"twin-persisted\"]",
    "{\"key\":\"/a\",\"value\":",
];
const CONTROL_DICT: &[&str] = &[
    "START-SEND-",
    "STOP-SEND-",
    "EVENTS",
    "MESSAGES",
    "LIVE-COMMANDS",
    "LIVE-EVENTS",
    "POLICY-ANNOUNCEMENTS",
    "?",
    "&",
    "=",
    "namespaces=",
    "filter=",
    "extraFields=",
    "%28",
    "%29",
    "%2C",
    "%22",
    "eq(attributes%2Fa,1)",
    "JWT-TOKEN?jwtToken=",
    "correlation-id=",
];
const TOML_DICT: &[&str] = &[
    "[mqtt]",
    "[[mqtt.mappings]]",
    "[limits]",
    "[search]",
    "[[users]]",
    "[auth]",
    "[[auth.jwt]]",
    "=",
    "\"",
    "[",
    "]",
    "{",
    "}",
    "\n",
    "name",
    "topic",
    "payload",
    "feature",
    "property",
    "availability",
    "command",
    "online",
    "offline",
    "presets",
    "\"zigbee2mqtt\"",
    "\"{thing}\"",
    "{feature}",
    "{property}",
    "+",
    "#",
    "listen",
    "store",
    "threads",
    "max_message_kib",
    "url",
    "namespace",
    "owners",
];
const HTTP_DICT: &[&str] = &[
    "GET ",
    "PUT ",
    "POST ",
    "PATCH ",
    "DELETE ",
    "/api/2/things/",
    "/api/2/policies/",
    "/api/2/search/things",
    "/count",
    "?",
    "&",
    "=",
    "fields=",
    "filter=",
    "option=",
    "namespaces=",
    "ids=",
    "timeout=",
    "condition=",
    "%2F",
    "%22",
    "%ZZ",
    "/inbox/messages/",
    "/features/f/outbox/messages/",
    "/attributes/",
    "\nif-match: ",
    "\nput-metadata: ",
    "\nrequested-acks: ",
    "\ncorrelation-id: ",
    "ns:thing",
];

const CE_DICT: &[&str] = &[
    "ce-specversion: 1.0\n",
    "ce-id: 1\n",
    "ce-source: x\n",
    "ce-type: t\n",
    "ce-dataschema: ditto:x\n",
    "content-type: application/json\n",
    "content-type: application/cloudevents+json\n",
    "\"specversion\":\"1.0\"",
    "\"datacontenttype\":\"application/json\"",
    "\"dataschema\":\"ditto:a\"",
    "\"data\":",
    "\n\n",
];
const POLICY_DICT: &[&str] = &[
    "{\"subjects\":{\"u:a\":{\"type\":\"t\"}},\"resources\":{",
    "\"thing:/\":",
    "\"thing:/attributes\":",
    "\"thing:/features/f\":",
    "\"policy:/\":",
    "{\"grant\":[\"READ\"],\"revoke\":[]}",
    "{\"grant\":[],\"revoke\":[\"READ\"]}",
    "\"READ\"",
    "\"WRITE\"",
    "\"u:b\":{\"type\":\"t\"}",
    "\"expiry\":\"2099-01-01T00:00:00Z\"",
    "\"namespaces\":[\"ns\"]",
    "\"imports\":{\"ns:p\":{}}",
    "{",
    "}",
    ",",
];

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        target!("topic", protocol::topic, Topics, TOPIC_DICT),
        target!("envelope", protocol::envelope, Envelopes, JSON_DICT),
        target!("headers", protocol::headers, Headers, HEADER_DICT),
        target!("pointer", protocol::pointer, Paths, PATH_DICT),
        target!("control", protocol::control, Own, CONTROL_DICT),
        target!("message_path", protocol::message_path, Paths, PATH_DICT),
        target!("policy_path", protocol::policy_path, Paths, PATH_DICT),
        target!("ids", protocol::ids, Topics, TOPIC_DICT),
        target!("twin_command", twin::twin_command, Envelopes, JSON_DICT),
        target!("policy_command", twin::policy_command, Envelopes, JSON_DICT),
        target!("merge", twin::merge, Values, JSON_DICT),
        target!("rql", twin::rql, Filters, RQL_DICT),
        target!("search_options", twin::search_options, Own, RQL_DICT),
        target!("fields", twin::fields, Fields, PATH_DICT),
        target!("cursor", twin::cursor, Own, JSON_DICT),
        target!("mqtt_inbound", edge::mqtt_inbound, Values, TOPIC_DICT),
        target!("mqtt_mapping", edge::mqtt_mapping, Own, TOML_DICT),
        target!("config", edge::config, Own, TOML_DICT),
        target!("http_request", edge::http_request, Own, HTTP_DICT),
        target!("cloudevents", edge::cloudevents, Own, CE_DICT),
        target!("backup_file", store::backup_file, Own, &[]),
        target!("stored_value", store::stored_value, Values, JSON_DICT),
        target!("read_summary", search::read_summary, Values, POLICY_DICT),
    ]
}

/// The verdict of target `name` on `data` (`None`: no such target); used by `fuzz/` (cargo-fuzz).
pub fn verdict(name: &str, data: &[u8]) -> Option<Verdict> {
    targets()
        .iter()
        .find(|t| t.name == name)
        .map(|t| (t.run)(data))
}

/// The seeds of `t`: its own, plus the matching strings of the conformance corpus (a directory
/// of case files with `command` / `response` / `event` envelopes), if `conformance` exists.
pub fn seeds(t: &Target, conformance: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = own_seeds(t.name)
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let mut files = Vec::new();
    for group in ["things", "policies"] {
        if let Ok(dir) = std::fs::read_dir(conformance.join(group)) {
            files.extend(dir.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    for f in files {
        let Some(case) = std::fs::read(&f)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        for key in ["command", "response", "event"] {
            if let Some(env) = case.get(key).filter(|e| e.is_object()) {
                collect(t.seeds, env, &mut out);
            }
        }
    }
    out
}

fn collect(kind: SeedKind, env: &Value, out: &mut Vec<Vec<u8>>) {
    let text = |v: &Value| match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    };
    let field = |k: &str| env.get(k).map(text);
    let item = match kind {
        SeedKind::Envelopes => Some(env.to_string().into_bytes()),
        SeedKind::Topics => field("topic"),
        SeedKind::Headers => field("headers"),
        SeedKind::Paths => field("path"),
        SeedKind::Fields => field("fields"),
        SeedKind::Values => field("value"),
        SeedKind::Filters => env
            .get("value")
            .and_then(|v| v.get("filter"))
            .or_else(|| env.get("headers").and_then(|h| h.get("condition")))
            .map(text),
        SeedKind::Own => None,
    };
    out.extend(item);
}

fn own_seeds(name: &str) -> &'static [&'static str] {
    match name {
        "topic" => &["org.eclipse.ditto/lamp/things/twin/commands/modify", "_/_/things/twin/search/subscribe", "ns/p/policies/commands/create", "ns/x/things/live/messages/ask", "ns/x/things/twin/acks/my:ack"],
        "pointer" | "message_path" | "policy_path" => &["/attributes/a~0b/c", "/features/lamp/properties/on", "/inbox/messages/ask", "/features/f/outbox/messages/x/y", "/entries/DEFAULT/resources/thing:/a/b", "/imports/ns:p/entries"],
        "control" => &["START-SEND-EVENTS?namespaces=org.eclipse.ditto,x&filter=gt(attributes%2Fcounter,42)&extraFields=attributes", "STOP-SEND-MESSAGES", "START-SEND-LIVE-COMMANDS", "JWT-TOKEN?jwtToken=abc"],
        "rql" => &["and(eq(thingId,\"ns:a\"),gt(attributes/n,4.2),not(exists(features/f)))", "or(like(attributes/s,\"SN-*\"),in(attributes/r,'a','b'),ge(_modified,time:now-1d))", "eq(topic:action,\"modified\")"],
        "search_options" => &["sort(+attributes/a,-thingId),size(10)", "cursor(eyJTIjpbXX0),size(5)", "limit(0,25)", "size(201)"],
        "fields" => &["thingId,attributes(a,b/c),features/*/properties/on", "_metadata,_revision,_modified", "a(b(c(d)))"],
        "cursor" => &["eyJTIjpbIithdHRyaWJ1dGVzL2EiXSwiViI6WzFdLCJJIjoibnM6YSJ9", r#"{"S":["+attributes/a","-_modified"],"V":[1,"x"],"I":"ns:a","F":"eq(a,1)","N":["ns"],"z":5,"f":"thingId"}"#, r#"{"S":[],"V":[],"I":"ns:b"}"#],
        "merge" => &["[{\"a\":{\"b\":1,\"c\":[1]}},{\"a\":{\"b\":null,\"d\":{\"e\":2}},\"{{ ~c~ }}\":null}]", "[5,{\"a\":null}]", "[{\"a\":1},[1,2]]"],
        "ids" => &["org.eclipse.ditto:lamp-1", "ns:a/b", "_:x", "a.b.c:d%2F"],
        "mqtt_inbound" => &["zigbee2mqtt/lamp\n{\"state\":\"ON\",\"brightness\":3}", "tele/plug/SENSOR\n{\"ENERGY\":{\"Power\":5}}", "homie/dev/node/prop\n42", "zigbee2mqtt/lamp/availability\nonline", "stat/plug/POWER\nON"],
        "mqtt_mapping" => &["[[mqtt.mappings]]\nname = \"m\"\ntopic = \"dev/{thing}/{feature}/{property}\"\npayload = \"value\"\ncommand = \"dev/{thing}/{feature}/{property}/set\"\n", "[mqtt]\npresets = [\"zigbee2mqtt\", \"tasmota\", \"homie\"]\nnamespace = \"home\"\n"],
        "config" => &["listen = \"127.0.0.1:8080\"\n[store]\nbackend = \"redb\"\nflush_interval_ms = 1000\n[limits]\nmax_message_kib = 256\n[[users]]\nname = \"a\"\npassword_hash = \"$argon2id$x\"\n[search]\nquery_timeout_secs = 5\n", "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\npresets = [\"tasmota\"]\n"],
        "cloudevents" => &[
            "ce-specversion: 1.0\nce-id: 1\nce-source: s\nce-type: t\nce-dataschema: ditto:x\ncontent-type: application/json\n\n{\"topic\":\"ns/a/things/twin/commands/modify\",\"headers\":{},\"path\":\"/attributes/x\",\"value\":1}",
            "content-type: application/cloudevents+json\n\n{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"dataschema\":\"ditto:x\",\"datacontenttype\":\"application/json\",\"data\":{\"topic\":\"ns/a/things/twin/commands/retrieve\",\"headers\":{},\"path\":\"/\"}}",
        ],
        "backup_file" => &["", "\u{0}\u{10}\u{0}X", "\u{1}\u{40}\u{0}", "\u{2}x"],
        "read_summary" => &[
            r#"{"owner":{"subjects":{"u:a":{"type":"t"}},"resources":{"thing:/":{"grant":["READ","WRITE"],"revoke":[]}}},"cut":{"subjects":{"u:b":{"type":"t"},"u:a":{"type":"t"}},"resources":{"thing:/attributes/x":{"grant":[],"revoke":["READ"]}}}}"#,
            r#"{"policyId":"ns:p","entries":{"e":{"subjects":{"u:a":{"type":"t"}},"resources":{"thing:/features":{"grant":["READ"],"revoke":[]},"thing:/":{"grant":["READ"],"revoke":["READ"]}}}}}"#,
        ],
        "stored_value" => &["{\"t\":{\"thingId\":\"a:b\"},\"r\":1,\"c\":17,\"m\":17}", "\u{5}\u{50}{\"t\":", "\u{14}\u{30}{\"t\u{7}\u{0}\u{23}\u{0}\u{0}", "\u{0}{}", "\u{2}"],
        "http_request" => &["GET /api/2/things/ns:a/attributes/x?fields=a,b&timeout=5s\nif-match: \"rev:1\"", "PUT /api/2/things/ns:a/features/f/properties/p?requested-acks=twin-persisted\nput-metadata: [{\"key\":\"/d\",\"value\":1}]", "GET /api/2/search/things?filter=eq(attributes/a,1)&option=sort(-thingId),size(3)&namespaces=ns", "POST /api/2/things/ns:a/inbox/messages/ask?timeout=0", "DELETE /api/2/policies/ns:p/entries/DEFAULT/resources/thing:/a", "GET /api/2/things?ids=ns:a,ns:b&fields=thingId"],
        _ => &[],
    }
}

#[cfg(test)]
mod regressions;
#[cfg(test)]
mod tests;
