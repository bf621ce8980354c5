//! Data-driven conformance test over every case in `shared/conformance/things/*.json` (real Ditto
//! Protocol envelopes from Ditto's docs and tests), twin channel, against the real binary.
//!
//! Every case file is classified as exactly one of:
//! - RUN, twin command: the pre-state the case implies is set up through the protocol (one
//!   `create` of the thing, plus the helper thing `org.eclipse.ditto:the_policy_id` whose implicit
//!   policy makes that policy ID exist), then the case command is sent and the response and the
//!   event seen by a second session (`START-SEND-EVENTS`) are compared with the case.
//! - RUN, error-only (`error-*`, `command: null`): the triggering command is constructed from
//!   the error code and the spec (table in `error_plan`), then status, code and (where the
//!   case's message is derivable) message and description are compared.
//! - RUN, event-only: the event is provoked by a constructed command (`event_only_plan`).
//! - RUN, live channel (messages, acknowledgements): multi-session plans in `conformance_live`
//!   (a device / subscriber session receives the case's signal and answers).
//! - SKIPPED: listed with a reason in `SKIPPED`.
//!
//! A case file that is none of these fails the test, as does a `SKIPPED` entry without a file.
//!
//! Volatile parts are not compared: `timestamp` (only its presence on events), `etag`,
//! `entity-revision`, `ditto-originator`, header fields the case does not show, error `href`.
//! `correlation-id` must equal the one sent (never the doc placeholder). `revision` of events must
//! be exactly the derived one (1 for a creation, 2 for a change on the thing set up with one
//! create). Values are compared with JSON equality. Where a case (notes: DOC-INCONSISTENCY /
//! NOTE) or Ditto's source disagrees with the doc example, the expectation is derived from
//! `shared/spec/` and the derivation is printed with the case's summary line (`derived: ...`).
//!
//! Directory: `$EDGETWIN_CONFORMANCE_DIR/things` if set, else `tests/conformance/things` (a copy of the
//! project's shared corpus, kept in the repo so a clean clone runs it).
//! The per-case summary goes to stderr (`cargo test --test conformance -- --nocapture` to see it
//! when everything passes; on failure it is shown anyway, followed by every mismatch).

// 3.141 / 2.718 are the doc examples' property values, not approximations of PI / E.
#![allow(clippy::approx_constant)]

use crate::common;
// live channel cases (messages, acks): multi-session plans
#[path = "conformance_live/mod.rs"]
mod conformance_live;
use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The policy ID the doc examples use; made to exist by creating the helper thing of that ID.
const POLICY: &str = "org.eclipse.ditto:the_policy_id";
/// A thing changed after every case command: its event must be the next one the subscriber
/// sees (proves that no unexpected/extra event was emitted).
const SENTINEL: &str = "conformance:sentinel";
/// Parallel servers.
const WORKERS: usize = 6;

/// Cases that are not run, and why. Every entry must name an existing case file.
const SKIPPED: &[(&str, &str)] = &[
    // -- pre-state that cannot exist
    (
        "modifypolicyid-created",
        "pre-state impossible: a thing always has a policyId (things-commands.md §1, 'mandatory \
         after creation'), so modify /policyId can never answer 201/created (only API-1 things \
         without policy could)",
    ),
    // -- error-only cases whose trigger cannot be provoked
    (
        "error-things-thing-toomanymodifyingrequests",
        "429: edgetwin has no limit on in-flight modifications of one thing (no throttling yet)",
    ),
    (
        "error-things-thing-unavailable",
        "503: only raised when the store fails; not provocable through the protocol",
    ),
];

// ------------------------------------------------------------------------------------------
// Case files
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    name: String,
    command: Value,
    response: Value,
    event: Value,
    notes: String,
}

fn case_dir() -> PathBuf {
    let (dir, how) = match std::env::var_os("EDGETWIN_CONFORMANCE_DIR") {
        Some(d) => (
            PathBuf::from(d).join("things"),
            "$EDGETWIN_CONFORMANCE_DIR/things",
        ),
        None => (
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/conformance/things"
            )),
            "CARGO_MANIFEST_DIR/tests/conformance/things",
        ),
    };
    assert!(
        dir.is_dir(),
        "conformance corpus not found at {} ({how}); set EDGETWIN_CONFORMANCE_DIR to the \
         directory holding the things/*.json case files",
        dir.display()
    );
    dir
}

