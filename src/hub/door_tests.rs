//! The door and the answer step on a real store in a temp dir: every binding's request is a
//! `Signal` through `Hub::call`; `Answer::settle` (request/response bindings) and
//! `Answer::outbound` (streaming bindings) decide what waits for the disk.

use super::answer::not_durable;
use super::{Answer, Hub, Outbound, Outgoing, Reply, Requester};
use crate::protocol::{error_envelope, Envelope, Signal};
use crate::rules::acks::{AckKind, AckRequest, Binding};
use crate::rules::outcome::Finished;
use crate::store::{BackendKind, Store};
use futures_lite::future::block_on;
use serde_json::json;
use std::sync::Arc;

fn hub() -> (Hub, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).unwrap();
    (Hub::new(store), dir)
}

fn owner() -> Requester {
    Requester {
        subjects: Arc::from(vec!["nginx:owner".to_owned()]),
        origin: None,
    }
}

fn signal(v: serde_json::Value) -> Signal {
    Signal::from_envelope(Envelope::parse(&v.to_string()).unwrap()).unwrap()
}

#[test]
fn a_write_with_twin_persisted_settles_once_durable_and_a_stream_gets_it_gated() {
    let (hub, _dir) = hub();
    let create = json!({"topic": "door/t/things/twin/commands/create", "path": "/", "value": {},
        "headers": {"correlation-id": "c-1"}});
    let Signal::Thing(cmd) = signal(create) else {
        panic!("a thing command")
    };
    let acks = AckRequest::resolve(&cmd.headers, AckKind::Twin, Binding::Http).unwrap();
    assert!(
        acks.wants_persisted(),
        "HTTP asks for twin-persisted by default"
    );
    let answer = block_on(hub.call(&owner(), Signal::Thing(cmd.clone()), &acks)).unwrap();
    let Some(Answer::Now(reply)) = answer else {
        panic!("a twin write answers now")
    };
    let seq = reply.after.expect("the answer waits for the write");
    assert_eq!(reply.seq, Some(seq));
    match Answer::Now(reply.clone()).outbound() {
        Outgoing::Now(Outbound::Durable {
            seq: s, on_failure, ..
        }) => {
            assert_eq!(s, seq);
            assert!(on_failure
                .unwrap()
                .text()
                .contains("things:thing.unavailable"));
        }
        _ => panic!("a streaming binding holds the reply until the write is durable"),
    }
    match block_on(Answer::Now(reply).settle(&hub)) {
        Finished::Response(env) => assert_eq!(env.status, Some(201)),
        _ => panic!("settled with the response"),
    }
    assert!(
        block_on(hub.store().durable(seq)).is_ok(),
        "settled = durable"
    );
}

#[test]
fn an_unwaited_write_answers_with_its_sequence_and_waits_for_nothing() {
    let (hub, _dir) = hub();
    let create = json!({"topic": "door/u/things/twin/commands/create", "path": "/", "value": {}});
    let answer = block_on(hub.call(&owner(), signal(create), &AckRequest::unwaited())).unwrap();
    let Some(Answer::Now(reply)) = answer else {
        panic!("a twin write answers now")
    };
    assert_eq!(reply.after, None);
    assert!(
        reply.seq.is_some(),
        "the bridge learns the write's sequence"
    );
    assert!(matches!(
        Answer::Now(reply).outbound(),
        Outgoing::Now(Outbound::Now(_))
    ));
}

#[test]
fn a_policy_reply_that_never_becomes_durable_is_a_policy_error() {
    let env = Envelope::parse(
        &json!({"topic": "door/p/policies/commands/create", "path": "/", "status": 201,
            "headers": {"correlation-id": "c-2"}})
        .to_string(),
    )
    .unwrap();
    let topic = env.topic.clone();
    let reply = Reply {
        envelope: env,
        after: Some(7),
        seq: Some(7),
    };
    match Answer::Now(Box::new(reply)).outbound() {
        Outgoing::Now(Outbound::Durable { on_failure, .. }) => {
            let text = on_failure.unwrap().text();
            assert!(text.contains("policies:policy.unavailable"), "{text}");
            assert!(text.contains("c-2"), "{text}");
            // the text made when it is needed is the one made with the answer before
            let before = error_envelope(Some(&topic), Some("c-2"), &not_durable(&topic));
            assert_eq!(&*text, before.to_text());
        }
        _ => panic!("held until durable"),
    }
}

