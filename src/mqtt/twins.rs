//! Twin commands the bridge makes (pure): the merge of telemetry into `/features`, the creation
//! of a device's twin with the bridge policy (the bridge subject may READ+WRITE `thing:/` and
//! `message:/`; the configured owners READ+WRITE everything), and the same policy for things a
//! passthrough device creates without naming one.

use crate::error::DittoError;
use crate::protocol::{Action, Channel, Criterion, Envelope, Headers, Signal, ThingCommand, Topic};
use serde_json::{json, Map, Value};

/// Policy entry label of the bridge subject.
pub const BRIDGE_LABEL: &str = "MQTT-BRIDGE";
/// Policy entry label of the owners.
pub const OWNER_LABEL: &str = "OWNER";

fn rw() -> Value {
    json!({"grant": ["READ", "WRITE"], "revoke": []})
}

/// The inline policy of twins the bridge creates. With no owners the bridge also gets
/// `policy:/` (a policy needs one entry that may write it).
pub fn bridge_policy(subject: &str, owners: &[String]) -> Value {
    let mut bridge = json!({
        "subjects": { subject: {"type": "edgetwin MQTT bridge"} },
        "resources": {"thing:/": rw(), "message:/": rw()}
    });
    let mut entries = Map::new();
    if owners.is_empty() {
        bridge["resources"]["policy:/"] = rw();
    } else {
        let subjects: Map<String, Value> = owners
            .iter()
            .map(|o| (o.clone(), json!({"type": "edgetwin MQTT owner"})))
            .collect();
        entries.insert(
            OWNER_LABEL.into(),
            json!({"subjects": subjects,
                   "resources": {"thing:/": rw(), "policy:/": rw(), "message:/": rw()}}),
        );
    }
    entries.insert(BRIDGE_LABEL.into(), bridge);
    json!({ "entries": entries })
}

fn command(
    thing_id: &str,
    action: Action,
    path: &str,
    value: Value,
) -> Result<ThingCommand, DittoError> {
    let id = crate::model::parse_thing_id(thing_id)?;
    let topic = Topic::thing(
        &id.namespace,
        &id.name,
        Channel::Twin,
        Criterion::Commands(action),
    );
    let mut h = Headers::new();
    h.insert(
        "correlation-id",
        crate::protocol::headers::new_correlation_id(),
    );
    if action == Action::Merge {
        h.insert("content-type", "application/merge-patch+json");
    }
    if action == Action::Create {
        // the bridge may not write the policy it creates when owners are configured
        h.insert("allow-policy-lockout", true);
    }
    let mut env = Envelope::new(topic, h, path);
    env.value = Some(value);
    match Signal::from_envelope(env)? {
        Signal::Thing(c) => Ok(c),
        _ => Err(DittoError::new(
            500,
            "mqtt:command.invalid",
            "not a thing command",
        )),
    }
}

/// Merge `patch` at `path` of a twin.
pub fn merge(thing_id: &str, path: &str, patch: Value) -> Result<ThingCommand, DittoError> {
    command(thing_id, Action::Merge, path, patch)
}

/// Create a device's twin with the bridge policy and `attributes/mqtt`.
pub fn create(thing_id: &str, policy: Value, mqtt: Value) -> Result<ThingCommand, DittoError> {
    command(
        thing_id,
        Action::Create,
        "/",
        json!({"_policy": policy, "attributes": {"mqtt": mqtt}}),
    )
}

/// `attributes/mqtt` of a mapped device: which mapping and device name commands go back to.
pub fn mqtt_attribute(mapping: &str, device: &str) -> Value {
    json!({"mapping": mapping, "device": device})
}

/// True if a passthrough envelope creates a thing without a policy of its own: `create`, or
/// `modify` of the whole thing when it does not exist yet (`exists`), with no `policyId`,
/// `_policy` or `_copyPolicyFrom` in its value. Such things get the bridge policy.
pub fn needs_bridge_policy(env: &Envelope, exists: bool) -> bool {
    let creating = match env.topic.criterion {
        Criterion::Commands(Action::Create) => true,
        Criterion::Commands(Action::Modify) => env.path.trim_end_matches('/').is_empty() && !exists,
        _ => false,
    };
    creating
        && env.topic.channel == Channel::Twin
        && env.status.is_none()
        && match &env.value {
            Some(Value::Object(m)) => !["policyId", "_policy", "_copyPolicyFrom"]
                .iter()
                .any(|k| m.contains_key(*k)),
            None => true,
            Some(_) => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_shapes() {
        let p = bridge_policy("integration:b", &["nginx:ditto".into()]);
        assert_eq!(
            p["entries"][OWNER_LABEL]["subjects"]["nginx:ditto"]["type"],
            "edgetwin MQTT owner"
        );
        assert!(p["entries"][BRIDGE_LABEL]["resources"]
            .get("policy:/")
            .is_none());
        let p = bridge_policy("integration:b", &[]);
        assert!(p["entries"].get(OWNER_LABEL).is_none());
        assert_eq!(
            p["entries"][BRIDGE_LABEL]["resources"]["policy:/"]["grant"][1],
            "WRITE"
        );
    }

    #[test]
    fn commands_build() {
        let c = merge(
            "edge:d1",
            "/features",
            json!({"f": {"properties": {"t": 1}}}),
        )
        .unwrap();
        assert_eq!(
            (c.action, c.raw_path.as_str()),
            (Action::Merge, "/features")
        );
        assert!(merge("bad id", "/features", json!({})).is_err());
        let c = create("edge:d1", json!({}), mqtt_attribute("m", "d1")).unwrap();
        assert_eq!(c.value.unwrap()["attributes"]["mqtt"]["device"], "d1");
    }

    #[test]
    fn policy_injection_rule() {
        let env = |t: &str, path: &str, v: Value| {
            let mut e = Envelope::parse(&json!({"topic": t, "path": path}).to_string()).unwrap();
            e.value = Some(v);
            e
        };
        let create = env(
            "a/b/things/twin/commands/create",
            "/",
            json!({"attributes": {}}),
        );
        assert!(needs_bridge_policy(&create, false));
        let own = env(
            "a/b/things/twin/commands/create",
            "/",
            json!({"policyId": "a:p"}),
        );
        assert!(!needs_bridge_policy(&own, false));
        let modify = env("a/b/things/twin/commands/modify", "/", json!({}));
        assert!(needs_bridge_policy(&modify, false));
        assert!(!needs_bridge_policy(&modify, true));
        let attr = env("a/b/things/twin/commands/modify", "/attributes", json!({}));
        assert!(!needs_bridge_policy(&attr, false));
    }
}
