//! Envelope -> `Signal`: what the core acts on. Validates the thing ID and the path for the
//! command's action (`protocoladapter:unknown.path` otherwise) so the engine only ever sees
//! well-formed commands. Signal kinds that later layers handle travel as `Signal::Other`.

use super::envelope::Envelope;
use super::headers::Headers;
use super::topic::{Action, Channel, Criterion, Group, Topic};
use crate::error::DittoError;
use crate::model::id::IdText;
use crate::model::pointer::parse_pointer_after;
use crate::model::{parse_pointer, parse_thing_id, validate_feature_id, EntityId};
use serde_json::Value;

/// The part of a thing a command addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThingPath {
    /// `/`
    Root,
    /// `/policyId`
    PolicyId,
    /// `/definition`
    Definition,
    /// `/attributes`
    Attributes,
    /// `/attributes/<pointer>`
    Attribute(Vec<String>),
    /// `/features`
    Features,
    /// `/features/<fid>`
    Feature(String),
    /// `/features/<fid>/definition`
    FeatureDefinition(String),
    /// `/features/<fid>/properties`
    Properties(String),
    /// `/features/<fid>/properties/<pointer>`
    Property(String, Vec<String>),
    /// `/features/<fid>/desiredProperties`
    DesiredProperties(String),
    /// `/features/<fid>/desiredProperties/<pointer>`
    DesiredProperty(String, Vec<String>),
}

impl ThingPath {
    /// Parses a command path; `Ok(None)` if it is well-formed JSON pointer but no thing resource.
    pub fn parse(path: &str) -> Result<Option<ThingPath>, DittoError> {
        // an attribute's pointer below `attributes` only (no `String` made of that segment)
        if path.split('/').find(|s| !s.is_empty()) == Some("attributes") {
            let below = parse_pointer_after(path, 1)?;
            return Ok(Some(match below.is_empty() {
                true => ThingPath::Attributes,
                false => ThingPath::Attribute(below),
            }));
        }
        let mut segs = parse_pointer(path)?;
        // the shape from the first and third segments and the count, then the segments moved
        // into the variant (no copy of them: this runs for every twin command)
        #[derive(Clone, Copy)]
        enum Part {
            Properties,
            Desired,
        }
        let seg = |i: usize| segs.get(i).map(String::as_str);
        let shape = match (seg(0), seg(2), segs.len()) {
            (None, _, _) => return Ok(Some(ThingPath::Root)),
            (Some("policyId"), _, 1) => return Ok(Some(ThingPath::PolicyId)),
            (Some("definition"), _, 1) => return Ok(Some(ThingPath::Definition)),
            (Some("features"), _, 1) => return Ok(Some(ThingPath::Features)),
            (Some("features"), _, 2) => None,
            (Some("features"), Some("definition"), 3) => Some((None, true)),
            (Some("features"), Some("properties"), n) => Some((Some(Part::Properties), n == 3)),
            (Some("features"), Some("desiredProperties"), n) => Some((Some(Part::Desired), n == 3)),
            _ => return Ok(None),
        };
        validate_feature_id(&segs[1])?;
        let rest = if segs.len() > 3 {
            segs.split_off(3)
        } else {
            Vec::new()
        };
        let fid = segs.swap_remove(1);
        Ok(Some(match shape {
            None => ThingPath::Feature(fid),
            Some((None, _)) => ThingPath::FeatureDefinition(fid),
            Some((Some(Part::Properties), true)) => ThingPath::Properties(fid),
            Some((Some(Part::Properties), false)) => ThingPath::Property(fid, rest),
            Some((Some(Part::Desired), true)) => ThingPath::DesiredProperties(fid),
            Some((Some(Part::Desired), false)) => ThingPath::DesiredProperty(fid, rest),
        }))
    }

