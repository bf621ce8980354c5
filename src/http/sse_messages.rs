//! The message stream of SSE: `GET /api/2/things/{id}[/features/{f}]/{inbox|outbox}/messages`
//! (optionally `/{subject}`) with `Accept: text/event-stream`. Which messages a stream takes (the
//! thing and the path scope; without a subject every subject below it) and how one is framed:
//! `event:` = subject, `data:` = payload as text (strings as is, other JSON serialized).

use crate::protocol::{Criterion, Envelope};
use serde_json::Value;

/// What one message stream takes.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageScope {
    thing_id: String,
    /// `/inbox/messages`, `/features/f/outbox/messages`, ...
    prefix: String,
    subject: Option<String>,
}

impl MessageScope {
    /// The scope of a stream `path` below thing `thing_id`; `None` unless it is a message path
    /// (`[/features/{f}]/{inbox|outbox}/messages[/{subject}]`).
    pub fn parse(thing_id: &str, path: &str) -> Option<MessageScope> {
        let rest = path.strip_prefix('/')?;
        let (feature, rest) = match rest.strip_prefix("features/") {
            Some(r) => {
                let (f, r) = r.split_once('/')?;
                (Some(f).filter(|f| !f.is_empty())?, r)
            }
            None => ("", rest),
        };
        let (dir, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if !matches!(dir, "inbox" | "outbox") {
            return None;
        }
        let subject = match rest.strip_prefix("messages")? {
            "" | "/" => None,
            s => Some(s.strip_prefix('/')?.trim_end_matches('/').to_owned()),
        };
        let feature = if feature.is_empty() {
            String::new()
        } else {
            format!("/features/{feature}")
        };
        Some(MessageScope {
            thing_id: thing_id.to_owned(),
            prefix: format!("{feature}/{dir}/messages"),
            subject,
        })
    }

    /// The SSE frame of a message this stream takes (`None` for anything else).
    pub fn frame(&self, env: &Envelope) -> Option<String> {
        let Criterion::Messages(subject) = &env.topic.criterion else {
            return None;
        };
        if env.topic.entity_id().as_deref() != Some(self.thing_id.as_str()) {
            return None;
        }
        let below = env.path.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if self.subject.as_deref().is_some_and(|s| s != below) {
            return None;
        }
        let text = match &env.value {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        let mut out = format!("event:{}\n", subject.replace(['\r', '\n'], " "));
        for line in text.split('\n') {
            out.push_str("data:");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &str, value: &str) -> Envelope {
        let subject = path.rsplit("/messages/").next().unwrap();
        Envelope::parse(&format!(
            r#"{{"topic":"n/t/things/live/messages/{subject}","headers":{{}},"path":"{path}","value":{value}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn scopes_of_stream_paths() {
        let s = |p: &str| MessageScope::parse("n:t", p);
        assert_eq!(s("/inbox/messages").unwrap().prefix, "/inbox/messages");
        assert_eq!(s("/inbox/messages/").unwrap().subject, None);
        let f = s("/features/lamp/outbox/messages/a/b").unwrap();
        assert_eq!(
            (f.prefix.as_str(), f.subject.as_deref()),
            ("/features/lamp/outbox/messages", Some("a/b"))
        );
        for bad in [
            "/attributes/x",
            "/inbox",
            "/inbox/claim",
            "/inbox/messagesx",
            "/features//inbox/messages",
        ] {
            assert_eq!(s(bad), None, "{bad}");
        }
    }

    #[test]
    fn frames_only_the_scope_with_payload_as_text() {
        let all = MessageScope::parse("n:t", "/inbox/messages").unwrap();
        let one = MessageScope::parse("n:t", "/inbox/messages/hello").unwrap();
        let text = message("/inbox/messages/hello", r#""line 1\nline 2""#);
        assert_eq!(
            all.frame(&text).unwrap(),
            "event:hello\ndata:line 1\ndata:line 2\n\n"
        );
        assert_eq!(one.frame(&text), all.frame(&text));
        let json = message("/inbox/messages/other", r#"{"on":true}"#);
        assert_eq!(
            all.frame(&json).unwrap(),
            "event:other\ndata:{\"on\":true}\n\n"
        );
        assert_eq!(one.frame(&json), None, "other subject");
        let outbox = message("/outbox/messages/hello", "1");
        assert_eq!(all.frame(&outbox), None, "other direction");
        let feature = message("/features/f/inbox/messages/hello", "1");
        assert_eq!(
            all.frame(&feature),
            None,
            "feature messages have their own path"
        );
        let other = MessageScope::parse("n:u", "/inbox/messages").unwrap();
        assert_eq!(other.frame(&text), None, "other thing");
    }
}
