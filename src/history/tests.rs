//! History over a real store (redb in a temp dir): changes made by the engine are recorded
//! as the hub records them, then read back at revisions and times, across retention edges
//! (just kept / just dropped), deletion and re-creation, and a run broken by history off.

use super::*;
use crate::engine::{apply, Ctx, ThingState};
use crate::protocol::{Envelope, Signal, ThingCommand};
use crate::store::{BackendKind, Store};
use serde_json::{json, Map, Value};

pub(super) const T0: i64 = 1_700_000_000_000;

fn cmd(v: Value) -> ThingCommand {
    match Signal::from_envelope(Envelope::parse(&v.to_string()).unwrap()).unwrap() {
        Signal::Thing(c) => c,
        other => panic!("not a thing command: {other:?}"),
    }
}

pub(super) struct Rig {
    _dir: tempfile::TempDir,
    pub(super) store: Store,
    pub(super) history: History,
    pub(super) state: Option<ThingState>,
    /// every state written, by revision
    states: Vec<ThingState>,
}

pub(super) fn rig(cfg: HistoryConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    let history = History::with_snapshots(cfg, store.clone(), 4);
    Rig {
        _dir: dir,
        store,
        history,
        state: None,
        states: Vec::new(),
    }
}

pub(super) fn cfg() -> HistoryConfig {
    HistoryConfig {
        max_revisions: 0,
        max_mb: 0,
        ..HistoryConfig::default()
    }
}

impl Rig {
    /// Applies `v` at time `now` and records it like the hub does.
    pub(super) fn run(&mut self, v: Value, now: i64) {
        let none = |_: &str| None;
        let ctx = Ctx {
            now,
            subject: "nginx:ditto",
            lookup: &crate::engine::FnLookup(|_: &str| None, none),
            access: None,
        };
        let out = apply(self.state.as_ref(), &cmd(v), &ctx).unwrap();
        let (ev, state, bytes) = (out.event.unwrap(), out.state.unwrap(), out.bytes.unwrap());
        let mut headers = Map::new();
        headers.insert("ditto-originator".into(), json!(format!("nginx:at-{now}")));
        let record = Record {
            action: ev.action,
            timestamp: ev.timestamp,
            path: ev.path.clone(),
            value: ev.value.clone(),
            metadata: ev.metadata.clone(),
            full_metadata: state.metadata.clone(),
            headers,
        };
        let mut ops = vec![crate::store::Op::put(
            crate::store::Tree::Things,
            "ns:t",
            bytes.clone(),
        )];
        ops.extend(
            self.history
                .ops(Change {
                    kind: Kind::Thing,
                    id: "ns:t",
                    revision: ev.revision,
                    record,
                    state: &bytes,
                })
                .unwrap(),
        );
        self.store.submit(ops);
        self.states.push(state.clone());
        self.state = Some(state);
    }

    pub(super) fn set(&mut self, n: i64, now: i64) {
        self.run(
            json!({"topic": "ns/t/things/twin/commands/modify", "path": "/attributes/n", "value": n}),
            now,
        );
    }

    fn at(&self, at: At, now: i64) -> Found<ThingState> {
        self.history
            .thing_at("ns:t", at, self.state.as_ref().unwrap(), now)
            .unwrap()
    }

    fn past_n(&self, at: At, now: i64) -> Option<Value> {
        match self.at(at, now) {
            Found::Past(s, _) => Some(s.thing["attributes"]["n"].clone()),
            Found::Current => Some(json!("current")),
            Found::NotKept => None,
        }
    }

    fn sweep(&self, now: i64) {
        let locked: Locked = &|_, _, f| f();
        while self.history.sweep(now, locked).unwrap().more {}
    }

    pub(super) fn history_keys(&self, prefix: &[u8]) -> usize {
        self.store
            .scan(crate::store::Tree::History, prefix, None, usize::MAX)
            .unwrap()
            .len()
    }
}

