//! Harnesses of the twin core: thing and policy commands through the engines ("accepted =>
//! the stored bytes decode to the same state, within the bounds, and can be read and
//! deleted"), merge patches, RQL filters and search options, field selectors, cursors.

use super::{Checked, Verdict};
use crate::bounds::{self, MAX_JSON_DEPTH, MAX_POINTER_SEGMENTS};
use crate::engine::{self, enforce::Access, Ctx, ThingState, MAX_THING_BYTES};
use crate::model::{merge_patch, minimize_patch, validate_patch_regexes, FieldSelector};
use crate::policy::{Enforcer, PolicyCommand, PolicyState};
use crate::protocol::{Action, Envelope, Signal, ThingCommand};
use crate::rql::{self, Env};
use crate::search::cursor::Cursor;
use serde_json::{json, Value};
use std::sync::OnceLock;

const NOW: i64 = 1_700_000_000_000;
const SUBJECT: &str = "nginx:fuzz";

fn sample() -> Value {
    json!({"thingId": "ns:a", "policyId": "ns:a", "attributes": {"a": {"b": [1, {"c": "x"}]}, "n": 4.2},
           "features": {"f": {"properties": {"on": true, "deep": {"x": {"y": null}}}}}})
}

fn envelope_of(b: &[u8]) -> Option<Envelope> {
    Envelope::parse(std::str::from_utf8(b).ok()?).ok()
}

fn thing_command(text: &str) -> Option<ThingCommand> {
    match Signal::from_envelope(Envelope::parse(text).ok()?) {
        Ok(Signal::Thing(c)) => Some(c),
        _ => None,
    }
}

/// A stored thing with metadata, made by the engine itself.
fn base_state() -> &'static ThingState {
    static BASE: OnceLock<ThingState> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut t = sample();
        t["_metadata"] = json!({"attributes": {"n": {"unit": "m"}}});
        let text = json!({"topic": "ns/a/things/twin/commands/create", "headers": {}, "path": "/", "value": t}).to_string();
        thing_command(&text)
            .and_then(|c| engine::apply(None, &c, &ctx(None)).ok())
            .and_then(|o| o.state)
            .unwrap_or_else(|| ThingState {
                thing: sample(),
                revision: 1,
                created: NOW,
                modified: NOW,
                metadata: None,
                deleted: false,
            })
    })
}

/// A policy granting the fuzz subject everything but WRITE below `attributes/a` and READ of
/// `features/f/properties/deep`.
fn policy() -> Value {
    json!({"policyId": "ns:a", "entries": {
        "DEFAULT": {"subjects": {SUBJECT: {"type": "t"}},
                    "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                                  "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                                  "message:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "LIMITS": {"subjects": {SUBJECT: {"type": "t"}},
                   "resources": {"thing:/attributes/a": {"grant": [], "revoke": ["WRITE"]},
                                 "thing:/features/f/properties/deep": {"grant": [], "revoke": ["READ"]}}}}})
}

fn enforcer() -> &'static Enforcer {
    static E: OnceLock<Enforcer> = OnceLock::new();
    E.get_or_init(|| Enforcer::from_policy(&policy(), NOW, Some("ns")))
}

/// Every policy lookup finds `policy()`; no thing is found.
struct Fixed;

impl engine::Lookup for Fixed {
    fn thing(&self, _: &str) -> Result<Option<ThingState>, crate::error::DittoError> {
        Ok(None)
    }
    fn policy(&self, _: &str) -> Result<Option<Value>, crate::error::DittoError> {
        Ok(Some(policy()))
    }
}

