//! The Ditto conformance corpus as plans, shared by the socket test (`conformance.rs`, over
//! WS against the binary) and the in-process one (`src/hub/conformance_tests.rs`, against the
//! hub and engine with a temp store): the case loader, the classification (run / live / search /
//! skipped with a reason), each case's pre-state, command and expected response and event, and
//! the envelope comparison. No IO beyond reading the case files.

// 3.141 / 2.718 are the doc examples' property values, not approximations of PI / E.
#![allow(clippy::approx_constant)]

use serde_json::{json, Value};
use std::path::PathBuf;

/// A Ditto Protocol twin command on `thing` (`ns:name`).
pub fn command(thing: &str, action: &str, path: &str, value: Option<Value>) -> Value {
    let (ns, name) = thing.split_once(':').unwrap_or((thing, ""));
    let mut v = json!({"topic": format!("{ns}/{name}/things/twin/commands/{action}"), "headers": {}, "path": path});
    if let Some(x) = value {
        v["value"] = x;
    }
    if action == "merge" {
        v["headers"]["content-type"] = "application/merge-patch+json".into();
    }
    v
}

/// A `modify` of `path` on `thing`.
pub fn modify(thing: &str, path: &str, value: Value) -> Value {
    command(thing, "modify", path, Some(value))
}

/// The policy ID the doc examples use; made to exist by creating the helper thing of that ID.
pub const POLICY: &str = "org.eclipse.ditto:the_policy_id";
/// A thing changed after every case command: its event must be the next one the subscriber
/// sees (proves that no unexpected/extra event was emitted).
pub const SENTINEL: &str = "conformance:sentinel";

