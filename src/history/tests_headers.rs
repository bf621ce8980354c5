//! The persisted headers of a deferred creation (`[history] headers_to_persist`) are kept in the
//! entity's stored state, not under a key of their own; a data directory written with such keys
//! still reads the same, and the entity's first change removes the key.

use super::tests::{cfg, create, rig, Rig, T0};
use super::*;
use crate::store::{Op, Tree};
use serde_json::{json, Value};

fn creation(r: &Rig) -> Record {
    let seen = r
        .history
        .events(Kind::Thing, "ns:t", 1..=1, 1, T0 + 5, 10)
        .unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    seen[0].1.clone()
}

fn stored_thing(r: &Rig) -> Value {
    let b = r.store.get(Tree::Things, b"ns:t").unwrap().unwrap();
    serde_json::from_slice(&b).unwrap()
}

#[test]
fn a_deferred_creation_keeps_its_headers_in_the_state_without_a_key_of_its_own() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    assert_eq!(r.history_keys(b"e"), 0, "deferred");
    assert_eq!(r.history_keys(b"h"), 0, "no headers key");
    let who = json!({"ditto-originator": format!("nginx:at-{T0}")});
    assert_eq!(stored_thing(&r)["h"], who);
    // the state reads as before
    let b = r.store.get(Tree::Things, b"ns:t").unwrap().unwrap();
    let st = crate::engine::ThingState::from_bytes(&b).unwrap();
    assert_eq!(Some(&st), r.state.as_ref());
    assert_eq!(Value::Object(creation(&r).headers), who);
    // the first change writes the creation with them; the new state has none
    r.set(1, T0 + 10);
    assert_eq!(Value::Object(creation(&r).headers), who);
    assert_eq!(stored_thing(&r).get("h"), None);
    assert_eq!(r.history_keys(b"e"), 2);
}

#[test]
fn headers_kept_under_their_own_key_by_an_older_version_read_the_same() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    // the form of a directory written before: the state without "h", the headers under `h`
    let st = r.state.clone().unwrap();
    let old = json!({"ditto-originator": "nginx:old"});
    smol::block_on(r.store.durable(r.store.submit(vec![
        Op::put(Tree::Things, "ns:t", st.to_bytes()),
        Op::put(
            Tree::History,
            keys::headers(Kind::Thing, "ns:t"),
            serde_json::to_vec(&old).unwrap(),
        ),
    ])))
    .unwrap();
    assert_eq!(stored_thing(&r).get("h"), None);
    assert_eq!(Value::Object(creation(&r).headers), old);
    r.set(1, T0 + 10);
    assert_eq!(
        Value::Object(creation(&r).headers),
        old,
        "written with the first change"
    );
    assert_eq!(r.history_keys(b"h"), 0, "the old key is gone");
    let stored = r
        .store
        .get(Tree::History, &keys::event(Kind::Thing, "ns:t", 1))
        .unwrap()
        .unwrap();
    assert_eq!(
        Record::decode(&stored).unwrap().headers,
        creation(&r).headers
    );
}