fn ctx(access: Option<Access<'_>>) -> Ctx<'_> {
    Ctx {
        now: NOW,
        subject: SUBJECT,
        lookup: &Fixed,
        access,
    }
}

fn check_written(o: &engine::Outcome, cmd: &ThingCommand) -> Result<(), Verdict> {
    let (Some(bytes), Some(state)) = (&o.bytes, &o.state) else {
        return Ok(());
    };
    Verdict::ensure(bytes.len() <= MAX_THING_BYTES, || {
        "a too large thing was stored".into()
    })?;
    let depth = bounds::text_depth(bytes);
    Verdict::ensure(depth <= MAX_JSON_DEPTH + 1, || {
        format!(
            "stored thing is {depth} levels deep ({} {})",
            cmd.action.as_str(),
            cmd.raw_path
        )
    })?;
    let back = ThingState::from_bytes(bytes);
    Verdict::ensure(back.as_ref().ok() == Some(state), || {
        format!("stored bytes do not read back: {back:?}")
    })?;
    if state.deleted {
        return Ok(());
    }
    let (ns, name) = (cmd.thing_id.namespace(), cmd.thing_id.name());
    let topic = |action: &str| format!("{ns}/{name}/things/twin/commands/{action}");
    let read = json!({"topic": topic("retrieve"), "path": "/", "headers": {},
                      "fields": "thingId,attributes,features,_metadata,_revision"})
    .to_string();
    let delete = json!({"topic": topic("delete"), "path": "/", "headers": {}}).to_string();
    for (text, status) in [(read, 200), (delete, 204)] {
        let c = thing_command(&text)
            .ok_or_else(|| Verdict::Violated(format!("cannot build {text}")))?;
        let r = engine::apply(Some(state), &c, &ctx(None));
        Verdict::ensure(r.as_ref().map(|o| o.status) == Ok(status), || {
            format!("{} of the written thing: {r:?}", c.action.as_str())
        })?;
        if let Ok(Some(v)) = r.map(|o| o.value) {
            let d = bounds::value_depth(&v);
            Verdict::ensure(d <= MAX_JSON_DEPTH + 1, || {
                format!("a read {d} levels deep")
            })?;
        }
    }
    Ok(())
}

/// A thing command through the engine, as trusted caller and under a policy, on the stored
/// base thing (and on no thing, for creates).
pub fn twin_command(b: &[u8]) -> Checked {
    let Some(env) = envelope_of(b) else {
        return Ok(Verdict::Rejected);
    };
    let Ok(Signal::Thing(cmd)) = Signal::from_envelope(env) else {
        return Ok(Verdict::Rejected);
    };
    let subjects = [SUBJECT.to_owned()];
    let mut accepted = false;
    for current in [Some(base_state()), None] {
        for access in [None, Some(enforcer())] {
            let access = access.map(|e| Access {
                subjects: &subjects,
                enforcer: Some(e),
            });
            if let Ok(o) = engine::apply(current, &cmd, &ctx(access)) {
                accepted = true;
                check_written(&o, &cmd)?;
            }
        }
        if !matches!(cmd.action, Action::Create | Action::Modify | Action::Merge) {
            break;
        }
    }
    Ok(if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    })
}

/// A policy command through the policy engine: written policies decode back, stay within the
/// bounds and build an enforcer.
pub fn policy_command(b: &[u8]) -> Checked {
    let Some(env) = envelope_of(b) else {
        return Ok(Verdict::Rejected);
    };
    let Some(Ok(cmd)) = PolicyCommand::from_envelope(&env) else {
        return Ok(Verdict::Rejected);
    };
    let base = PolicyState::new(policy(), NOW);
    let subjects = [SUBJECT.to_owned()];
    let mut accepted = false;
    for current in [Some(&base), None] {
        let Ok(o) = crate::policy::apply::apply(current, &cmd, NOW, Some(&subjects), &|_| Ok(None))
        else {
            continue;
        };
        accepted = true;
        if let Some(state) = &o.state {
            let bytes = state.to_bytes();
            let depth = bounds::text_depth(&bytes);
            Verdict::ensure(depth <= MAX_JSON_DEPTH + 1, || {
                format!("stored policy is {depth} levels deep")
            })?;
            let back = PolicyState::from_bytes(&bytes);
            Verdict::ensure(back.as_ref() == Some(state), || {
                "policy does not read back".into()
            })?;
            let e = Enforcer::from_policy(&state.policy, NOW, Some("ns"));
            let _ = e.root_view(&subjects, "thing", &sample(), &["thingId"]);
        }
    }
    Ok(if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    })
}

