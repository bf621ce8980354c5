//! Tests of twin commands through the hub: store failures, refused writes, the change hook,
//! cached enforcers against policy writes, and twins served by the cache against the stored ones.

use super::*;

use crate::protocol::Signal;
use crate::store::{Backend, Entries, Op, SledBackend, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};

/// What a `Failing` backend fails once its flag is set.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Commits,
    PolicyReads,
}

/// sled, failing `.1` once `.2` is set.
struct Failing(SledBackend, Fault, Arc<AtomicBool>);

impl Backend for Failing {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if self.1 == Fault::PolicyReads && tree == Tree::Policies && self.2.load(Ordering::SeqCst) {
            return Err(StoreError::new("injected read failure"));
        }
        self.0.get(tree, key)
    }
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.0.scan(tree, prefix, after, limit)
    }
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        if self.1 == Fault::Commits && self.2.load(Ordering::SeqCst) {
            return Err(StoreError::new("injected"));
        }
        self.0.commit(ops)
    }
    fn name(&self) -> &'static str {
        "failing"
    }
}

#[test]
fn a_failed_policy_read_is_an_error_not_a_missing_policy() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let sled = SledBackend::open(dir.path(), 1 << 20).unwrap();
    let backend = Box::new(Failing(sled, Fault::PolicyReads, fail.clone()));
    let store =
        Store::with_backend(backend, dir.path(), &crate::store::Options::default()).unwrap();
    let hub = Hub::new(store.clone());
    let who = Requester {
        subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
        origin: None,
    };
    let create = command(
        r#"{"topic":"n/t1/things/twin/commands/create","headers":{},"path":"/","value":{}}"#,
    );
    let done = smol::block_on(hub.twin_command(&who, &create, Durability::Waited)).unwrap();
    smol::block_on(store.durable(done.seq.unwrap())).unwrap();
    smol::block_on(store.checkpoint()).unwrap();
    fail.store(true, Ordering::SeqCst);
    // the policy n:t1 exists, but cannot be read: 503, not "the policy does not exist"
    let with_policy = command(
        r#"{"topic":"n/t2/things/twin/commands/create","headers":{},"path":"/","value":{"policyId":"n:t1"}}"#,
    );
    let e = smol::block_on(hub.twin_command(&who, &with_policy, Durability::Waited)).unwrap_err();
    assert_eq!((e.status, &*e.error), (503, "policies:policy.unavailable"));
    fail.store(false, Ordering::SeqCst);
    let done = smol::block_on(hub.twin_command(&who, &with_policy, Durability::Waited)).unwrap();
    assert_eq!(done.outcome.status, 201);
}