    /// Pointer segments of this resource inside the thing JSON.
    pub fn pointer(&self) -> Vec<String> {
        let f = |fid: &str, tail: &[&str], more: &[String]| {
            let mut v = vec!["features".to_owned(), fid.to_owned()];
            v.extend(tail.iter().map(|s| s.to_string()));
            v.extend(more.iter().cloned());
            v
        };
        match self {
            ThingPath::Root => vec![],
            ThingPath::PolicyId => vec!["policyId".into()],
            ThingPath::Definition => vec!["definition".into()],
            ThingPath::Attributes => vec!["attributes".into()],
            ThingPath::Attribute(p) => {
                let mut v = vec!["attributes".to_owned()];
                v.extend(p.iter().cloned());
                v
            }
            ThingPath::Features => vec!["features".into()],
            ThingPath::Feature(id) => f(id, &[], &[]),
            ThingPath::FeatureDefinition(id) => f(id, &["definition"], &[]),
            ThingPath::Properties(id) => f(id, &["properties"], &[]),
            ThingPath::Property(id, p) => f(id, &["properties"], p),
            ThingPath::DesiredProperties(id) => f(id, &["desiredProperties"], &[]),
            ThingPath::DesiredProperty(id, p) => f(id, &["desiredProperties"], p),
        }
    }

    /// The segments of `pointer`, borrowed (no `Vec` of `String`s built: the policy check of
    /// every command walks these).
    pub fn segments(&self) -> impl Iterator<Item = &str> + Clone {
        const NONE: &[String] = &[];
        let (head, fid, part, more): (&'static str, Option<&str>, Option<&'static str>, &[String]) =
            match self {
                ThingPath::Root => ("", None, None, NONE),
                ThingPath::PolicyId => ("policyId", None, None, NONE),
                ThingPath::Definition => ("definition", None, None, NONE),
                ThingPath::Attributes => ("attributes", None, None, NONE),
                ThingPath::Attribute(p) => ("attributes", None, None, p),
                ThingPath::Features => ("features", None, None, NONE),
                ThingPath::Feature(id) => ("features", Some(id), None, NONE),
                ThingPath::FeatureDefinition(id) => {
                    ("features", Some(id), Some("definition"), NONE)
                }
                ThingPath::Properties(id) => ("features", Some(id), Some("properties"), NONE),
                ThingPath::Property(id, p) => ("features", Some(id), Some("properties"), p),
                ThingPath::DesiredProperties(id) => {
                    ("features", Some(id), Some("desiredProperties"), NONE)
                }
                ThingPath::DesiredProperty(id, p) => {
                    ("features", Some(id), Some("desiredProperties"), p)
                }
            };
        let head = (!matches!(self, ThingPath::Root)).then_some(head);
        head.into_iter()
            .chain(fid)
            .chain(part)
            .chain(more.iter().map(String::as_str))
    }

    /// The feature this path lies in, if any.
    pub fn feature_id(&self) -> Option<&str> {
        match self {
            ThingPath::Feature(f)
            | ThingPath::FeatureDefinition(f)
            | ThingPath::Properties(f)
            | ThingPath::Property(f, _)
            | ThingPath::DesiredProperties(f)
            | ThingPath::DesiredProperty(f, _) => Some(f),
            _ => None,
        }
    }

    /// The path as a JSON pointer string (`/features/lamp/properties/on`).
    pub fn to_pointer_string(&self) -> String {
        let p = self.pointer();
        if p.is_empty() {
            "/".into()
        } else {
            p.iter().fold(String::new(), |mut s, seg| {
                s.push('/');
                s.push_str(seg);
                s
            })
        }
    }
}

/// A twin (or live) command on one thing.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingCommand {
    /// the thing
    pub thing_id: EntityId,
    /// twin or live
    pub channel: Channel,
    /// create / retrieve / modify / merge / delete
    pub action: Action,
    /// addressed resource
    pub path: ThingPath,
    /// payload
    pub value: Option<Value>,
    /// raw field selector
    pub fields: Option<String>,
    /// headers as sent
    pub headers: Headers,
    /// the envelope's topic (responses echo it)
    pub topic: Topic,
    /// the envelope's path string (responses echo it)
    pub raw_path: String,
}

