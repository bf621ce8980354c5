//! Ditto Protocol topic grammar: `{ns}/{name}/{group}[/{channel}]/{criterion}[/{tail}]`.
//! Parses every criterion (commands, events, search, messages, errors, acks, announcements,
//! streaming) with Ditto's error codes, and renders topics back to strings.

use crate::error::DittoError;
use std::fmt;

/// Entity group of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `things`
    Things,
    /// `policies`
    Policies,
}

/// Channel of a things topic (`none` is only emitted, e.g. `_/_/things/search/errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// persisted twin
    Twin,
    /// the device
    Live,
    /// no channel segment (policies, search errors)
    None,
}

impl Channel {
    /// Wire name (`twin`, `live`, or empty).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Twin => "twin",
            Channel::Live => "live",
            Channel::None => "",
        }
    }
}

/// Command action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// create
    Create,
    /// retrieve
    Retrieve,
    /// modify
    Modify,
    /// merge
    Merge,
    /// delete
    Delete,
    /// migrate (thing definition migration; answered as unsupported)
    Migrate,
    /// `checkPermissions` (policies group only: `_/_/policies/commands/checkPermissions`)
    CheckPermissions,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => Action::Create,
            "retrieve" => Action::Retrieve,
            "modify" => Action::Modify,
            "merge" => Action::Merge,
            "delete" => Action::Delete,
            "migrate" => Action::Migrate,
            "checkPermissions" => Action::CheckPermissions,
            _ => return None,
        })
    }
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Retrieve => "retrieve",
            Action::Modify => "modify",
            Action::Merge => "merge",
            Action::Delete => "delete",
            Action::Migrate => "migrate",
            Action::CheckPermissions => "checkPermissions",
        }
    }
}

/// Event action (past tense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// created
    Created,
    /// modified
    Modified,
    /// merged
    Merged,
    /// deleted
    Deleted,
    /// migrated
    Migrated,
}

impl EventAction {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => EventAction::Created,
            "modified" => EventAction::Modified,
            "merged" => EventAction::Merged,
            "deleted" => EventAction::Deleted,
            "migrated" => EventAction::Migrated,
            _ => return None,
        })
    }
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Created => "created",
            EventAction::Modified => "modified",
            EventAction::Merged => "merged",
            EventAction::Deleted => "deleted",
            EventAction::Migrated => "migrated",
        }
    }
}

/// Criterion with its tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    /// `commands/<action>`
    Commands(Action),
    /// `events/<action>`
    Events(EventAction),
    /// `search/<action>` (subscribe, request, cancel, created, next, complete, failed)
    Search(String),
    /// `messages/<subject>` (subject may contain `/`)
    Messages(String),
    /// `errors`
    Errors,
    /// `acks[/<label>]`
    Acks(Option<String>),
    /// `announcements/<name>`
    Announcements(String),
    /// `streaming/<action>`
    Streaming(String),
}

/// A parsed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// namespace (`_` placeholder allowed)
    pub namespace: String,
    /// entity name (`_` placeholder allowed)
    pub name: String,
    /// group
    pub group: Group,
    /// channel
    pub channel: Channel,
    /// criterion and tail
    pub criterion: Criterion,
}

const SEARCH_ACTIONS: [&str; 7] = [
    "subscribe",
    "request",
    "cancel",
    "created",
    "next",
    "complete",
    "failed",
];
const STREAMING_ACTIONS: [&str; 7] = [
    "subscribeForPersistedEvents",
    "request",
    "cancel",
    "created",
    "next",
    "complete",
    "failed",
];

/// 400 `protocoladapter:unknown.topicpath`.
pub fn unknown_topic(topic: &str) -> DittoError {
    DittoError::new(
        400,
        "protocoladapter:unknown.topicpath",
        format!("The topic path '{topic}' is not supported."),
    )
    .describe("Check if the topic path is correct.")
}

fn one(t: Option<&str>) -> Option<&str> {
    t.filter(|t| !t.is_empty() && !t.contains('/'))
}

