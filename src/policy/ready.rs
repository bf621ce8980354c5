//! The whole store write of one policy change as data: the policy (or its deletion), its
//! marker in the persisted expiry index (`expiry_index`) and its READ summary in the search
//! index (`search::access`, when it changes), one atomic unit. The hub submits it as it is;
//! policy commands, the expiry timer and a policy created with its thing all use it.

use super::expiry::has_expiring;
use super::{expiry_index, PolicyState};
use crate::store::{Op, Tree};
use serde_json::Value;

/// The ops that turn policy `id` from `before` (its JSON, `None` = absent) into `after`
/// (`None` = deleted).
pub fn write_ops(id: &str, before: Option<&Value>, after: Option<&PolicyState>) -> Vec<Op> {
    let mut ops = vec![Op {
        tree: Tree::Policies,
        key: id.as_bytes().to_vec(),
        value: after.map(PolicyState::to_bytes),
        fresh: false,
    }];
    let was = before.is_some_and(has_expiring);
    ops.extend(expiry_index::marker_op(id, was, after.map(|s| &s.policy)));
    ops.extend(crate::search::access::policy_op(
        id,
        before,
        after.map(|s| &s.policy),
    ));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(expiry: bool) -> Value {
        let mut s = json!({"type": "t"});
        if expiry {
            s["expiry"] = json!("2030-01-01T00:00:00Z");
        }
        json!({"policyId": "n:p", "entries": {"e": {"subjects": {"u:a": s},
            "resources": {"policy:/": {"grant": ["WRITE"], "revoke": []}}}}})
    }

    #[test]
    fn the_policy_and_its_expiry_marker_in_one_write() {
        let with = PolicyState::new(policy(true), 5);
        let ops = write_ops("n:p", None, Some(&with));
        assert_eq!(ops.len(), 3, "policy, expiry marker, search summary");
        assert_eq!(ops[2].key, crate::search::access::key("n:p", b'p'));
        assert_eq!(
            (ops[0].tree, &ops[0].key[..]),
            (Tree::Policies, &b"n:p"[..])
        );
        assert_eq!(ops[0].value.as_deref(), Some(&with.to_bytes()[..]));
        assert_eq!(ops[1].key, expiry_index::key("n:p"));
        assert!(ops[1].value.is_some(), "marked");
        let without = PolicyState::new(policy(false), 6);
        let ops = write_ops("n:p", Some(&with.policy), Some(&without));
        assert_eq!(ops.len(), 3, "the summary is no longer fine-grained");
        assert_eq!(ops[1].value, None, "unmarked: it had expiring subjects");
        assert_eq!(
            write_ops("n:p", Some(&without.policy), Some(&without)).len(),
            1
        );
        let ops = write_ops("n:p", Some(&with.policy), None);
        assert_eq!(
            (ops[0].value.as_ref(), ops.len(), ops[2].value.as_ref()),
            (None, 3, None),
            "deleted, unmarked, no summary"
        );
    }
}
