//! A thing as the store keeps it (`ThingState`): its JSON, revision, timestamps, metadata and
//! tombstone marker, with its encoding and the views reads and conditions see. A leaf of the
//! core: the engine, the search index and the hub all read it.

use crate::error::DittoError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A thing as persisted: its JSON plus the read-only fields. A deleted thing stays as a tombstone
/// so that its revision keeps counting when it is created again (as in Ditto).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThingState {
    /// the thing JSON (`thingId`, `policyId`, `definition`, `attributes`, `features`)
    #[serde(rename = "t")]
    pub thing: Value,
    /// revision of the last change
    #[serde(rename = "r")]
    pub revision: u64,
    /// creation time, epoch millis
    #[serde(rename = "c")]
    pub created: i64,
    /// last modification time, epoch millis
    #[serde(rename = "m")]
    pub modified: i64,
    /// `_metadata`
    #[serde(rename = "md", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// tombstone marker
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ThingState {
    /// Decodes stored bytes.
    pub fn from_bytes(b: &[u8]) -> Result<ThingState, DittoError> {
        serde_json::from_slice(b)
            .map_err(|e| DittoError::internal(format!("corrupt stored thing: {e}")))
    }

    /// Encodes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        // written into a buffer kept by the thread, then copied out at its exact size: no
        // reallocation while it grows, and the bytes the store holds take no spare capacity
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with(|b| match b.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                self.write_to(&mut buf);
                let out = buf.to_vec();
                // a rare huge twin does not keep its buffer
                if buf.capacity() > 64 * 1024 {
                    *buf = Vec::new();
                }
                out
            }
            Err(_) => {
                let mut out = Vec::new();
                self.write_to(&mut out);
                out
            }
        })
    }

    /// The serde derive's bytes (field order, skipped fields), written directly (`json_write`:
    /// tested against serde_json).
    fn write_to(&self, out: &mut Vec<u8>) {
        use super::json_write::{write_i64, write_u64, write_value};
        out.extend_from_slice(b"{\"t\":");
        write_value(out, &self.thing);
        out.extend_from_slice(b",\"r\":");
        write_u64(out, self.revision);
        out.extend_from_slice(b",\"c\":");
        write_i64(out, self.created);
        out.extend_from_slice(b",\"m\":");
        write_i64(out, self.modified);
        if let Some(md) = &self.metadata {
            out.extend_from_slice(b",\"md\":");
            write_value(out, md);
        }
        if self.deleted {
            out.extend_from_slice(b",\"d\":true");
        }
        out.push(b'}');
    }

    /// The live (not deleted) state, if any.
    pub fn live(state: Option<&ThingState>) -> Option<&ThingState> {
        state.filter(|s| !s.deleted)
    }

    /// The thing JSON with the read-only fields added (`_namespace`, `_revision`, `_created`,
    /// `_modified`, `_metadata`): what `fields` selectors and RQL conditions see.
    pub fn full_view(&self) -> Value {
        let mut m = self.thing.as_object().cloned().unwrap_or_default();
        if let Some(ns) = m
            .get("thingId")
            .and_then(Value::as_str)
            .and_then(|id| id.split_once(':'))
        {
            m.insert("_namespace".into(), Value::String(ns.0.to_owned()));
        }
        m.insert("_revision".into(), self.revision.into());
        m.insert(
            "_created".into(),
            crate::clock::format_millis(self.created).into(),
        );
        m.insert(
            "_modified".into(),
            crate::clock::format_millis(self.modified).into(),
        );
        if let Some(md) = &self.metadata {
            m.insert("_metadata".into(), md.clone());
        }
        Value::Object(m)
    }

    /// `"rev:<n>"`.
    pub fn etag(&self) -> String {
        format!("\"rev:{}\"", self.revision)
    }
}

/// What a write done in place replaced (`engine::apply_in_place`): the path written, the value
/// there before, and the times before, which is all the search index delta needs of the state
/// before the write.
#[derive(Debug, Clone, PartialEq)]
pub struct Replaced {
    /// the path written (its parent object existed)
    pub path: Vec<String>,
    /// the value at `path` before (`None`: absent)
    pub old: Option<Value>,
    /// `modified` before
    pub modified: i64,
    /// `created` before
    pub created: i64,
}

impl Replaced {
    /// The state before the write as the search index sees it (thing, times; not its metadata
    /// or revision), rebuilt from the state after it: a copy, for the rare write whose index
    /// delta needs the whole old state.
    pub fn index_view_before(&self, after: &ThingState) -> ThingState {
        let mut before = after.clone();
        before.modified = self.modified;
        before.created = self.created;
        if let Some((last, parents)) = self.path.split_last() {
            if let Some(Value::Object(p)) =
                crate::model::pointer::get_mut(&mut before.thing, parents)
            {
                match &self.old {
                    Some(o) => {
                        p.insert(last.clone(), o.clone());
                    }
                    None => {
                        p.shift_remove(last);
                    }
                }
            }
        }
        before
    }
}