/// Retrieve several things at once (`_/_/things/twin/commands/retrieve` with `thingIds`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrieveThings {
    /// ids in request order
    pub thing_ids: Vec<EntityId>,
    /// raw field selector
    pub fields: Option<String>,
    /// headers
    pub headers: Headers,
    /// the envelope's topic
    pub topic: Topic,
}

/// A parsed inbound signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// thing command
    Thing(ThingCommand),
    /// retrieve multiple things
    RetrieveThings(RetrieveThings),
    /// anything else (live, messages, acks, search, policies): routed by later layers
    Other(Envelope),
}

/// 400 `protocoladapter:unknown.path`.
pub fn unknown_path(path: &str) -> DittoError {
    DittoError::new(
        400,
        "protocoladapter:unknown.path",
        format!("The path '{path}' does not correspond to any known command, response or event."),
    )
    .describe("Check if the path is correct.")
}

/// 400 `things:things.ids.missing`.
fn ids_missing() -> DittoError {
    DittoError::new(
        400,
        "things:things.ids.missing",
        "The required list of thing ids was missing.",
    )
    .describe("Please provide at least one thing id and try again.")
}

impl Signal {
    /// Interprets an envelope. Commands with a status are responses and stay `Other`.
    pub fn from_envelope(env: Envelope) -> Result<Signal, DittoError> {
        Signal::from_envelope_or_back(env).map_err(|b| b.0)
    }

    /// `from_envelope`, giving the envelope back with an error: its topic and correlation-id
    /// address the error answer (`Hub::handle_protocol`), so nothing of them is copied for
    /// the signals that succeed (issue 21).
    pub fn from_envelope_or_back(env: Envelope) -> Result<Signal, Box<(DittoError, Envelope)>> {
        let action = match (&env.topic.group, &env.topic.criterion, env.status) {
            (Group::Things, Criterion::Commands(a), None) => *a,
            _ => return Ok(Signal::Other(env)),
        };
        if env.topic.name == "_" {
            return match retrieve_thing_ids(&env, action) {
                Ok(thing_ids) => Ok(Signal::RetrieveThings(RetrieveThings {
                    thing_ids,
                    fields: env.fields,
                    headers: env.headers,
                    topic: env.topic,
                })),
                Err(e) => Err(Box::new((e, env))),
            };
        }
        let (thing_id, path) = match thing_id_and_path(&env, action) {
            Ok(found) => found,
            Err(e) => return Err(Box::new((e, env))),
        };
        Ok(Signal::Thing(ThingCommand {
            thing_id,
            channel: env.topic.channel,
            action,
            path,
            value: env.value,
            fields: env.fields,
            headers: env.headers,
            topic: env.topic,
            raw_path: env.path,
        }))
    }
}

/// The thing and the resource a thing command addresses.
fn thing_id_and_path(env: &Envelope, action: Action) -> Result<(EntityId, ThingPath), DittoError> {
    // `ns:name` on the stack (any valid ASCII id fits; a longer text goes to the heap)
    let id = IdText::of(&env.topic.namespace, &env.topic.name);
    let thing_id = parse_thing_id(&id)?;
    let path = ThingPath::parse(&env.path)?.ok_or_else(|| unknown_path(&env.path))?;
    let path_ok = match action {
        Action::Create => path == ThingPath::Root,
        Action::Delete => path != ThingPath::PolicyId,
        Action::Migrate => false,
        _ => true,
    };
    if !path_ok {
        return Err(unknown_path(&env.path));
    }
    Ok((thing_id, path))
}