pub(super) fn create() -> Value {
    json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"attributes": {"n": 0}}})
}

#[test]
fn every_revision_and_instant_rebuilds_the_state_then_written() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    for i in 1..=30 {
        r.set(i, T0 + i * 10);
    }
    let now = T0 + 1000;
    for rev in 1..30u64 {
        match r.at(At::Revision(rev), now) {
            Found::Past(s, rec) => {
                assert_eq!(s, r.states[rev as usize - 1], "revision {rev}");
                assert_eq!(rec.timestamp, s.modified);
                assert_eq!(
                    rec.headers["ditto-originator"],
                    json!(format!("nginx:at-{}", s.modified))
                );
            }
            other => panic!("revision {rev}: {other:?}"),
        }
    }
    assert_eq!(r.at(At::Revision(31), now), Found::Current);
    assert_eq!(r.at(At::Revision(32), now), Found::NotKept, "the future");
    assert_eq!(r.at(At::Revision(0), now), Found::NotKept);
    // instants: the state after the last event strictly before
    assert_eq!(r.past_n(At::Timestamp(T0 + 55), now), Some(json!(5)));
    assert_eq!(r.past_n(At::Timestamp(T0 + 50), now), Some(json!(4)));
    assert_eq!(r.past_n(At::Timestamp(T0 + 1), now), Some(json!(0)));
    assert_eq!(r.past_n(At::Timestamp(T0), now), None, "before the thing");
    assert_eq!(
        r.past_n(At::Timestamp(T0 + 301), now),
        Some(json!("current"))
    );
    assert_eq!(r.past_n(At::Timestamp(now + 1), now), None, "the future");
}

#[test]
fn the_revisions_bound_is_exact_for_reads_and_drops_whole_chunks() {
    let mut r = rig(HistoryConfig {
        max_revisions: 10,
        ..cfg()
    });
    r.run(create(), T0);
    for i in 1..=40 {
        r.set(i, T0 + i);
    }
    let now = T0 + 100;
    // current is 41: 10 revisions kept are 32..=41
    assert_eq!(
        r.past_n(At::Revision(32), now),
        Some(json!(31)),
        "just kept"
    );
    assert_eq!(r.past_n(At::Revision(31), now), None, "just dropped");
    // on disk: whole chunks of 4 below the bound are gone (revision 41 wrote none: not a
    // multiple of 4; at 40 everything below (40+1-10)/4*4 = 28 went)
    assert_eq!(r.history.first_kept(Kind::Thing, "ns:t").unwrap(), Some(28));
}

