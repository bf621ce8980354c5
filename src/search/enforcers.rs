//! The enforcers a search needs, per query: cached by policy ID, and shared between policies
//! whose stored entries are the same text (Ditto gives every created thing its own policy, all
//! alike): such a policy costs a store read and a scan of its bytes, not a decode and a build.

use crate::hub::{Hub, Requester};
use crate::policy::{Enforcer, PolicyState, READ};
use crate::store::Tree;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Cached entries per map (each map is cleared when full).
const CACHE: usize = 256;

/// An enforcer and whether it grants the requester READ on the whole thing.
pub(super) type Readable = (Arc<Enforcer>, bool);

/// Per-query enforcer caches.
#[derive(Default)]
pub(super) struct Enforcers {
    by_id: HashMap<(String, String), Option<Readable>>,
    /// namespace -> entries text -> enforcer (policies without imports or expiring subjects)
    by_entries: HashMap<String, HashMap<String, Readable>>,
    /// the last one looked up (things of one policy often come in a row)
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
    ) -> Option<Readable> {
        if let Some((p, n, e)) = &self.last {
            if p == pid && n == ns {
                return e.clone();
            }
        }
        let key = (pid.to_owned(), ns.to_owned());
        let e = match self.by_id.get(&key) {
            Some(e) => e.clone(),
            None => {
                let e = self
                    .plain(hub, who, pid, ns, now)
                    .or_else(|| hub.enforcer(pid, ns, now).map(|e| readable(e, who)));
                if self.by_id.len() >= CACHE {
                    self.by_id.clear();
                }
                self.by_id.insert(key, e.clone());
                e
            }
        };
        self.last = Some((pid.to_owned(), ns.to_owned(), e.clone()));
        e
    }

    /// The enforcer of a stored policy whose enforcer depends only on its entries (see
    /// `PolicyState::plain_entries`), shared by entries text; `None`: ask the hub. Built as the
    /// hub builds it for such a policy (`Enforcer::from_policy` of the stored JSON), from the
    /// same bytes the hub would read.
    fn plain(
        &mut self,
        hub: &Hub,
        who: &Requester,
        pid: &str,
        ns: &str,
        now: i64,
    ) -> Option<Readable> {
        let bytes = hub.store().get(Tree::Policies, pid.as_bytes()).ok()??;
        let text = PolicyState::plain_entries(&bytes)?;
        if let Some(e) = self.by_entries.get(ns).and_then(|m| m.get(text)) {
            return Some(e.clone());
        }
        let entries: Value = serde_json::from_str(text).ok()?;
        let mut policy = serde_json::Map::new();
        policy.insert("entries".into(), entries);
        let e = Arc::new(Enforcer::from_policy(&Value::Object(policy), now, Some(ns)));
        let e = readable(e, who);
        if self.by_entries.values().map(HashMap::len).sum::<usize>() >= CACHE {
            self.by_entries.clear();
        }
        self.by_entries
            .entry(ns.to_owned())
            .or_default()
            .insert(text.to_owned(), e.clone());
        Some(e)
    }
}

fn readable(e: Arc<Enforcer>, who: &Requester) -> Readable {
    let full = e.has_unrestricted(&who.subjects, "thing", &[], READ);
    (e, full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BackendKind, Op, Store};
    use serde_json::json;

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
        let p1 = e.get(&hub, &owner, "n:plain1", "n", now).unwrap();
        let p2 = e.get(&hub, &owner, "n:plain2", "n", now).unwrap();
        assert!(p1.1 && p2.1, "the owner reads both");
        assert!(
            Arc::ptr_eq(&p1.0, &p2.0),
            "equal entries share one enforcer"
        );
        let mut e = Enforcers::default();
        for pid in ["n:plain1", "n:importer", "n:plain2", "n:expired"] {
            let (_, full) = e.get(&hub, &s, pid, "n", now).unwrap();
            assert_eq!(full, pid == "n:importer", "{pid}");
        }
        assert!(e.get(&hub, &s, "n:missing", "n", now).is_none());
    }
}
