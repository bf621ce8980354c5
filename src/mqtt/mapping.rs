//! The no-code mappings as data and pure functions: built once from `[mqtt]` (own mappings
//! first, then presets), they turn an incoming topic + payload into a twin change (a merge
//! patch of `features`, or a `ConnectionStatus` change), and name the subscriptions needed.

use super::config::{MappingConfig, MqttConfig, PayloadMode};
use super::pattern::{Cap, Captures, Pattern};
use serde_json::{json, Map, Value};

/// Feature written from availability topics (Ditto's convention).
pub const CONNECTION_STATUS: &str = "ConnectionStatus";
/// `readyUntil` of a device that is online.
pub const FOREVER: &str = "9999-12-31T23:59:59Z";

/// One telemetry rule.
#[derive(Debug, Clone)]
struct Rule {
    mapping: usize,
    topic: Pattern,
    mode: PayloadMode,
    feature: Option<String>,
    property: Option<String>,
}

/// One availability rule.
#[derive(Debug, Clone)]
struct Availability {
    mapping: usize,
    topic: Pattern,
    online: Vec<String>,
    offline: Vec<String>,
}

/// A named mapping's way back to the device.
#[derive(Debug, Clone)]
pub struct Command {
    /// command topic template
    pub topic: Pattern,
    /// the one feature commands come from when the template has no `{feature}`
    pub feature: Option<String>,
}

/// All mappings.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    names: Vec<String>,
    commands: Vec<Option<Command>>,
    rules: Vec<Rule>,
    availability: Vec<Availability>,
}

/// What an incoming message means.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// merge `patch` into `/features` of the device's twin
    Telemetry(Target, Value),
    /// the device went online / offline
    Availability(Target, bool),
    /// a topic the mappings deliberately skip (Homie `$` attributes, unknown LWT states)
    Ignored,
    /// no mapping matches the topic
    Unknown,
    /// the topic names no valid thing (why)
    BadTopic(String),
    /// a bad topic or payload (why)
    Bad(String),
}

/// The device a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ns:name`
    pub thing_id: String,
    /// the `{thing}` capture (commands render it back)
    pub device: String,
    /// the mapping's name
    pub mapping: String,
}

