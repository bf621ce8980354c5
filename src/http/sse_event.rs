//! Pure: a twin event envelope -> the `data:` payload of one SSE change notification, as Ditto's
//! `ThingEventToThingConverter` + `ThingsSseRouteBuilder` shape it: the event as partial thing
//! JSON (merge patches without nulls, deletes as just `thingId`), `extra` laid under it,
//! `fields` projection (with `_context`), or the raw value at a JSON pointer.

use crate::error::DittoError;
use crate::model::{merge::strip_nulls, parse_pointer, pointer, FieldSelector};
use crate::protocol::{Criterion, Envelope, EventAction};
use crate::rules::events::event_shape;
use serde_json::{json, Map, Value};

/// How a stream presents events (fixed per SSE connection).
#[derive(Debug, Clone)]
pub struct SseView {
    fields: Option<FieldSelector>,
    pointer: Option<Vec<String>>,
    with_context: bool,
}

impl SseView {
    /// `fields` (validated as thing fields) for the things stream; `pointer` for
    /// `/things/{id}/{pointer}` streams, which replaces `fields` as in Ditto.
    pub fn new(fields: Option<&str>, pointer: Option<&str>) -> Result<SseView, DittoError> {
        if let Some(p) = pointer {
            let segs = parse_pointer(p)?;
            if !segs.is_empty() {
                return Ok(SseView {
                    fields: Some(FieldSelector::from_pointers(vec![segs.clone()])),
                    pointer: Some(segs),
                    with_context: false,
                });
            }
        }
        let fields = match fields {
            Some(f) => {
                let sel = FieldSelector::parse(f)?;
                sel.validate_thing_roots()?;
                Some(sel)
            }
            None => None,
        };
        let with_context = fields
            .as_ref()
            .is_some_and(|f| f.roots().any(|r| r == "_context"));
        Ok(SseView {
            fields,
            pointer: None,
            with_context,
        })
    }

    /// The `data` payload for a twin event, or `None` if this stream skips it (not an event,
    /// nothing selected, pointer absent in the change).
    pub fn render(&self, env: &Envelope) -> Option<String> {
        let Criterion::Events(action) = env.topic.criterion else {
            return None;
        };
        let thing_id = env.topic.entity_id()?;
        let mut doc = event_as_thing(env, action, &thing_id);
        if let Some(Value::Object(extra)) = &env.extra {
            let mut base = Value::Object(extra.clone());
            overlay(&mut base, doc);
            doc = base;
        }
        let Some(sel) = &self.fields else {
            if let Value::Object(m) = &mut doc {
                m.retain(|k, _| !k.starts_with('_'));
            }
            return Some(doc.to_string());
        };
        let selected = sel.select(&doc);
        if is_empty_object(&selected) {
            return None;
        }
        if let Some(p) = &self.pointer {
            return pointer::get(&selected, p).map(Value::to_string);
        }
        if !self.with_context {
            return Some(selected.to_string());
        }
        if let Value::Object(m) = &mut doc {
            m.insert("_context".into(), context(env));
        }
        Some(sel.select(&doc).to_string())
    }
}

/// The event converted into partial thing JSON with `thingId`, `_namespace`, `_revision` and
/// `_modified` (Ditto's `ThingEventToThingConverter`).
fn event_as_thing(env: &Envelope, action: EventAction, thing_id: &str) -> Value {
    let mut e = env.clone();
    e.value = match action {
        EventAction::Deleted => None,
        EventAction::Merged => env.value.as_ref().map(|v| match v {
            Value::Null => json!({}),
            other => strip_nulls(other),
        }),
        _ => env.value.clone(),
    };
    event_shape(&e, thing_id)
}