fn load_cases() -> Vec<Case> {
    let dir = case_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.json case files in {}",
        dir.display()
    );
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{p:?}: bad JSON: {e}"));
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(v["name"].as_str(), Some(stem.as_str()), "{p:?}: name");
            Case {
                name: stem,
                command: v["command"].clone(),
                response: v["response"].clone(),
                event: v["event"].clone(),
                notes: v["notes"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Plans: what to set up, send and expect
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Plan {
    /// create the helper thing `org.eclipse.ditto:the_policy_id` first (makes that policy exist)
    helper_policy: bool,
    /// commands answered with 2xx before the case command
    setup: Vec<Value>,
    /// control message of the subscribing session
    subscribe: String,
    /// the case command (its correlation-id is replaced by a unique one)
    command: Value,
    /// expected response envelope
    response: Value,
    /// expected event envelope (`None`: no event at all)
    event: Option<Value>,
    /// exact revision of the event
    revision: Option<u64>,
    /// error responses: also compare `message` and `description`
    error_texts: bool,
    /// what was derived from the spec instead of copied from the case
    derived: Vec<String>,
    /// a runner of its own (search protocol cases, see `search_plan`)
    custom: Option<fn(&str, &Plan) -> Vec<Mismatch>>,
}

impl Plan {
    fn new(command: Value, response: Value) -> Plan {
        Plan {
            helper_policy: false,
            setup: vec![],
            subscribe: "START-SEND-EVENTS".into(),
            command,
            response,
            event: None,
            revision: None,
            error_texts: true,
            derived: vec![],
            custom: None,
        }
    }
}

enum Class {
    Run(Box<Plan>),
    Live(Box<conformance_live::LivePlan>),
    Skip(&'static str),
    Unclassified(String),
}

fn classify(c: &Case) -> Class {
    if let Some((_, why)) = SKIPPED.iter().find(|(n, _)| *n == c.name) {
        return Class::Skip(why);
    }
    if let Some(p) = conformance_live::plan(c) {
        return Class::Live(Box::new(p));
    }
    let res = if c.name.starts_with("search-") {
        search_plan(c)
    } else if c.name.starts_with("error-") && c.command.is_null() {
        error_plan(c)
    } else if c.command.is_null() && !c.event.is_null() {
        event_only_plan(c)
    } else if c.command["topic"]
        .as_str()
        .is_some_and(|t| t.contains("/things/twin/commands/"))
    {
        command_plan(c)
    } else {
        Err("neither a twin command, an error-only nor an event-only case".into())
    };
    match res {
        Ok(p) => Class::Run(Box::new(p)),
        Err(e) => Class::Unclassified(e),
    }
}

// ---- JSON helpers ----

fn segs(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn get_at<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, k| cur.get(k.as_str()))
}

fn set_at(v: &mut Value, p: &[String], x: Value) {
    let Some((last, parents)) = p.split_last() else {
        *v = x;
        return;
    };
    let mut cur = v;
    for k in parents {
        if !cur.get(k.as_str()).is_some_and(Value::is_object) {
            cur[k.as_str()] = json!({});
        }
        cur = &mut cur[k.as_str()];
    }
    cur[last.as_str()] = x;
}

fn remove_at(v: &mut Value, p: &[String]) {
    if let Some((last, parents)) = p.split_last() {
        let mut cur = v;
        for k in parents {
            match cur.get_mut(k.as_str()) {
                Some(n) => cur = n,
                None => return,
            }
        }
        if let Some(m) = cur.as_object_mut() {
            m.remove(last.as_str());
        }
    }
}

fn without(v: &Value, key: &str) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
    v
}

/// `ns/name/...` -> `ns:name`.
fn thing_of_topic(topic: &str) -> String {
    let mut it = topic.split('/');
    format!("{}:{}", it.next().unwrap_or(""), it.next().unwrap_or(""))
}

fn mentions(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| mentions(x, s)),
        Value::Object(m) => m.values().any(|x| mentions(x, s)),
        _ => false,
    }
}

fn create(id: &str, v: Value) -> Value {
    command(id, "create", "/", Some(v))
}

fn retrieve(id: &str, path: &str) -> Value {
    command(id, "retrieve", path, None)
}

fn merge(id: &str, path: &str, v: Value) -> Value {
    command(id, "merge", path, Some(v))
}

/// The thing (without `thingId`/`policyId`: the policy is the implicit one) from which every
/// pre-state is derived: the values of the doc examples, every resource present.
fn base_thing() -> Value {
    json!({
        "definition": "org.eclipse.ditto:SomeModel:1.0.0",
        "attributes": {"location": {"latitude": 44.673856, "longitude": 8.261719}},
        "features": {"accelerometer": {
            "definition": ["org.eclipse.ditto:accelerometer:1.0.0"],
            "properties": {"x": 3.141, "y": 2.718, "z": 1, "unit": "g"},
            "desiredProperties": {"x": 4, "y": 3, "z": 5, "unit": "g"}
        }}
    })
}

/// A value of the right type for `p`, different from every value the cases write (pre-state of
/// `*-modified` cases).
fn old_value(p: &[String]) -> Value {
    let s: Vec<&str> = p.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["definition"] => json!("org.eclipse.ditto:OldModel:0.0.1"),
        ["attributes"] => json!({"old": true}),
        ["features"] => json!({"old": {}}),
        ["features", _] => json!({"properties": {"old": true}}),
        ["features", _, "definition"] => json!(["org.eclipse.ditto:old:0.0.1"]),
        ["features", _, "properties" | "desiredProperties"] => json!({"old": true}),
        _ => json!("old"),
    }
}

fn past(action: &str) -> &'static str {
    match action {
        "create" => "created",
        "modify" => "modified",
        "merge" => "merged",
        "delete" => "deleted",
        _ => "?",
    }
}

/// Expected envelope of an error answer to a command on thing `id`.
fn error_envelope(id: &str, status: u16, code: &str) -> Value {
    let (ns, name) = id.split_once(':').unwrap();
    json!({"topic": format!("{ns}/{name}/things/twin/errors"), "headers": {"correlation-id": "<sent>"},
           "path": "/", "value": {"status": status, "error": code}, "status": status})
}

