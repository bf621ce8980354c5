//! Data-driven conformance test over every case in `shared/conformance/things/*.json` (real Ditto
//! Protocol envelopes from Ditto's docs and tests), twin channel, against the real binary.
//!
//! Every case file is classified as exactly one of:
//! - RUN, twin command: the pre-state the case implies is set up through the protocol (one
//!   `create` of the thing, plus the helper thing `org.eclipse.ditto:the_policy_id` whose implicit
//!   policy makes that policy ID exist), then the case command is sent and the response and the
//!   event seen by a second session (`START-SEND-EVENTS`) are compared with the case.
//! - RUN, error-only (`error-*`, `command: null`): the triggering command is constructed from
//!   the error code and the spec (table in `error_plan`), then status, code and (where the
//!   case's message is derivable) message and description are compared.
//! - RUN, event-only: the event is provoked by a constructed command (`event_only_plan`).
//! - RUN, live channel (messages, acknowledgements): multi-session plans in `conformance_live`
//!   (a device / subscriber session receives the case's signal and answers).
//! - SKIPPED: listed with a reason in `SKIPPED`.
//!
//! A case file that is none of these fails the test, as does a `SKIPPED` entry without a file.
//!
//! Volatile parts are not compared: `timestamp` (only its presence on events), `etag`,
//! `entity-revision`, `ditto-originator`, header fields the case does not show, error `href`.
//! `correlation-id` must equal the one sent (never the doc placeholder). `revision` of events must
//! be exactly the derived one (1 for a creation, 2 for a change on the thing set up with one
//! create). Values are compared with JSON equality. Where a case (notes: DOC-INCONSISTENCY /
//! NOTE) or Ditto's source disagrees with the doc example, the expectation is derived from
//! `shared/spec/` and the derivation is printed with the case's summary line (`derived: ...`).
//!
//! Directory: `$EDGETWIN_CONFORMANCE_DIR/things` if set, else `tests/conformance/things` (a copy of the
//! project's shared corpus, kept in the repo so a clean clone runs it).
//! The per-case summary goes to stderr (`cargo test --test conformance -- --nocapture` to see it
//! when everything passes; on failure it is shown anyway, followed by every mismatch).

// 3.141 / 2.718 are the doc examples' property values, not approximations of PI / E.
#![allow(clippy::approx_constant)]

use crate::common;
// the corpus as plans (shared with the in-process run, src/hub/conformance_tests.rs)
#[path = "conformance_cases.rs"]
mod conformance_cases;
// live channel cases (messages, acks): multi-session runs
#[path = "conformance_live/mod.rs"]
mod conformance_live;
use common::{block_on, Server, WAIT};
use conformance_cases::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Parallel servers.
const WORKERS: usize = 6;

fn run_plan(name: &str, plan: &Plan) -> Vec<Mismatch> {
    if plan.search {
        return run_search_case(name, plan);
    }
    let srv = Server::start();
    block_on(async {
        let mut out = vec![];
        let mut w = srv.ws().await;
        let mut sub = srv.ws().await;
        let mut setup = vec![];
        if plan.helper_policy {
            setup.push(create(POLICY, json!({})));
        }
        setup.extend(plan.setup.iter().cloned());
        setup.push(create(SENTINEL, json!({})));
        for (i, s) in setup.into_iter().enumerate() {
            let r = w.request(s.clone()).await;
            let st = r["status"].as_u64().unwrap_or(0);
            if !(200..300).contains(&st) {
                out.push(mm(format!("setup[{i}] {s}"), "2xx", r));
                return out;
            }
        }
        sub.control(&plan.subscribe).await;
        // Events are published once durable, asynchronously: events of the setup may still
        // arrive after the subscription. A sentinel change marks the point after which every
        // event must belong to the case.
        w.request(modify(SENTINEL, "/attributes/ready", json!(true)))
            .await;
        loop {
            match sub.next_event(WAIT).await {
                Some(a) if a["path"] == "/attributes/ready" => break,
                Some(_) => {}
                None => {
                    out.push(mm("sentinel ready event", "an event", "<none>"));
                    return out;
                }
            }
        }

        let cid = format!("conformance-{name}");
        let mut cmd = plan.command.clone();
        if !cmd["headers"].is_object() {
            cmd["headers"] = json!({});
        }
        cmd["headers"]["correlation-id"] = json!(cid);
        let actual = w.request(cmd).await;
        compare_envelope(
            "response",
            &plan.response,
            &actual,
            &cid,
            None,
            plan.error_texts,
            &mut out,
        );
        if let Some(ev) = &plan.event {
            match sub.next_event(WAIT).await {
                Some(a) => compare_envelope("event", ev, &a, &cid, plan.revision, true, &mut out),
                None => out.push(mm("event", ev, "<no event>")),
            }
        }
        // the next event must be the sentinel's: nothing unexpected was emitted
        w.request(modify(SENTINEL, "/attributes/done", json!(true)))
            .await;
        match sub.next_event(WAIT).await {
            Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/created" => {}
            Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/modified" => {}
            Some(a) => out.push(mm("event (unexpected)", "none", a)),
            None => out.push(mm("sentinel event", "an event", "<none>")),
        }
        out
    })
}

