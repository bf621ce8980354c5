//! Harnesses of the protocol codec: topic, envelope, headers, JSON pointer, WS control
//! messages, message and policy paths, entity IDs. Each checks a round trip and the bounds.

use super::{Checked, Verdict};
use crate::bounds::{self, MAX_FRAME_DEPTH, MAX_POINTER_SEGMENTS};
use crate::model::{format_pointer, parse_pointer, parse_thing_id, pointer};
use crate::policy::PolicyPath;
use crate::protocol::{
    parse_control, Control, Envelope, Headers, MessagePath, Signal, ThingPath, Topic,
};
use serde_json::{json, Value};

fn text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// Topic: parse -> print -> parse gives the same topic, printed the same.
pub fn topic(b: &[u8]) -> Checked {
    let Some(s) = text(b) else {
        return Ok(Verdict::Rejected);
    };
    let Ok(t) = Topic::parse(s) else {
        return Ok(Verdict::Rejected);
    };
    let printed = t.to_string();
    let again = Topic::parse(&printed);
    Verdict::ensure(again.as_ref() == Ok(&t), || {
        format!("topic round trip: {s:?} -> {printed:?} -> {again:?}")
    })?;
    let _ = t.entity_id();
    Ok(Verdict::Accepted)
}

/// Envelope: deeper than the frame bound is refused; accepted envelopes survive
/// `to_text` -> `parse` unchanged; `Signal` conversion keeps pointers within the bound.
pub fn envelope(b: &[u8]) -> Checked {
    let Some(s) = text(b) else {
        return Ok(Verdict::Rejected);
    };
    let depth = bounds::text_depth(b);
    let env = match Envelope::parse(s) {
        Ok(e) => e,
        Err(f) => {
            Verdict::ensure(f.error.status == 400 || f.error.status == 431, || {
                format!("envelope error status {}", f.error.status)
            })?;
            return Ok(Verdict::Rejected);
        }
    };
    Verdict::ensure(depth <= MAX_FRAME_DEPTH, || {
        format!("a frame {depth} levels deep was accepted")
    })?;
    let printed = env.to_text();
    let again = Envelope::parse(&printed);
    Verdict::ensure(again.as_ref().ok() == Some(&env), || {
        format!("envelope round trip changed it: {printed}")
    })?;
    Verdict::ensure(
        serde_json::from_str::<Value>(&printed).ok() == Some(env.to_value()),
        || "to_text differs from to_value".into(),
    )?;
    if let Ok(Signal::Thing(cmd)) = Signal::from_envelope(env) {
        let n = cmd.path.pointer().len();
        Verdict::ensure(n <= MAX_POINTER_SEGMENTS + 3, || {
            format!("a command path of {n} segments was accepted")
        })?;
    }
    Ok(Verdict::Accepted)
}

/// Headers (a JSON object): bounded parse, `from_map` -> `to_map` -> `from_map` is stable, and
/// every typed accessor answers (value or Ditto error).
pub fn headers(b: &[u8]) -> Checked {
    let Some(Value::Object(m)) = text(b).and_then(bounds::parse_value) else {
        return Ok(Verdict::Rejected);
    };
    let Ok(h) = Headers::from_map(m) else {
        return Ok(Verdict::Rejected);
    };
    let again = Headers::from_map(h.to_map());
    Verdict::ensure(again.as_ref().ok() == Some(&h), || {
        "headers round trip".into()
    })?;
    let _ = h.timeout_ms(60_000);
    let _ = h.bool("response-required");
    let _ = h.list("requested-acks");
    let _ = crate::engine::conditions::parse_condition(&h);
    let _ = crate::engine::conditions::IfEqual::from_headers(&h);
    let _ = crate::engine::patch_conditions::parse(&h);
    for action in [
        crate::protocol::Action::Modify,
        crate::protocol::Action::Retrieve,
    ] {
        let _ = crate::engine::metadata::check_headers(&h, action);
    }
    Ok(Verdict::Accepted)
}

