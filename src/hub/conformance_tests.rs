//! The Ditto conformance corpus in-process: every twin case of `tests/conformance/things` (the
//! same loader and plans as the socket test, `tests/twin/conformance_cases.rs`) runs against a
//! hub and engine on a real store in a temp dir, through the door (`Hub::handle_protocol`) and
//! the answer step (`Answer::settle_envelope`), with events, live commands and acks read from
//! bus sessions (live plans: a sender and a device / declaring subscriber session). The WS
//! search protocol cases (a binding's state machine) and the corpus's own skips are reported
//! with their reason; the socket test runs those over WS.

#[allow(dead_code)]
#[path = "../../tests/twin/conformance_cases.rs"]
mod cases;

use super::{Hub, OutboundRx, Requester, SessionHandle};
use crate::model::FieldSelector;
use crate::protocol::{error_envelope, parse_control, Control, Envelope};
use crate::rules::fanout::Subscription;
use crate::store::{BackendKind, Store};
use cases::{
    classify, command, compare_envelope, create, load_cases, mm, modify, show, thing_of, Class,
    LivePlan, Mismatch, Plan, POLICY, SENTINEL, SKIPPED,
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

    /// A session whose WS upgrade declared `labels` (`declared-acks`).
    fn declaring(hub: &Hub, labels: &[String]) -> Session {
        let s = Session::open(hub);
        hub.declare_acks(s.handle.id, labels)
            .expect("labels declared");
        s
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
        let sent = self.send(hub, &cmd).await;
        sent.frame(hub).await.unwrap_or(Value::Null)
    }

    /// A text frame through the door, not yet settled (a live answer comes later).
    async fn send(&self, hub: &Hub, msg: &Value) -> Sent {
        let env = match Envelope::parse(&msg.to_string()) {
            Ok(env) => env,
            Err(f) => {
                let e = error_envelope(f.topic.as_ref(), f.correlation_id.as_deref(), &f.error);
                return Sent::Now(text_json(&e.to_text()));
            }
        };
        match hub.handle_protocol(&self.who, env).await {
            Some(answer) => Sent::Answer(answer),
            None => Sent::Nothing,
        }
    }

    /// The next frame of this session with correlation-id `cid` within `wait`.
    async fn frame_with(&self, cid: &str, wait: Duration) -> Option<Value> {
        self.next_frame(wait, |v| v["headers"]["correlation-id"] == cid)
            .await
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
        self.next_frame(wait, |v| {
            v["topic"].as_str().unwrap_or("").contains("/events/")
        })
        .await
    }

    /// The next frame pushed to this session that passes `want`, within `wait`.
    async fn next_frame(&self, wait: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
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
            if want(&v) {
                return Some(v);
            }
        }
    }
}

/// What the door made of a frame.
enum Sent {
    /// an answer to settle
    Answer(super::Answer),
    /// an error answered at once (the frame was no envelope)
    Now(Value),
    /// nothing to answer
    Nothing,
}

