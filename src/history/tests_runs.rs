//! History tests about runs of kept revisions: what the log remembers per entity (a sweep that
//! dropped everything, a restart) and totals kept by an older version (compressed bytes).

use super::*;

/// A data directory of a version without deferral: the creation event is stored, with 16-byte
/// totals. It reads the same and the first change does not write it again.
#[test]
fn a_creation_stored_by_an_older_version_reads_and_is_not_written_twice() {
    let mut r = rig(cfg());
    let none = |_: &str| None;
    let ctx = Ctx {
        now: T0,
        subject: "nginx:ditto",
        lookup: &crate::engine::FnLookup(|_: &str| None, none),
        access: None,
    };
    let out = apply(None, &cmd(create()), &ctx).unwrap();
    let (ev, state, bytes) = (out.event.unwrap(), out.state.unwrap(), out.bytes.unwrap());
    let mut headers = Map::new();
    headers.insert("ditto-originator".into(), json!("nginx:old"));
    let record = Record::of_thing_event(&ev, state.metadata.as_ref(), headers);
    // as written: the store's writer thread compresses it, to the bytes an older version
    // wrote itself (`codec::encode(record)`); its totals counted those compressed bytes
    let event = record.encode();
    let compressed = crate::store::codec::encode(event.clone()).len();
    assert!(compressed < event.len(), "the event is kept compressed");
    let mut totals = Vec::new();
    totals.extend_from_slice(
        &((keys::event(Kind::Thing, "ns:t", 1).len() + compressed) as i64).to_le_bytes(),
    );
    totals.extend_from_slice(&1i64.to_le_bytes());
    let bucket = T0 - T0.rem_euclid(r.history.bucket_ms());
    use crate::store::{Op, Tree};
    smol::block_on(r.store.durable(r.store.submit(vec![
        Op::put(Tree::Things, "ns:t", bytes),
        Op::put(
            Tree::History,
            keys::event(Kind::Thing, "ns:t", 1),
            event.clone(),
        ),
        Op::put(Tree::History, keys::time(bucket, Kind::Thing, "ns:t"), []),
        Op::put(Tree::History, keys::COUNTS.to_vec(), totals),
    ])))
    .unwrap();
    r.states.push(state.clone());
    r.state = Some(state);
    r.history = History::with_snapshots(cfg(), r.store.clone(), 4);
    assert!(
        !r.history.load_counts().unwrap(),
        "totals of compressed bytes are counted again"
    );
    r.history.count().unwrap();
    assert_eq!(events_counted(&r.history), 1);
    assert_eq!(
        r.history.bytes.load(std::sync::atomic::Ordering::Relaxed),
        (keys::event(Kind::Thing, "ns:t", 1).len() + event.len()) as i64
    );
    let seen = r
        .history
        .events(Kind::Thing, "ns:t", 1..=1, 1, T0 + 5, 10)
        .unwrap();
    assert_eq!(seen[0].1, record);
    r.set(1, T0 + 10);
    assert_eq!(r.history_keys(b"e"), 2);
    assert_eq!(events_counted(&r.history), 2);
    match r.at(At::Revision(1), T0 + 20) {
        Found::Past(s, rec) => assert_eq!((s, *rec), (r.states[0].clone(), record)),
        other => panic!("{other:?}"),
    }
}

/// The log remembers that it recorded an entity's last event (no store read per change); a
/// sweep that drops all of it must make the next change start a new run (snapshot included).
#[test]
fn a_change_after_a_sweep_dropped_everything_starts_a_new_run() {
    let day = 24 * 3600 * 1000;
    let mut r = rig(HistoryConfig {
        max_age_secs: 24 * 3600,
        ..cfg()
    });
    r.run(create(), T0);
    for i in 1..=4 {
        r.set(i, T0 + i * 1000); // revisions 2..=5
    }
    let later = T0 + 3 * day;
    r.sweep(later);
    assert_eq!(r.history_keys(b"e"), 0);
    r.set(5, later + 10); // revision 6 (no snapshot is due): the previous event is gone
    r.set(6, later + 20);
    assert_eq!(r.history.first_kept(Kind::Thing, "ns:t").unwrap(), Some(6));
    assert_eq!(r.past_n(At::Revision(6), later + 30), Some(json!(5)));
    assert_eq!(r.past_n(At::Revision(5), later + 30), None);
}

/// After a restart (a new handle, nothing remembered) the store says whether the previous
/// event is kept: the run continues, no snapshot is written for it.
#[test]
fn a_restart_continues_the_run_from_the_store() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    r.set(1, T0 + 1);
    r.set(2, T0 + 2);
    let snaps = r.history_keys(b"s");
    r.history = History::with_snapshots(cfg(), r.store.clone(), 4);
    r.set(3, T0 + 3); // revision 4: a snapshot is due there anyway (every 4)
    r.set(4, T0 + 4); // revision 5: no new run, no snapshot
    assert_eq!(r.history_keys(b"s"), snaps + 1);
    assert_eq!(r.history.first_kept(Kind::Thing, "ns:t").unwrap(), Some(1));
    for rev in 1..=5u64 {
        match r.at(At::Revision(rev), T0 + 10) {
            Found::Past(s, _) => assert_eq!(s, r.states[rev as usize - 1]),
            Found::Current => assert_eq!(rev, 5),
            other => panic!("{rev}: {other:?}"),
        }
    }
}
