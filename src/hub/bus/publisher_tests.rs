//! The publisher with producers that publish inline beside its thread: events still leave in
//! store-sequence order (per thing: ascending revisions) whatever mix of `Waited` and
//! `Interval` writes comes from several threads, and an event that needs no wait is in the
//! subscriber's queue when its command returns (no hand-off to the thread).

use crate::hub::{Answer, Hub, Outbound, OutboundRx, Requester, StreamKind};
use crate::protocol::Envelope;
use crate::rules::fanout::Subscription;
use crate::store::{BackendKind, Store};
use futures_lite::future::block_on;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn hub() -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    (Hub::new(store), dir)
}

fn who(subject: &str) -> Requester {
    Requester {
        subjects: Arc::from(vec![subject.to_owned()]),
        origin: None,
    }
}

fn request(hub: &Hub, who: &Requester, v: Value) -> u16 {
    match block_on(hub.handle_protocol(who, Envelope::parse(&v.to_string()).unwrap())) {
        Some(Answer::Now(r)) => r.envelope.status.unwrap_or(0),
        _ => panic!("no immediate answer"),
    }
}

/// A thing the owner writes and `nginx:sub` may read.
fn create(hub: &Hub, owner: &Requester, name: &str) {
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let policy = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "test"}},
                  "resources": {"policy:/": rw, "thing:/": rw}},
        "sub": {"subjects": {"nginx:sub": {"type": "test"}},
                "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}});
    let cmd = json!({"topic": format!("pub/{name}/things/twin/commands/create"), "path": "/",
        "value": {"_policy": policy, "attributes": {"n": 0}}});
    assert_eq!(request(hub, owner, cmd), 201);
}

/// A modify; `acks: []` = nobody waits for the write (`Durability::Interval`), else the
/// default `twin-persisted` (`Durability::Waited`).
fn modify(hub: &Hub, owner: &Requester, name: &str, n: u64, waited: bool) {
    let mut cmd = json!({"topic": format!("pub/{name}/things/twin/commands/modify"),
        "path": "/attributes/n", "value": n});
    if !waited {
        cmd["headers"] = json!({"requested-acks": []});
    }
    assert_eq!(request(hub, owner, cmd), 204);
}

fn event(rx: &OutboundRx) -> Option<Value> {
    match rx.try_recv() {
        Ok(Outbound::Now(t)) => Some(serde_json::from_str(&t).unwrap()),
        Ok(other) => panic!("an event is queued as Now, got {other:?}"),
        Err(_) => None,
    }
}

#[test]
fn mixed_waited_and_interval_events_from_several_threads_stay_in_order() {
    let (hub, _dir) = hub();
    let owner = who("nginx:owner");
    let (session, rx) = hub.open_session(Arc::from(vec!["nginx:sub".to_owned()]), 100_000, 4);
    hub.subscribe(&session, StreamKind::Events, Subscription::default());
    let things = ["a", "b", "c"];
    for t in things {
        create(&hub, &owner, t);
    }
    const PER_THREAD: u64 = 150;
    std::thread::scope(|s| {
        for w in 0..4u64 {
            let (hub, owner) = (hub.clone(), owner.clone());
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    // every thread writes every thing; one write in three waits for the disk
                    let name = things[((w + i) % 3) as usize];
                    modify(&hub, &owner, name, w * 1_000 + i, (w + i) % 3 == 0);
                }
            });
        }
    });
    // the last writes (Waited ones) are published once durable: wait for every event
    let gate = hub.gate();
    block_on(gate.wait(hub.store().last_seq())).unwrap();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut n = 0;
    while let Some(e) = event(&rx) {
        let topic = e["topic"].as_str().unwrap().to_owned();
        let rev = e["revision"].as_u64().unwrap();
        let prev = last.insert(topic.clone(), rev).unwrap_or(0);
        assert!(rev > prev, "{topic}: revision {rev} after {prev}");
        n += 1;
    }
    assert_eq!(
        n,
        3 + 4 * PER_THREAD,
        "every create and modify delivered once"
    );
    assert!(!session.overflowed());
}

#[test]
fn an_event_nobody_waits_for_is_queued_when_its_command_returns() {
    let (hub, _dir) = hub();
    let owner = who("nginx:owner");
    let (session, rx) = hub.open_session(Arc::from(vec!["nginx:sub".to_owned()]), 64, 4);
    hub.subscribe(&session, StreamKind::Events, Subscription::default());
    create(&hub, &owner, "a");
    // the create waited for the disk: its event is the thread's; wait until it is out
    block_on(hub.gate().wait(hub.store().last_seq())).unwrap();
    let created = event(&rx).expect("the create's event");
    assert_eq!(created["topic"], "pub/a/things/twin/events/created");
    for i in 1..=200 {
        modify(&hub, &owner, "a", i, false);
        // no waiting: the producer published it itself (nobody else was publishing)
        let e = event(&rx).expect("the modify's event is queued already");
        assert_eq!(e["topic"], "pub/a/things/twin/events/modified");
        assert_eq!(e["value"], i);
    }
    // a write that waits for the disk is published by the thread once durable
    modify(&hub, &owner, "a", 201, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let e = loop {
        if let Some(e) = event(&rx) {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "the durable write's event never came"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(e["value"], 201);
}
