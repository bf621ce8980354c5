//! The hub on simulated time (`clock::SimClock`): live timeouts and subject expiry with its
//! announcements happen when the clock is advanced, without a single sleep.

use super::{Answer, Hub, Requester, StreamKind};
use crate::clock::{format_millis, Clock, SimClock};
use crate::protocol::Envelope;
use crate::rules::fanout::Subscription;
use crate::rules::outcome::Finished;
use crate::store::{BackendKind, Store};
use futures_lite::future::{block_on, poll_once};
use serde_json::{json, Value};
use std::sync::Arc;

/// 2021-01-18T09:42:12.000Z
const START: i64 = 1_610_962_932_000;

fn hub() -> (Hub, SimClock, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    let clock = SimClock::new(START);
    (Hub::with_clock(store, Arc::new(clock.clone())), clock, dir)
}

fn who(subject: &str) -> Requester {
    Requester {
        subjects: Arc::from(vec![subject.to_owned()]),
        origin: None,
    }
}

fn request(hub: &Hub, who: &Requester, v: Value) -> Option<Answer> {
    block_on(hub.handle_protocol(who, Envelope::parse(&v.to_string()).unwrap()))
}

fn status(a: Option<Answer>) -> u16 {
    match a {
        Some(Answer::Now(r)) => r.envelope.status.unwrap_or(0),
        _ => panic!("no immediate answer"),
    }
}

#[test]
fn a_live_command_nobody_answers_times_out_when_the_clock_passes_its_timeout() {
    let (hub, clock, _dir) = hub();
    let owner = who("nginx:owner");
    let create = json!({"topic": "sim/t/things/twin/commands/create", "path": "/", "value": {}});
    assert_eq!(status(request(&hub, &owner, create)), 201);
    let live = json!({"topic": "sim/t/things/live/commands/retrieve", "path": "/",
        "headers": {"correlation-id": "c-1", "timeout": "5s"}});
    let Some(Answer::Later(waiter)) = request(&hub, &owner, live) else {
        panic!("a live command waits for its answer");
    };
    let mut wait = Box::pin(waiter.wait());
    assert!(block_on(poll_once(&mut wait)).is_none());
    clock.advance(4_999);
    assert!(
        block_on(poll_once(&mut wait)).is_none(),
        "1 ms before the timeout"
    );
    assert_eq!(hub.pending_count(), 1);
    clock.advance(1);
    match block_on(poll_once(&mut wait)) {
        Some(Finished::Error(e)) => {
            assert_eq!((e.status, &*e.error), (408, "command.timeout"));
            assert_eq!(
                e.message,
                "The Command reached the specified timeout of 5,000ms."
            );
        }
        other => panic!("expected the timeout, got {other:?}"),
    }
    assert_eq!(hub.pending_count(), 0, "the timeout removed the request");
}

#[test]
fn expiring_subjects_are_announced_and_removed_on_the_clock() {
    let (hub, clock, _dir) = hub();
    let owner = who("nginx:owner");
    let (session, rx) = hub.open_session(Arc::from(vec!["nginx:temp".to_owned()]), 8, 4);
    hub.subscribe(
        &session,
        StreamKind::PolicyAnnouncements,
        Subscription::default(),
    );
    let expiry = START + 60_000;
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let policy = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "test"}},
                  "resources": {"policy:/": rw, "thing:/": rw}},
        "temp": {"subjects": {"nginx:temp": {"type": "test", "expiry": format_millis(expiry),
                     "announcement": {"beforeExpiry": "10s", "whenDeleted": true}}},
                 "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}});
    let create = json!({"topic": "sim/p/policies/commands/create", "path": "/", "value": policy});
    assert_eq!(status(request(&hub, &owner, create)), 201);
    let temp_subjects = || {
        let get = json!({"topic": "sim/p/policies/commands/retrieve",
            "path": "/entries/temp/subjects"});
        match request(&hub, &owner, get) {
            Some(Answer::Now(r)) => r.envelope.value.unwrap_or(Value::Null),
            _ => panic!("no answer"),
        }
    };
    let announcement = |rx: &super::OutboundRx| match rx.try_recv() {
        Ok(super::Outbound::Now(t)) => serde_json::from_str::<Value>(&t).unwrap(),
        other => panic!("expected an announcement, got {other:?}"),
    };
    clock.advance_to(expiry - 10_001);
    block_on(hub.expire_due());
    assert!(rx.is_empty(), "nothing is due yet");
    clock.advance(1);
    block_on(hub.expire_due());
    let a = announcement(&rx);
    assert_eq!(a["topic"], "sim/p/policies/announcements/subjectDeletion");
    assert_eq!(
        a["value"],
        json!({"deleteAt": format_millis(expiry), "subjectIds": ["nginx:temp"]})
    );
    assert!(
        temp_subjects().get("nginx:temp").is_some(),
        "announced, not removed yet"
    );
    clock.advance_to(expiry - 1);
    block_on(hub.expire_due());
    assert!(rx.is_empty(), "announced once ahead of the expiry");
    clock.advance(1);
    block_on(hub.expire_due());
    assert_eq!(temp_subjects(), json!({}), "removed at its expiry");
    let a = announcement(&rx);
    assert_eq!(
        a["value"]["subjectIds"],
        json!(["nginx:temp"]),
        "whenDeleted"
    );
    assert_eq!(clock.now_millis(), expiry);
}

#[test]
fn the_expiry_timer_runs_on_the_hubs_clock() {
    let (hub, clock, _dir) = hub();
    let owner = who("nginx:owner");
    let expiry = START + 2_000;
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let policy = json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "test"}}, "resources": {"policy:/": rw}},
        "temp": {"subjects": {"nginx:temp": {"type": "test", "expiry": format_millis(expiry)}},
                 "resources": {"policy:/": rw}}}});
    let create = json!({"topic": "sim/q/policies/commands/create", "path": "/", "value": policy});
    assert_eq!(status(request(&hub, &owner, create)), 201);
    let stored = |h: &Hub| h.load_policy_state("sim:q").unwrap().unwrap().policy;
    let mut timer = Box::pin(hub.clone().run_policy_timer());
    for _ in 0..4 {
        assert!(block_on(poll_once(&mut timer)).is_none());
        let temp = stored(&hub)
            .pointer("/entries/temp/subjects/nginx:temp")
            .cloned();
        assert!(
            temp.is_some(),
            "still there at {}",
            clock.now_millis() - START
        );
        clock.advance(500);
    }
    assert!(block_on(poll_once(&mut timer)).is_none());
    assert!(stored(&hub)
        .pointer("/entries/temp/subjects/nginx:temp")
        .is_none());
}