#[test]
fn things_conformance() {
    let cases = load_cases();
    let mut problems: Vec<String> = vec![];
    for (name, _) in SKIPPED {
        if !cases.iter().any(|c| c.name == *name) {
            problems.push(format!(
                "SKIPPED lists '{name}' but there is no such case file"
            ));
        }
    }
    let classified: Vec<(Case, Class)> = cases
        .into_iter()
        .map(|c| {
            let k = classify(&c);
            (c, k)
        })
        .collect();
    let runs: Vec<(usize, &Case, &Class)> = classified
        .iter()
        .enumerate()
        .filter(|(_, (_, k))| matches!(k, Class::Run(_) | Class::Live(_)))
        .map(|(i, (c, k))| (i, c, k))
        .collect();

    let results: Mutex<Vec<Option<Vec<Mismatch>>>> =
        Mutex::new((0..classified.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some((i, c, p)) = runs.get(j) else { break };
                let run = || match p {
                    Class::Run(p) => run_plan(&c.name, p),
                    Class::Live(p) => conformance_live::run(&c.name, p),
                    _ => vec![],
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(
                    |e| {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        vec![mm("harness", "no panic", format!("panic: {msg}"))]
                    },
                );
                results.lock().unwrap()[*i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap();

    let (mut n_run, mut n_ok, mut n_skip) = (0, 0, 0);
    let mut failures: Vec<String> = vec![];
    for (i, (c, k)) in classified.iter().enumerate() {
        match k {
            Class::Skip(why) => {
                n_skip += 1;
                eprintln!("{:<55} skipped: {why}", c.name);
            }
            Class::Unclassified(why) => {
                problems.push(format!(
                    "case '{}' is neither run nor listed in SKIPPED ({why}); notes: {}",
                    c.name, c.notes
                ));
                eprintln!("{:<55} UNCLASSIFIED: {why}", c.name);
            }
            Class::Run(_) | Class::Live(_) => {
                n_run += 1;
                let ms = results[i].as_ref().expect("every run case has a result");
                if ms.is_empty() {
                    n_ok += 1;
                    eprintln!("{:<55} ok", c.name);
                } else {
                    eprintln!("{:<55} FAILED ({} mismatches)", c.name, ms.len());
                    for m in ms {
                        failures.push(format!(
                            "{}: {}\n    expected: {}\n    actual:   {}",
                            c.name, m.field, m.expected, m.actual
                        ));
                    }
                }
                let derived = match k {
                    Class::Run(plan) => plan.derived.clone(),
                    Class::Live(plan) => plan.derived(),
                    _ => vec![],
                };
                for d in &derived {
                    eprintln!("{:<55}   derived: {d}", "");
                }
            }
        }
    }
    eprintln!(
        "conformance: {} cases, {n_run} run, {n_ok} passed, {} failed, {n_skip} skipped",
        classified.len(),
        n_run - n_ok
    );
    if !problems.is_empty() || !failures.is_empty() {
        panic!(
            "conformance failures:\n{}\n{}",
            problems.join("\n"),
            failures.join("\n")
        );
    }
    assert!(n_run > 0, "no case was run");
}

fn with_sid(v: &Value, sid: &Value) -> Value {
    let mut v = v.clone();
    if v["value"].get("subscriptionId").is_some() {
        v["value"]["subscriptionId"] = sid.clone();
    }
    v
}

fn search_msg(action: &str, cid: &str, value: Value) -> Value {
    json!({"topic": format!("{SEARCH}{action}"), "path": "/",
           "headers": {"correlation-id": cid, "content-type": "application/json"}, "value": value})
}

fn run_search_case(name: &str, plan: &Plan) -> Vec<Mismatch> {
    let srv = Server::start();
    block_on(async {
        let mut out = vec![];
        let mut ws = srv.ws().await;
        for t in ["default:thing1", "default:thing2"] {
            let r = ws
                .request(create(t, json!({"attributes": {"temperature": 35}})))
                .await;
            if r["status"] != 201 {
                out.push(mm(format!("setup {t}"), 201, r));
                return out;
            }
        }
        let cid = format!("conformance-{name}");
        let subscribe = |cid: &str| {
            let mut m = search_msg(
                "subscribe",
                cid,
                json!({"filter": "eq(attributes/temperature,35)"}),
            );
            m["fields"] = json!("thingId,attributes");
            m
        };
        // the case's own subscribe, or the one its pre-state needs
        let sub_cid = if name == "search-subscribe" {
            cid.clone()
        } else {
            format!("{cid}-sub")
        };
        let mut sub = if name == "search-subscribe" {
            plan.command.clone()
        } else {
            subscribe(&sub_cid)
        };
        if name == "search-error-option-invalid" {
            sub = search_msg("subscribe", &cid, json!({"options": 5}));
            ws.send(&sub).await;
            let actual = ws.recv().await;
            compare_envelope(
                "response",
                &plan.response,
                &actual,
                &cid,
                None,
                plan.error_texts,
                &mut out,
            );
            return out;
        }
        sub["headers"]["correlation-id"] = json!(sub_cid);
        ws.send(&sub).await;
        let created = ws.recv().await;
        let sid = created["value"]["subscriptionId"].clone();
        if sid.as_str().is_none_or(|s| s.is_empty()) {
            out.push(mm(
                "created.value.subscriptionId",
                "a non-empty string",
                &created,
            ));
            return out;
        }
        let expect_event = |out: &mut Vec<Mismatch>, actual: &Value, cid: &str| match &plan.event {
            Some(ev) => compare_envelope(
                "search-event",
                &with_sid(ev, &sid),
                actual,
                cid,
                None,
                true,
                out,
            ),
            None => out.push(mm("event", "none", actual)),
        };
        match name {
            "search-subscribe" => expect_event(&mut out, &created, &cid),
            "search-request-next" => {
                let mut cmd = with_sid(&plan.command, &sid);
                cmd["headers"]["correlation-id"] = json!(cid);
                ws.send(&cmd).await;
                let next = ws.recv().await;
                expect_event(&mut out, &next, &cid);
            }
            "search-complete" | "search-failed" => {
                let demand = if name == "search-failed" { 0 } else { 1 };
                ws.send(&search_msg(
                    "request",
                    &cid,
                    json!({"subscriptionId": sid, "demand": demand}),
                ))
                .await;
                let mut f = ws.recv().await;
                if name == "search-complete" && f["topic"] == format!("{SEARCH}next") {
                    f = ws.recv().await;
                }
                expect_event(&mut out, &f, &cid);
            }
            "search-cancel" => {
                let mut cmd = with_sid(&plan.command, &sid);
                cmd["headers"]["correlation-id"] = json!(cid);
                ws.send(&cmd).await;
                // no reply: the next frame is the created of a fresh subscription
                ws.send(&subscribe("after-cancel")).await;
                let f = ws.recv().await;
                if f["headers"]["correlation-id"] != "after-cancel"
                    || f["topic"] != format!("{SEARCH}created")
                {
                    out.push(mm("reply to cancel", "none", f));
                }
            }
            other => out.push(mm("case", "a known search case", other)),
        }
        out
    })
}
