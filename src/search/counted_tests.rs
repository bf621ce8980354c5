//! Counts decided from the index equal the full path (every page of the same query) for
//! requesters with full, partial, revoked and no READ; after a policy change, a thing's policy
//! change and a rebuild of the access part (a data dir of an older version).

use crate::engine::ThingState;
use crate::hub::{Hub, Requester};
use crate::policy::PolicyState;
use crate::search::exec::{Searcher, Spec};
use crate::search::{access, index, rebuild, request};
use crate::store::{BackendKind, Op, Store, Tree};
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) fn who(s: &[&str]) -> Requester {
    Requester {
        subjects: Arc::from(s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>()),
        origin: None,
    }
}

pub(crate) fn submit(store: &Store, ops: Vec<Op>) {
    let seq = store.submit(ops);
    smol::block_on(store.durable(seq)).unwrap();
}

pub(crate) fn put_policy(store: &Store, id: &str, before: Option<&Value>, entries: Value) -> Value {
    let p = json!({"policyId": id, "entries": entries});
    let st = PolicyState::new(p.clone(), 0);
    submit(
        store,
        crate::policy::ready::write_ops(id, before, Some(&st)),
    );
    p
}

fn state(id: &str, pid: &str, room: i64) -> ThingState {
    ThingState {
        thing: json!({"thingId": id, "policyId": pid,
            "attributes": {"room": format!("r{room}"), "n": room, "secret": room * 10,
                           "tags": ["a", "b"]}}),
        revision: 1,
        created: 0,
        modified: 0,
        metadata: None,
        deleted: false,
    }
}

/// Writes a thing as the twin write path does: the thing and its index delta together.
fn put_thing(store: &Store, old: Option<&ThingState>, new: &ThingState) {
    let id = new.thing["thingId"].as_str().unwrap();
    let (mut ops, _) = crate::search::delta::write_ops(old, None, Some(new));
    ops.push(Op::put(Tree::Things, id, new.to_bytes()));
    submit(store, ops);
}

fn spec(filter: &str) -> Spec {
    let p = request::Params {
        filters: vec![filter.to_owned()],
        ..Default::default()
    };
    request::resolve(&p, request::Endpoint::Search)
        .unwrap()
        .spec
}

/// (count, how many candidates the index decided, the number of things all pages hold)
fn both(hub: &Hub, w: &Requester, filter: &str) -> (u64, u64, u64) {
    let now = crate::clock::now_millis();
    let s = spec(filter);
    let mut c = Searcher::new(hub, w, now, None);
    let n = c.count(&s).unwrap();
    let mut p = Searcher::new(hub, w, now, None);
    let (mut total, mut after) = (0, None);
    loop {
        let page = p.page(&s, after.as_ref(), 7).unwrap();
        total += page.items.len() as u64;
        match page.more {
            Some(pos) => after = Some(pos),
            None => break,
        }
    }
    (n, c.decided_by_index, total)
}

const FILTERS: [&str; 6] = [
    "eq(attributes/room,\"r1\")",
    "ge(attributes/n,2)",
    "and(ge(attributes/n,1),lt(attributes/n,3))",
    "ne(attributes/room,\"r0\")",
    "eq(attributes/secret,10)",
    "eq(attributes/tags,\"a\")",
];

