//! The persisted index of policies with expiring subjects: one empty marker per such policy in
//! `Tree::Meta` (`policy.expiring/<policyId>`), written in the same atomic unit as the policy, so
//! the expiry timer finds them after a restart without reading every stored policy (that scan
//! pulled the whole policy tree through the store cache: +8 MiB idle RSS at 10k twins).
//! `ensure_index` builds the markers once for data dirs from before the index.

use super::expiry::has_expiring;
use super::PolicyState;
use crate::store::{Op, Store, StoreError, Tree};
use serde_json::Value;

/// Key prefix of the markers in `Tree::Meta`.
pub const PREFIX: &[u8] = b"policy.expiring/";
/// Key of the index format version in `Tree::Meta` (written after the markers).
pub const VERSION_KEY: &[u8] = b"policy.expiring.version";
/// The current index format version.
pub const VERSION: &[u8] = b"1";
/// Policies read per scan while building, and most marker ops per durable chunk.
const CHUNK: usize = 256;

/// The marker key of a policy.
pub fn key(policy_id: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(policy_id.as_bytes());
    k
}

/// The policy id of a marker key (`None` for other keys).
pub fn policy_id(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key.strip_prefix(PREFIX)?).ok()
}

/// The marker op to add to a write of policy `id` whose previous content had expiring subjects
/// (`was`) and whose new content is `now` (`None` = deleted): a put when the new content has
/// expiring subjects, a delete when only the old one had, nothing otherwise (so writes of
/// policies without expiry, e.g. every default policy of a new thing, cost nothing extra).
pub fn marker_op(id: &str, was: bool, now: Option<&Value>) -> Option<Op> {
    match (was, now.is_some_and(has_expiring)) {
        (_, true) => Some(Op::put(Tree::Meta, key(id), Vec::new())),
        (true, false) => Some(Op::delete(Tree::Meta, key(id))),
        (false, false) => None,
    }
}

fn commit(store: &Store, ops: &mut Vec<Op>) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    let seq = store.submit(std::mem::take(ops));
    smol::block_on(store.durable(seq))
}

/// Builds the markers from every stored policy unless the stored version is current; the number
/// of policies read if it built. Runs before the server accepts requests (one-time cost).
pub fn ensure_index(store: &Store) -> Result<Option<u64>, StoreError> {
    if store.get(Tree::Meta, VERSION_KEY)?.as_deref() == Some(VERSION) {
        return Ok(None);
    }
    let mut read = 0;
    let mut ops = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = store.scan(Tree::Policies, b"", after.as_deref(), CHUNK)?;
        let Some((last, _)) = batch.last() else { break };
        after = Some(last.clone());
        for (k, v) in batch {
            read += 1;
            let (Ok(id), Some(s)) = (std::str::from_utf8(&k), PolicyState::from_bytes(&v)) else {
                continue;
            };
            ops.extend(marker_op(id, false, Some(&s.policy)));
        }
        if ops.len() >= CHUNK {
            commit(store, &mut ops)?;
        }
    }
    ops.push(Op::put(Tree::Meta, VERSION_KEY, VERSION));
    commit(store, &mut ops)?;
    tracing::info!(policies = read, "policy expiry index built");
    Ok(Some(read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BackendKind;
    use serde_json::json;

    fn policy(expiry: Option<&str>) -> Value {
        let mut s = json!({"type": "t"});
        if let Some(e) = expiry {
            s["expiry"] = json!(e);
        }
        json!({"policyId": "n:p", "entries": {"e": {"subjects": {"u:a": s},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}})
    }

    #[test]
    fn marker_ops_follow_the_expiring_subjects() {
        let with = policy(Some("2099-01-01T00:00:00Z"));
        let without = policy(None);
        let put = Op::put(Tree::Meta, key("n:p"), Vec::new());
        let del = Op::delete(Tree::Meta, key("n:p"));
        assert_eq!(marker_op("n:p", false, Some(&with)), Some(put.clone()));
        assert_eq!(marker_op("n:p", true, Some(&with)), Some(put));
        assert_eq!(marker_op("n:p", true, Some(&without)), Some(del.clone()));
        assert_eq!(marker_op("n:p", true, None), Some(del));
        assert_eq!(marker_op("n:p", false, Some(&without)), None);
        assert_eq!(marker_op("n:p", false, None), None);
        assert_eq!(policy_id(&key("n:p")), Some("n:p"));
        assert_eq!(policy_id(b"other"), None);
    }

    #[test]
    fn builds_markers_once_for_policies_with_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Sled, dir.path(), 1 << 20).unwrap();
        let mut ops = Vec::new();
        for i in 0..600 {
            let p = policy((i % 100 == 7).then_some("2099-01-01T00:00:00Z"));
            let id = format!("n:p{i:03}");
            ops.push(Op::put(
                Tree::Policies,
                id,
                PolicyState::new(p, 0).to_bytes(),
            ));
        }
        let seq = store.submit(ops);
        smol::block_on(store.durable(seq)).unwrap();
        assert_eq!(ensure_index(&store).unwrap(), Some(600));
        let markers = store.scan(Tree::Meta, PREFIX, None, 100).unwrap();
        let ids: Vec<_> = markers.iter().filter_map(|(k, _)| policy_id(k)).collect();
        assert_eq!(
            ids,
            ["n:p007", "n:p107", "n:p207", "n:p307", "n:p407", "n:p507"]
        );
        assert_eq!(
            ensure_index(&store).unwrap(),
            None,
            "current version: no scan"
        );
        store.close().unwrap();
    }
}