fn lower(v: &Option<Vec<String>>, default: &[&str]) -> Vec<String> {
    match v {
        Some(l) => l.iter().map(|s| s.to_ascii_lowercase()).collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

/// A payload as a JSON value: JSON if it parses, else the trimmed text (`None`: not UTF-8, or
/// JSON nested deeper than [`crate::bounds::MAX_JSON_DEPTH`], which no twin could store).
pub fn payload_value(payload: &[u8]) -> Option<Value> {
    use crate::bounds::{from_slice, JsonError, MAX_JSON_DEPTH};
    let text = std::str::from_utf8(payload).ok()?.trim();
    match from_slice(text.as_bytes(), MAX_JSON_DEPTH) {
        Ok(v) => Some(v),
        Err(JsonError::TooDeep(..)) => None,
        Err(JsonError::Parse(_)) => Some(Value::String(text.to_owned())),
    }
}

/// The `ConnectionStatus` feature change for an availability message at `now` (ISO time).
pub fn connection_status(online: bool, now: &str) -> Value {
    let status = if online {
        json!({"readySince": now, "readyUntil": FOREVER})
    } else {
        json!({"readyUntil": now})
    };
    json!({ CONNECTION_STATUS: {
        "definition": ["org.eclipse.ditto:ConnectionStatus:1.0.0"],
        "properties": {"status": status}
    }})
}

impl Mappings {
    /// Builds the mappings of a configuration (errors name the bad entry).
    pub fn build(cfg: &MqttConfig) -> Result<Mappings, String> {
        let mut all: Vec<MappingConfig> = cfg.mappings.clone();
        for p in &cfg.presets {
            all.extend(super::presets::preset(p).ok_or_else(|| {
                format!(
                    "presets: unknown preset '{p}' (known: {})",
                    super::presets::NAMES.join(", ")
                )
            })?);
        }
        let mut m = Mappings::default();
        for (i, c) in all.iter().enumerate() {
            m.add(c)
                .map_err(|e| format!("mappings: mapping {}: {e}", i + 1))?;
        }
        Ok(m)
    }

    fn add(&mut self, c: &MappingConfig) -> Result<(), String> {
        let name = c
            .name
            .clone()
            .or_else(|| c.topic.clone())
            .or_else(|| c.availability.clone())
            .ok_or("needs a topic or an availability topic")?;
        let idx = match self.names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.clone());
                self.commands.push(None);
                self.names.len() - 1
            }
        };
        if let Some(t) = &c.topic {
            let topic = Pattern::parse(t)?;
            if !topic.has(Cap::Thing) {
                return Err(format!("topic '{t}' must capture {{thing}}"));
            }
            let has_feature = topic.has(Cap::Feature) || c.feature.is_some();
            let has_property = topic.has(Cap::Property) || c.property.is_some();
            let mode = match c.payload {
                PayloadMode::Auto if has_property => PayloadMode::Value,
                PayloadMode::Auto => PayloadMode::Properties,
                m => m,
            };
            if !has_feature {
                return Err(format!(
                    "topic '{t}' needs a {{feature}} capture or `feature = ...`"
                ));
            }
            if mode == PayloadMode::Value && !has_property {
                return Err(format!(
                    "topic '{t}': payload \"value\" needs a {{property}} capture or `property = ...`"
                ));
            }
            self.rules.push(Rule {
                mapping: idx,
                topic,
                mode,
                feature: c.feature.clone(),
                property: c.property.clone(),
            });
        }
        if let Some(a) = &c.availability {
            let topic = Pattern::parse(a)?;
            if !topic.has(Cap::Thing) || topic.has(Cap::Feature) || topic.has(Cap::Property) {
                return Err(format!(
                    "availability '{a}' must capture {{thing}} and nothing else"
                ));
            }
            self.availability.push(Availability {
                mapping: idx,
                topic,
                online: lower(&c.online, &["online", "true", "1"]),
                offline: lower(&c.offline, &["offline", "false", "0"]),
            });
        }
        if let Some(t) = &c.command {
            let topic = Pattern::parse(t)?;
            if !topic.has(Cap::Thing) || topic.as_str().split('/').any(|l| l == "+") {
                return Err(format!("command '{t}' must contain {{thing}} and no '+'"));
            }
            if self.commands[idx].is_some() {
                return Err(format!("mapping '{name}' has two command topics"));
            }
            self.commands[idx] = Some(Command {
                topic,
                feature: c.feature.clone(),
            });
        }
        Ok(())
    }

    /// Appends other mappings (after these: they match last).
    pub fn extend(&mut self, other: Mappings) {
        let off = self.names.len();
        self.names.extend(other.names);
        self.commands.extend(other.commands);
        self.rules.extend(other.rules.into_iter().map(|mut r| {
            r.mapping += off;
            r
        }));
        self.availability
            .extend(other.availability.into_iter().map(|mut a| {
                a.mapping += off;
                a
            }));
    }

    /// True if there is no mapping.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The MQTT subscription filters (deduplicated, in order).
    pub fn filters(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self
            .rules
            .iter()
            .map(|r| r.topic.filter())
            .chain(self.availability.iter().map(|a| a.topic.filter()));
        for f in all {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// The command topic templates of the mappings (deduplicated, in order).
    pub fn command_topics(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.commands.iter().flatten() {
            let t = c.topic.as_str().to_owned();
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// The command route of a mapping.
    pub fn command(&self, mapping: &str) -> Option<&Command> {
        let i = self.names.iter().position(|n| n == mapping)?;
        self.commands[i].as_ref()
    }

    /// The target of a capture; `Err(None)` = a `$` attribute to skip, `Err(Some(why))` = not
    /// a valid thing id.
    fn target(
        &self,
        mapping: usize,
        device: &str,
        namespace: &str,
    ) -> Result<Target, Option<String>> {
        if device.starts_with('$') {
            return Err(None);
        }
        let thing_id = if device.contains(':') {
            device.to_owned()
        } else {
            format!("{namespace}:{device}")
        };
        if crate::model::parse_thing_id(&thing_id).is_err() {
            return Err(Some(format!("'{thing_id}' is not a valid thing id")));
        }
        Ok(Target {
            thing_id,
            device: device.to_owned(),
            mapping: self.names[mapping].clone(),
        })
    }

    /// Interprets a message (the first matching rule wins; availability before telemetry).
    pub fn classify(&self, topic: &str, payload: &[u8], namespace: &str) -> Inbound {
        for a in &self.availability {
            let Some(c) = a.topic.matches(topic) else {
                continue;
            };
            let target = match self.target(a.mapping, c.thing.unwrap_or_default(), namespace) {
                Ok(t) => t,
                Err(None) => return Inbound::Ignored,
                Err(Some(why)) => return Inbound::BadTopic(why),
            };
            let Some(v) = payload_value(payload) else {
                return Inbound::Bad(
                    "availability payload is not UTF-8 or nested too deeply".into(),
                );
            };
            let state = match &v {
                Value::Object(m) => m.get("state").and_then(Value::as_str).map(str::to_owned),
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }
            .map(|s| s.to_ascii_lowercase());
            return match state {
                Some(s) if a.online.contains(&s) => Inbound::Availability(target, true),
                Some(s) if a.offline.contains(&s) => Inbound::Availability(target, false),
                _ => Inbound::Ignored,
            };
        }
        for r in &self.rules {
            let Some(c) = r.topic.matches(topic) else {
                continue;
            };
            let target = match self.target(r.mapping, c.thing.unwrap_or_default(), namespace) {
                Ok(t) => t,
                Err(None) => return Inbound::Ignored,
                Err(Some(why)) => return Inbound::BadTopic(why),
            };
            return match telemetry(r, &c, payload) {
                Ok(Some(patch)) => Inbound::Telemetry(target, patch),
                Ok(None) => Inbound::Ignored,
                Err(why) => Inbound::Bad(why),
            };
        }
        Inbound::Unknown
    }
}

/// The `features` merge patch of a telemetry message (`None`: a `$` attribute to skip).
fn telemetry(r: &Rule, c: &Captures, payload: &[u8]) -> Result<Option<Value>, String> {
    let feature = c.feature.or(r.feature.as_deref()).unwrap_or_default();
    let property = c.property.or(r.property.as_deref());
    if feature.starts_with('$') || property.is_some_and(|p| p.starts_with('$')) {
        return Ok(None);
    }
    let value = payload_value(payload).ok_or("payload is not UTF-8 or nested too deeply")?;
    let object = |v: Value| match v {
        Value::Object(m) => Ok(m),
        other => Err(format!(
            "payload must be a JSON object, got {}",
            type_name(&other)
        )),
    };
    let patch = match r.mode {
        PayloadMode::Value | PayloadMode::Auto => {
            let mut props = Map::new();
            props.insert(property.unwrap_or_default().to_owned(), value);
            json!({ feature: {"properties": props} })
        }
        PayloadMode::Properties => json!({ feature: {"properties": object(value)?} }),
        PayloadMode::Features => {
            let mut features = Map::new();
            let mut scalars = Map::new();
            for (k, v) in object(value)? {
                match v {
                    Value::Object(m) => {
                        features.insert(k, json!({"properties": m}));
                    }
                    v => {
                        scalars.insert(k, v);
                    }
                }
            }
            if !scalars.is_empty() {
                let own = features
                    .entry(feature.to_owned())
                    .or_insert_with(|| json!({"properties": {}}));
                if let Some(Value::Object(p)) = own.get_mut("properties") {
                    p.extend(scalars);
                }
            }
            Value::Object(features)
        }
    };
    Ok(Some(patch))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