#[test]
fn a_live_command_through_the_door_is_a_late_answer() {
    let (hub, _dir) = hub();
    let create = json!({"topic": "door/l/things/twin/commands/create", "path": "/", "value": {}});
    block_on(hub.call(&owner(), signal(create), &AckRequest::unwaited())).unwrap();
    let live = json!({"topic": "door/l/things/live/commands/retrieve", "path": "/",
        "headers": {"correlation-id": "c-3", "timeout": "1ms"}});
    let Signal::Thing(cmd) = signal(live) else {
        panic!("a thing command")
    };
    let acks = AckRequest::resolve(&cmd.headers, AckKind::Live, Binding::Http).unwrap();
    let answer = block_on(hub.call(&owner(), Signal::Thing(cmd), &acks)).unwrap();
    let Some(answer @ Answer::Later(_)) = answer else {
        panic!("a live command is answered later")
    };
    let Outgoing::Later(late) = answer.outbound() else {
        panic!("late")
    };
    let env = block_on(late.envelope()).expect("the timeout answers");
    assert_eq!(env.status, Some(408));
}

/// `handle_protocol`'s error answers are addressed as before it stopped copying the topic and
/// correlation-id of every request: the error envelope of the request's topic and
/// correlation-id with the error `from_envelope` or `call` gives, for a failed parse into a
/// signal, a failed thing command, a failed retrieve of several things and a failed policy
/// command; none when no response is required.
#[test]
fn protocol_errors_are_addressed_by_the_request() {
    let (hub, _dir) = hub();
    let create = json!({"topic": "door/e/things/twin/commands/create", "path": "/", "value": {}});
    block_on(hub.call(&owner(), signal(create), &AckRequest::unwaited())).unwrap();
    let requests = [
        json!({"topic": "door/none/things/twin/commands/retrieve", "path": "/"}),
        json!({"topic": "door/none/things/twin/commands/modify", "path": "/attributes/x",
            "value": 1, "headers": {"requested-acks": []}}),
        json!({"topic": "door/e/things/twin/commands/modify", "path": "/nothing", "value": 1}),
        json!({"topic": "door/e/things/twin/commands/create", "path": "/attributes", "value": {}}),
        json!({"topic": "_/_/things/twin/commands/retrieve", "path": "/", "value": {}}),
        json!({"topic": "door/none/policies/commands/retrieve", "path": "/"}),
        json!({"topic": "door/e/things/twin/commands/modify", "path": "/attributes/x",
            "value": 1, "headers": {"if-match": "\"nope\""}}),
    ];
    for (i, mut request) in requests.into_iter().enumerate() {
        let cid = format!("c-{i}");
        request["headers"]["correlation-id"] = json!(cid);
        let env = Envelope::parse(&request.to_string()).unwrap();
        let acks = AckRequest::resolve(
            &env.headers,
            AckKind::of(&env.topic, &env.headers),
            Binding::Ws,
        )
        .unwrap();
        let error = match Signal::from_envelope(env.clone()) {
            Err(e) => e,
            Ok(s) => block_on(hub.call(&owner(), s, &acks))
                .err()
                .expect("the request fails"),
        };
        let want = error_envelope(Some(&env.topic), Some(&cid), &error).to_text();
        let Some(Answer::Now(reply)) = block_on(hub.handle_protocol(&owner(), env)) else {
            panic!("an error answer for {request}")
        };
        assert_eq!(reply.envelope.to_text(), want, "{request}");
        // without a response required: nothing
        request["headers"]["response-required"] = json!(false);
        let env = Envelope::parse(&request.to_string()).unwrap();
        assert!(
            block_on(hub.handle_protocol(&owner(), env)).is_none(),
            "{request}"
        );
    }
}
