//! The Ditto conformance corpus in-process: every twin case of `tests/conformance/things` (the
//! same loader and plans as the socket test, `tests/twin/conformance_cases.rs`) runs against a
//! hub and engine on a real store in a temp dir, through the door (`Hub::handle_protocol`) and
//! the answer step (`Answer::settle_envelope`), with events read from a subscribed bus session.
//! Cases that need a binding (the WS search protocol, multi-session live plans) and the corpus's
//! own skips are reported with their reason; the socket test runs those over WS.

#[allow(dead_code)]
#[path = "../../tests/twin/conformance_cases.rs"]
mod cases;

use super::{Hub, OutboundRx, Requester, SessionHandle};
use crate::model::FieldSelector;
use crate::protocol::{error_envelope, parse_control, Control, Envelope};
use crate::rules::fanout::Subscription;
use crate::store::{BackendKind, Store};
use cases::{
    classify, compare_envelope, create, load_cases, mm, modify, Class, Mismatch, Plan, POLICY,
    SENTINEL, SKIPPED,
};
use futures_lite::future;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long an expected event may take (as the socket test's `WAIT`).
const WAIT: Duration = Duration::from_secs(10);

/// The subject the socket test's user `ditto` has.
fn subjects() -> Arc<[String]> {
    Arc::from(vec!["nginx:ditto".to_owned()])
}

/// One session on the hub, as the WS binding holds one: a requester and its queue.
struct Session {
    handle: Arc<SessionHandle>,
    rx: OutboundRx,
    who: Requester,
    next_id: u64,
}

impl Session {
    fn open(hub: &Hub) -> Session {
        let (handle, rx) = hub.open_session(subjects(), 512, 64);
        let who = Requester {
            subjects: subjects(),
            origin: Some(handle.id),
        };
        Session {
            handle,
            rx,
            who,
            next_id: 0,
        }
    }

    /// A command as the WS binding handles a text frame: a parse error is answered with its
    /// error envelope, anything else goes through the door and the answer step.
    async fn request(&mut self, hub: &Hub, mut cmd: Value) -> Value {
        if cmd["headers"]["correlation-id"].as_str().is_none() {
            self.next_id += 1;
            if !cmd["headers"].is_object() {
                cmd["headers"] = json!({});
            }
            cmd["headers"]["correlation-id"] = json!(format!("t-{}", self.next_id));
        }
        let env = match Envelope::parse(&cmd.to_string()) {
            Ok(env) => env,
            Err(f) => {
                let e = error_envelope(f.topic.as_ref(), f.correlation_id.as_deref(), &f.error);
                return text_json(&e.to_text());
            }
        };
        match hub.handle_protocol(&self.who, env).await {
            Some(answer) => match answer.settle_envelope(hub).await {
                Some(env) => text_json(&env.to_text()),
                None => Value::Null,
            },
            None => Value::Null,
        }
    }

    /// A `START-SEND-*` control message as `ws::control` handles it.
    fn control(&self, hub: &Hub, msg: &str) -> Result<(), String> {
        let Some(Ok(Control::Start(kind, p))) = parse_control(msg) else {
            return Err(format!("not a START-SEND-* message: {msg}"));
        };
        let filter = p.filter.as_deref().map(crate::rql::parse).transpose();
        let extra = p.extra_fields.as_deref().map(FieldSelector::parse);
        let sub = Subscription {
            namespaces: p.namespaces,
            filter: filter.map_err(|e| format!("{msg}: {e:?}"))?,
            extra: extra.transpose().map_err(|e| format!("{msg}: {e:?}"))?,
        };
        hub.subscribe(&self.handle, kind, sub);
        Ok(())
    }

    /// The next event pushed to this session within `wait`.
    async fn next_event(&self, wait: Duration) -> Option<Value> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let timer = async {
                smol::Timer::after(left).await;
                None
            };
            let out = future::or(async { self.rx.recv().await.ok() }, timer).await?;
            let text = match out {
                super::Outbound::Now(t) => t,
                super::Outbound::Durable { text, .. } => text,
            };
            let v = text_json(&text);
            if v["topic"].as_str().unwrap_or("").contains("/events/") {
                return Some(v);
            }
        }
    }
}

