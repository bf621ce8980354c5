//! The way back to mapped devices, as pure functions: which feature properties a twin event
//! or live command asks for (`desiredProperties`, or `properties` of a live modify), and the
//! MQTT messages a mapping's command template makes of them.

use super::mapping::{Command, CONNECTION_STATUS};
use super::pattern::{Cap, Captures};
use crate::model::pointer;
use serde_json::{Map, Value};

/// Requested values per feature, in document order.
pub type Desired = Vec<(String, Map<String, Value>)>;

/// The properties under `keys` (e.g. `desiredProperties`) of each feature in a change at `path`
/// with `value` (nulls, i.e. merge deletions, are not commands; `ConnectionStatus` is skipped).
pub fn desired_from(path: &str, value: Option<&Value>, keys: &[&str]) -> Desired {
    let Some(value) = value else {
        return Vec::new();
    };
    let Ok(segments) = pointer::parse_pointer(path) else {
        return Vec::new();
    };
    let mut doc = Value::Object(Map::new());
    if segments.is_empty() {
        doc = value.clone();
    } else {
        pointer::set(&mut doc, &segments, value.clone());
    }
    let Some(Value::Object(features)) = doc.get("features") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (fid, f) in features {
        if fid == CONNECTION_STATUS {
            continue;
        }
        let mut props = Map::new();
        for k in keys {
            if let Some(Value::Object(p)) = f.get(*k) {
                for (name, v) in p {
                    if !v.is_null() {
                        props.insert(name.clone(), v.clone());
                    }
                }
            }
        }
        if !props.is_empty() {
            out.push((fid.clone(), props));
        }
    }
    out
}

/// A value as a device expects it on a plain topic: strings without quotes, the rest as JSON.
pub fn raw_payload(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Null => Vec::new(),
        other => other.to_string().into_bytes(),
    }
}

/// The (topic, payload) messages for a device: one per property with a `{property}` template,
/// else one JSON object per feature (`{feature}` template) or one for the mapping's feature.
pub fn command_messages(cmd: &Command, device: &str, desired: &Desired) -> Vec<(String, Vec<u8>)> {
    let per_feature = cmd.topic.has(Cap::Feature);
    let per_property = cmd.topic.has(Cap::Property);
    let wanted = |fid: &str| per_feature || cmd.feature.as_deref().is_none_or(|f| f == fid);
    let mut out = Vec::new();
    let mut joined = Map::new();
    for (fid, props) in desired.iter().filter(|(f, _)| wanted(f)) {
        let mut caps = Captures {
            thing: Some(device),
            feature: Some(fid.as_str()),
            property: None,
        };
        if per_property {
            for (p, v) in props {
                caps.property = Some(p);
                if let Some(t) = cmd.topic.render(&caps) {
                    out.push((t, raw_payload(v)));
                }
            }
        } else if per_feature {
            if let Some(t) = cmd.topic.render(&caps) {
                out.push((t, Value::Object(props.clone()).to_string().into_bytes()));
            }
        } else {
            joined.extend(props.clone());
        }
    }
    if !joined.is_empty() {
        let caps = Captures {
            thing: Some(device),
            ..Captures::default()
        };
        if let Some(t) = cmd.topic.render(&caps) {
            out.push((t, Value::Object(joined).to_string().into_bytes()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::pattern::Pattern;
    use serde_json::json;

    fn cmd(t: &str, feature: Option<&str>) -> Command {
        Command {
            topic: Pattern::parse(t).unwrap(),
            feature: feature.map(str::to_owned),
        }
    }

    #[test]
    fn desired_from_paths() {
        let d = desired_from(
            "/features/zigbee/desiredProperties/state",
            Some(&json!("ON")),
            &["desiredProperties"],
        );
        assert_eq!(
            d,
            vec![(
                "zigbee".into(),
                json!({"state": "ON"}).as_object().unwrap().clone()
            )]
        );
        let d = desired_from(
            "/",
            Some(
                &json!({"features": {"a": {"properties": {"x": 1}, "desiredProperties": {"y": 2, "z": null}},
                                       "ConnectionStatus": {"desiredProperties": {"q": 1}}}}),
            ),
            &["desiredProperties"],
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1, *json!({"y": 2}).as_object().unwrap());
        let d = desired_from(
            "/features/a/properties",
            Some(&json!({"p": true})),
            &["properties", "desiredProperties"],
        );
        assert_eq!(d[0].1["p"], json!(true));
        assert!(desired_from("/attributes/x", Some(&json!(1)), &["properties"]).is_empty());
        assert!(desired_from("/features", None, &["properties"]).is_empty());
    }

    #[test]
    fn command_shapes() {
        let want = |f: &str, m: Value| vec![(f.to_owned(), m.as_object().unwrap().clone())];
        // zigbee2mqtt: one JSON object on /set, only the mapping's feature
        let z = cmd("zigbee2mqtt/{thing}/set", Some("zigbee"));
        let mut d = want("zigbee", json!({"state": "ON", "brightness": 100}));
        d.extend(want("other", json!({"x": 1})));
        assert_eq!(
            command_messages(&z, "lamp", &d),
            vec![(
                "zigbee2mqtt/lamp/set".to_owned(),
                br#"{"state":"ON","brightness":100}"#.to_vec()
            )]
        );
        // tasmota: one message per property, raw value
        let t = cmd("cmnd/{thing}/{property}", Some("tasmota"));
        assert_eq!(
            command_messages(
                &t,
                "plug",
                &want("tasmota", json!({"POWER": "OFF", "Dimmer": 40}))
            ),
            vec![
                ("cmnd/plug/POWER".to_owned(), b"OFF".to_vec()),
                ("cmnd/plug/Dimmer".to_owned(), b"40".to_vec())
            ]
        );
        // homie: per feature and property
        let h = cmd("homie/{thing}/{feature}/{property}/set", None);
        assert_eq!(
            command_messages(&h, "d1", &want("light", json!({"on": true}))),
            vec![("homie/d1/light/on/set".to_owned(), b"true".to_vec())]
        );
        // a property that is not one topic level is skipped
        assert!(command_messages(&h, "d1", &want("light", json!({"a/b": 1}))).is_empty());
    }
}
