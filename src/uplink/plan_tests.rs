//! Unit tests of the reconciliation state machine: every path from a local change or a cloud
//! change to the record stored, with the cloud's answers fed in as data.

use super::*;
use serde_json::json;

fn local(rev: u64, doc: Value) -> Option<Local> {
    Some(Local {
        doc,
        revision: rev,
        created: 100,
    })
}

fn rec(local_rev: u64, cloud_rev: u64, base: Value) -> Option<SyncRecord> {
    Some(SyncRecord {
        local_rev,
        local_created: 100,
        cloud_rev,
        base,
    })
}

fn ok(rev: u64) -> CloudReply {
    CloudReply::Ok {
        revision: Some(rev),
        thing: None,
    }
}

fn err(status: u16, code: &str) -> CloudReply {
    CloudReply::Err {
        status,
        code: code.into(),
        message: "m".into(),
    }
}

fn done(step: Step) -> SyncRecord {
    match step {
        Step::Done(Some(r)) => r,
        other => panic!("expected a record, got {other:?}"),
    }
}

#[test]
fn a_new_thing_is_created_with_the_configured_policy() {
    let doc = json!({"attributes": {"a": 1}});
    let mut j = Job::new(
        "n:t",
        Some("fleet:edge"),
        local(1, doc.clone()),
        None,
        false,
    );
    assert_eq!(
        j.start(),
        Step::Cloud(CloudCmd::Create(
            json!({"attributes": {"a": 1}, "policyId": "fleet:edge"})
        ))
    );
    let r = done(j.on_cloud(ok(1)));
    assert_eq!((r.local_rev, r.cloud_rev, r.base), (1, 1, doc));
}

#[test]
fn a_local_change_is_one_conditional_patch() {
    let base = json!({"attributes": {"a": 1, "b": 1}});
    let now = json!({"attributes": {"a": 2, "b": 1}});
    let mut j = Job::new("n:t", None, local(5, now.clone()), rec(3, 9, base), false);
    assert_eq!(
        j.start(),
        Step::Cloud(CloudCmd::Patch {
            patch: json!({"attributes": {"a": 2}}),
            if_match: 9
        })
    );
    let r = done(j.on_cloud(ok(10)));
    assert_eq!((r.local_rev, r.cloud_rev, r.base), (5, 10, now));
}

#[test]
fn an_unchanged_thing_is_clean_and_a_policy_change_only_moves_the_record() {
    let doc = json!({"attributes": {"a": 1}});
    let mut j = Job::new(
        "n:t",
        None,
        local(3, doc.clone()),
        rec(3, 9, doc.clone()),
        false,
    );
    assert_eq!(j.start(), Step::Clean);
    let mut j = Job::new("n:t", None, local(4, doc.clone()), rec(3, 9, doc), false);
    let r = done(j.start());
    assert_eq!((r.local_rev, r.cloud_rev), (4, 9));
}

#[test]
fn a_stale_cloud_revision_is_retrieved_and_merged() {
    let base =
        json!({"attributes": {"a": 1}, "features": {"f": {"desiredProperties": {"on": false}}}});
    let now =
        json!({"attributes": {"a": 2}, "features": {"f": {"desiredProperties": {"on": false}}}});
    let mut j = Job::new("n:t", None, local(5, now), rec(3, 9, base), false);
    assert!(matches!(j.start(), Step::Cloud(CloudCmd::Patch { .. })));
    assert_eq!(
        j.on_cloud(err(412, "things:precondition.failed")),
        Step::Cloud(CloudCmd::Retrieve)
    );
    // the cloud set a desired property meanwhile
    let cloud = json!({"thingId": "n:t", "policyId": "x:y", "attributes": {"a": 1},
                       "features": {"f": {"desiredProperties": {"on": true}}}});
    let step = j.on_cloud(CloudReply::Ok {
        revision: Some(11),
        thing: Some(cloud),
    });
    assert_eq!(
        step,
        Step::Cloud(CloudCmd::Patch {
            patch: json!({"attributes": {"a": 2}}),
            if_match: 11
        })
    );
    assert_eq!(
        j.on_cloud(ok(12)),
        Step::Local(LocalCmd {
            patch: json!({"features": {"f": {"desiredProperties": {"on": true}}}}),
            if_match: 5
        })
    );
    let r = done(j.on_local(Ok(6)));
    assert_eq!((r.local_rev, r.cloud_rev), (6, 12));
    assert_eq!(
        r.base,
        json!({"attributes": {"a": 2}, "features": {"f": {"desiredProperties": {"on": true}}}})
    );
}