/// Twin command cases: derive the pre-state from action, path and the `-created`/`-modified`
/// naming convention; expected response/event from the case, adjusted where the spec says so.
fn command_plan(c: &Case) -> Result<Plan, String> {
    if let Some(p) = special_command_plan(c) {
        return Ok(p);
    }
    let mut cmd = c.command.clone();
    let topic = cmd["topic"].as_str().unwrap_or_default().to_owned();
    let action = topic.rsplit('/').next().unwrap_or_default().to_owned();
    let id = thing_of_topic(&topic);
    let path = cmd["path"].as_str().unwrap_or("/").to_owned();
    let p = segs(&path);
    if c.response.is_null() {
        return Err("no response in the case and no special plan".into());
    }
    let mut derived = vec![];
    let mut response = c.response.clone();

    // The docs use `fancy-thing_53` inside payloads addressed to `fancy-thing` (notes: "treat
    // IDs here as illustrative"). Align payload/response thingIds with the topic; the mismatch
    // itself (400 things:id.notsettable) is covered by error-things-id-notsettable.
    if p.is_empty() {
        for (what, v) in [
            ("command", &mut cmd["value"]),
            ("response", &mut response["value"]),
        ] {
            if v.get("thingId").is_some_and(|t| t != &json!(id)) {
                derived.push(format!(
                    "{what} value thingId {} -> {id} (topic's thing; IDs are illustrative)",
                    v["thingId"]
                ));
                v["thingId"] = json!(id);
            }
        }
    }
    // 204 has no payload (topic-and-envelope.md §2, things-commands.md §2.1); some doc examples
    // print `"value": null` there.
    if response["status"] == 204 && response.get("value") == Some(&Value::Null) {
        response.as_object_mut().unwrap().remove("value");
        derived.push("204 response: doc's `\"value\": null` means no value".into());
    }

    let creates_root = p.is_empty() && (action == "create" || c.name.ends_with("-created"));
    let mut pre = Some(base_thing());
    let cmd_value = cmd.get("value").cloned();
    let mut expected_value: Option<Value> = None; // 201 response value
    match action.as_str() {
        _ if creates_root => {
            pre = None;
            let mut v = cmd_value.clone().ok_or("create without value")?;
            if v.get("policyId").is_none() {
                v["policyId"] = json!(id);
            }
            v["thingId"] = json!(id);
            expected_value = Some(v);
        }
        "modify" if c.name.ends_with("-created") => {
            remove_at(pre.as_mut().unwrap(), &p);
            expected_value = cmd_value.clone();
        }
        "modify" if c.name.ends_with("-modified") => {
            if p.is_empty() {
                pre.as_mut().unwrap()["attributes"] = old_value(&segs("/attributes"));
            } else if p != ["policyId"] {
                set_at(pre.as_mut().unwrap(), &p, old_value(&p));
            } // policyId: the implicit policy (thing ID) is the old value
        }
        "modify" => return Err("modify case without -created/-modified suffix".into()),
        "merge" | "delete" => {
            if !p.is_empty() && p != ["policyId"] && get_at(&base_thing(), &p).is_none() {
                return Err(format!("no pre-state with {path} present"));
            }
        }
        "retrieve" => {
            let v = response
                .get("value")
                .cloned()
                .ok_or("retrieve without value")?;
            if p.is_empty() {
                pre = Some(without(&v, "thingId"));
            } else {
                set_at(pre.as_mut().unwrap(), &p, v);
            }
        }
        a => return Err(format!("unsupported action {a}")),
    }
    if let Some(v) = expected_value {
        if response.get("value") != Some(&v) {
            derived.push(format!(
                "201 response value = the written value {v} (doc shows {})",
                response.get("value").unwrap_or(&Value::Null)
            ));
            response["value"] = v;
        }
    }

    let mut event = None;
    let mut revision = None;
    if action != "retrieve" {
        let mut ev = c.event.clone();
        if ev.is_null() {
            return Err("write case without event".into());
        }
        let ev_action = if action == "modify" || creates_root {
            if c.name.ends_with("-created") || creates_root {
                "created"
            } else {
                "modified"
            }
        } else {
            past(&action)
        };
        let (ns, name) = id.split_once(':').unwrap();
        let ev_topic = json!(format!("{ns}/{name}/things/twin/events/{ev_action}"));
        if ev["topic"] != ev_topic {
            derived.push(format!(
                "event topic {ev_topic} from the command (doc: {})",
                ev["topic"]
            ));
            ev["topic"] = ev_topic;
        }
        // things-commands.md §2.1: created/modified carry the written value (root modify: the
        // full resulting thing), merged the patch as sent, deleted none.
        let ev_value = match action.as_str() {
            "delete" => None,
            _ if creates_root => response.get("value").cloned(),
            _ if p.is_empty() && action == "modify" => {
                let mut v = cmd_value.clone().unwrap();
                if v.get("policyId").is_none() {
                    v["policyId"] = json!(id);
                }
                Some(v)
            }
            _ => cmd_value.clone(),
        };
        if ev.get("value") != ev_value.as_ref() {
            derived.push(format!(
                "event value derived from the command (doc: {})",
                ev.get("value")
                    .map(Value::to_string)
                    .unwrap_or("none".into())
            ));
            match &ev_value {
                Some(v) => ev["value"] = v.clone(),
                None => {
                    ev.as_object_mut().unwrap().remove("value");
                }
            }
        }
        let rev = if pre.is_none() { 1 } else { 2 };
        if ev["revision"] != rev {
            derived.push(format!(
                "event revision {rev} for the state set up here (doc: {})",
                ev["revision"]
            ));
        }
        revision = Some(rev);
        event = Some(ev);
    }

    let mut plan = Plan::new(cmd, response);
    plan.derived = derived;
    if let Some(pre) = pre {
        plan.setup.push(create(&id, pre));
    }
    plan.helper_policy =
        mentions(&plan.command, POLICY) || plan.setup.iter().any(|s| mentions(s, POLICY));
    plan.event = event;
    plan.revision = revision;
    Ok(plan)
}