/// The Ditto Protocol view of the event (`fields=_context`).
fn context(env: &Envelope) -> Value {
    json!({
        "topic": env.topic.to_string(),
        "path": env.path,
        "value": env.value.clone().unwrap_or(Value::Null),
        "headers": Value::Object(env.headers.to_map()),
    })
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// Lays `top` over `base`: objects merge recursively, anything else in `top` wins.
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, t) => *b = t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, path: &str, value: Option<Value>) -> Envelope {
        let mut v = json!({"topic": format!("org.eclipse.ditto/fancy-thing/things/twin/events/{action}"),
            "headers": {"correlation-id": "c1"}, "path": path, "revision": 7,
            "timestamp": "2024-01-02T03:04:05.678Z"});
        if let Some(x) = value {
            v["value"] = x;
        }
        Envelope::parse(&v.to_string()).unwrap()
    }

    fn render(view: &SseView, e: &Envelope) -> Option<Value> {
        view.render(e).map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn partial_thing_without_fields() {
        let v = SseView::new(None, None).unwrap();
        let e = ev(
            "modified",
            "/features/lamp/properties/on",
            Some(json!(false)),
        );
        assert_eq!(
            render(&v, &e).unwrap(),
            json!({"thingId":"org.eclipse.ditto:fancy-thing","features":{"lamp":{"properties":{"on":false}}}})
        );
        let e = ev("deleted", "/attributes/a", None);
        assert_eq!(
            render(&v, &e).unwrap(),
            json!({"thingId":"org.eclipse.ditto:fancy-thing"})
        );
        let e = ev(
            "merged",
            "/attributes",
            Some(json!({"a": null, "b": {"c": 1, "d": null}})),
        );
        assert_eq!(
            render(&v, &e).unwrap(),
            json!({"thingId":"org.eclipse.ditto:fancy-thing","attributes":{"b":{"c":1}}})
        );
        let e = ev("merged", "/attributes/a", Some(Value::Null));
        assert_eq!(render(&v, &e).unwrap()["attributes"], json!({"a": {}}));
    }

    #[test]
    fn fields_projection_and_context() {
        let v = SseView::new(Some("thingId,features/lamp,_revision"), None).unwrap();
        let e = ev(
            "modified",
            "/features/lamp/properties/on",
            Some(json!(true)),
        );
        assert_eq!(
            render(&v, &e).unwrap(),
            json!({"thingId":"org.eclipse.ditto:fancy-thing","features":{"lamp":{"properties":{"on":true}}},"_revision":7})
        );
        let e = ev("modified", "/attributes/x", Some(json!(1)));
        let only_attrs = SseView::new(Some("attributes"), None).unwrap();
        assert_eq!(
            render(&only_attrs, &e).unwrap(),
            json!({"attributes":{"x":1}})
        );
        let e2 = ev("modified", "/features/f/properties/p", Some(json!(1)));
        assert_eq!(
            render(&only_attrs, &e2),
            None,
            "empty projection is skipped"
        );
        let c = SseView::new(Some("thingId,_context/topic,_context/value"), None).unwrap();
        assert_eq!(
            render(&c, &e).unwrap(),
            json!({"thingId":"org.eclipse.ditto:fancy-thing","_context":{
                "topic":"org.eclipse.ditto/fancy-thing/things/twin/events/modified","value":1}})
        );
        assert_eq!(
            SseView::new(Some("foo"), None).unwrap_err().error,
            "things:field.selection.invalid"
        );
    }

    #[test]
    fn pointer_streams_raw_values() {
        let v = SseView::new(Some("ignored"), Some("/attributes/location")).unwrap();
        let e = ev("modified", "/attributes/location", Some(json!("kitchen")));
        assert_eq!(v.render(&e).as_deref(), Some("\"kitchen\""));
        let e = ev(
            "modified",
            "/",
            Some(
                json!({"thingId":"org.eclipse.ditto:fancy-thing","attributes":{"location":"hall","x":1}}),
            ),
        );
        assert_eq!(v.render(&e).as_deref(), Some("\"hall\""));
        let e = ev("modified", "/attributes/other", Some(json!(1)));
        assert_eq!(v.render(&e), None);
    }

    #[test]
    fn extra_fields_lie_under_the_change() {
        let mut e = ev("modified", "/attributes/x", Some(json!(2)));
        e.extra = Some(json!({"attributes": {"x": 1, "location": "kitchen"}}));
        let v = SseView::new(None, None).unwrap();
        assert_eq!(
            render(&v, &e).unwrap(),
            json!({"attributes":{"x":2,"location":"kitchen"},"thingId":"org.eclipse.ditto:fancy-thing"})
        );
    }
}