/// The thing IDs of a retrieve of several things (`_/_/things/twin/commands/retrieve`).
fn retrieve_thing_ids(env: &Envelope, action: Action) -> Result<Vec<EntityId>, DittoError> {
    if action != Action::Retrieve
        || env.topic.channel != Channel::Twin
        || !parse_pointer(&env.path)?.is_empty()
    {
        return Err(super::topic::unknown_topic(&env.topic.to_string()));
    }
    let ids = env
        .value
        .as_ref()
        .and_then(|v| v.get("thingIds"))
        .and_then(Value::as_array);
    let ids = match ids {
        Some(a) if !a.is_empty() => a,
        _ => return Err(ids_missing()),
    };
    let mut thing_ids = Vec::with_capacity(ids.len());
    for v in ids {
        let s = v.as_str().ok_or_else(ids_missing)?;
        let id = parse_thing_id(s)?;
        if env.topic.namespace != "_" && id.namespace != env.topic.namespace {
            return Err(DittoError::new(
                400,
                "things:id.invalid",
                format!("The thing ID '{s}' is not in the namespace '{}' of the topic.", env.topic.namespace),
            )
            .describe("All thing IDs must be in the namespace given in the topic, or use '_' as namespace."));
        }
        thing_ids.push(id);
    }
    Ok(thing_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(text: &str) -> Result<Signal, DittoError> {
        Signal::from_envelope(Envelope::parse(text).unwrap())
    }

    #[test]
    fn thing_paths() {
        let p = |s: &str| ThingPath::parse(s).unwrap();
        assert_eq!(p("/"), Some(ThingPath::Root));
        assert_eq!(
            p("/attributes/a/b"),
            Some(ThingPath::Attribute(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            p("/features/lamp/desiredProperties/on"),
            Some(ThingPath::DesiredProperty("lamp".into(), vec!["on".into()]))
        );
        assert_eq!(p("/features/lamp/foo"), None);
        assert_eq!(p("/thingsies"), None);
        assert_eq!(
            ThingPath::Property("l".into(), vec!["a".into()]).to_pointer_string(),
            "/features/l/properties/a"
        );
        assert!(ThingPath::parse("/attributes/a/s/k///slashes//").is_err());
    }

    /// The parse before it moved the segments (tested against: same answer for every path of
    /// up to 4 segments over the words a thing path is made of).
    fn copying_parse(path: &str) -> Result<Option<ThingPath>, DittoError> {
        let segs = parse_pointer(path)?;
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let rest = |n: usize| segs[n..].to_vec();
        let fid = |i: usize| -> Result<String, DittoError> {
            validate_feature_id(s[i])?;
            Ok(s[i].to_owned())
        };
        Ok(Some(match s.as_slice() {
            [] => ThingPath::Root,
            ["policyId"] => ThingPath::PolicyId,
            ["definition"] => ThingPath::Definition,
            ["attributes"] => ThingPath::Attributes,
            ["attributes", ..] => ThingPath::Attribute(rest(1)),
            ["features"] => ThingPath::Features,
            ["features", _] => ThingPath::Feature(fid(1)?),
            ["features", _, "definition"] => ThingPath::FeatureDefinition(fid(1)?),
            ["features", _, "properties"] => ThingPath::Properties(fid(1)?),
            ["features", _, "properties", ..] => ThingPath::Property(fid(1)?, rest(3)),
            ["features", _, "desiredProperties"] => ThingPath::DesiredProperties(fid(1)?),
            ["features", _, "desiredProperties", ..] => {
                ThingPath::DesiredProperty(fid(1)?, rest(3))
            }
            _ => return Ok(None),
        }))
    }

    #[test]
    fn thing_paths_parse_as_the_copying_parse_did() {
        let words = [
            "policyId",
            "definition",
            "attributes",
            "features",
            "f",
            "*",
            "properties",
            "desiredProperties",
            "a~0b",
        ];
        let mut paths = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = paths
                .iter()
                .filter(|p| {
                    p.matches('/').count() == paths.last().map_or(0, |l| l.matches('/').count())
                })
                .flat_map(|p| words.iter().map(move |w| format!("{p}/{w}")))
                .collect();
            paths.extend(longer);
        }
        assert_eq!(paths.len(), 1 + 9 + 81 + 729 + 6561);
        for p in paths
            .iter()
            .chain([&"/".to_owned(), &"/attributes//x".to_owned()])
        {
            assert_eq!(ThingPath::parse(p), copying_parse(p), "{p}");
            // the borrowed segments are the pointer's
            if let Ok(Some(t)) = ThingPath::parse(p) {
                assert_eq!(t.segments().collect::<Vec<_>>(), t.pointer(), "{p}");
            }
        }
    }

    #[test]
    fn commands_and_path_rules() {
        let s = sig(
            r#"{"topic":"ns/t1/things/twin/commands/modify","path":"/attributes/x","value":1}"#,
        )
        .unwrap();
        let Signal::Thing(c) = s else {
            panic!("not a thing command")
        };
        assert_eq!(c.thing_id.to_string(), "ns:t1");
        assert_eq!(c.path, ThingPath::Attribute(vec!["x".into()]));
        let e = sig(r#"{"topic":"ns/t1/things/twin/commands/create","path":"/attributes"}"#)
            .unwrap_err();
        assert_eq!(e.error, "protocoladapter:unknown.path");
        let e =
            sig(r#"{"topic":"ns/t1/things/twin/commands/delete","path":"/policyId"}"#).unwrap_err();
        assert_eq!(e.error, "protocoladapter:unknown.path");
        let e = sig(r#"{"topic":"ns/t1/things/twin/commands/modify","path":"/foo","value":1}"#)
            .unwrap_err();
        assert_eq!(
            e.message,
            "The path '/foo' does not correspond to any known command, response or event."
        );
        let e = sig(r#"{"topic":"1ns/t1/things/twin/commands/modify","path":"/","value":{}}"#)
            .unwrap_err();
        assert_eq!(e.error, "things:id.invalid");
        let r = sig(r#"{"topic":"ns/t1/things/twin/commands/modify","path":"/","status":204}"#)
            .unwrap();
        assert!(matches!(r, Signal::Other(_)));
    }

    /// The thing ID of the topic is read as `parse_thing_id` reads `ns:name`, whether that text
    /// fits the stack buffer or not (ASCII and multi-byte names around the 256 limit).
    #[test]
    fn thing_id_of_the_topic_at_the_length_limit() {
        for name in [
            "t".repeat(250),
            "t".repeat(251),
            "t".repeat(300),
            "é".repeat(120),
            "é".repeat(130),
        ] {
            let text = format!(
                r#"{{"topic":"ns/{name}/things/twin/commands/retrieve","headers":{{}},"path":"/"}}"#
            );
            let direct = parse_thing_id(&format!("ns:{name}"));
            match (sig(&text), direct) {
                (Ok(Signal::Thing(c)), Ok(id)) => assert_eq!(c.thing_id, id),
                (Err(a), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("{} chars: {a:?} vs {b:?}", name.len()),
            }
        }
    }

    #[test]
    fn retrieve_multiple() {
        let s = sig(r#"{"topic":"_/_/things/twin/commands/retrieve","path":"/","value":{"thingIds":["a:1","b:2"]}}"#)
            .unwrap();
        let Signal::RetrieveThings(r) = s else {
            panic!("not retrieve things")
        };
        assert_eq!(r.thing_ids.len(), 2);
        let e = sig(r#"{"topic":"_/_/things/twin/commands/retrieve","path":"/","value":{}}"#)
            .unwrap_err();
        assert_eq!(e.error, "things:things.ids.missing");
        let e = sig(r#"{"topic":"a/_/things/twin/commands/retrieve","path":"/","value":{"thingIds":["b:2"]}}"#)
            .unwrap_err();
        assert_eq!(e.status, 400);
    }
}
