//! Rules of the live channel as plain functions: the headers a live signal is delivered with,
//! the smart channel's headers (`live-channel-timeout-strategy`, a command moved to another
//! channel), what a valid live answer to a command or message looks like, and the message path
//! of a message envelope.

use super::acks::AckRequest;
use super::pending::Matcher;
use crate::error::DittoError;
use crate::protocol::{
    Channel, Criterion, Envelope, Headers, MessagePath, ThingCommand, ThingPath,
};

/// The headers a live signal is delivered with: the sender's, `requested-acks` reduced to the
/// custom labels, and `ditto-originator`.
pub fn delivered_headers(h: &Headers, acks: &AckRequest, originator: &str) -> Headers {
    let mut out = h.clone();
    out.remove("requested-acks");
    let custom = acks.custom();
    if !custom.is_empty() {
        out.insert("requested-acks", custom);
    }
    out.insert("ditto-originator", originator);
    out
}

/// The channel strategy header: `fail` (default) or `use-twin`.
pub fn use_twin(h: &Headers) -> Result<Option<bool>, DittoError> {
    match h.get_str("live-channel-timeout-strategy").as_deref() {
        None => Ok(None),
        Some("fail") => Ok(Some(false)),
        Some("use-twin") => Ok(Some(true)),
        Some(other) => Err(DittoError::header_invalid(
            "live-channel-timeout-strategy",
            other,
            "live channel timeout strategy (fail or use-twin)",
        )),
    }
}

/// A copy of a command on another channel, without the smart-channel headers.
pub fn on_channel(cmd: &ThingCommand, channel: Channel) -> ThingCommand {
    let mut c = cmd.clone();
    c.channel = channel;
    c.topic.channel = channel;
    c.headers.remove("live-channel-condition");
    c.headers.remove("channel");
    c
}

/// Checks a live answer: same thing, same command type and resource, or an error.
pub fn command_matcher(cmd: &ThingCommand) -> Matcher {
    let (id, action, path, topic) = (
        cmd.thing_id.to_string(),
        cmd.action,
        cmd.path.clone(),
        cmd.topic.to_string(),
    );
    Box::new(move |e: &Envelope| {
        let same_thing = e.topic.entity_id().as_deref() == Some(id.as_str());
        let ok = same_thing
            && e.topic.channel == Channel::Live
            && match &e.topic.criterion {
                Criterion::Errors => true,
                Criterion::Commands(a) => {
                    *a == action && ThingPath::parse(&e.path).ok().flatten().as_ref() == Some(&path)
                }
                _ => false,
            };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "Type of live response <{} {}> is not related to type of command <{topic} {}>.",
                e.topic,
                e.path,
                path.to_pointer_string()
            ))
        }
    })
}

/// The message path of a message envelope: `live` channel only, path consistent with the
/// topic's subject (`protocoladapter:unknown.path` / `unknown.channel` otherwise).
pub fn message_path(env: &Envelope) -> Result<MessagePath, DittoError> {
    let Criterion::Messages(subject) = &env.topic.criterion else {
        return Err(crate::protocol::unknown_path(&env.path));
    };
    if env.topic.channel != Channel::Live {
        return Err(DittoError::new(
            400,
            "protocoladapter:unknown.channel",
            format!(
                "The channel '{}' is not supported for messages.",
                env.topic.channel.as_str()
            ),
        )
        .describe("Messages are sent on the 'live' channel."));
    }
    match MessagePath::parse(&env.path) {
        Some(p) if &p.subject == subject => Ok(p),
        _ => Err(crate::protocol::unknown_path(&env.path)),
    }
}

pub fn message_matcher(id: String, subject: String) -> Matcher {
    Box::new(move |e: &Envelope| {
        let ok = e.topic.entity_id().as_deref() == Some(id.as_str())
            && match &e.topic.criterion {
                Criterion::Errors => true,
                Criterion::Messages(s) => *s == subject,
                _ => false,
            };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "The response <{}> does not answer a message with subject <{subject}> of thing <{id}>.",
                e.topic
            ))
        }
    })
}
