//! The enforcers a search needs, per query: cached by policy ID (bounded; weakly, so that the
//! hub's policy cache, bounded in bytes, decides which stay in memory), the last one kept
//! (things of one policy often come in a row). The hub shares one enforcer between policies
//! whose entries are the same text (`Hub::enforcer`), so a count over many twins with a policy
//! each costs a policy read per twin, not a decode and an enforcer build.

use crate::error::DittoError;
use crate::hub::{Hub, Requester};
use crate::policy::{Enforcer, READ};
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Cached policy IDs (cleared when full).
const CACHE: usize = 256;

/// An enforcer and whether it grants the requester READ on the whole thing.
pub(super) type Readable = (Arc<Enforcer>, bool);
/// A `Readable` as the per-query cache keeps it.
type Remembered = (Weak<Enforcer>, bool);

/// Per-query enforcer cache. The enforcers by policy ID are weak: 256 distinct ones of the
/// largest policies would be ~950 MB per query (docs/limits.md, RELIABILITY.md "Policy storms").
#[derive(Default)]
pub(super) struct Enforcers {
    by_id: HashMap<(String, String), Option<Remembered>>,
    last: Option<(String, String, Option<Readable>)>,
}

impl Enforcers {
    /// The enforcer of policy `pid` for a thing in namespace `ns`, or `None` if there is none.
    pub(super) fn get(
        &mut self,
        hub: &Hub,
        who: &Requester,
        pid: &str,
        ns: &str,
        now: i64,
    ) -> Result<Option<Readable>, DittoError> {
        if let Some((p, n, e)) = &self.last {
            if p == pid && n == ns {
                return Ok(e.clone());
            }
        }
        let key = (pid.to_owned(), ns.to_owned());
        let known = match self.by_id.get(&key) {
            Some(None) => Some(None),
            // gone from the hub's policy cache: looked up again
            Some(Some((weak, full))) => weak.upgrade().map(|e| Some((e, *full))),
            None => None,
        };
        let e = match known {
            Some(e) => e,
            None => {
                let e = hub.enforcer(pid, ns, now)?.map(|e| {
                    let full = e.has_unrestricted(&who.subjects, "thing", &[], READ);
                    (e, full)
                });
                if self.by_id.len() >= CACHE {
                    self.by_id.clear();
                }
                let weak = e.as_ref().map(|(e, full)| (Arc::downgrade(e), *full));
                self.by_id.insert(key, weak);
                e
            }
        };
        self.last = Some((pid.to_owned(), ns.to_owned(), e.clone()));
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyState;
    use crate::store::{BackendKind, Op, Store, Tree};
    use serde_json::json;
    use serde_json::Value;

    fn put(store: &Store, id: &str, policy: Value) {
        let p = PolicyState::new(policy, 1);
        let seq = store.submit(vec![Op::put(Tree::Policies, id, p.to_bytes())]);
        smol::block_on(store.durable(seq)).unwrap();
    }

    fn who(s: &str) -> Requester {
        Requester {
            subjects: Arc::from(vec![s.to_owned()]),
            origin: None,
        }
    }

    #[test]
    fn policies_with_equal_entries_share_one_enforcer_unless_imports_or_expiry_matter() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let read = json!({"grant": ["READ"], "revoke": []});
        let own = json!({"owner": {"subjects": {"nginx:owner": {"type": "t"}},
                                   "resources": {"thing:/": read}}});
        put(
            &store,
            "n:plain1",
            json!({"policyId": "n:plain1", "entries": own}),
        );
        put(
            &store,
            "n:plain2",
            json!({"policyId": "n:plain2", "entries": own}),
        );
        // the same entries, but `s` gets READ through an import
        put(
            &store,
            "n:lib",
            json!({"policyId": "n:lib", "entries": {
            "s": {"subjects": {"nginx:s": {"type": "t"}}, "resources": {"thing:/": read}}}}),
        );
        put(
            &store,
            "n:importer",
            json!({"policyId": "n:importer", "entries": own,
            "imports": {"n:lib": {}}}),
        );
        // the same entries plus `s` whose subject expired: not READ at `now`
        let mut expired = own.clone();
        expired["s"] = json!({"subjects": {"nginx:s": {"type": "t",
            "expiry": "2020-01-01T00:00:00Z"}}, "resources": {"thing:/": read}});
        put(
            &store,
            "n:expired",
            json!({"policyId": "n:expired", "entries": expired}),
        );
        let hub = Hub::new(store);
        let (s, owner) = (who("nginx:s"), who("nginx:owner"));
        let now = crate::clock::now_millis();
        let mut e = Enforcers::default();
        let p1 = e.get(&hub, &owner, "n:plain1", "n", now).unwrap().unwrap();
        let p2 = e.get(&hub, &owner, "n:plain2", "n", now).unwrap().unwrap();
        assert!(p1.1 && p2.1, "the owner reads both");
        assert!(
            Arc::ptr_eq(&p1.0, &p2.0),
            "equal entries share one enforcer"
        );
        let mut e = Enforcers::default();
        for pid in ["n:plain1", "n:importer", "n:plain2", "n:expired"] {
            let (_, full) = e.get(&hub, &s, pid, "n", now).unwrap().unwrap();
            assert_eq!(full, pid == "n:importer", "{pid}");
        }
        assert!(e.get(&hub, &s, "n:missing", "n", now).unwrap().is_none());
    }

    #[test]
    fn the_per_query_cache_keeps_no_enforcer_the_policy_cache_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
        let read = json!({"grant": ["READ"], "revoke": []});
        for (id, subject) in [("n:a", "nginx:a"), ("n:b", "nginx:b")] {
            let entries = json!({"e": {"subjects": {subject: {"type": "t"}},
                                       "resources": {"thing:/": read}}});
            put(&store, id, json!({"policyId": id, "entries": entries}));
        }
        let hub = Hub::new(store);
        // the hub keeps one enforcer at a time (and one for sharing)
        hub.set_policy_cache_bytes(1);
        let (a, now) = (who("nginx:a"), crate::clock::now_millis());
        let mut e = Enforcers::default();
        let first = Arc::downgrade(&e.get(&hub, &a, "n:a", "n", now).unwrap().unwrap().0);
        assert!(!e.get(&hub, &a, "n:b", "n", now).unwrap().unwrap().1);
        // `last` holds n:b's; n:a's went with the hub's caches
        assert!(first.upgrade().is_none(), "the query kept n:a's enforcer");
        let (_, full) = e.get(&hub, &a, "n:a", "n", now).unwrap().unwrap();
        assert!(full, "looked up again");
    }
}
