//! The startup check of the search index: `Tree::Meta` holds the index format version; when it
//! is missing (a data dir from before search, or a crash during a rebuild) or old, the index is
//! dropped and rebuilt from `Tree::Things` in bounded chunks, each made durable before the next,
//! and the version is written last. The access part (`search::access`: each thing's policy ID,
//! each policy's READ summary) has its own version, so a data dir of an index without it (the
//! index of an older version) gets only that part built. Runs before the server accepts requests.

use super::access::{self, Summary};
use super::index::entries;
use crate::engine::ThingState;
use crate::policy::PolicyState;
use crate::store::{Op, Store, StoreError, Tree};
use std::time::Instant;

/// Key of the index format version in `Tree::Meta`.
pub const VERSION_KEY: &[u8] = b"search.index.version";
/// The current index format version (bump when the key layout or the indexed set changes;
/// 2: Ditto's fixed path words as 2-byte tokens in every key, `search::keys`).
pub const VERSION: &[u8] = b"2";
/// Key of the access part's version in `Tree::Meta`.
pub const ACCESS_VERSION_KEY: &[u8] = b"search.access.version";
/// The current version of the access part.
pub const ACCESS_VERSION: &[u8] = b"1";
/// Key+value bytes per durable chunk while rebuilding. Bounds memory, and stays below the
/// size at which sled 0.34 turns a batch into a blob file (~128 KiB): measured, bigger batches
/// make sled's resident memory grow with everything written (2048 ops of ~80 B: +1 GiB for
/// 450k entries; 512 ops: +70 MiB).
const CHUNK_BYTES: usize = 16 * 1024;
/// Entries read per scan.
const SCAN: usize = 512;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildStats {
    /// live things indexed
    pub things: u64,
    /// policies summarized
    pub policies: u64,
    /// index entries written
    pub entries: u64,
    /// stale entries removed first
    pub removed: u64,
    /// wall time in milliseconds
    pub millis: u64,
}

/// Ops collected for one durable chunk.
#[derive(Default)]
struct Chunk {
    ops: Vec<Op>,
    bytes: usize,
}

impl Chunk {
    fn push(&mut self, store: &Store, op: Op) -> Result<(), StoreError> {
        self.bytes += op.key.len() + op.value.as_ref().map_or(0, Vec::len);
        self.ops.push(op);
        if self.bytes >= CHUNK_BYTES {
            self.flush(store)?;
        }
        Ok(())
    }

    fn flush(&mut self, store: &Store) -> Result<(), StoreError> {
        self.bytes = 0;
        if self.ops.is_empty() {
            return Ok(());
        }
        let seq = store.submit(std::mem::take(&mut self.ops));
        smol::block_on(store.durable(seq))
    }
}

/// Rebuilds unless the stored version is current (or builds the access part alone, if only it
/// is missing or old); `Some(stats)` if it wrote anything.
pub fn ensure_index(store: &Store) -> Result<Option<RebuildStats>, StoreError> {
    if store.get(Tree::Meta, VERSION_KEY)?.as_deref() == Some(VERSION) {
        if store.get(Tree::Meta, ACCESS_VERSION_KEY)?.as_deref() == Some(ACCESS_VERSION) {
            return Ok(None);
        }
        let stats = rebuild_access(store)?;
        tracing::info!(
            things = stats.things,
            policies = stats.policies,
            millis = stats.millis,
            "search index: access part built"
        );
        return Ok(Some(stats));
    }
    let stats = rebuild(store)?;
    tracing::info!(
        things = stats.things,
        entries = stats.entries,
        removed = stats.removed,
        millis = stats.millis,
        "search index rebuilt"
    );
    Ok(Some(stats))
}

/// Drops every index entry and indexes every live thing again; writes the version last.
pub fn rebuild(store: &Store) -> Result<RebuildStats, StoreError> {
    build(store, false)
}

/// Builds the access part alone (an index written by a version without it): each live thing's
/// policy ID entry and each policy's summary; its version last.
pub fn rebuild_access(store: &Store) -> Result<RebuildStats, StoreError> {
    build(store, true)
}

/// A version key in `Tree::Meta` and its current value.
type Version = (&'static [u8], &'static [u8]);