impl Topic {
    /// Parses a topic string the way Ditto's `TopicPathParser` does.
    pub fn parse(s: &str) -> Result<Topic, DittoError> {
        let err = || unknown_topic(s);
        let mut parts = s.splitn(4, '/');
        let namespace = parts.next().ok_or_else(err)?;
        let name = parts.next().ok_or_else(err)?;
        let group = match parts.next().ok_or_else(err)? {
            "things" => Group::Things,
            "policies" => Group::Policies,
            _ => return Err(err()),
        };
        let rest = parts.next().ok_or_else(err)?;
        let (channel, rest) = match group {
            Group::Things => {
                let (c, r) = rest.split_once('/').ok_or_else(err)?;
                let channel = match c {
                    "twin" => Channel::Twin,
                    "live" => Channel::Live,
                    _ => return Err(err()),
                };
                (channel, r)
            }
            Group::Policies => (Channel::None, rest),
        };
        let (criterion, tail) = match rest.split_once('/') {
            Some((c, t)) => (c, Some(t)),
            None => (rest, None),
        };
        let criterion = match criterion {
            "commands" => {
                let a = one(tail).and_then(Action::parse).ok_or_else(err)?;
                if a == Action::CheckPermissions && group != Group::Policies {
                    return Err(err());
                }
                Criterion::Commands(a)
            }
            "events" => Criterion::Events(one(tail).and_then(EventAction::parse).ok_or_else(err)?),
            "search" if group == Group::Things => {
                let a = one(tail)
                    .filter(|a| SEARCH_ACTIONS.contains(a))
                    .ok_or_else(err)?;
                Criterion::Search(a.to_owned())
            }
            "streaming" => {
                let a = one(tail)
                    .filter(|a| STREAMING_ACTIONS.contains(a))
                    .ok_or_else(err)?;
                Criterion::Streaming(a.to_owned())
            }
            "messages" if group == Group::Things => {
                Criterion::Messages(tail.filter(|t| !t.is_empty()).ok_or_else(err)?.to_owned())
            }
            "errors" if tail.is_none() => Criterion::Errors,
            "acks" if group == Group::Things => {
                Criterion::Acks(tail.filter(|t| !t.is_empty()).map(str::to_owned))
            }
            "announcements" => {
                Criterion::Announcements(tail.filter(|t| !t.is_empty()).ok_or_else(err)?.to_owned())
            }
            _ => return Err(err()),
        };
        if namespace.is_empty() && name.is_empty() {
            return Err(err());
        }
        Ok(Topic {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group,
            channel,
            criterion,
        })
    }

    /// A things topic for a concrete entity.
    pub fn thing(namespace: &str, name: &str, channel: Channel, criterion: Criterion) -> Topic {
        Topic {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group: Group::Things,
            channel,
            criterion,
        }
    }

    /// `_/_/policies/commands/checkPermissions`.
    pub fn check_permissions() -> Topic {
        Topic {
            namespace: "_".into(),
            name: "_".into(),
            group: Group::Policies,
            channel: Channel::None,
            criterion: Criterion::Commands(Action::CheckPermissions),
        }
    }

    /// `ns:name`, or `None` for the `_` placeholder entity.
    pub fn entity_id(&self) -> Option<String> {
        if self.name == "_" {
            None
        } else {
            Some(format!("{}:{}", self.namespace, self.name))
        }
    }

    /// The same entity and channel with another criterion (response topics, error topics).
    pub fn with_criterion(&self, criterion: Criterion) -> Topic {
        Topic {
            criterion,
            ..self.clone()
        }
    }
}

