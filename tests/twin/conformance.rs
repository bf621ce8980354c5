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
//! - RUN, live channel (messages, acknowledgements): multi-session plans in `conformance_run`
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
// the corpus as plans, and the steps of a run (both shared with the in-process run,
// src/hub/conformance_tests.rs)
#[path = "conformance_cases.rs"]
mod cases;
#[path = "conformance_run.rs"]
mod run;
use cases::*;
use common::{block_on, Server, Ws};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Parallel servers.
const WORKERS: usize = 6;

/// Sessions are WebSockets of the user `ditto` to a server of its own.
struct Sockets(Server);

impl run::Gateway for Sockets {
    type Client = Ws;
    async fn client(&self) -> Ws {
        self.0.ws().await
    }
    async fn declaring(&self, labels: &[String]) -> Ws {
        let path = format!("/ws/2?declared-acks={}", labels.join(","));
        let auth = [("authorization", common::basic("ditto", "ditto"))];
        Ws::connect_with(self.0.addr, &path, &auth)
            .await
            .expect("ws connect")
    }
}

impl run::Client for Ws {
    async fn request(&mut self, cmd: Value) -> Value {
        Ws::request(self, cmd).await
    }
    async fn send(&mut self, msg: &Value) {
        Ws::send(self, msg).await
    }
    async fn control(&mut self, msg: &str) -> Result<(), String> {
        Ws::control(self, msg).await;
        Ok(())
    }
    async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        let t = self.try_recv_text(wait).await?;
        Some(serde_json::from_str(&t).unwrap_or(Value::String(t)))
    }
}

fn run_plan(name: &str, plan: &Plan) -> Vec<Mismatch> {
    if plan.search {
        return run_search_case(name, plan);
    }
    block_on(run::twin(&Sockets(Server::start()), name, plan))
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
                    Class::Live(p) => block_on(run::live(&Sockets(Server::start()), &c.name, p)),
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
                n_ok += usize::from(run::report(&c.name, ms, &mut failures));
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