#[test]
fn the_age_bound_keeps_the_state_current_at_the_cutoff() {
    let day = 24 * 3600 * 1000;
    let mut r = rig(HistoryConfig {
        max_age_secs: 24 * 3600,
        ..cfg()
    });
    r.run(create(), T0);
    r.set(1, T0 + 1000);
    r.set(2, T0 + 2000);
    r.set(3, T0 + day + 5000);
    // the cutoff lies between revision 3 (n=2) and 4 (n=3)
    let now = T0 + 2 * day + 3000;
    assert_eq!(
        r.past_n(At::Revision(3), now),
        Some(json!(2)),
        "current at the cutoff"
    );
    assert_eq!(r.past_n(At::Revision(2), now), None, "just dropped");
    assert_eq!(
        r.past_n(At::Timestamp(now - day), now),
        Some(json!(2)),
        "just kept"
    );
    assert_eq!(
        r.past_n(At::Timestamp(now - day - 1), now),
        None,
        "just dropped"
    );
    let before = r.history_keys(b"e");
    r.sweep(now);
    assert_eq!(
        r.history_keys(b"e"),
        2,
        "events 3 and 4 stay (from {before})"
    );
    assert_eq!(r.history.first_kept(Kind::Thing, "ns:t").unwrap(), Some(3));
    // what the sweep kept still answers the same
    assert_eq!(r.past_n(At::Revision(3), now), Some(json!(2)));
    assert_eq!(r.past_n(At::Revision(2), now), None);
    // later everything is older than the bound: the current state answers for it
    let later = T0 + 3 * day;
    r.sweep(later);
    assert_eq!(r.history_keys(b"e"), 0);
    assert_eq!(r.history_keys(b"s"), 0);
    assert_eq!(r.history_keys(keys::TIME_PREFIX), 0);
    assert_eq!(r.at(At::Revision(4), later), Found::Current);
    assert_eq!(r.at(At::Revision(3), later), Found::NotKept);
    assert_eq!(
        r.history.events.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        r.history.bytes.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn the_bytes_bound_drops_the_oldest_buckets_first() {
    let mut r = rig(HistoryConfig {
        max_age_secs: 30 * 24 * 3600, // buckets of one hour
        max_mb: 1,
        ..cfg()
    });
    r.run(create(), T0);
    // values that do not compress (history is stored LZ4-compressed)
    let mut rng = fastrand::Rng::with_seed(5);
    let minute = 60_000;
    for i in 1..=600 {
        let big: String = (0..2000).map(|_| rng.alphanumeric()).collect();
        r.run(
            json!({"topic": "ns/t/things/twin/commands/modify", "path": "/attributes/s",
                "value": format!("{i}{big}")}),
            T0 + i * minute,
        );
    }
    let now = T0 + 601 * minute;
    r.sweep(now);
    assert_eq!(
        r.history_keys(b"e"),
        601,
        "nothing dropped before the count"
    );
    r.history.count().unwrap();
    let events = r.history.events.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        events, 601,
        "the count does not add to what the writes counted"
    );
    r.sweep(now);
    let bytes = r.history.bytes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(bytes <= 1 << 20, "{bytes} bytes kept");
    assert!(
        bytes > (1 << 20) - 200_000,
        "one bucket too many dropped: {bytes}"
    );
    let first = r.history.first_kept(Kind::Thing, "ns:t").unwrap().unwrap();
    assert!(first > 60, "the oldest hours went first: {first}");
    // what is left still answers, from its new first revision on
    assert!(matches!(r.at(At::Revision(first), now), Found::Past(..)));
    assert_eq!(r.at(At::Revision(first - 1), now), Found::NotKept);
    let scanned: usize = r
        .store
        .scan(crate::store::Tree::History, b"e", None, usize::MAX)
        .unwrap()
        .iter()
        .chain(
            &r.store
                .scan(crate::store::Tree::History, b"s", None, usize::MAX)
                .unwrap(),
        )
        .map(|(k, v)| k.len() + v.len())
        .sum();
    assert_eq!(scanned as i64, bytes, "the counter matches the store");
}

#[test]
fn deleted_and_recreated_things_keep_one_history() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    r.set(1, T0 + 10);
    r.run(
        json!({"topic": "ns/t/things/twin/commands/delete", "path": "/"}),
        T0 + 20,
    );
    r.run(
        json!({"topic": "ns/t/things/twin/commands/create", "path": "/", "value": {"attributes": {"n": 100}}}),
        T0 + 30,
    );
    let now = T0 + 100;
    assert_eq!(r.past_n(At::Revision(2), now), Some(json!(1)));
    match r.at(At::Revision(3), now) {
        Found::Past(s, rec) => {
            assert!(s.deleted, "revision 3 is the deletion");
            assert_eq!(rec.action, crate::protocol::EventAction::Deleted);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.at(At::Revision(4), now), Found::Current);
    assert_eq!(r.past_n(At::Timestamp(T0 + 25), now), Some(Value::Null));
}

#[test]
fn a_broken_run_drops_what_no_longer_connects() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    r.set(1, T0 + 1);
    r.set(2, T0 + 2);
    // history off for revision 4
    r.history.cfg.enabled = false;
    r.set(3, T0 + 3);
    r.history.cfg.enabled = true;
    r.set(4, T0 + 4);
    r.set(5, T0 + 5);
    let now = T0 + 10;
    assert_eq!(r.history.first_kept(Kind::Thing, "ns:t").unwrap(), Some(5));
    assert_eq!(r.past_n(At::Revision(3), now), None);
    assert_eq!(r.past_n(At::Revision(4), now), None, "never recorded");
    assert_eq!(r.past_n(At::Revision(5), now), Some(json!(4)));
}