/// Cases that are not run, and why. Every entry must name an existing case file.
pub const SKIPPED: &[(&str, &str)] = &[
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
pub struct Case {
    pub name: String,
    pub command: Value,
    pub response: Value,
    pub event: Value,
    pub notes: String,
}

pub fn case_dir() -> PathBuf {
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

pub fn load_cases() -> Vec<Case> {
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
pub struct Plan {
    /// create the helper thing `org.eclipse.ditto:the_policy_id` first (makes that policy exist)
    pub helper_policy: bool,
    /// commands answered with 2xx before the case command
    pub setup: Vec<Value>,
    /// control message of the subscribing session
    pub subscribe: String,
    /// the case command (its correlation-id is replaced by a unique one)
    pub command: Value,
    /// expected response envelope
    pub response: Value,
    /// expected event envelope (`None`: no event at all)
    pub event: Option<Value>,
    /// exact revision of the event
    pub revision: Option<u64>,
    /// error responses: also compare `message` and `description`
    pub error_texts: bool,
    /// what was derived from the spec instead of copied from the case
    pub derived: Vec<String>,
    /// a search protocol case (`search_plan`): run by the runner's own search runner
    pub search: bool,
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
            search: false,
        }
    }
}

pub enum Class {
    Run(Box<Plan>),
    Live(Box<LivePlan>),
    Skip(&'static str),
    Unclassified(String),
}

pub fn classify(c: &Case) -> Class {
    if let Some((_, why)) = SKIPPED.iter().find(|(n, _)| *n == c.name) {
        return Class::Skip(why);
    }
    if let Some(p) = live_plan(c) {
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

pub fn segs(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn get_at<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, k| cur.get(k.as_str()))
}

pub fn set_at(v: &mut Value, p: &[String], x: Value) {
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

pub fn remove_at(v: &mut Value, p: &[String]) {
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

pub fn without(v: &Value, key: &str) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
    v
}

/// `ns/name/...` -> `ns:name`.
pub fn thing_of_topic(topic: &str) -> String {
    let mut it = topic.split('/');
    format!("{}:{}", it.next().unwrap_or(""), it.next().unwrap_or(""))
}

pub fn mentions(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| mentions(x, s)),
        Value::Object(m) => m.values().any(|x| mentions(x, s)),
        _ => false,
    }
}

pub fn create(id: &str, v: Value) -> Value {
    command(id, "create", "/", Some(v))
}

pub fn retrieve(id: &str, path: &str) -> Value {
    command(id, "retrieve", path, None)
}

pub fn merge(id: &str, path: &str, v: Value) -> Value {
    command(id, "merge", path, Some(v))
}

/// The thing (without `thingId`/`policyId`: the policy is the implicit one) from which every
/// pre-state is derived: the values of the doc examples, every resource present.
pub fn base_thing() -> Value {
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
pub fn old_value(p: &[String]) -> Value {
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

pub fn past(action: &str) -> &'static str {
    match action {
        "create" => "created",
        "modify" => "modified",
        "merge" => "merged",
        "delete" => "deleted",
        _ => "?",
    }
}

/// Expected envelope of an error answer to a command on thing `id`.
pub fn error_envelope(id: &str, status: u16, code: &str) -> Value {
    let (ns, name) = id.split_once(':').unwrap();
    json!({"topic": format!("{ns}/{name}/things/twin/errors"), "headers": {"correlation-id": "<sent>"},
           "path": "/", "value": {"status": status, "error": code}, "status": status})
}

/// Twin command cases: derive the pre-state from action, path and the `-created`/`-modified`
/// naming convention; expected response/event from the case, adjusted where the spec says so.
pub fn command_plan(c: &Case) -> Result<Plan, String> {
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
pub fn special_command_plan(c: &Case) -> Option<Plan> {
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
pub fn event_only_plan(c: &Case) -> Result<Plan, String> {
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

pub fn merge_json(mut a: Value, b: Value) -> Value {
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
pub fn read_only_thing(t: &str) -> Vec<Value> {
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
pub fn copy_policy_plan(c: &Case) -> Option<Plan> {
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
pub fn error_plan(c: &Case) -> Result<Plan, String> {
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
pub struct Mismatch {
    pub field: String,
    pub expected: String,
    pub actual: String,
}

pub fn mm(field: impl Into<String>, expected: impl ToString, actual: impl ToString) -> Mismatch {
    Mismatch {
        field: field.into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

pub fn show(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_else(|| "<absent>".into())
}

/// Headers never compared: volatile or set by the gateway.
pub const VOLATILE_HEADERS: [&str; 3] = ["etag", "entity-revision", "ditto-originator"];

pub fn compare_envelope(
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

// ------------------------------------------------------------------------------------------
// Search protocol cases (search.md section 4): run over one WS session each
// ------------------------------------------------------------------------------------------

pub const SEARCH: &str = "_/_/things/twin/search/";

/// The plan of a `search-*` case: the case's envelopes, run by `run_search_case`.
pub fn search_plan(c: &Case) -> Result<Plan, String> {
    let mut p = Plan::new(c.command.clone(), c.response.clone());
    p.event = (!c.event.is_null()).then(|| c.event.clone());
    p.search = true;
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

// ------------------------------------------------------------------------------------------
// Live channel cases (messages, acks): their plans (run by `conformance_live`)
// ------------------------------------------------------------------------------------------

/// What a live case runs.
#[derive(Debug, Clone)]
pub enum LivePlan {
    /// a message from a sender session to a device session and the device's answer
    Message {
        /// the case command (sent, and expected at the device)
        command: Value,
        /// the device's answer (sent, and expected at the sender)
        reply: Value,
        /// what was derived
        derived: Vec<String>,
    },
    /// a modify with requested acks, answered by a declaring subscriber
    Acks {
        /// thing the acks are about
        thing: String,
        /// requested labels
        labels: Vec<String>,
        /// `timeout` header
        timeout: String,
        /// the subscriber's ack (`None`: it stays silent)
        ack: Option<Value>,
        /// expected aggregated answer: (status, label -> (status, payload or None))
        expect: (u64, Vec<(String, u64, Option<Value>)>),
        /// what was derived
        derived: Vec<String>,
    },
    /// the minimal ack of the adapter test
    MinimalAck {
        /// the ack as in the case
        ack: Value,
    },
}

impl LivePlan {
    /// The derivation notes.
    pub fn derived(&self) -> Vec<String> {
        match self {
            LivePlan::Message { derived, .. } | LivePlan::Acks { derived, .. } => derived.clone(),
            LivePlan::MinimalAck { .. } => vec![
                "declaring session: dropped silently (WS generates a correlation-id that matches \
                 nothing); non-declaring session: 400 acknowledgement:label.not.declared"
                    .into(),
            ],
        }
    }
}

pub fn thing_of(topic: &str) -> String {
    let mut it = topic.split('/');
    format!("{}:{}", it.next().unwrap_or(""), it.next().unwrap_or(""))
}

pub fn without_cid(mut v: Value) -> Value {
    if let Some(h) = v["headers"].as_object_mut() {
        h.remove("correlation-id");
    }
    v
}

/// The plan of a live case, or `None` if the case is not one.
pub fn live_plan(c: &Case) -> Option<LivePlan> {
    let name = c.name.as_str();
    if name.starts_with("message-") || name.starts_with("adaptertest-message-") {
        let mut derived = vec![];
        let reply = if c.response.is_null() {
            derived.push(
                "no response in the case: the device answers 204 without payload on the \
                 command's topic and path, and the sender must get exactly that"
                    .into(),
            );
            json!({"topic": c.command["topic"], "headers": {}, "path": c.command["path"], "status": 204})
        } else {
            c.response.clone()
        };
        return Some(LivePlan::Message {
            command: without_cid(c.command.clone()),
            reply: without_cid(reply),
            derived,
        });
    }
    let entry = |l: &str, s: u64, p: Option<Value>| (l.to_owned(), s, p);
    let plan = match name {
        "ack-custom-success" => LivePlan::Acks {
            thing: thing_of(c.response["topic"].as_str()?),
            labels: vec!["custom-ack".into()],
            timeout: "10s".into(),
            ack: Some(without_cid(c.response.clone())),
            expect: (202, vec![entry("custom-ack", 202, None)]),
            derived: vec![
                "requester asked for [custom-ack] only: aggregated acks with that \
                           single entry, overall status = the ack's 202 (acks.md 3.2)"
                    .into(),
            ],
        },
        "ack-custom-nack" => LivePlan::Acks {
            thing: thing_of(c.response["topic"].as_str()?),
            labels: vec!["twin-persisted".into(), "custom-ack".into()],
            timeout: "10s".into(),
            ack: Some(without_cid(c.response.clone())),
            expect: (
                424,
                vec![
                    entry("twin-persisted", 204, None),
                    entry("custom-ack", 400, c.response.get("value").cloned()),
                ],
            ),
            derived: vec![
                "requester asked for [twin-persisted, custom-ack]: 424 with the \
                           nack's status and payload (acks.md 3.2)"
                    .into(),
            ],
        },
        "ack-custom-timeout" => LivePlan::Acks {
            thing: thing_of(c.response["topic"].as_str()?),
            labels: vec!["custom-ack".into()],
            timeout: "1337ms".into(),
            ack: None,
            expect: (
                408,
                vec![entry("custom-ack", 408, c.response.get("value").cloned())],
            ),
            derived: vec![
                "the declaring subscriber stays silent; requester timeout 1337ms \
                           (the case's message): the entry is the case's timeout ack"
                    .into(),
            ],
        },
        "adaptertest-acks-aggregated" => {
            let label = "the-ack-label";
            LivePlan::Acks {
                thing: thing_of(c.response["topic"].as_str()?),
                labels: vec!["twin-persisted".into(), label.into()],
                timeout: "10s".into(),
                ack: Some(
                    json!({"topic": format!("{}/{label}", c.response["topic"].as_str()?),
                                 "headers": {}, "path": "/", "status": 508}),
                ),
                expect: (
                    424,
                    vec![entry("twin-persisted", 204, None), entry(label, 508, None)],
                ),
                derived: vec![
                    "twin-persisted: 204 from the real write (the adapter test's 100 is synthetic)"
                        .into(),
                    "entry headers (`response-required: false` in the adapter test) not compared"
                        .into(),
                ],
            }
        }
        "generic-modify-requested-acks" => LivePlan::Acks {
            thing: thing_of(c.command["topic"].as_str()?),
            labels: vec!["twin-persisted".into(), "custom-ack".into()],
            timeout: "10s".into(),
            ack: Some(json!({"topic": format!("{}/things/twin/acks/custom-ack",
                                               thing_of(c.command["topic"].as_str()?).replacen(':', "/", 1)),
                             "headers": {}, "path": "/", "status": 200})),
            expect: (
                200,
                vec![
                    entry("twin-persisted", 204, None),
                    entry("custom-ack", 200, None),
                ],
            ),
            derived: vec![
                "illustrative case (command without value, response without topic): a modify \
                 of /attributes on the command's thing; the event carries requested-acks \
                 [custom-ack] as in the case; the subscriber acks 200; the requester gets \
                 aggregated acks 200 with twin-persisted 204 (acks.md 3.2)"
                    .into(),
            ],
        },
        "adaptertest-ack-minimal" => LivePlan::MinimalAck {
            ack: c.response.clone(),
        },
        _ => return None,
    };
    Some(plan)
}
