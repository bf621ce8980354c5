//! One kept event as stored in `Tree::History`: a 10-byte header (format, action, timestamp,
//! so that time searches decode nothing else) and a small JSON body (path, value, the metadata
//! written with the change, the whole `_metadata` after it when the entity has any, and the
//! `historical-headers-to-persist`). Pure encode/decode.

use crate::protocol::EventAction;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const FORMAT: u8 = 1;
const HEADER: usize = 10;

/// A kept event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub action: EventAction,
    /// when it was persisted (epoch millis)
    pub timestamp: i64,
    /// the event's path (as the command addressed it)
    pub path: String,
    /// the event's value (merge: the patch; delete: none)
    pub value: Option<Value>,
    /// metadata written with the change (`put-metadata`), relative to `path`
    pub metadata: Option<Value>,
    /// the entity's whole `_metadata` after the change, when it has any (replay sets it)
    pub full_metadata: Option<Value>,
    /// the configured `historical-headers-to-persist` the command carried
    pub headers: Map<String, Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Body {
    p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    md: Option<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    h: Map<String, Value>,
}

/// `Body` as written: borrowed from the record (encoding copies nothing but into the bytes).
#[derive(Serialize)]
struct BodyRef<'a> {
    p: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    v: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    m: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    md: Option<&'a Value>,
    #[serde(skip_serializing_if = "no_headers")]
    h: &'a Map<String, Value>,
}

fn no_headers(h: &&Map<String, Value>) -> bool {
    h.is_empty()
}

fn action_code(a: EventAction) -> u8 {
    match a {
        EventAction::Created => 0,
        EventAction::Modified => 1,
        EventAction::Merged => 2,
        EventAction::Deleted => 3,
        EventAction::Migrated => 4,
    }
}

fn action_of(code: u8) -> Option<EventAction> {
    Some(match code {
        0 => EventAction::Created,
        1 => EventAction::Modified,
        2 => EventAction::Merged,
        3 => EventAction::Deleted,
        4 => EventAction::Migrated,
        _ => return None,
    })
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let body = BodyRef {
            p: &self.path,
            v: self.value.as_ref(),
            m: self.metadata.as_ref(),
            md: self.full_metadata.as_ref(),
            h: &self.headers,
        };
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT);
        out.push(action_code(self.action));
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        // serializing Values cannot fail (string keys only)
        serde_json::to_writer(&mut out, &body).unwrap_or_default();
        out
    }

    /// `None` for bytes this version cannot read (a corrupt or newer record).
    pub fn decode(b: &[u8]) -> Option<Record> {
        let timestamp = timestamp(b)?;
        let action = action_of(b[1])?;
        let body: Body = serde_json::from_slice(&b[HEADER..]).ok()?;
        Some(Record {
            action,
            timestamp,
            path: body.p,
            value: body.v,
            metadata: body.m,
            full_metadata: body.md,
            headers: body.h,
        })
    }
}

/// The timestamp of an encoded record, reading the header only.
pub fn timestamp(b: &[u8]) -> Option<i64> {
    if b.len() < HEADER || b[0] != FORMAT {
        return None;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[2..HEADER]);
    Some(i64::from_be_bytes(t))
}

/// The configured `headers_to_persist` a command carried; `ditto-originator` is the subject
/// that made the change (Ditto sets that header on every command it authenticates).
pub fn persisted_headers(
    names: &[String],
    headers: &crate::protocol::Headers,
    originator: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    for n in names {
        let v = match n.as_str() {
            "ditto-originator" => Some(Value::String(originator.to_owned())),
            _ => headers.get(n).cloned(),
        };
        if let Some(v) = v {
            out.insert(n.clone(), v);
        }
    }
    out
}

impl Record {
    /// True for a creation at `/` carrying the whole entity: the state after it needs no
    /// snapshot (a thing replays it onto nothing, a policy is its value).
    pub fn self_contained(&self) -> bool {
        self.action == EventAction::Created && self.path == "/" && self.value.is_some()
    }

    /// The record of a thing event (`full_metadata`: the thing's `_metadata` after it).
    pub fn of_thing_event(
        ev: &crate::engine::Event,
        full_metadata: Option<&Value>,
        headers: Map<String, Value>,
    ) -> Record {
        Record {
            action: ev.action,
            timestamp: ev.timestamp,
            path: ev.path.clone(),
            value: ev.value.clone(),
            metadata: ev.metadata.clone(),
            full_metadata: full_metadata.cloned(),
            headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_stays_small() {
        let r = Record {
            action: EventAction::Modified,
            timestamp: 1_733_000_000_123,
            path: "/attributes/n".into(),
            value: Some(json!(42)),
            metadata: None,
            full_metadata: None,
            headers: Map::new(),
        };
        let b = r.encode();
        assert_eq!(Record::decode(&b), Some(r.clone()));
        assert_eq!(timestamp(&b), Some(1_733_000_000_123));
        assert!(
            b.len() <= 40,
            "{} bytes: {}",
            b.len(),
            String::from_utf8_lossy(&b)
        );
        let mut h = Map::new();
        h.insert("ditto-originator".into(), json!("nginx:ditto"));
        let full = Record {
            action: EventAction::Deleted,
            value: None,
            metadata: Some(json!({"a": 1})),
            full_metadata: Some(json!({"attributes": {"a": 1}})),
            headers: h,
            ..r.clone()
        };
        assert_eq!(Record::decode(&full.encode()), Some(full.clone()));
        // the borrowed body writes the bytes the owned one wrote (stored records stay readable)
        for rec in [r, full] {
            let owned = Body {
                p: rec.path.clone(),
                v: rec.value.clone(),
                m: rec.metadata.clone(),
                md: rec.full_metadata.clone(),
                h: rec.headers.clone(),
            };
            let b = rec.encode();
            assert_eq!(b[HEADER..], serde_json::to_vec(&owned).unwrap()[..]);
        }
    }

    #[test]
    fn foreign_bytes_are_refused() {
        assert_eq!(Record::decode(b""), None);
        assert_eq!(Record::decode(&[9; 20]), None);
        let mut b = Record {
            action: EventAction::Created,
            timestamp: 1,
            path: "/".into(),
            value: None,
            metadata: None,
            full_metadata: None,
            headers: Map::new(),
        }
        .encode();
        b[1] = 99;
        assert_eq!(Record::decode(&b), None);
        assert_eq!(timestamp(&b), Some(1));
    }
}
