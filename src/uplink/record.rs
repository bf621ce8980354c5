//! The per-thing sync record (pure data): the local revision the cloud has confirmed, the
//! cloud's revision and the last synced document (the base of the 3-way merge), kept in
//! `Tree::Meta` under `uplink.sync/<thingId>`, one per mirrored thing. A thing is dirty when its
//! stored revision differs from the record's: derived, so no extra write per local change.

use crate::engine::ThingState;
use crate::store::{Op, Tree};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Key prefix of the sync records in `Tree::Meta`.
pub const PREFIX: &[u8] = b"uplink.sync/";

/// What the edge and the cloud last agreed on for one thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// the local revision whose change the cloud confirmed (`twin-persisted`)
    #[serde(rename = "l")]
    pub local_rev: u64,
    /// creation time of the local thing at that revision (a thing deleted and created anew,
    /// or a restored data directory, never looks synced by revision alone)
    #[serde(rename = "c")]
    pub local_created: i64,
    /// the cloud's revision after the last confirmed write or retrieve (0: unknown)
    #[serde(rename = "r")]
    pub cloud_rev: u64,
    /// the synced part both sides held then (see `merge::synced_part`)
    #[serde(rename = "b")]
    pub base: Value,
}

/// The store key of a thing's record.
pub fn key(thing_id: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(thing_id.as_bytes());
    k
}

/// The thing ID of a record key.
pub fn thing_of(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.strip_prefix(PREFIX)?).ok()
}

impl SyncRecord {
    /// Decodes a stored record (`None` if corrupt: the thing is then synced without a base).
    pub fn from_bytes(b: &[u8]) -> Option<SyncRecord> {
        serde_json::from_slice(b).ok()
    }

    /// Encodes for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The write that stores this record.
    pub fn put(&self, thing_id: &str) -> Op {
        Op::put(Tree::Meta, key(thing_id), self.to_bytes())
    }
}

/// The write that forgets a thing's record (after its deletion reached the cloud).
pub fn delete(thing_id: &str) -> Op {
    Op::delete(Tree::Meta, key(thing_id))
}

/// True if the local state has changes the cloud has not confirmed: a live thing without
/// record or with another revision/creation time, or a record whose thing is gone.
pub fn is_dirty(local: Option<&ThingState>, rec: Option<&SyncRecord>) -> bool {
    match (ThingState::live(local), rec) {
        (None, None) => false,
        (None, Some(_)) | (Some(_), None) => true,
        (Some(l), Some(r)) => l.revision != r.local_rev || l.created != r.local_created,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(rev: u64, created: i64, deleted: bool) -> ThingState {
        ThingState {
            thing: json!({"thingId": "n:t"}),
            revision: rev,
            created,
            modified: created,
            metadata: None,
            deleted,
        }
    }

    fn rec(rev: u64, created: i64) -> SyncRecord {
        SyncRecord {
            local_rev: rev,
            local_created: created,
            cloud_rev: 7,
            base: json!({"attributes": {"a": 1}}),
        }
    }

    #[test]
    fn dirtiness_is_derived_from_revisions() {
        assert!(!is_dirty(None, None));
        assert!(
            !is_dirty(Some(&state(3, 1, true)), None),
            "never synced, gone"
        );
        assert!(is_dirty(Some(&state(1, 1, false)), None), "new thing");
        assert!(!is_dirty(Some(&state(4, 1, false)), Some(&rec(4, 1))));
        assert!(is_dirty(Some(&state(5, 1, false)), Some(&rec(4, 1))));
        assert!(
            is_dirty(Some(&state(4, 2, false)), Some(&rec(4, 1))),
            "created anew"
        );
        assert!(
            is_dirty(Some(&state(5, 1, true)), Some(&rec(4, 1))),
            "deleted"
        );
        assert!(is_dirty(None, Some(&rec(4, 1))), "gone");
    }

    #[test]
    fn records_round_trip_under_their_key() {
        let r = rec(2, 9);
        assert_eq!(SyncRecord::from_bytes(&r.to_bytes()), Some(r.clone()));
        assert_eq!(SyncRecord::from_bytes(b"{"), None);
        let k = key("n:t");
        assert_eq!(thing_of(&k), Some("n:t"));
        assert_eq!(thing_of(b"policy.expiring/x"), None);
        let op = r.put("n:t");
        assert_eq!((op.tree, op.key), (Tree::Meta, k));
    }
}
