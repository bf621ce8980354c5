//! The whole write of one twin command as data (raft-rs hands back a `Ready`): the store ops
//! as one atomic unit (the thing, its search index delta, a policy created with it and that
//! policy's expiry marker), the durability class, and what the hub updates after submitting it
//! (the twin cache entry, the policy cache, the change hook). Built from the engine's `Outcome`
//! without a store; the hub submits it as it is.

use super::state::Replaced;
use super::{Event, Outcome, ThingState};
use crate::policy::PolicyState;
use crate::search::index::Size;
use crate::store::{Op, Tree};
use serde_json::Value;

/// The two durability classes of a write (what the requester waits for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Someone waits for it to be on disk (`twin-persisted` / `search-persisted` requested, the
    /// default of client commands): answered once synced (group commit), and its event is
    /// published only then.
    Waited,
    /// Nobody waits (`requested-acks: []`, `response-required: false`, MQTT telemetry): on disk
    /// within `store.flush_interval_ms` together with every other write of that interval, a
    /// crash loses at most that interval; its event is published at once.
    Interval,
}

impl Durability {
    /// `Waited` if the requester waits for the write to be persisted.
    pub fn waited_if(persisted: bool) -> Durability {
        if persisted {
            Durability::Waited
        } else {
            Durability::Interval
        }
    }
}

/// Everything one twin write persists and changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    /// the thing written (the change hook is told of it)
    pub thing_id: String,
    /// the store ops, one atomic unit
    pub ops: Vec<Op>,
    /// who waits for it to be on disk
    pub durability: Durability,
    /// the thing after the change (tombstones included): the twin cache's new entry
    pub state: ThingState,
    /// how `state` is indexed (cached with it)
    pub size: Size,
    /// length of the stored form of `state` (the cache's size estimate)
    pub encoded_len: usize,
    /// a policy created with the thing (the policy cache learns of it)
    pub policy: Option<(String, Value)>,
    /// the event the change causes
    pub event: Option<Event>,
}