/// `[target, patch]`: the merge never nests deeper than its inputs, and the minimised patch
/// (`if-equal: skip-minimizing-merge`) has the same effect as the patch.
pub fn merge(b: &[u8]) -> Checked {
    let Some(Value::Array(pair)) = std::str::from_utf8(b).ok().and_then(bounds::parse_value) else {
        return Ok(Verdict::Rejected);
    };
    let [target, patch] = pair.as_slice() else {
        return Ok(Verdict::Rejected);
    };
    if validate_patch_regexes(patch).is_err() {
        return Ok(Verdict::Rejected);
    }
    let mut merged = target.clone();
    merge_patch(&mut merged, patch);
    let (d, dt, dp) = (
        bounds::value_depth(&merged),
        bounds::value_depth(target),
        bounds::value_depth(patch),
    );
    Verdict::ensure(d <= dt.max(dp), || {
        format!("merge nested {d} > max({dt}, {dp})")
    })?;
    match minimize_patch(target, patch) {
        Some(min) => {
            let mut via_min = target.clone();
            merge_patch(&mut via_min, &min);
            Verdict::ensure(via_min == merged, || {
                format!("minimised patch {min} differs")
            })?;
        }
        None => Verdict::ensure(&merged == target, || {
            "a patch minimised to nothing changed the target".into()
        })?,
    }
    Ok(Verdict::Accepted)
}

/// RQL filters: properties within the pointer bound, error positions inside the input, and
/// evaluation on a document (with and without the search restrictions).
pub fn rql(b: &[u8]) -> Checked {
    let Ok(s) = std::str::from_utf8(b) else {
        return Ok(Verdict::Rejected);
    };
    let q = match rql::parse(s) {
        Ok(q) => q,
        Err(e) => {
            Verdict::ensure(e.position <= s.len(), || {
                format!("error at {} of {}", e.position, s.len())
            })?;
            return Ok(Verdict::Rejected);
        }
    };
    for p in q.properties() {
        Verdict::ensure(p.segments.len() <= MAX_POINTER_SEGMENTS, || {
            "long property".into()
        })?;
    }
    let doc = sample();
    let a = q.matches(&doc, &Env::at(NOW));
    let b2 = q.matches(&doc, &Env::at(NOW));
    Verdict::ensure(a == b2, || "evaluation is not deterministic".into())?;
    let _ = crate::search::request::parse_filter(s);
    Ok(Verdict::Accepted)
}

/// Search options: the page size stays within the maximum; sort keys are valid properties.
pub fn search_options(b: &[u8]) -> Checked {
    let Some(o) = std::str::from_utf8(b)
        .ok()
        .and_then(|s| rql::parse_options(s).ok())
    else {
        return Ok(Verdict::Rejected);
    };
    Verdict::ensure(o.page_size() <= rql::MAX_PAGE_SIZE, || {
        format!("page size {}", o.page_size())
    })?;
    Ok(Verdict::Accepted)
}

/// Field selectors: pointers within the bound, `from_pointers` keeps them, selecting never
/// nests deeper than the document.
pub fn fields(b: &[u8]) -> Checked {
    let Some(f) = std::str::from_utf8(b)
        .ok()
        .and_then(|s| FieldSelector::parse(s).ok())
    else {
        return Ok(Verdict::Rejected);
    };
    for p in f.pointers() {
        Verdict::ensure(p.len() <= MAX_POINTER_SEGMENTS, || {
            format!("{} segments", p.len())
        })?;
    }
    let again = FieldSelector::from_pointers(f.pointers().to_vec());
    Verdict::ensure(again.pointers() == f.pointers(), || {
        "from_pointers changed them".into()
    })?;
    let doc = sample();
    let sel = f.select(&doc);
    Verdict::ensure(
        bounds::value_depth(&sel) <= bounds::value_depth(&doc),
        || "selection deeper".into(),
    )?;
    let _ = f.validate_thing_roots();
    Ok(Verdict::Accepted)
}

/// Cursors (as sent, or JSON that is base64-encoded first): `decode` -> `encode` -> `decode`
/// gives the same cursor.
pub fn cursor(b: &[u8]) -> Checked {
    use base64::Engine;
    let Ok(s) = std::str::from_utf8(b) else {
        return Ok(Verdict::Rejected);
    };
    let text = match s.starts_with('{') {
        true => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s),
        false => s.to_owned(),
    };
    let Ok(c) = Cursor::decode(&text) else {
        return Ok(Verdict::Rejected);
    };
    let again = Cursor::decode(&c.encode());
    Verdict::ensure(again.as_ref().ok() == Some(&c), || {
        format!("cursor round trip: {again:?}")
    })?;
    Ok(Verdict::Accepted)
}