fn command(text: &str) -> ThingCommand {
    match Signal::from_envelope(Envelope::parse(text).unwrap()) {
        Ok(Signal::Thing(c)) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_store_is_not_hidden_by_the_twin_cache() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let sled = SledBackend::open(dir.path(), 1 << 20).unwrap();
    let opts = crate::store::Options {
        max_pending_ops: 64,
        ..Default::default()
    };
    let store = Store::with_backend(
        Box::new(Failing(sled, Fault::Commits, fail.clone())),
        dir.path(),
        &opts,
    )
    .unwrap();
    let hub = Hub::new(store.clone());
    let who = Requester {
        subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
        origin: None,
    };
    let create = command(
        r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#,
    );
    let done = smol::block_on(hub.twin_command(&who, &create, Durability::Waited)).unwrap();
    smol::block_on(store.durable(done.seq.unwrap())).unwrap();
    assert!(hub.cached_twin("n:t").is_some(), "written twins are cached");
    fail.store(true, Ordering::SeqCst);
    let modify = command(
        r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#,
    );
    let done = smol::block_on(hub.twin_command(&who, &modify, Durability::Interval)).unwrap();
    // the checkpoint fails: fail-stop, the write never becomes durable
    assert!(smol::block_on(store.checkpoint()).is_err());
    assert!(smol::block_on(store.durable(done.seq.unwrap())).is_err());
    // the cache holds the write that never became durable: reads must fail like the store's
    assert!(hub.load_thing("n:t").is_err());
    assert!(hub.cached_twin("n:t").is_none());
}

/// A hub over redb in a temp dir (1 MiB store cache) and the dev user's requester.
fn redb_hub() -> (tempfile::TempDir, Hub, Requester) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(crate::store::BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    let who = Requester {
        subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
        origin: None,
    };
    (dir, Hub::new(store), who)
}

#[test]
fn a_refused_write_leaves_the_cached_twin_cached_and_unchanged() {
    let (_dir, hub, who) = redb_hub();
    let run =
        |text: &str| smol::block_on(hub.twin_command(&who, &command(text), Durability::Interval));
    run(r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#).unwrap();
    let done = run(r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#).unwrap();
    assert_eq!(done.outcome.status, 204);
    let before = hub
        .cached_twin("n:t")
        .expect("cached after the write")
        .state;
    // refused in place (a wrong if-match), and by the engine after writing in (too large)
    let refused = [
        r#"{"topic":"n/t/things/twin/commands/modify","headers":{"if-match":"\"rev:9\""},"path":"/attributes/a","value":3}"#.to_owned(),
        format!(r#"{{"topic":"n/t/things/twin/commands/modify","headers":{{}},"path":"/attributes/b","value":"{}"}}"#, "x".repeat(engine::MAX_THING_BYTES)),
    ];
    for text in &refused {
        assert!(run(text).is_err());
        let now = hub.cached_twin("n:t").expect("still cached");
        assert_eq!(now.state, before, "unchanged");
    }
    let done = run(r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":4}"#).unwrap();
    assert_eq!(
        done.outcome.state.map(|s| s.revision),
        None,
        "taken by ready"
    );
    let after = hub.load_thing("n:t").unwrap().unwrap();
    assert_eq!(
        (after.revision, &after.thing["attributes"]),
        (3, &serde_json::json!({"a": 4}))
    );
}

#[test]
fn the_change_hook_sees_the_change_it_is_told_of() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(crate::store::BackendKind::Sled, dir.path(), 1 << 20).unwrap();
    let hub = Hub::new(store);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, s) = (hub.clone(), seen.clone());
    assert!(hub.on_thing_change(Box::new(move |id, _seq| {
        let rev = h.load_thing(id).unwrap().map(|t| t.revision);
        s.lock().unwrap().push(rev);
    })));
    assert!(!hub.on_thing_change(Box::new(|_, _| {})), "one hook");
    let who = Requester {
        subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
        origin: None,
    };
    let create = command(
        r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{}}"#,
    );
    smol::block_on(hub.twin_command(&who, &create, Durability::Waited)).unwrap();
    let modify = command(
        r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#,
    );
    smol::block_on(hub.twin_command(&who, &modify, Durability::Interval)).unwrap();
    // a reader woken by the hook (the uplink) must not get the cached state before it
    assert_eq!(*seen.lock().unwrap(), vec![Some(1), Some(2)]);
}

#[test]
fn a_cached_enforcer_does_not_outlive_a_policy_write() {
    let (_dir, hub, who) = redb_hub();
    let modify = r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#;
    let run =
        |text: &str| smol::block_on(hub.twin_command(&who, &command(text), Durability::Interval));
    run(r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#).unwrap();
    assert_eq!(run(modify).unwrap().outcome.status, 204);
    let memo = hub.cached_twin("n:t").and_then(|c| c.policy);
    assert!(
        memo.is_some_and(|m| hub.memo_enforcer(&m, hub.now()).is_some()),
        "kept"
    );
    // the subject may now only read the thing (and still write the policy)
    let revoke = r#"{"topic":"n/t/policies/commands/modify","headers":{},"path":"/entries","value":{"DEFAULT":{"subjects":{"nginx:ditto":{"type":"t"}},"resources":{"thing:/":{"grant":["READ"],"revoke":[]},"policy:/":{"grant":["READ","WRITE"],"revoke":[]}}}}}"#;
    assert!(smol::block_on(hub.handle_protocol(&who, Envelope::parse(revoke).unwrap())).is_some());
    let policy = hub.load_policy("n:t").unwrap().unwrap();
    let grant = &policy["entries"]["DEFAULT"]["resources"]["thing:/"]["grant"];
    assert_eq!(
        grant,
        &serde_json::json!(["READ"]),
        "the policy was written"
    );
    let e = run(modify).unwrap_err();
    assert_eq!(e.status, 403, "{e:?}");
}

#[test]
fn twins_served_by_a_small_cache_equal_the_stored_ones() {
    let (_dir, hub, who) = redb_hub();
    // ~10 twins decoded, the rest of 300 compact or not cached at all
    hub.twins().set_budgets(32 * 1024, 224 * 1024);
    let run = |text: String| {
        smol::block_on(hub.twin_command(&who, &command(&text), Durability::Interval)).unwrap()
    };
    let n = 300;
    for k in 0..n {
        run(format!(
            r#"{{"topic":"n/t{k}/things/twin/commands/create","headers":{{}},"path":"/","value":{{"attributes":{{"a":{k},"s":"{}"}}}}}}"#,
            "x".repeat(200)
        ));
    }
    for round in 0..3 {
        for k in (0..n).rev() {
            let done = run(format!(
                r#"{{"topic":"n/t{k}/things/twin/commands/modify","headers":{{}},"path":"/attributes/a","value":{}}}"#,
                k * 10 + round
            ));
            assert_eq!(done.outcome.status, 204);
        }
    }
    let mut compact = 0;
    for k in 0..n {
        let id = format!("n:t{k}");
        let cached = hub.load_thing(&id).unwrap().unwrap();
        assert_eq!(Some(cached.clone()), hub.read_thing(&id).unwrap(), "{id}");
        assert_eq!(cached.revision, 4);
        assert_eq!(cached.thing["attributes"]["a"], k * 10 + 2);
        let c = hub.cached_twin(&id);
        if c.as_ref().is_some_and(|c| c.compact.is_some()) {
            compact += 1;
            // the index size kept with it is the one of the state
            let size = crate::search::index::sized_entries(&cached).1;
            assert_eq!(c.unwrap().size, size);
        }
    }
    assert!(compact > 100, "most twins are cached compact: {compact}");
}

#[test]
fn a_cached_enforcer_is_of_its_namespace_and_goes_with_a_write_of_what_it_imports() {
    let (_dir, hub, who) = redb_hub();
    let call = |v: serde_json::Value| {
        let env = Envelope::parse(&v.to_string()).unwrap();
        assert!(smol::block_on(hub.handle_protocol(&who, env)).is_some());
    };
    let rw = serde_json::json!({"grant": ["READ", "WRITE"], "revoke": []});
    let entry = |namespaces: Vec<&str>| {
        serde_json::json!({"subjects": {"nginx:ditto": {"type": "t"}}, "namespaces": namespaces,
            "importable": "implicit", "resources": {"thing:/": rw, "policy:/": rw}})
    };
    let create = |id: &str, policy: serde_json::Value| {
        let topic = format!("{}/policies/commands/create", id.replace(':', "/"));
        call(serde_json::json!({"topic": topic, "headers": {}, "path": "/", "value": policy}));
    };
    // n:p grants WRITE on things of namespace n only
    create(
        "n:p",
        serde_json::json!({"entries": {"N": entry(vec!["n"])}}),
    );
    let now = hub.now();
    let writes = |pid: &str, ns: &str| {
        let e = hub.enforcer(pid, ns, now).unwrap().unwrap();
        e.has_unrestricted(&who.subjects, "thing", &[], crate::policy::WRITE)
    };
    // the cache keeps one namespace per policy: each lookup answers for its own
    for _ in 0..2 {
        assert!(writes("n:p", "n"), "the policy's own namespace");
        assert!(!writes("n:p", "m"), "another namespace");
    }
    // m:q imports n:p (whose entry is for namespace n): cached, then n:p opens to every namespace
    let import = serde_json::json!({"entries": {}, "imports": {"n:p": {}}});
    create("m:q", import);
    assert!(!writes("m:q", "m"));
    assert!(writes("m:q", "n"));
    let open = serde_json::json!({"topic": "n/p/policies/commands/modify", "headers": {},
        "path": "/entries/N", "value": entry(vec![])});
    call(open);
    assert!(
        writes("m:q", "m"),
        "the importer's enforcer was dropped with the write"
    );
    assert!(writes("n:p", "m"));
}

#[test]
fn a_cached_twin_does_not_keep_its_enforcer_past_the_policy_cache() {
    let (_dir, hub, who) = redb_hub();
    hub.set_policy_cache_bytes(1);
    let modify = r#"{"topic":"n/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":2}"#;
    let run =
        |text: &str| smol::block_on(hub.twin_command(&who, &command(text), Durability::Interval));
    run(r#"{"topic":"n/t/things/twin/commands/create","headers":{},"path":"/","value":{"attributes":{"a":1}}}"#).unwrap();
    assert_eq!(run(modify).unwrap().outcome.status, 204);
    let memo = hub
        .cached_twin("n:t")
        .and_then(|c| c.policy)
        .expect("memo kept");
    assert!(
        hub.memo_enforcer(&memo, hub.now()).is_some(),
        "the cache holds it"
    );
    // another policy's enforcer: the policy cache (1 byte) and the shared ones let the first go
    let other = crate::policy::PolicyState {
        policy: serde_json::json!({"policyId": "n:other", "entries": {"DEFAULT": {
            "subjects": {"nginx:other": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}
        }}}),
        revision: 1,
        created: 0,
        modified: 0,
    };
    hub.store().submit(crate::policy::ready::write_ops(
        "n:other",
        None,
        Some(&other),
    ));
    assert!(hub.enforcer("n:other", "n", hub.now()).unwrap().is_some());
    assert!(
        memo.enforcer.upgrade().is_none(),
        "a cached twin kept its policy's enforcer alive"
    );
    // the twin's policy is looked up again
    assert_eq!(run(modify).unwrap().outcome.status, 204);
}