/// The whole index, or its access part alone: its version(s) dropped, its entries cleared, every
/// live thing's entries (of the part) and every policy's summary written in durable chunks, the
/// version(s) written last.
fn build(store: &Store, access_only: bool) -> Result<RebuildStats, StoreError> {
    let started = Instant::now();
    const ALL: &[Version] = &[(VERSION_KEY, VERSION), (ACCESS_VERSION_KEY, ACCESS_VERSION)];
    const ACCESS: &[Version] = &[(ACCESS_VERSION_KEY, ACCESS_VERSION)];
    let (versions, prefix): (&[Version], &[u8]) = if access_only {
        (ACCESS, &[access::ACCESS])
    } else {
        (ALL, b"")
    };
    let mut stats = RebuildStats::default();
    let mut chunk = Chunk::default();
    for (key, _) in versions {
        chunk.push(store, Op::delete(Tree::Meta, *key))?;
    }
    chunk.flush(store)?;
    stats.removed = clear(store, &mut chunk, prefix)?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store.scan(Tree::Things, b"", after.as_deref(), SCAN)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for (k, v) in batch {
            let Ok(state) = ThingState::from_bytes(&v) else {
                tracing::warn!(thing = %String::from_utf8_lossy(&k), "unreadable thing not indexed");
                continue;
            };
            if state.deleted {
                continue;
            }
            stats.things += 1;
            for (key, value) in entries(&state) {
                if key.starts_with(prefix) {
                    chunk.push(store, Op::put(Tree::Index, key, value))?;
                    stats.entries += 1;
                }
            }
        }
    }
    stats.policies = summarize_policies(store, &mut chunk)?;
    chunk.flush(store)?;
    for (key, version) in versions {
        chunk.push(store, Op::put(Tree::Meta, *key, *version))?;
    }
    chunk.flush(store)?;
    stats.millis = started.elapsed().as_millis() as u64;
    Ok(stats)
}

/// Deletes every index entry under `prefix`; returns how many.
fn clear(store: &Store, chunk: &mut Chunk, prefix: &[u8]) -> Result<u64, StoreError> {
    let mut removed = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store.scan(Tree::Index, prefix, after.as_deref(), SCAN)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for (k, _) in batch {
            chunk.push(store, Op::delete(Tree::Index, k))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Puts the READ summary of every stored policy.
fn summarize_policies(store: &Store, chunk: &mut Chunk) -> Result<u64, StoreError> {
    let mut n = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store.scan(Tree::Policies, b"", after.as_deref(), SCAN)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for (k, v) in batch {
            let (Ok(id), Some(p)) = (std::str::from_utf8(&k), PolicyState::from_bytes(&v)) else {
                continue;
            };
            let summary = Summary::of(&p.policy).to_bytes();
            chunk.push(
                store,
                Op::put(Tree::Index, access::key(id, access::POLICY), summary),
            )?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::keys;
    use crate::store::BackendKind;
    use serde_json::json;

    #[test]
    fn rebuilds_once_and_drops_stale_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Sled, dir.path(), 1 << 20).unwrap();
        let live = ThingState {
            thing: json!({"thingId": "n:a", "attributes": {"x": 1}}),
            revision: 1,
            created: 0,
            modified: 0,
            metadata: None,
            deleted: false,
        };
        let mut gone = live.clone();
        gone.thing["thingId"] = json!("n:b");
        gone.deleted = true;
        let stale = keys::value_key("attributes/x", &json!(9), "n:zombie");
        let seq = store.submit(vec![
            Op::put(Tree::Things, "n:a", live.to_bytes()),
            Op::put(Tree::Things, "n:b", gone.to_bytes()),
            Op::put(Tree::Index, stale.clone(), vec![0]),
        ]);
        smol::block_on(store.durable(seq)).unwrap();
        let s = ensure_index(&store).unwrap().expect("rebuilt");
        assert_eq!((s.things, s.removed), (1, 1));
        assert_eq!(s.entries as usize, entries(&live).len());
        assert_eq!(store.get(Tree::Index, &stale).unwrap(), None);
        let want = keys::value_key("attributes/x", &json!(1), "n:a");
        assert_eq!(store.get(Tree::Index, &want).unwrap(), Some(vec![0]));
        assert_eq!(
            ensure_index(&store).unwrap(),
            None,
            "current version: no rebuild"
        );
        store.close().unwrap();
    }
}