#[test]
fn a_cloud_change_alone_comes_down_without_a_cloud_write() {
    let base = json!({"features": {"f": {"desiredProperties": {"t": 20}}}});
    let mut j = Job::new("n:t", None, local(3, base.clone()), rec(3, 9, base), true);
    assert_eq!(j.start(), Step::Cloud(CloudCmd::Retrieve));
    let step = j.on_cloud(CloudReply::Ok {
        revision: None,
        thing: Some(json!({"features": {"f": {"desiredProperties": {"t": 22}}}, "_revision": 10})),
    });
    assert_eq!(
        step,
        Step::Local(LocalCmd {
            patch: json!({"features": {"f": {"desiredProperties": {"t": 22}}}}),
            if_match: 3
        })
    );
    let r = done(j.on_local(Ok(4)));
    assert_eq!(
        (r.local_rev, r.cloud_rev),
        (4, 10),
        "revision from _revision"
    );
}

#[test]
fn deletes_go_up_and_a_thing_the_cloud_lost_is_created_again() {
    let doc = json!({"attributes": {"a": 1}});
    let mut j = Job::new("n:t", None, None, rec(3, 9, doc.clone()), false);
    assert_eq!(j.start(), Step::Cloud(CloudCmd::Delete));
    assert_eq!(
        j.on_cloud(err(404, "things:thing.notfound")),
        Step::Done(None)
    );
    let mut j = Job::new("n:t", None, None, None, false);
    assert_eq!(j.start(), Step::Clean, "never synced, nothing to delete");
    // the cloud deleted it: the edge owns existence
    let now = json!({"attributes": {"a": 2}});
    let mut j = Job::new("n:t", None, local(4, now.clone()), rec(3, 9, doc), false);
    assert!(matches!(j.start(), Step::Cloud(CloudCmd::Patch { .. })));
    assert_eq!(
        j.on_cloud(err(404, "things:thing.notfound")),
        Step::Cloud(CloudCmd::Create(now))
    );
}

#[test]
fn an_existing_cloud_thing_without_record_is_merged_without_base() {
    let mine = json!({"attributes": {"a": 1}, "features": {"f": {"desiredProperties": {"x": 1}}}});
    let mut j = Job::new("n:t", None, local(2, mine), None, false);
    assert!(matches!(j.start(), Step::Cloud(CloudCmd::Create(_))));
    assert_eq!(
        j.on_cloud(err(409, "things:thing.conflict")),
        Step::Cloud(CloudCmd::Retrieve)
    );
    let theirs =
        json!({"attributes": {"a": 7}, "features": {"f": {"desiredProperties": {"x": 9}}}});
    let step = j.on_cloud(CloudReply::Ok {
        revision: Some(4),
        thing: Some(theirs),
    });
    // the edge owns attributes, the cloud desired properties
    assert_eq!(
        step,
        Step::Cloud(CloudCmd::Patch {
            patch: json!({"attributes": {"a": 1}}),
            if_match: 4
        })
    );
}