/// Twin command cases that need their own pre-state or expectation (no response in the case,
/// retrieve-multiple, or the doc command is not valid as printed).
fn special_command_plan(c: &Case) -> Option<Plan> {
    if let Some(p) = copy_policy_plan(c) {
        return Some(p);
    }
    let cmd = c.command.clone();
    let id = thing_of_topic(cmd["topic"].as_str().unwrap_or_default());
    let ok = |value: Value| {
        let mut r = json!({"topic": cmd["topic"], "headers": {"correlation-id": "<sent>"},
                           "path": cmd["path"], "status": 200});
        r["value"] = value;
        r
    };
    let loc = json!({"latitude": 44.673856, "longitude": 8.261719});
    let fields_note = "no response in the case: `fields` is relative to the addressed resource \
                       (things-commands.md §5; Ditto: *Strategy uses <resource>.toJson(fields)); \
                       the doc's selector names a key the resource does not have -> 200 {}";
    let mut plan = match c.name.as_str() {
        "retrieveattributes-fields" => {
            let mut p = Plan::new(cmd.clone(), ok(json!({})));
            p.setup.push(create(&id, base_thing()));
            p.derived.push(fields_note.into());
            p
        }
        "retrievefeatureproperties-fields" | "retrievefeaturedesiredproperties-fields" => {
            let mut t = base_thing();
            let which = if c.name.contains("desired") {
                "desiredProperties"
            } else {
                "properties"
            };
            t["features"]["accelerometer"][which] =
                json!({"target_year_1": 2021, "target_year_2": 2022});
            let mut p = Plan::new(cmd.clone(), ok(json!({})));
            p.setup.push(create(&id, t));
            p.derived.push(fields_note.into());
            p
        }
        "retrievething-fields" => {
            let mut p = Plan::new(
                cmd.clone(),
                ok(json!({"thingId": id, "attributes": {"location": loc}})),
            );
            p.setup.push(create(&id, base_thing()));
            p.derived
                .push("no response in the case: value = stored thing projected on fields".into());
            p
        }
        "retrievething-snapshotrevision" => {
            let mut whole = base_thing();
            whole["thingId"] = json!(id);
            whole["policyId"] = json!(id);
            let mut p = Plan::new(cmd.clone(), ok(whole));
            p.setup.push(create(&id, base_thing()));
            p.derived
                .push("no response in the case: value = the stored thing (plain retrieve)".into());
            p
        }
        "retrievethings" | "retrievethings-fields" => {
            // The thing of the doc's response exists, the other two requested IDs do not.
            let stored = json!({"policyId": POLICY,
                "attributes": {"location": loc},
                "features": {"accelerometer": {
                    "properties": {"x": 3.141, "y": 2.718, "z": 1, "unit": "g"},
                    "desiredProperties": {"x": 4, "y": 3, "z": 5, "unit": "g"}}}});
            let t53 = "org.eclipse.ditto:fancy-thing_53";
            let mut expected = if c.name == "retrievethings" {
                c.response.clone()
            } else {
                ok(json!([{"thingId": t53, "attributes": {"location": loc}}]))
            };
            let mut derived = vec![];
            if expected["topic"] != cmd["topic"] {
                derived.push(format!(
                    "response topic = command topic {} (doc: {}; spec: response mirrors the \
                     command topic)",
                    cmd["topic"], expected["topic"]
                ));
                expected["topic"] = cmd["topic"].clone();
            }
            if c.name == "retrievethings-fields" {
                derived.push(
                    "no response in the case: readable things in request order, projected".into(),
                );
            }
            let mut p = Plan::new(cmd.clone(), expected);
            p.setup.push(create(t53, stored));
            p.helper_policy = true;
            p.derived = derived;
            p
        }
        "adaptertest-consecutive-slashes-rejected" => {
            let mut p = Plan::new(
                cmd.clone(),
                error_envelope(&id, 400, "json.pointer.invalid"),
            );
            p.response["value"]["description"] =
                json!("Consecutive slashes in JSON pointers are not supported.");
            p.setup.push(create(&id, json!({})));
            p.error_texts = false;
            p.derived.push(
                "no response in the case: 400 json.pointer.invalid (Ditto JsonPointerInvalidException \
                 via DittoJsonException), description compared"
                    .into(),
            );
            p
        }
        "conditional-modify-condition-header" => {
            let mut p = Plan::new(
                cmd.clone(),
                error_envelope(&id, 400, "things:condition.invalid"),
            );
            p.setup.push(create(
                &id,
                json!({"features": {"temperature": {"properties": {
                    "value": 18.5, "lastModified": "2021-08-10T15:00:00.000Z"}}}}),
            ));
            p.error_texts = false;
            p.derived.push(
                "NOTE: unquoted timestamp is no RQL literal (Ditto RqlParserBase: Literal = \
                 number|\"string\"|'string'|true|false|null) -> 400 things:condition.invalid"
                    .into(),
            );
            p
        }
        "merge-with-patch-conditions" => {
            let mut p = Plan::new(
                cmd.clone(),
                error_envelope(&id, 415, "mediatype.unsupported"),
            );
            p.setup.push(create(
                &id,
                json!({"features": {
                "temperature": {"properties": {"value": 21}},
                "humidity": {"properties": {"value": 90}}}}),
            ));
            p.error_texts = false;
            p.derived.push(
                "notes: the example has no content-type application/merge-patch+json -> 415 \
                 mediatype.unsupported (things-commands.md §4)"
                    .into(),
            );
            p
        }
        _ => return None,
    };
    if plan.helper_policy || plan.setup.iter().any(|s| mentions(s, POLICY)) {
        plan.helper_policy = true;
    }
    Some(plan)
}

/// Event-only cases: provoke the event with a modify of the property it shows.
fn event_only_plan(c: &Case) -> Result<Plan, String> {
    let ev = &c.event;
    let topic = ev["topic"].as_str().ok_or("event without topic")?;
    if !topic.ends_with("/things/twin/events/modified") {
        return Err(format!("no trigger for event topic {topic}"));
    }
    let id = thing_of_topic(topic);
    let path = ev["path"].as_str().ok_or("event without path")?;
    let value = ev["value"].clone();
    let mut pre = json!({"attributes": {"location": "Kitchen"},
        "features": {"temperature": {"properties": {"value": 19.0, "unit": "Celsius"}}}});
    if get_at(&pre, &segs(path)).is_none() {
        return Err(format!("no pre-state for {path}"));
    }
    if let Some(extra) = ev.get("extra") {
        // the extra fields show current state: store exactly that
        for (k, v) in extra.as_object().ok_or("extra not an object")? {
            pre[k.as_str()] = merge_json(pre[k.as_str()].clone(), v.clone());
        }
    }
    let cmd = modify(&id, path, value);
    let response = json!({"topic": cmd["topic"], "headers": {"correlation-id": "<sent>"},
                          "path": path, "status": 204});
    let mut p = Plan::new(cmd, response);
    p.setup.push(create(&id, pre));
    let mut expected = ev.clone();
    expected["headers"] = json!({"correlation-id": "<sent>"});
    p.event = Some(expected);
    p.revision = Some(2);
    p.derived.push(format!(
        "no command in the case: modify {path} of an existing value -> 204 + this event; \
         revision 2 (doc: {})",
        ev["revision"]
    ));
    if ev.get("extra").is_some() {
        p.subscribe =
            "START-SEND-EVENTS?extraFields=attributes,features/temperature/properties/unit".into();
        p.derived.push(
            "subscriber uses extraFields=attributes,features/temperature/properties/unit (notes)"
                .into(),
        );
    }
    Ok(p)
}

fn merge_json(mut a: Value, b: Value) -> Value {
    match (a.as_object_mut(), b) {
        (Some(m), Value::Object(bm)) => {
            for (k, v) in bm {
                let cur = m.remove(&k).unwrap_or(Value::Null);
                m.insert(k, merge_json(cur, v));
            }
            a
        }
        (_, b) => b,
    }
}