/// The thing before a write, as much as `ready` needs of it (the search index delta).
#[derive(Debug, Clone, Copy)]
pub enum Before<'a> {
    /// the whole state (`None`: never existed)
    State(Option<&'a ThingState>),
    /// a write done in place (`engine::apply_in_place`): what it replaced
    Replaced(&'a Replaced),
}

/// Room kept in `Ready::ops` for the history's ops of a thing change (src/hub/history_write.rs).
const HISTORY_OPS: usize = 4;

/// The write of `outcome` (the engine's answer to a command on the state `before`, whose index
/// size is `current_size` when known), or `None` for a command that writes nothing. Takes the
/// new state, its bytes and the event out of `outcome`.
pub fn ready(
    thing_id: &str,
    before: Before,
    current_size: Option<Size>,
    outcome: &mut Outcome,
    now: i64,
    durability: Durability,
) -> Option<Ready> {
    outcome.state.as_ref()?;
    let bytes = outcome.bytes.take()?;
    let state = outcome.state.take()?;
    let encoded_len = bytes.len();
    // search index delta, in the same atomic unit as the thing (src/search)
    let (index, size) = match before {
        Before::State(current) => {
            crate::search::delta::write_ops(current, current_size, Some(&state))
        }
        Before::Replaced(r) => crate::search::delta::write_ops_replaced(&state, current_size, r),
    };
    // sized at once: the thing, its index delta and the history ops the hub adds (an event,
    // the counts, a time index entry, a snapshot: `HISTORY_OPS`)
    let mut ops = Vec::with_capacity(1 + index.len() + HISTORY_OPS);
    ops.push(Op {
        tree: Tree::Things,
        key: thing_id.as_bytes().to_vec(),
        value: Some(bytes),
        fresh: false,
    });
    ops.extend(index);
    if let Some((pid, policy)) = &outcome.policy {
        // a new policy (and its expiry marker if it has expiring subjects)
        let created = PolicyState::new(policy.clone(), now);
        ops.extend(crate::policy::ready::write_ops(pid, None, Some(&created)));
    }
    Some(Ready {
        thing_id: thing_id.to_owned(),
        ops,
        durability,
        state,
        size,
        encoded_len,
        policy: outcome.policy.clone(),
        event: outcome.event.take(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{apply, Ctx, FnLookup};
    use crate::protocol::{Envelope, Signal};
    use crate::search::index::sized_entries;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn run(state: Option<&ThingState>, v: serde_json::Value) -> Outcome {
        let Ok(Signal::Thing(cmd)) =
            Signal::from_envelope(Envelope::parse(&v.to_string()).unwrap())
        else {
            panic!("not a thing command")
        };
        let ctx = Ctx {
            now: NOW,
            subject: "nginx:ditto",
            // the policy `n:p` exists
            lookup: &FnLookup(
                |_: &str| None,
                |id: &str| (id == "n:p").then(|| crate::engine::default_policy(id, "u:a")),
            ),
            access: None,
        };
        apply(state, &cmd, &ctx).unwrap()
    }

    fn trees(r: &Ready) -> Vec<Tree> {
        let mut t: Vec<Tree> = r.ops.iter().map(|o| o.tree).collect();
        t.dedup();
        t
    }

    #[test]
    fn a_create_writes_the_thing_its_index_and_its_default_policy_at_once() {
        let mut o = run(
            None,
            json!({"topic": "n/t/things/twin/commands/create", "path": "/",
                "value": {"attributes": {"a": 1}}}),
        );
        let bytes = o.bytes.clone();
        let r = ready(
            "n:t",
            Before::State(None),
            None,
            &mut o,
            NOW,
            Durability::Waited,
        )
        .unwrap();
        assert_eq!(r.thing_id, "n:t");
        assert_eq!(r.durability, Durability::Waited);
        assert_eq!(r.ops[0].key, b"n:t");
        assert_eq!(r.ops[0].value, bytes);
        // the policy's READ summary (search::access) goes to the index with the policy
        assert_eq!(
            trees(&r),
            [Tree::Things, Tree::Index, Tree::Policies, Tree::Index]
        );
        let (entries, size) = sized_entries(&r.state);
        assert_eq!(r.size, size);
        let index: Vec<&Op> = r.ops.iter().filter(|o| o.tree == Tree::Index).collect();
        assert_eq!(
            index.len(),
            entries.len() + 1,
            "every entry of the new twin"
        );
        let (pid, policy) = r.policy.as_ref().unwrap();
        assert_eq!(pid, "n:t");
        let policy_op = r.ops.iter().find(|o| o.tree == Tree::Policies).unwrap();
        let stored = PolicyState::from_bytes(policy_op.value.as_ref().unwrap());
        assert_eq!(stored.map(|s| s.policy), Some(policy.clone()));
        assert!(
            r.event.is_some() && o.state.is_none() && o.event.is_none() && o.bytes.is_none(),
            "taken"
        );
        assert_eq!(r.encoded_len, bytes.unwrap().len());
    }

    #[test]
    fn a_change_writes_the_thing_and_only_the_changed_index_entries() {
        let o = run(
            None,
            json!({"topic": "n/t/things/twin/commands/create", "path": "/",
                "value": {"policyId": "n:p", "attributes": {"a": 1, "b": 2}}}),
        );
        let created = o.state.clone().unwrap();
        let size = sized_entries(&created).1;
        let mut o = run(
            Some(&created),
            json!({"topic": "n/t/things/twin/commands/modify", "path": "/attributes/a",
                "value": 5}),
        );
        let r = ready(
            "n:t",
            Before::State(Some(&created)),
            Some(size),
            &mut o,
            NOW,
            Durability::Interval,
        )
        .unwrap();
        assert_eq!(r.durability, Durability::Interval);
        assert_eq!(trees(&r), [Tree::Things, Tree::Index], "no policy written");
        assert!(r.policy.is_none());
        let old = crate::search::index::sized_entries(&created).0;
        let new = sized_entries(&r.state).0;
        let expected = crate::search::index::delta(&old, &new);
        let index: Vec<Op> = r
            .ops
            .iter()
            .filter(|o| o.tree == Tree::Index)
            .cloned()
            .collect();
        assert_eq!(index, expected, "the delta, not the whole twin");
        assert!(index.len() < new.len());
    }

    #[test]
    fn a_read_writes_nothing() {
        let mut o = run(
            None,
            json!({"topic": "n/t/things/twin/commands/create", "path": "/", "value": {}}),
        );
        let created = o.state.take().unwrap();
        let mut o = run(
            Some(&created),
            json!({"topic": "n/t/things/twin/commands/retrieve", "path": "/"}),
        );
        assert!(ready(
            "n:t",
            Before::State(Some(&created)),
            None,
            &mut o,
            NOW,
            Durability::Waited
        )
        .is_none());
    }
}
