//! Counts that decide candidates from the access map equal counts that read each candidate's
//! access entries (the map off) and the full path (every page), for requesters with full,
//! partial, revoked and no READ, on one hub across policy changes, policy ID changes, deleted
//! policies and new things (the map is rebuilt, never used stale), and with a small bound.

use super::*;
use crate::engine::ThingState;
use crate::hub::{Hub, Requester};
use crate::search::counted::tests::{put_policy, submit, who};
use crate::search::exec::{Searcher, Spec};
use crate::search::keys;
use crate::search::request;
use crate::store::{BackendKind, Op, Store};
use serde_json::{json, Value};

const THINGS: usize = 300;

fn state(id: &str, pid: &str, n: usize) -> ThingState {
    ThingState {
        thing: json!({"thingId": id, "policyId": pid,
            "attributes": {"room": format!("r{}", n % 3), "n": n % 7, "secret": n % 2}}),
        revision: 1,
        created: 0,
        modified: 0,
        metadata: None,
        deleted: false,
    }
}

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

fn count(hub: &Hub, w: &Requester, s: &Spec) -> u64 {
    Searcher::new(hub, w, crate::clock::now_millis(), None)
        .count(s)
        .unwrap()
}

/// The number of things all pages of the query hold (the full path).
fn paged(hub: &Hub, w: &Requester, s: &Spec) -> u64 {
    let mut p = Searcher::new(hub, w, crate::clock::now_millis(), None);
    let (mut total, mut after) = (0, None);
    loop {
        let page = p.page(s, after.as_ref(), 50).unwrap();
        total += page.items.len() as u64;
        match page.more {
            Some(pos) => after = Some(pos),
            None => return total,
        }
    }
}

const FILTERS: [&str; 4] = [
    "eq(attributes/room,\"r1\")",
    "ge(attributes/n,2)",
    "eq(attributes/secret,1)",
    "ne(attributes/room,\"r0\")",
];

fn requesters() -> Vec<Requester> {
    vec![
        who(&["u:a"]),
        who(&["u:b"]),
        who(&["u:c"]),
        who(&["u:a", "u:c"]),
        who(&["u:none"]),
    ]
}

/// Every requester and filter: the map's count (`mapped`), the count without a map
/// (`plain`, a fresh hub: the tests write policies beside the hubs, so a hub's enforcer cache
/// may be stale; `mapped` is told of every change) and the full path agree.
fn check(label: &str, mapped: &Hub, plain: &Hub) {
    let plain = &Hub::new(plain.store().clone());
    plain.access_map().set_max_bytes(0);
    for w in requesters() {
        for f in FILTERS {
            let s = spec(f);
            let (m, p) = (count(mapped, &w, &s), count(plain, &w, &s));
            assert_eq!(m, p, "{label}: {:?} {f}: map vs entries", w.subjects);
            assert_eq!(m, paged(plain, &w, &s), "{label}: {:?} {f}", w.subjects);
        }
    }
}

fn entries(i: usize) -> Value {
    let read = json!({"grant": ["READ"], "revoke": []});
    let no_secret = json!({"grant": [], "revoke": ["READ"]});
    let a = json!({"subjects": {"u:a": {"type": "t"}}, "resources": {"thing:/": read}});
    match i % 10 {
        1 => json!({"a": a, "b": {"subjects": {"u:b": {"type": "t"}},
                     "resources": {"thing:/attributes/room": read}}}),
        2 => json!({"a": a, "c": {"subjects": {"u:c": {"type": "t"}},
                     "resources": {"thing:/": read, "thing:/attributes/secret": no_secret}}}),
        3 => json!({"a": {"subjects": {"u:a": {"type": "t"},
                     "u:x": {"type": "t", "expiry": "2099-01-01T00:00:00Z"}},
                     "resources": {"thing:/": read}}}),
        5 => json!({"b": {"subjects": {"u:b": {"type": "t"}}, "resources": {"thing:/": read}}}),
        _ => json!({"a": a}),
    }
}