#[test]
fn metadata_and_merges_come_back_exactly() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    r.run(
        json!({"topic": "ns/t/things/twin/commands/modify", "path": "/attributes/n",
            "headers": {"put-metadata": [{"key": "unit", "value": "C"}]}, "value": 7}),
        T0 + 1,
    );
    r.run(
        json!({"topic": "ns/t/things/twin/commands/merge", "path": "/",
            "headers": {"content-type": "application/merge-patch+json"},
            "value": {"attributes": {"x": {"y": 1}}, "features": {"f": {"properties": {"p": true}}}}}),
        T0 + 2,
    );
    r.set(8, T0 + 3);
    for rev in 1..=3u64 {
        match r.at(At::Revision(rev), T0 + 10) {
            Found::Past(s, _) => assert_eq!(s, r.states[rev as usize - 1]),
            other => panic!("{other:?}"),
        }
    }
}

/// History adds a new key per change; the store's overlay key bound must not start a
/// checkpoint every few thousand changes (at 8,192 keys it did: 838 instead of 408 bytes
/// written per update, BENCHMARKS.md "History"). 9,000 changes, each after `ready()` as the
/// hub does: with the old bound `ready()` itself waits for a checkpoint.
#[test]
fn new_history_keys_alone_do_not_start_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    let before = store.stats().checkpoints;
    let mut seq = 0;
    for i in 0..9_000u32 {
        smol::block_on(store.ready());
        let key = crate::history::keys::event(Kind::Thing, "ns:t", u64::from(i) + 1);
        seq = store.submit(vec![crate::store::Op::put(
            crate::store::Tree::History,
            key,
            vec![7u8; 40],
        )]);
    }
    smol::block_on(store.durable(seq)).unwrap();
    assert_eq!(store.stats().checkpoints, before, "{:?}", store.stats());
    assert_eq!(store.stats().pending_ops, 9_000);
}