#[test]
fn index_decided_counts_equal_the_full_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    let read = json!({"grant": ["READ"], "revoke": []});
    let no_secret = json!({"grant": [], "revoke": ["READ"]});
    let mut p = Vec::new();
    // per thing its own policy (Ditto's default): t0..t9 -> own; t10..t19 -> shared
    for i in 0..10 {
        let id = format!("n:t{i}");
        let mut entries = json!({
            "owner": {"subjects": {"u:owner": {"type": "t"}}, "resources": {"thing:/": read}},
            "part": {"subjects": {"u:part": {"type": "t"}},
                     "resources": {"thing:/attributes/room": read, "thing:/attributes/n": read}},
            "cut": {"subjects": {"u:cut": {"type": "t"}},
                    "resources": {"thing:/": read, "thing:/attributes/secret": no_secret}}});
        if i % 3 == 0 {
            // fine-grained: an expiring subject
            entries["owner"]["subjects"]["u:x"] =
                json!({"type": "t", "expiry": "2099-01-01T00:00:00Z"});
        }
        p.push(put_policy(&store, &id, None, entries));
        put_thing(&store, None, &state(&id, &id, i % 4));
    }
    put_policy(
        &store,
        "n:shared",
        None,
        json!({
        "owner": {"subjects": {"u:owner": {"type": "t"}, "u:cut": {"type": "t"}},
                  "resources": {"thing:/": read}}}),
    );
    for i in 10..20 {
        put_thing(&store, None, &state(&format!("n:t{i}"), "n:shared", i % 4));
    }
    let hub = Hub::new(store.clone());
    let check = |label: &str, hub: &Hub| {
        let mut decided = 0;
        for w in [
            who(&["u:owner"]),
            who(&["u:part"]),
            who(&["u:cut"]),
            who(&["u:owner", "u:cut"]),
            who(&["u:nobody"]),
        ] {
            for f in FILTERS {
                let (n, d, total) = both(hub, &w, f);
                assert_eq!(n, total, "{label}: {:?} {f}", w.subjects);
                decided += d;
            }
        }
        decided
    };
    assert!(
        check("start", &hub) > 80,
        "the index decides most candidates"
    );
    let (n, d, _) = both(&hub, &who(&["u:owner"]), FILTERS[0]);
    assert_eq!(
        (n, d),
        (5, 4),
        "r1: t1 t5 t9 t13 t17; t9's policy is fine-grained"
    );

    // a policy change: u:owner loses READ on t1's thing, u:part gains it
    let entries = json!({
        "owner": {"subjects": {"u:part": {"type": "t"}}, "resources": {"thing:/": read}}});
    put_policy(&store, "n:t1", Some(&p[1]), entries);
    let hub = Hub::new(store.clone());
    assert_eq!(both(&hub, &who(&["u:owner"]), FILTERS[0]).0, 4);
    check("policy modified", &hub);

    // a thing moves to another policy
    let old = state("n:t5", "n:t5", 1);
    put_thing(&store, Some(&old), &state("n:t5", "n:t1", 1));
    let hub = Hub::new(store.clone());
    assert_eq!(both(&hub, &who(&["u:owner"]), FILTERS[0]).0, 3);
    check("policyId changed", &hub);

    // a deleted policy: its things are not visible (the full path decides)
    submit(
        &store,
        crate::policy::ready::write_ops("n:t9", Some(&p[9]), None),
    );
    let hub = Hub::new(store.clone());
    assert_eq!(both(&hub, &who(&["u:owner"]), FILTERS[0]).0, 2);
    check("policy deleted", &hub);

    // an index of an older version (no access part, no access version): built at start
    let mut ops = vec![Op::delete(Tree::Meta, rebuild::ACCESS_VERSION_KEY)];
    let all = store
        .scan(Tree::Index, &[access::ACCESS], None, 10_000)
        .unwrap();
    // 10 summaries (n:t9's policy is deleted) + the 11 things whose policy is not their own
    // (t10..t19 and t5; a thing with its own policy has no entry)
    assert_eq!(all.len(), 21);
    ops.extend(all.into_iter().map(|(k, _)| Op::delete(Tree::Index, k)));
    submit(&store, ops);
    let hub = Hub::new(store.clone());
    assert_eq!(check("no access part", &hub), 0, "nothing to decide from");
    let stats = rebuild::ensure_index(&store)
        .unwrap()
        .expect("access part built");
    assert_eq!((stats.things, stats.policies), (20, 10));
    assert!(check("access part rebuilt", &hub) > 80);
    assert_eq!(rebuild::ensure_index(&store).unwrap(), None, "built once");
    // the rebuilt part equals what the writes left (things' entries + policies' summaries)
    let mut want = Vec::new();
    for (_, v) in store.scan(Tree::Things, b"", None, 100).unwrap() {
        let st = ThingState::from_bytes(&v).unwrap();
        want.extend(
            index::entries(&st)
                .into_iter()
                .filter(|(k, _)| k[0] == access::ACCESS),
        );
    }
    for (k, v) in store.scan(Tree::Policies, b"", None, 100).unwrap() {
        let pol = PolicyState::from_bytes(&v).unwrap().policy;
        let id = String::from_utf8(k).unwrap();
        want.push((
            access::key(&id, access::POLICY),
            access::Summary::of(&pol).to_bytes(),
        ));
    }
    want.sort();
    let got = store
        .scan(Tree::Index, &[access::ACCESS], None, 10_000)
        .unwrap();
    assert_eq!(got, want);
    store.close().unwrap();
}

/// A count while things are created and checkpoints move them out of the store's overlay: it
/// never fails and counts at least every thing created before it started (its reader's backend
/// view is replaced when a checkpoint moved entries it does not hold) and at most those
/// created before it ended.
#[test]
fn counts_during_writes_and_checkpoints() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    for kind in BackendKind::ALL {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::store::Options {
            max_pending_ops: 64, // a checkpoint every few things
            min_free_bytes: 0,
            ..Default::default()
        };
        let store = Store::open_with(kind, dir.path(), &opts).unwrap();
        let read = json!({"grant": ["READ"], "revoke": []});
        put_policy(
            &store,
            "n:shared",
            None,
            json!({"owner": {"subjects": {"u:owner": {"type": "t"}},
                             "resources": {"thing:/": read}}}),
        );
        let (done, created) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let writer = {
            let (store, done, created) = (store.clone(), done.clone(), created.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !done.load(Ordering::SeqCst) && i < 3_000 {
                    smol::block_on(store.ready());
                    let new = state(&format!("n:c{i:05}"), "n:shared", 1);
                    let (mut ops, _) = crate::search::delta::write_ops(None, None, Some(&new));
                    ops.push(Op::put(Tree::Things, format!("n:c{i:05}"), new.to_bytes()));
                    store.submit(ops);
                    i += 1;
                    created.store(i, Ordering::SeqCst);
                }
            })
        };
        let hub = Hub::new(store.clone());
        let (w, s) = (who(&["u:owner"]), spec(FILTERS[0]));
        let start = store.stats().checkpoints;
        let (mut counts, mut decided) = (0, 0);
        while counts < 20 || store.stats().checkpoints < start + 10 {
            let before = created.load(Ordering::SeqCst);
            let mut c = Searcher::new(&hub, &w, crate::clock::now_millis(), None);
            let n = c.count(&s).expect("a count never fails");
            // the writer records a thing after submitting it: one more may be visible
            let after = created.load(Ordering::SeqCst) + 1;
            assert!(
                (before..=after).contains(&n),
                "{kind} count {counts}: {n} not in {before}..={after}"
            );
            decided += c.decided_by_index;
            counts += 1;
        }
        done.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        assert!(decided > 0, "{kind}: decided from the index");
        store.close().unwrap();
    }
}