/// 300 things: most with their own policy (5 kinds of READ grants), every 10th under a shared
/// policy, every 10th (i % 10 == 4) without its policy.
fn fleet(store: &Store) -> Vec<Option<Value>> {
    let mut policies = Vec::new();
    put_policy(
        store,
        "n:shared",
        None,
        json!({"s": {"subjects": {"u:a": {"type": "t"}, "u:c": {"type": "t"}},
               "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}),
    );
    for i in 0..THINGS {
        let id = format!("n:t{i:03}");
        let (pid, p) = match i % 10 {
            0 => ("n:shared".to_owned(), None),
            4 => (id.clone(), None),
            _ => (id.clone(), Some(put_policy(store, &id, None, entries(i)))),
        };
        put_thing(store, None, &state(&id, &pid, i));
        policies.push(p);
    }
    policies
}

fn current(hub: &Hub) -> Option<Arc<Snapshot>> {
    hub.access_map().current(hub.store().watched_changes())
}

#[test]
fn watched_byte_is_the_access_kind() {
    assert_eq!(crate::store::WATCHED_INDEX_BYTE, access::ACCESS);
}

#[test]
fn counts_from_the_map_equal_counts_from_the_entries_across_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    let policies = fleet(&store);
    let (mapped, plain) = (Hub::new(store.clone()), Hub::new(store.clone()));
    plain.access_map().set_max_bytes(0);
    assert!(current(&mapped).is_none(), "empty until a count needs it");
    check("start", &mapped, &plain);
    let snap = current(&mapped).expect("built by a count");
    // own policies of 240 things (not the 30 shared, not the 30 without a policy) and the
    // shared policy (no thing has its ID: never looked up)
    assert_eq!(snap.len(), 241);
    assert_eq!(
        snap.classes.len(),
        6,
        "one class per kind of grants, the shared one"
    );
    assert!(current(&plain).is_none(), "off");

    // u:a loses READ on t011 (own policy, in the map): a change of an access entry
    let id = "n:t011";
    let p11 = put_policy(&store, id, policies[11].as_ref(), entries(5));
    mapped.policy_written(id, Some(&p11));
    assert!(current(&mapped).is_none(), "stale after the change");
    let s = spec("eq(attributes/room,\"r2\")");
    let want = paged(&Hub::new(store.clone()), &who(&["u:a"]), &s);
    assert_eq!(count(&mapped, &who(&["u:a"]), &s), want);
    check("policy modified", &mapped, &plain);
    assert!(
        current(&mapped).is_some(),
        "rebuilt once the entries are quiet"
    );

    // t012 moves to the shared policy; t020 (shared) to its own new policy
    put_thing(
        &store,
        Some(&state("n:t012", "n:t012", 12)),
        &state("n:t012", "n:shared", 12),
    );
    let p20 = put_policy(&store, "n:t020", None, entries(2));
    mapped.policy_written("n:t020", Some(&p20));
    put_thing(
        &store,
        Some(&state("n:t020", "n:shared", 20)),
        &state("n:t020", "n:t020", 20),
    );
    check("policy IDs changed", &mapped, &plain);

    // a deleted policy and a new thing with its own policy
    submit(
        &store,
        crate::policy::ready::write_ops("n:t013", policies[13].as_ref(), None),
    );
    mapped.policy_written("n:t013", None);
    let p999 = put_policy(&store, "n:t999", None, entries(1));
    mapped.policy_written("n:t999", Some(&p999));
    put_thing(&store, None, &state("n:t999", "n:t999", 999));
    check("policy deleted, thing created", &mapped, &plain);
    let snap = current(&mapped).expect("rebuilt");
    // -t012 (shared now) -t013 (no policy) +t020 +t999
    assert_eq!(snap.len(), 241);
    store.close().unwrap();
}

#[test]
fn a_small_bound_maps_the_first_things_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    fleet(&store);
    let (mapped, plain) = (Hub::new(store.clone()), Hub::new(store.clone()));
    plain.access_map().set_max_bytes(0);
    mapped.access_map().set_max_bytes(1500);
    check("small bound", &mapped, &plain);
    let snap = current(&mapped).expect("built");
    assert!(snap.size() <= 1500, "{}", snap.size());
    assert!((10..240).contains(&snap.len()), "{}", snap.len());
    // the map holds the first things in key order
    let mut prefix = Vec::new();
    keys::path_prefix_into(&mut prefix, access::ACCESS, "n:t001");
    assert!(snap.class_of(&prefix).is_some());
    keys::path_prefix_into(&mut prefix, access::ACCESS, "n:t299");
    assert!(snap.class_of(&prefix).is_none());
    store.close().unwrap();
}

#[test]
fn only_access_entries_count_as_watched_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Sled, dir.path(), 1 << 20).unwrap();
    let before = store.watched_changes();
    put_thing(&store, None, &state("n:t1", "n:t1", 1));
    assert_eq!(
        store.watched_changes(),
        before,
        "a thing with its own policy: no entry"
    );
    put_policy(&store, "n:t1", None, entries(0));
    assert_eq!(store.watched_changes(), before + 1);
    put_thing(
        &store,
        Some(&state("n:t1", "n:t1", 1)),
        &state("n:t1", "n:t1", 2),
    );
    assert_eq!(store.watched_changes(), before + 1, "an attribute change");
    put_thing(
        &store,
        Some(&state("n:t1", "n:t1", 2)),
        &state("n:t1", "n:other", 2),
    );
    assert_eq!(store.watched_changes(), before + 2, "a policy ID change");
    store.close().unwrap();
}