/// JSON pointer: within the segment bound, format -> parse round trip, and set / get / remove
/// on a document behave.
pub fn pointer(b: &[u8]) -> Checked {
    let Some(s) = text(b) else {
        return Ok(Verdict::Rejected);
    };
    let Ok(p) = parse_pointer(s) else {
        return Ok(Verdict::Rejected);
    };
    Verdict::ensure(p.len() <= MAX_POINTER_SEGMENTS, || {
        format!("{} segments accepted", p.len())
    })?;
    let printed = format_pointer(&p);
    Verdict::ensure(parse_pointer(&printed).as_ref() == Ok(&p), || {
        format!("pointer round trip via {printed:?}")
    })?;
    let mut doc = json!({"a": {"b": 1}, "c": [1, 2]});
    pointer::set(&mut doc, &p, json!("x"));
    Verdict::ensure(pointer::get(&doc, &p) == Some(&json!("x")), || {
        "set then get".into()
    })?;
    Verdict::ensure(bounds::value_depth(&doc) <= p.len().max(2), || {
        "set nested deeper than the pointer".into()
    })?;
    let removed = pointer::remove(&mut doc, &p);
    Verdict::ensure(removed == Some(json!("x")), || "remove".into())?;
    if let Ok(Some(tp)) = ThingPath::parse(s) {
        Verdict::ensure(tp.pointer() == p, || "ThingPath pointer".into())?;
    }
    Ok(Verdict::Accepted)
}

/// WS control messages: the acknowledgement names the message; filters and extra fields of a
/// start parse (or fail) without panicking.
pub fn control(b: &[u8]) -> Checked {
    let Some(s) = text(b) else {
        return Ok(Verdict::Rejected);
    };
    let Some(Ok(c)) = parse_control(s) else {
        return Ok(Verdict::Rejected);
    };
    if let Some(ack) = c.ack() {
        let name = s.trim_end().split('?').next().unwrap_or(s);
        Verdict::ensure(ack == format!("{name}:ACK"), || format!("ack {ack:?}"))?;
    }
    if let Control::Start(_, p) = &c {
        if let Some(f) = &p.filter {
            if let Ok(q) = crate::rql::parse(f) {
                let _ = q.matches(&json!({"thingId": "a:b"}), &crate::rql::Env::at(0));
            }
        }
        if let Some(x) = &p.extra_fields {
            let _ = crate::model::FieldSelector::parse(x);
        }
    }
    Ok(Verdict::Accepted)
}

/// Message paths: `to_path` -> `parse` round trip; the policy resource has no empty segment.
pub fn message_path(b: &[u8]) -> Checked {
    let Some(p) = text(b).and_then(MessagePath::parse) else {
        return Ok(Verdict::Rejected);
    };
    let printed = p.to_path();
    Verdict::ensure(MessagePath::parse(&printed).as_ref() == Some(&p), || {
        format!("message path round trip via {printed:?}")
    })?;
    Verdict::ensure(p.resource().iter().all(|s| !s.is_empty()), || {
        "empty resource segment".into()
    })?;
    Ok(Verdict::Accepted)
}

/// Policy command paths parse or are refused with a Ditto error; resources are segments.
pub fn policy_path(b: &[u8]) -> Checked {
    let Some(s) = text(b) else {
        return Ok(Verdict::Rejected);
    };
    match PolicyPath::parse(s) {
        Ok(p) => {
            let _ = p.resource();
            let _ = p.label();
            Ok(Verdict::Accepted)
        }
        Err(e) => {
            Verdict::ensure(e.status == 400, || format!("status {}", e.status))?;
            Ok(Verdict::Rejected)
        }
    }
}

/// Entity IDs: print -> parse round trip, and the topic form of a thing ID.
pub fn ids(b: &[u8]) -> Checked {
    let Some(s) = text(b) else {
        return Ok(Verdict::Rejected);
    };
    let Ok(id) = parse_thing_id(s) else {
        return Ok(Verdict::Rejected);
    };
    let printed = id.to_string();
    Verdict::ensure(parse_thing_id(&printed).as_ref() == Ok(&id), || {
        format!("id round trip via {printed:?}")
    })?;
    let topic = format!(
        "{}/{}/things/twin/commands/retrieve",
        id.namespace(),
        id.name()
    );
    // `_` is the topic's placeholder for "no entity", and names may contain `/`
    let plain = !id.name().contains('/') && id.name() != "_" && id.namespace() != "_";
    if let (true, Ok(t)) = (plain, Topic::parse(&topic)) {
        Verdict::ensure(t.entity_id().as_deref() == Some(printed.as_str()), || {
            format!("topic {topic:?} names another entity")
        })?;
    }
    Ok(Verdict::Accepted)
}