impl Topic {
    /// The pieces of the topic's text, in order (some empty): `Display` writes them, and so
    /// does an envelope's JSON (`Envelope::write_json`) straight into its buffer, without
    /// `fmt`'s machinery per piece (issue 21).
    pub fn pieces(&self) -> [&str; 9] {
        let group = match self.group {
            Group::Things => "things",
            Group::Policies => "policies",
        };
        let (sep, channel) = match self.channel {
            Channel::None => ("", ""),
            c => ("/", c.as_str()),
        };
        let (kind, tail) = match &self.criterion {
            Criterion::Commands(a) => ("/commands/", a.as_str()),
            Criterion::Events(a) => ("/events/", a.as_str()),
            Criterion::Search(a) => ("/search/", a.as_str()),
            Criterion::Messages(s) => ("/messages/", s.as_str()),
            Criterion::Errors => ("/errors", ""),
            Criterion::Acks(None) => ("/acks", ""),
            Criterion::Acks(Some(l)) => ("/acks/", l.as_str()),
            Criterion::Announcements(n) => ("/announcements/", n.as_str()),
            Criterion::Streaming(a) => ("/streaming/", a.as_str()),
        };
        let (ns, name) = (self.namespace.as_str(), self.name.as_str());
        [ns, "/", name, "/", group, sep, channel, kind, tail]
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().iter().try_for_each(|p| f.write_str(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Topic {
        let t = Topic::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(t.to_string(), s, "round trip");
        t
    }

    #[test]
    fn parses_every_criterion() {
        let t = rt("org.eclipse.ditto/fancy-thing/things/twin/commands/modify");
        assert_eq!(t.criterion, Criterion::Commands(Action::Modify));
        assert_eq!(
            t.entity_id().as_deref(),
            Some("org.eclipse.ditto:fancy-thing")
        );
        assert_eq!(
            rt("a/b/things/live/events/merged").criterion,
            Criterion::Events(EventAction::Merged)
        );
        assert_eq!(
            rt("_/_/things/twin/search/subscribe").criterion,
            Criterion::Search("subscribe".into())
        );
        assert_eq!(rt("_/_/things/twin/commands/retrieve").entity_id(), None);
        let m = rt("org.eclipse.ditto/smartcoffee/things/live/messages/a/s/k///slashes//");
        assert_eq!(m.criterion, Criterion::Messages("a/s/k///slashes//".into()));
        assert_eq!(rt("a/b/things/twin/errors").criterion, Criterion::Errors);
        assert_eq!(rt("a/b/things/twin/acks").criterion, Criterion::Acks(None));
        assert_eq!(
            rt("a/b/things/twin/acks/my:ack").criterion,
            Criterion::Acks(Some("my:ack".into()))
        );
        let p = rt("a/b/policies/commands/create");
        assert_eq!((p.group, p.channel), (Group::Policies, Channel::None));
        rt("a/b/policies/announcements/subjectDeletion");
        rt("a/b/policies/errors");
        rt("a/b/things/twin/streaming/subscribeForPersistedEvents");
        assert_eq!(
            rt("_/_/policies/commands/checkPermissions").criterion,
            Criterion::Commands(Action::CheckPermissions)
        );
    }

    #[test]
    fn rejects_bad_topics_with_ditto_error() {
        for bad in [
            "",
            "a",
            "a/b",
            "a/b/things",
            "a/b/things/twin",
            "a/b/things/twin/commands",
            "a/b/things/twin/commands/frobnicate",
            "_/_/things/twin/commands/checkPermissions",
            "a/b/things/twin/commands/modify/extra",
            "a/b/things/none/commands/modify",
            "a/b/gadgets/twin/commands/modify",
            "a/b/things/twin/messages",
            "a/b/things/twin/errors/x",
            "a/b/policies/twin/commands/create",
            "a/b/things/twin/search/frob",
            "//things/twin/commands/modify",
        ] {
            let e = Topic::parse(bad).expect_err(bad);
            assert_eq!(
                (e.status, &*e.error),
                (400, "protocoladapter:unknown.topicpath"),
                "{bad}"
            );
            assert_eq!(
                e.message,
                format!("The topic path '{bad}' is not supported.")
            );
        }
    }

    #[test]
    fn renders_search_error_topic_without_channel() {
        let t = Topic {
            namespace: "_".into(),
            name: "_".into(),
            group: Group::Things,
            channel: Channel::None,
            criterion: Criterion::Errors,
        };
        assert_eq!(t.to_string(), "_/_/things/errors");
    }

    /// `Display` (written from `pieces`) gives the text the `write!`-per-part formatting gave,
    /// for every group, channel and criterion (random namespaces, names and tails).
    #[test]
    fn pieces_are_the_formatted_text() {
        fn formatted(t: &Topic) -> String {
            let group = match t.group {
                Group::Things => "things",
                Group::Policies => "policies",
            };
            let mut s = format!("{}/{}/{}", t.namespace, t.name, group);
            if t.channel != Channel::None {
                s += &format!("/{}", t.channel.as_str());
            }
            s += &match &t.criterion {
                Criterion::Commands(a) => format!("/commands/{}", a.as_str()),
                Criterion::Events(a) => format!("/events/{}", a.as_str()),
                Criterion::Search(a) => format!("/search/{a}"),
                Criterion::Messages(m) => format!("/messages/{m}"),
                Criterion::Errors => "/errors".to_owned(),
                Criterion::Acks(None) => "/acks".to_owned(),
                Criterion::Acks(Some(l)) => format!("/acks/{l}"),
                Criterion::Announcements(n) => format!("/announcements/{n}"),
                Criterion::Streaming(a) => format!("/streaming/{a}"),
            };
            s
        }
        let mut rng = fastrand::Rng::with_seed(6);
        let word = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(0..6))
                .map(|_| ['a', '/', '_', '"', 'é', ':'][rng.usize(0..6)])
                .collect()
        };
        for _ in 0..5_000 {
            let criterion = match rng.u8(0..10) {
                0 => Criterion::Commands(Action::Modify),
                1 => Criterion::Commands(Action::Retrieve),
                2 => Criterion::Events(EventAction::Modified),
                3 => Criterion::Search(word(&mut rng)),
                4 => Criterion::Messages(word(&mut rng)),
                5 => Criterion::Errors,
                6 => Criterion::Acks(None),
                7 => Criterion::Acks(Some(word(&mut rng))),
                8 => Criterion::Announcements(word(&mut rng)),
                _ => Criterion::Streaming(word(&mut rng)),
            };
            let t = Topic {
                namespace: word(&mut rng),
                name: word(&mut rng),
                group: [Group::Things, Group::Policies][rng.usize(0..2)],
                channel: [Channel::None, Channel::Twin, Channel::Live][rng.usize(0..3)],
                criterion,
            };
            assert_eq!(t.to_string(), formatted(&t));
        }
    }
}