/// A creation at `/` carries the whole thing: no snapshot is written for it (a twin created
/// with history on costs its event only), and the state at it is still answered.
#[test]
fn a_creation_is_its_own_snapshot() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    r.set(2, T0 + 1);
    let snaps = r
        .store
        .scan(
            crate::store::Tree::History,
            &keys::snapshots_of(Kind::Thing, "ns:t"),
            None,
            10,
        )
        .unwrap();
    assert!(snaps.is_empty(), "{snaps:?}");
    match r.at(At::Revision(1), T0 + 10) {
        Found::Past(s, _) => assert_eq!(s, r.states[0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn totals_are_stored_with_the_changes_and_read_back_at_start_without_a_scan() {
    let mut r = rig(cfg());
    assert!(
        !r.history.load_counts().unwrap(),
        "a new store has no totals"
    );
    r.history.count().unwrap();
    r.run(create(), T0);
    for i in 1..=9 {
        r.set(i, T0 + i);
    }
    let (bytes, events) = (
        r.history.bytes.load(std::sync::atomic::Ordering::Relaxed),
        r.history.events.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(events, 10);
    // a restart: a new handle on the same store takes the totals the last change stored
    let again = History::with_snapshots(cfg(), r.store.clone(), 4);
    assert!(again.load_counts().unwrap());
    assert_eq!(
        again.bytes.load(std::sync::atomic::Ordering::Relaxed),
        bytes
    );
    assert_eq!(
        again.events.load(std::sync::atomic::Ordering::Relaxed),
        events
    );
    assert!(again.counted.load(std::sync::atomic::Ordering::Acquire));
}

/// A creation recorded while the start-up count still runs stores no totals; the count's end
/// stores them, so a restart knows the deferred creation (no scan sees it).
#[test]
fn totals_of_changes_made_before_the_count_finished_are_stored_by_the_count() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    assert_eq!(events_counted(&r.history), 1);
    r.history.count().unwrap();
    assert_eq!(events_counted(&r.history), 1);
    let again = History::with_snapshots(cfg(), r.store.clone(), 4);
    assert!(again.load_counts().unwrap(), "the count stored the totals");
    assert_eq!(events_counted(&again), 1, "the deferred creation");
}

fn events_counted(h: &History) -> i64 {
    h.events.load(std::sync::atomic::Ordering::Relaxed)
}

/// A creation's event is deferred: nothing is stored for it (its persisted headers are in the
/// thing's state, `tests_headers.rs`), every read sees it, and the first change writes it (as
/// it was) in its own unit.
#[test]
fn a_creation_is_deferred_until_the_first_change() {
    let mut r = rig(cfg());
    r.run(create(), T0);
    assert_eq!(r.history_keys(b"e"), 0, "no event stored for the creation");
    assert_eq!(r.history_keys(keys::TIME_PREFIX), 0);
    assert_eq!(
        r.history_keys(b"h"),
        0,
        "its persisted headers are in its state"
    );
    assert_eq!(events_counted(&r.history), 1);
    let seen = r
        .history
        .events(Kind::Thing, "ns:t", 0..=1, 1, T0 + 5, 10)
        .unwrap();
    assert_eq!(seen.len(), 1);
    let (rev, rec) = &seen[0];
    assert_eq!(
        (*rev, rec.action, rec.timestamp),
        (1, crate::protocol::EventAction::Created, T0)
    );
    assert_eq!(
        rec.headers["ditto-originator"],
        json!(format!("nginx:at-{T0}"))
    );
    assert_eq!(
        r.history
            .first_after(Kind::Thing, "ns:t", T0 - 1, 1)
            .unwrap(),
        Some(1)
    );
    r.set(1, T0 + 10);
    assert_eq!(
        r.history_keys(b"e"),
        2,
        "the creation is written with revision 2"
    );
    assert_eq!(r.history_keys(b"h"), 0);
    assert_eq!(events_counted(&r.history), 2);
    match r.at(At::Revision(1), T0 + 20) {
        Found::Past(s, rec) => {
            assert_eq!(s, r.states[0]);
            assert_eq!(
                rec.headers["ditto-originator"],
                json!(format!("nginx:at-{T0}"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.past_n(At::Timestamp(T0 + 1), T0 + 20), Some(json!(0)));
    assert_eq!(r.past_n(At::Timestamp(T0), T0 + 20), None, "not before it");
}

/// The age bound uncounts a deferred creation (the sweep, by its time bucket) and drops it
/// instead of writing it when the first change comes after the bound.
#[test]
fn an_expired_deferred_creation_is_uncounted_and_never_written() {
    let mut r = rig(HistoryConfig {
        max_age_secs: 60,
        ..cfg()
    });
    r.history.count().unwrap();
    r.run(create(), T0);
    assert_eq!(events_counted(&r.history), 1);
    let late = T0 + 63_000;
    r.sweep(T0 + 30_000);
    assert_eq!(events_counted(&r.history), 1, "not yet");
    r.sweep(late);
    assert_eq!(events_counted(&r.history), 0, "older than the bound");
    let again = History::with_snapshots(r.history.cfg.clone(), r.store.clone(), 4);
    assert!(again.load_counts().unwrap());
    assert_eq!(events_counted(&again), 0, "stored with the totals");
    r.set(1, late);
    assert_eq!(r.history_keys(b"e"), 1, "only revision 2");
    assert_eq!(events_counted(&r.history), 1);
    assert_eq!(r.past_n(At::Revision(1), late + 1), None);
    assert_eq!(r.past_n(At::Revision(2), late + 1), Some(json!("current")));
}

#[path = "tests_runs.rs"]
mod runs;