impl Sent {
    /// The answer as a frame (settled: waits for the live answer, acks or timeout).
    async fn frame(self, hub: &Hub) -> Option<Value> {
        match self {
            Sent::Answer(a) => a
                .settle_envelope(hub)
                .await
                .map(|e| text_json(&e.to_text())),
            Sent::Now(v) => Some(v),
            Sent::Nothing => None,
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

/// The socket test's live runs (`tests/twin/conformance_live`), in-process.
fn run_live(name: &str, plan: &LivePlan) -> Vec<Mismatch> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).expect("store");
    let hub = Hub::new(store.clone());
    let cid = format!("conformance-{name}");
    let out = future::block_on(async {
        let mut out = vec![];
        match plan {
            LivePlan::Message {
                command: cmd,
                reply,
                ..
            } => {
                let thing = thing_of(cmd["topic"].as_str().unwrap_or_default());
                let mut sender = Session::open(&hub);
                let device = Session::open(&hub);
                let create = command(&thing, "create", "/", Some(json!({})));
                let r = sender.request(&hub, create).await;
                if r["status"] != 201 {
                    return vec![mm("setup create", 201, r)];
                }
                if let Err(e) = device.control(&hub, "START-SEND-MESSAGES") {
                    return vec![mm("subscribe", "START-SEND-MESSAGES", e)];
                }
                let mut cmd = cmd.clone();
                cmd["headers"]["correlation-id"] = json!(cid);
                let sent = sender.send(&hub, &cmd).await;
                let Some(got) = device.frame_with(&cid, WAIT).await else {
                    return vec![mm("device received", &cmd, "<nothing>")];
                };
                compare_envelope("received", &cmd, &got, &cid, None, true, &mut out);
                let mut reply = reply.clone();
                reply["headers"]["correlation-id"] = json!(cid);
                if let Some(v) = device.send(&hub, &reply).await.frame(&hub).await {
                    out.push(mm("device's answer", "taken without a reply", v));
                }
                match sent.frame(&hub).await {
                    Some(a) => compare_envelope("response", &reply, &a, &cid, None, true, &mut out),
                    None => out.push(mm("response", &reply, "<nothing>")),
                }
            }
            LivePlan::Acks {
                thing,
                labels,
                timeout,
                ack,
                expect,
                ..
            } => {
                let mut req = Session::open(&hub);
                let custom: Vec<String> = labels
                    .iter()
                    .filter(|l| *l != "twin-persisted")
                    .cloned()
                    .collect();
                let sub = Session::declaring(&hub, &custom);
                let create = command(thing, "create", "/", Some(json!({"attributes": {"x": 0}})));
                let r = req.request(&hub, create).await;
                if r["status"] != 201 {
                    return vec![mm("setup create", 201, r)];
                }
                if let Err(e) = sub.control(&hub, "START-SEND-EVENTS") {
                    return vec![mm("subscribe", "START-SEND-EVENTS", e)];
                }
                let mut m = modify(thing, "/attributes", json!({"x": 1}));
                m["headers"] =
                    json!({"correlation-id": cid, "requested-acks": labels, "timeout": timeout});
                let sent = req.send(&hub, &m).await;
                let Some(ev) = sub.frame_with(&cid, WAIT).await else {
                    return vec![mm("event at the subscriber", "an event", "<nothing>")];
                };
                if ev["headers"]["requested-acks"] != json!(custom) {
                    out.push(mm(
                        "event.headers.requested-acks",
                        json!(custom),
                        &ev["headers"]["requested-acks"],
                    ));
                }
                if let Some(a) = ack {
                    let mut a = a.clone();
                    a["headers"]["correlation-id"] = json!(cid);
                    if let Some(v) = sub.send(&hub, &a).await.frame(&hub).await {
                        out.push(mm("subscriber's ack", "taken without a reply", v));
                    }
                }
                let Some(r) = sent.frame(&hub).await else {
                    return vec![mm("aggregated acks", "a response", "<nothing>")];
                };
                let topic = format!("{}/things/twin/acks", thing.replacen(':', "/", 1));
                let want = json!({"topic": topic, "path": "/", "status": expect.0,
                                  "headers": {"content-type": "application/json"}, "value": null});
                let mut got = r.clone();
                got["value"] = Value::Null;
                compare_envelope("response", &want, &got, &cid, None, true, &mut out);
                let entries = r["value"].as_object().map(|m| m.len()).unwrap_or(0);
                if entries != expect.1.len() {
                    out.push(mm("response.value (labels)", expect.1.len(), &r["value"]));
                }
                for (label, status, payload) in &expect.1 {
                    let e = &r["value"][label];
                    if e["status"] != *status {
                        let f = format!("response.value.{label}.status");
                        out.push(mm(f, status, &e["status"]));
                    }
                    if payload.as_ref().is_some_and(|p| &e["payload"] != p) {
                        let f = format!("response.value.{label}.payload");
                        out.push(mm(f, show(payload.as_ref()), &e["payload"]));
                    }
                    if e["headers"]["correlation-id"] != cid.as_str() {
                        let f = format!("response.value.{label}.headers.correlation-id");
                        out.push(mm(f, &cid, &e["headers"]));
                    }
                }
            }
            LivePlan::MinimalAck { ack } => {
                let topic = ack["topic"].as_str().unwrap_or_default();
                let label = topic.rsplit('/').next().unwrap_or_default().to_owned();
                let declared = Session::declaring(&hub, std::slice::from_ref(&label));
                // the declaring session: dropped silently (nothing answered, nothing queued)
                if let Some(v) = declared.send(&hub, ack).await.frame(&hub).await {
                    out.push(mm("declaring session: answer", "nothing", v));
                }
                if let Ok(o) = declared.rx.try_recv() {
                    out.push(mm("declaring session: queued", "nothing", format!("{o:?}")));
                }
                let other = Session::open(&hub);
                match other.send(&hub, ack).await.frame(&hub).await {
                    Some(e) => {
                        let want = json!({"topic": "thing/id/things/twin/errors", "status": 400,
                                          "error": "acknowledgement:label.not.declared",
                                          "message": format!("Cannot send acknowledgement with label <{label}>, which is not declared.")});
                        let got = json!({"topic": e["topic"], "status": e["status"], "error": e["value"]["error"], "message": e["value"]["message"]});
                        if got != want {
                            out.push(mm("non-declaring session: error", want, got));
                        }
                    }
                    None => out.push(mm("non-declaring session", "400 error", "<nothing>")),
                }
            }
        }
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
            Class::Run(p) if p.search => {
                "thing-search protocol: the WS binding's subscription state machine \
                 (ws::search); run over WS by tests/twin/conformance.rs"
            }
            Class::Unclassified(why) => {
                problems.push(format!("case '{}' is unclassified: {why}", c.name));
                continue;
            }
            k @ (Class::Run(_) | Class::Live(_)) => {
                n_run += 1;
                let ms = match k {
                    Class::Run(p) => run_plan(&c.name, &p),
                    Class::Live(p) => run_live(&c.name, &p),
                    _ => vec![],
                };
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