/// Setup of a thing (every resource present) that `nginx:ditto` may read but not write: created
/// with its default policy, whose entry is then reduced to READ on `thing:/` (a new thing needs
/// WRITE on `thing:/` from its creator, so the restriction comes second).
fn read_only_thing(t: &str) -> Vec<Value> {
    let (ns, name) = t.split_once(':').unwrap();
    let entry = json!({"subjects": {"nginx:ditto": {"type": "generated"}},
        "resources": {"thing:/": {"grant": ["READ"], "revoke": []},
                      "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}});
    vec![
        create(t, base_thing()),
        json!({"topic": format!("{ns}/{name}/policies/commands/modify"), "headers": {},
               "path": "/entries/DEFAULT", "value": entry}),
    ]
}

/// `_copyPolicyFrom` cases (no response in the case): the source policy exists (implicit
/// policy of a helper thing; by reference: the referenced thing), the policy ID to be
/// (`the_policy_id`) does not; create (and modify, which creates) answer 201 with the thing
/// without `_copyPolicyFrom`, and the `created` event carries the same.
fn copy_policy_plan(c: &Case) -> Option<Plan> {
    let by_ref = match c.name.as_str() {
        "creatething-copypolicy-by-id" | "modifything-copypolicy-by-id" => false,
        "creatething-copypolicy-by-thing-reference"
        | "modifything-copypolicy-by-thing-reference" => true,
        _ => return None,
    };
    let mut cmd = c.command.clone();
    let id = thing_of_topic(cmd["topic"].as_str()?);
    let copy = cmd["value"]["_copyPolicyFrom"].as_str()?.to_owned();
    let source = if by_ref {
        copy.trim_start_matches("{{ ref:things/")
            .trim_end_matches("/policyId }}")
            .to_owned()
    } else {
        copy.clone()
    };
    cmd["value"]["thingId"] = json!(id);
    let thing = json!({"thingId": id, "policyId": cmd["value"]["policyId"]});
    let mut response = json!({"topic": cmd["topic"], "headers": {"correlation-id": "<sent>"},
                              "path": "/", "status": 201, "value": thing});
    let (ns, name) = id.split_once(':').unwrap();
    let event = json!({"topic": format!("{ns}/{name}/things/twin/events/created"),
        "headers": {"correlation-id": "<sent>"}, "path": "/", "value": thing});
    if response["value"].get("policyId").is_none() {
        response["value"]["policyId"] = json!(id);
    }
    let mut p = Plan::new(cmd, response);
    p.setup.push(create(&source, json!({})));
    p.event = Some(event);
    p.revision = Some(1);
    p.derived = vec![
        format!("command value thingId -> {id} (topic's thing; IDs are illustrative)"),
        format!(
            "no response in the case: source policy '{source}' set up as the implicit policy of \
             thing '{source}'; 201 + created event with the thing (policyId as given, \
             _copyPolicyFrom not part of the thing; spec policies.md §5)"
        ),
    ];
    Some(p)
}

/// Error-only cases: the command that provokes the error, derived from its code and the spec.
fn error_plan(c: &Case) -> Result<Plan, String> {
    let topic = c.response["topic"]
        .as_str()
        .ok_or("error case without response topic")?;
    let t = thing_of_topic(topic);
    let t = t.as_str();
    let acc = |f: Value| json!({"features": {"accelerometer": f}});
    let policy = json!({"entries": {"DEFAULT": {
        "subjects": {"nginx:ditto": {"type": "generated"}},
        "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                      "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
    let mut derived: Vec<String> = vec![];
    let mut texts: Option<(&str, &str)> = None;
    let mut helper = false;
    let mut code_override = None;
    // (setup, command)
    let (setup, cmd): (Vec<Value>, Value) = match c.name.as_str() {
        "error-things-attribute-notfound" => (
            vec![create(t, json!({"attributes": {"manufacturer": "ACME"}}))],
            retrieve(t, "/attributes/location"),
        ),
        "error-things-attributes-notfound" => {
            (vec![create(t, json!({}))], retrieve(t, "/attributes"))
        }
        "error-things-features-notfound" => (vec![create(t, json!({}))], retrieve(t, "/features")),
        "error-things-feature-notfound" => (
            vec![create(t, json!({"features": {"other": {}}}))],
            retrieve(t, "/features/accelerometer"),
        ),
        "error-things-feature-definition-empty" => (
            vec![create(t, acc(json!({})))],
            modify(t, "/features/accelerometer/definition", json!([])),
        ),
        "error-things-feature-definition-identifier-invalid" => (
            vec![create(t, acc(json!({})))],
            modify(t, "/features/accelerometer/definition", json!(["foo:bar"])),
        ),
        "error-things-feature-definition-notfound" => (
            vec![create(t, acc(json!({"properties": {"x": 1}})))],
            retrieve(t, "/features/accelerometer/definition"),
        ),
        "error-things-feature-properties-notfound" => (
            vec![create(t, acc(json!({})))],
            retrieve(t, "/features/accelerometer/properties"),
        ),
        "error-things-feature-property-notfound" => (
            vec![create(t, acc(json!({"properties": {"y": 1}})))],
            retrieve(t, "/features/accelerometer/properties/x"),
        ),
        "error-things-feature-desired-properties-notfound" => (
            vec![create(t, acc(json!({"properties": {"x": 1}})))],
            retrieve(t, "/features/accelerometer/desiredProperties"),
        ),
        "error-things-feature-desired-property-notfound" => (
            vec![create(t, acc(json!({"desiredProperties": {"y": 1}})))],
            retrieve(t, "/features/accelerometer/desiredProperties/x"),
        ),
        "error-things-id-invalid" => {
            derived.push(
                "trigger: create with payload thingId 'invalid id' (Ditto parses the payload \
                 thing, ThingId.of -> things:id.invalid, before comparing with the topic); \
                 doc's `url` field is Ditto's `href`, not compared"
                    .into(),
            );
            (vec![], create(t, json!({"thingId": "invalid id"})))
        }
        "error-things-id-notsettable" => {
            texts = Some((
                "The Thing ID in the thing JSON is not equal to the Thing ID in the topic path.",
                "Either delete the Thing ID from the thing JSON or use the same Thing ID as in \
                 the topic path.",
            ));
            derived.push(
                "message/description: the doc shows the HTTP wording; over the protocol Ditto \
                 uses ThingIdNotExplicitlySettableException.forDittoProtocol() (things-commands.md \
                 §1) - those texts are compared"
                    .into(),
            );
            (
                vec![],
                create(t, json!({"thingId": "org.eclipse.ditto:another-thing"})),
            )
        }
        "error-things-id-notdeletable" => (
            vec![create(t, json!({}))],
            merge(t, "/", json!({"thingId": null})),
        ),
        "error-things-policyId-notdeletable" => (
            vec![create(t, json!({}))],
            merge(t, "/policyId", Value::Null),
        ),
        "error-things-policy-notallowed" => (
            vec![create(t, json!({}))],
            modify(t, "/", json!({"_policy": policy})),
        ),
        "error-things-policyId-notallowed" => {
            code_override = Some("things:policy.id.notallowed");
            derived.push(
                "code things:policy.id.notallowed: Ditto 3.x PolicyIdNotAllowedException.ERROR_CODE \
                 (doc example prints the outdated `policyId.notallowed`; errors.md agrees with \
                 the source); message compared"
                    .into(),
            );
            helper = true;
            (
                vec![],
                create(t, json!({"policyId": POLICY, "_policy": policy})),
            )
        }
        "error-things-thing-conflict" => (vec![create(t, json!({}))], create(t, json!({}))),
        "error-things-thing-notcreatable" => (vec![], create(t, json!({"policyId": POLICY}))),
        "error-things-thing-notfound" => (vec![], retrieve(t, "/")),
        // 403: READ without WRITE on the addressed resource (policies.md §3 error mapping)
        name if name.ends_with("-notmodifiable") || name == "error-things-thing-notdeletable" => {
            let (path, value) = match name {
                "error-things-attribute-notmodifiable" => ("/attributes/location", json!(1)),
                "error-things-attributes-notmodifiable" => ("/attributes", json!({})),
                "error-things-features-notmodifiable" => ("/features", json!({})),
                "error-things-feature-notmodifiable" => ("/features/accelerometer", json!({})),
                "error-things-feature-definition-notmodifiable" => (
                    "/features/accelerometer/definition",
                    json!(["org.eclipse.ditto:accelerometer:2.0.0"]),
                ),
                "error-things-feature-properties-notmodifiable" => {
                    ("/features/accelerometer/properties", json!({}))
                }
                "error-things-feature-property-notmodifiable" => {
                    ("/features/accelerometer/properties/x", json!(1))
                }
                "error-things-feature-desired-properties-notmodifiable" => {
                    ("/features/accelerometer/desiredProperties", json!({}))
                }
                "error-things-feature-desired-property-notmodifiable" => {
                    ("/features/accelerometer/desiredProperties/x", json!(1))
                }
                "error-things-policyId-notmodifiable" => ("/policyId", json!(t)),
                "error-things-thing-notmodifiable" => ("/", json!({"attributes": {"a": 1}})),
                "error-things-thing-notdeletable" => ("/", Value::Null),
                _ => return Err("no trigger for this 403 case".into()),
            };
            derived.push(
                "trigger: the thing's policy is reduced to READ on thing:/ (WRITE kept on policy:/ \
                 only), then the addressed resource is changed by the same subject"
                    .into(),
            );
            let cmd = if value.is_null() {
                command(t, "delete", path, None)
            } else {
                modify(t, path, value)
            };
            (read_only_thing(t), cmd)
        }
        _ => return Err("error case without trigger and not in SKIPPED".into()),
    };
    let mut response = c.response.clone();
    let shown: Vec<String> = response["headers"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| *k != "correlation-id")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if !shown.is_empty() {
        derived.push(format!(
            "headers {shown:?} not compared (example from a response-required=false context; over \
             WS such an error is not sent at all)"
        ));
    }
    response["headers"] = json!({"correlation-id": "<sent>"});
    if let Some(code) = code_override {
        response["value"]["error"] = json!(code);
    }
    if let Some((message, description)) = texts {
        response["value"]["message"] = json!(message);
        response["value"]["description"] = json!(description);
    }
    let mut p = Plan::new(cmd, response);
    p.setup = setup;
    p.helper_policy = helper;
    p.derived = derived;
    Ok(p)
}

// ------------------------------------------------------------------------------------------
// Running and comparing
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Mismatch {
    field: String,
    expected: String,
    actual: String,
}

fn mm(field: impl Into<String>, expected: impl ToString, actual: impl ToString) -> Mismatch {
    Mismatch {
        field: field.into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

fn show(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "<absent>".into())
}

/// Headers never compared: volatile or set by the gateway.
const VOLATILE_HEADERS: [&str; 3] = ["etag", "entity-revision", "ditto-originator"];

fn compare_envelope(
    what: &str,
    expected: &Value,
    actual: &Value,
    cid: &str,
    revision: Option<u64>,
    error_texts: bool,
    out: &mut Vec<Mismatch>,
) {
    let f = |k: &str| format!("{what}.{k}");
    for k in ["topic", "path", "status"] {
        if expected.get(k) != actual.get(k) {
            out.push(mm(f(k), show(expected.get(k)), show(actual.get(k))));
        }
    }
    // headers: correlation-id always (the one sent); others only where the case shows them
    if actual["headers"]["correlation-id"] != cid {
        out.push(mm(
            f("headers.correlation-id"),
            cid,
            show(actual["headers"].get("correlation-id")),
        ));
    }
    if let Some(h) = expected["headers"].as_object() {
        for (k, v) in h {
            if k == "correlation-id" || VOLATILE_HEADERS.contains(&k.as_str()) {
                continue;
            }
            if actual["headers"].get(k) != Some(v) {
                out.push(mm(
                    f(&format!("headers.{k}")),
                    v,
                    show(actual["headers"].get(k)),
                ));
            }
        }
    }
    let is_error = expected["topic"]
        .as_str()
        .is_some_and(|t| t.ends_with("/errors"));
    if is_error {
        let mut keys = vec!["status", "error"];
        if error_texts {
            keys.extend(["message", "description"]);
        } else if expected["value"].get("description").is_some() {
            keys.push("description");
        }
        for k in keys {
            if expected["value"].get(k) != actual["value"].get(k) {
                out.push(mm(
                    f(&format!("value.{k}")),
                    show(expected["value"].get(k)),
                    show(actual["value"].get(k)),
                ));
            }
        }
    } else if expected.get("value") != actual.get("value") {
        out.push(mm(
            f("value"),
            show(expected.get("value")),
            show(actual.get("value")),
        ));
    }
    if expected.get("extra") != actual.get("extra") {
        out.push(mm(
            f("extra"),
            show(expected.get("extra")),
            show(actual.get("extra")),
        ));
    }
    let is_event = what == "event";
    if is_event {
        match (actual["revision"].as_u64(), revision) {
            (Some(r), Some(want)) if r != want => out.push(mm(f("revision"), want, r)),
            (Some(0) | None, _) => out.push(mm(
                f("revision"),
                "positive integer",
                show(actual.get("revision")),
            )),
            _ => {}
        }
        if !actual["timestamp"].is_string() {
            out.push(mm(
                f("timestamp"),
                "ISO-8601 string",
                show(actual.get("timestamp")),
            ));
        }
    }
    // no top-level fields beyond what the case shows (plus the volatile event fields)
    if let Some(m) = actual.as_object() {
        for k in m.keys() {
            let allowed = expected.get(k).is_some()
                || k == "headers"
                || (is_event && (k == "revision" || k == "timestamp"));
            if !allowed {
                out.push(mm(f(k), "<absent>", &m[k]));
            }
        }
    }
}

fn run_plan(name: &str, plan: &Plan) -> Vec<Mismatch> {
    if let Some(run) = plan.custom {
        return run(name, plan);
    }
    let srv = Server::start();
    block_on(async {
        let mut out = vec![];
        let mut w = srv.ws().await;
        let mut sub = srv.ws().await;
        let mut setup = vec![];
        if plan.helper_policy {
            setup.push(create(POLICY, json!({})));
        }
        setup.extend(plan.setup.iter().cloned());
        setup.push(create(SENTINEL, json!({})));
        for (i, s) in setup.into_iter().enumerate() {
            let r = w.request(s.clone()).await;
            let st = r["status"].as_u64().unwrap_or(0);
            if !(200..300).contains(&st) {
                out.push(mm(format!("setup[{i}] {s}"), "2xx", r));
                return out;
            }
        }
        sub.control(&plan.subscribe).await;
        // Events are published once durable, asynchronously: events of the setup may still
        // arrive after the subscription. A sentinel change marks the point after which every
        // event must belong to the case.
        w.request(modify(SENTINEL, "/attributes/ready", json!(true)))
            .await;
        loop {
            match sub.next_event(WAIT).await {
                Some(a) if a["path"] == "/attributes/ready" => break,
                Some(_) => {}
                None => {
                    out.push(mm("sentinel ready event", "an event", "<none>"));
                    return out;
                }
            }
        }

        let cid = format!("conformance-{name}");
        let mut cmd = plan.command.clone();
        if !cmd["headers"].is_object() {
            cmd["headers"] = json!({});
        }
        cmd["headers"]["correlation-id"] = json!(cid);
        let actual = w.request(cmd).await;
        compare_envelope(
            "response",
            &plan.response,
            &actual,
            &cid,
            None,
            plan.error_texts,
            &mut out,
        );
        if let Some(ev) = &plan.event {
            match sub.next_event(WAIT).await {
                Some(a) => compare_envelope("event", ev, &a, &cid, plan.revision, true, &mut out),
                None => out.push(mm("event", ev, "<no event>")),
            }
        }
        // the next event must be the sentinel's: nothing unexpected was emitted
        w.request(modify(SENTINEL, "/attributes/done", json!(true)))
            .await;
        match sub.next_event(WAIT).await {
            Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/created" => {}
            Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/modified" => {}
            Some(a) => out.push(mm("event (unexpected)", "none", a)),
            None => out.push(mm("sentinel event", "an event", "<none>")),
        }
        out
    })
}

#[test]
fn things_conformance() {
    let cases = load_cases();
    let mut problems: Vec<String> = vec![];
    for (name, _) in SKIPPED {
        if !cases.iter().any(|c| c.name == *name) {
            problems.push(format!(
                "SKIPPED lists '{name}' but there is no such case file"
            ));
        }
    }
    let classified: Vec<(Case, Class)> = cases
        .into_iter()
        .map(|c| {
            let k = classify(&c);
            (c, k)
        })
        .collect();
    let runs: Vec<(usize, &Case, &Class)> = classified
        .iter()
        .enumerate()
        .filter(|(_, (_, k))| matches!(k, Class::Run(_) | Class::Live(_)))
        .map(|(i, (c, k))| (i, c, k))
        .collect();

    let results: Mutex<Vec<Option<Vec<Mismatch>>>> =
        Mutex::new((0..classified.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some((i, c, p)) = runs.get(j) else { break };
                let run = || match p {
                    Class::Run(p) => run_plan(&c.name, p),
                    Class::Live(p) => conformance_live::run(&c.name, p),
                    _ => vec![],
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(
                    |e| {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        vec![mm("harness", "no panic", format!("panic: {msg}"))]
                    },
                );
                results.lock().unwrap()[*i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap();

    let (mut n_run, mut n_ok, mut n_skip) = (0, 0, 0);
    let mut failures: Vec<String> = vec![];
    for (i, (c, k)) in classified.iter().enumerate() {
        match k {
            Class::Skip(why) => {
                n_skip += 1;
                eprintln!("{:<55} skipped: {why}", c.name);
            }
            Class::Unclassified(why) => {
                problems.push(format!(
                    "case '{}' is neither run nor listed in SKIPPED ({why}); notes: {}",
                    c.name, c.notes
                ));
                eprintln!("{:<55} UNCLASSIFIED: {why}", c.name);
            }
            Class::Run(_) | Class::Live(_) => {
                n_run += 1;
                let ms = results[i].as_ref().expect("every run case has a result");
                if ms.is_empty() {
                    n_ok += 1;
                    eprintln!("{:<55} ok", c.name);
                } else {
                    eprintln!("{:<55} FAILED ({} mismatches)", c.name, ms.len());
                    for m in ms {
                        failures.push(format!(
                            "{}: {}\n    expected: {}\n    actual:   {}",
                            c.name, m.field, m.expected, m.actual
                        ));
                    }
                }
                let derived = match k {
                    Class::Run(plan) => plan.derived.clone(),
                    Class::Live(plan) => plan.derived(),
                    _ => vec![],
                };
                for d in &derived {
                    eprintln!("{:<55}   derived: {d}", "");
                }
            }
        }
    }
    eprintln!(
        "conformance: {} cases, {n_run} run, {n_ok} passed, {} failed, {n_skip} skipped",
        classified.len(),
        n_run - n_ok
    );
    if !problems.is_empty() || !failures.is_empty() {
        panic!(
            "conformance failures:\n{}\n{}",
            problems.join("\n"),
            failures.join("\n")
        );
    }
    assert!(n_run > 0, "no case was run");
}

// ------------------------------------------------------------------------------------------
// Search protocol cases (search.md section 4): run over one WS session each
// ------------------------------------------------------------------------------------------

const SEARCH: &str = "_/_/things/twin/search/";

/// The plan of a `search-*` case: the case's envelopes, run by `run_search_case`.
fn search_plan(c: &Case) -> Result<Plan, String> {
    let mut p = Plan::new(c.command.clone(), c.response.clone());
    p.event = (!c.event.is_null()).then(|| c.event.clone());
    p.custom = Some(run_search_case);
    p.derived.push(
        "subscriptionId is chosen by the server (search.md section 4: opaque): the case's \
         \"24601\" is replaced by the one from `created` before comparing"
            .into(),
    );
    match c.name.as_str() {
        "search-subscribe" | "search-cancel" => {}
        "search-request-next" => p.derived.push(
            "pre-state: default:thing1/2 with attributes/temperature 35, subscribed with \
             filter eq(attributes/temperature,35) and fields thingId,attributes"
                .into(),
        ),
        "search-complete" => p.derived.push(
            "no command in the case: subscribe (one matching thing), request 1 -> next, then \
             this complete"
                .into(),
        ),
        "search-failed" => p.derived.push(
            "no command in the case: subscribe, then request with demand 0 -> this failed".into(),
        ),
        "search-error-option-invalid" => {
            p.derived.push(
                "no command in the case: a subscribe whose `options` is not a string cannot \
                 become a search command -> this error on _/_/things/search/errors; the case \
                 has no message (DOC): status, error and description compared"
                    .into(),
            );
            p.error_texts = false;
        }
        other => return Err(format!("unknown search case {other}")),
    }
    Ok(p)
}

fn with_sid(v: &Value, sid: &Value) -> Value {
    let mut v = v.clone();
    if v["value"].get("subscriptionId").is_some() {
        v["value"]["subscriptionId"] = sid.clone();
    }
    v
}

fn search_msg(action: &str, cid: &str, value: Value) -> Value {
    json!({"topic": format!("{SEARCH}{action}"), "path": "/",
           "headers": {"correlation-id": cid, "content-type": "application/json"}, "value": value})
}

fn run_search_case(name: &str, plan: &Plan) -> Vec<Mismatch> {
    let srv = Server::start();
    block_on(async {
        let mut out = vec![];
        let mut ws = srv.ws().await;
        for t in ["default:thing1", "default:thing2"] {
            let r = ws
                .request(create(t, json!({"attributes": {"temperature": 35}})))
                .await;
            if r["status"] != 201 {
                out.push(mm(format!("setup {t}"), 201, r));
                return out;
            }
        }
        let cid = format!("conformance-{name}");
        let subscribe = |cid: &str| {
            let mut m = search_msg(
                "subscribe",
                cid,
                json!({"filter": "eq(attributes/temperature,35)"}),
            );
            m["fields"] = json!("thingId,attributes");
            m
        };
        // the case's own subscribe, or the one its pre-state needs
        let sub_cid = if name == "search-subscribe" {
            cid.clone()
        } else {
            format!("{cid}-sub")
        };
        let mut sub = if name == "search-subscribe" {
            plan.command.clone()
        } else {
            subscribe(&sub_cid)
        };
        if name == "search-error-option-invalid" {
            sub = search_msg("subscribe", &cid, json!({"options": 5}));
            ws.send(&sub).await;
            let actual = ws.recv().await;
            compare_envelope(
                "response",
                &plan.response,
                &actual,
                &cid,
                None,
                plan.error_texts,
                &mut out,
            );
            return out;
        }
        sub["headers"]["correlation-id"] = json!(sub_cid);
        ws.send(&sub).await;
        let created = ws.recv().await;
        let sid = created["value"]["subscriptionId"].clone();
        if sid.as_str().is_none_or(|s| s.is_empty()) {
            out.push(mm(
                "created.value.subscriptionId",
                "a non-empty string",
                &created,
            ));
            return out;
        }
        let expect_event = |out: &mut Vec<Mismatch>, actual: &Value, cid: &str| match &plan.event {
            Some(ev) => compare_envelope(
                "search-event",
                &with_sid(ev, &sid),
                actual,
                cid,
                None,
                true,
                out,
            ),
            None => out.push(mm("event", "none", actual)),
        };
        match name {
            "search-subscribe" => expect_event(&mut out, &created, &cid),
            "search-request-next" => {
                let mut cmd = with_sid(&plan.command, &sid);
                cmd["headers"]["correlation-id"] = json!(cid);
                ws.send(&cmd).await;
                let next = ws.recv().await;
                expect_event(&mut out, &next, &cid);
            }
            "search-complete" | "search-failed" => {
                let demand = if name == "search-failed" { 0 } else { 1 };
                ws.send(&search_msg(
                    "request",
                    &cid,
                    json!({"subscriptionId": sid, "demand": demand}),
                ))
                .await;
                let mut f = ws.recv().await;
                if name == "search-complete" && f["topic"] == format!("{SEARCH}next") {
                    f = ws.recv().await;
                }
                expect_event(&mut out, &f, &cid);
            }
            "search-cancel" => {
                let mut cmd = with_sid(&plan.command, &sid);
                cmd["headers"]["correlation-id"] = json!(cid);
                ws.send(&cmd).await;
                // no reply: the next frame is the created of a fresh subscription
                ws.send(&subscribe("after-cancel")).await;
                let f = ws.recv().await;
                if f["headers"]["correlation-id"] != "after-cancel"
                    || f["topic"] != format!("{SEARCH}created")
                {
                    out.push(mm("reply to cancel", "none", f));
                }
            }
            other => out.push(mm("case", "a known search case", other)),
        }
        out
    })
}