fn text_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The socket test's `run_plan`, in-process: setup, subscribe, a sentinel change (every later
/// event belongs to the case), the case command, its event, and the sentinel again (no
/// unexpected event was emitted).
fn run_plan(name: &str, plan: &Plan) -> Vec<Mismatch> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).expect("store");
    let hub = Hub::new(store.clone());
    let out = future::block_on(async {
        let mut out = vec![];
        let mut w = Session::open(&hub);
        let sub = Session::open(&hub);
        let mut setup = vec![];
        if plan.helper_policy {
            setup.push(create(POLICY, json!({})));
        }
        setup.extend(plan.setup.iter().cloned());
        setup.push(create(SENTINEL, json!({})));
        for (i, s) in setup.into_iter().enumerate() {
            let r = w.request(&hub, s.clone()).await;
            let st = r["status"].as_u64().unwrap_or(0);
            if !(200..300).contains(&st) {
                out.push(mm(format!("setup[{i}] {s}"), "2xx", r));
                return out;
            }
        }
        if let Err(e) = sub.control(&hub, &plan.subscribe) {
            out.push(mm("subscribe", "START-SEND-*", e));
            return out;
        }
        w.request(&hub, modify(SENTINEL, "/attributes/ready", json!(true)))
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
        let actual = w.request(&hub, cmd).await;
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
        w.request(&hub, modify(SENTINEL, "/attributes/done", json!(true)))
            .await;
        match sub.next_event(WAIT).await {
            Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/created" => {}
            Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/modified" => {}
            Some(a) => out.push(mm("event (unexpected)", "none", a)),
            None => out.push(mm("sentinel event", "an event", "<none>")),
        }
        hub.close_session(w.handle.id);
        hub.close_session(sub.handle.id);
        out
    });
    drop(hub);
    let _ = store.close();
    out
}

#[test]
fn things_conformance_in_process() {
    let cases = load_cases();
    let mut problems: Vec<String> = vec![];
    for (name, _) in SKIPPED {
        if !cases.iter().any(|c| c.name == *name) {
            problems.push(format!(
                "SKIPPED lists '{name}' but there is no such case file"
            ));
        }
    }
    let (mut n_run, mut n_ok, mut n_skip) = (0, 0, 0);
    let mut failures: Vec<String> = vec![];
    for c in &cases {
        let why = match classify(c) {
            Class::Skip(why) => why,
            Class::Live(_) => {
                "live channel: a multi-session plan (device / declaring subscriber answers); \
                 run over WS by tests/twin/conformance.rs"
            }
            Class::Run(p) if p.search => {
                "thing-search protocol: the WS binding's subscription state machine \
                 (ws::search); run over WS by tests/twin/conformance.rs"
            }
            Class::Unclassified(why) => {
                problems.push(format!("case '{}' is unclassified: {why}", c.name));
                continue;
            }
            Class::Run(p) => {
                n_run += 1;
                let ms = run_plan(&c.name, &p);
                if ms.is_empty() {
                    n_ok += 1;
                    eprintln!("{:<55} ok", c.name);
                } else {
                    eprintln!("{:<55} FAILED ({} mismatches)", c.name, ms.len());
                }
                for m in ms {
                    failures.push(format!(
                        "{}: {}\n    expected: {}\n    actual:   {}",
                        c.name, m.field, m.expected, m.actual
                    ));
                }
                continue;
            }
        };
        n_skip += 1;
        eprintln!("{:<55} SKIPPED: {why}", c.name);
    }
    eprintln!(
        "conformance (in-process): {} cases, {n_run} run, {n_ok} passed, {} failed, {n_skip} skipped",
        cases.len(),
        n_run - n_ok
    );
    assert!(
        problems.is_empty() && failures.is_empty(),
        "in-process conformance failures:\n{}\n{}",
        problems.join("\n"),
        failures.join("\n")
    );
    assert!(n_run > 0, "no case was run");
}