#[test]
fn refusals_retries_and_restarts() {
    let doc = json!({"attributes": {"a": 1}});
    let mut j = Job::new("n:t", None, local(1, doc.clone()), None, false);
    j.start();
    assert!(matches!(
        j.on_cloud(err(404, "things:policy.notfound")),
        Step::Refused {
            side: Side::Cloud,
            status: 404,
            ..
        }
    ));
    let mut j = Job::new("n:t", None, local(1, doc.clone()), None, false);
    j.start();
    assert!(matches!(
        j.on_cloud(err(503, "things:thing.unavailable")),
        Step::Retry { fault: false, .. }
    ));
    let mut j = Job::new("n:t", None, local(1, doc.clone()), None, false);
    j.start();
    assert!(matches!(
        j.on_cloud(err(500, "internal")),
        Step::Retry { fault: true, .. }
    ));
    // the local hub refuses the cloud's change / the thing changed locally meanwhile
    let base = json!({"features": {"f": {"desiredProperties": {"t": 1}}}});
    let cloud = json!({"features": {"f": {"desiredProperties": {"t": 2}}}});
    let mut j = Job::new(
        "n:t",
        None,
        local(3, base.clone()),
        rec(3, 9, base.clone()),
        true,
    );
    j.start();
    let reply = CloudReply::Ok {
        revision: Some(10),
        thing: Some(cloud.clone()),
    };
    assert!(matches!(j.on_cloud(reply.clone()), Step::Local(_)));
    assert!(matches!(
        j.on_local(Err((403, "no".into()))),
        Step::Refused {
            side: Side::Local,
            ..
        }
    ));
    let mut j = Job::new("n:t", None, local(3, base.clone()), rec(3, 9, base), true);
    j.start();
    j.on_cloud(reply);
    assert_eq!(j.on_local(Err((412, "moved".into()))), Step::Restart);
    assert!(
        matches!(
            j.on_local(Err((503, "disk full".into()))),
            Step::Retry { fault: false, .. }
        ),
        "a store that takes no writes now is tried again later"
    );
    let again = json!({"attributes": {"z": 1}, "features": {"f": {"desiredProperties": {"t": 1}}}});
    assert_eq!(j.restart(local(4, again)), Step::Cloud(CloudCmd::Retrieve));
}

#[test]
fn stale_rounds_are_bounded() {
    let base = json!({"attributes": {"a": 1}});
    let mut j = Job::new(
        "n:t",
        None,
        local(5, json!({"attributes": {"a": 2}})),
        rec(3, 9, base),
        false,
    );
    let mut step = j.start();
    let mut rounds = 0;
    while let Step::Cloud(cmd) = &step {
        step = match cmd {
            CloudCmd::Patch { .. } => j.on_cloud(err(412, "things:precondition.failed")),
            CloudCmd::Retrieve => j.on_cloud(CloudReply::Ok {
                revision: Some(20 + rounds),
                thing: Some(json!({"attributes": {"a": 1, "other": rounds}})),
            }),
            other => panic!("{other:?}"),
        };
        rounds += 1;
        assert!(rounds < 50, "bounded");
    }
    assert!(matches!(step, Step::Retry { status: 409, .. }), "{step:?}");
    assert!(j.stale_rounds() > MAX_STALE_ROUNDS);
}

#[test]
fn a_thing_created_again_reuses_its_implicit_cloud_policy() {
    let doc = json!({"attributes": {"a": 1}});
    let mut j = Job::new(
        "n:t",
        None,
        local(4, doc.clone()),
        rec(3, 9, doc.clone()),
        true,
    );
    assert_eq!(j.start(), Step::Cloud(CloudCmd::Retrieve));
    assert_eq!(
        j.on_cloud(err(404, "things:thing.notfound")),
        Step::Cloud(CloudCmd::Create(doc.clone()))
    );
    assert_eq!(
        j.on_cloud(err(400, "things:thing.notcreatable")),
        Step::Cloud(CloudCmd::Create(
            json!({"attributes": {"a": 1}, "policyId": "n:t"})
        ))
    );
    assert!(matches!(
        j.on_cloud(err(400, "things:thing.notcreatable")),
        Step::Refused { .. }
    ));
}
