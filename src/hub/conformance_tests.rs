//! The Ditto conformance corpus in-process: every twin case of `tests/conformance/things` (the
//! same loader, plans and run steps as the socket test: `tests/twin/conformance_cases.rs`,
//! `conformance_run.rs`) runs against a hub and engine on a real store in a temp dir, through
//! the door (`Hub::handle_protocol`) and the answer step (`Answer::settle_envelope`), with
//! events, live commands and acks read from bus sessions. The WS search protocol cases (a
//! binding's state machine) and the corpus's own skips are reported with their reason; the
//! socket test runs those over WS.

#[allow(dead_code)]
#[path = "../../tests/twin/conformance_cases.rs"]
mod cases;
#[path = "../../tests/twin/conformance_run.rs"]
mod run;

use super::{Hub, OutboundRx, Requester, SessionHandle};
use crate::model::FieldSelector;
use crate::protocol::{error_envelope, parse_control, Control, Envelope};
use crate::rules::fanout::Subscription;
use crate::store::{BackendKind, Store};
use cases::{classify, load_cases, Class, Mismatch, SKIPPED};
use futures_lite::future;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The subject the socket test's user `ditto` has.
fn subjects() -> Arc<[String]> {
    Arc::from(vec!["nginx:ditto".to_owned()])
}

/// A hub on a store of its own in a temp dir.
struct InProcess {
    hub: Hub,
    store: Store,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn new() -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(BackendKind::Redb, dir.path(), 1 << 20).expect("store");
        InProcess {
            hub: Hub::new(store.clone()),
            store,
            _dir: dir,
        }
    }

    /// Runs `steps` on this hub, then closes the store.
    fn run<'a, F: std::future::Future<Output = Vec<Mismatch>>>(
        &'a self,
        steps: impl FnOnce(&'a InProcess) -> F,
    ) -> Vec<Mismatch> {
        let out = future::block_on(steps(self));
        let _ = self.store.close();
        out
    }
}

impl run::Gateway for InProcess {
    type Client = Session;
    async fn client(&self) -> Session {
        Session::open(&self.hub)
    }
    async fn declaring(&self, labels: &[String]) -> Session {
        let s = Session::open(&self.hub);
        self.hub
            .declare_acks(s.handle.id, labels)
            .expect("labels declared");
        s
    }
}

/// One session on the hub, as the WS binding holds one: a requester, its queue, and the
/// answers of frames sent but not yet settled (a live answer comes later).
struct Session {
    hub: Hub,
    handle: Arc<SessionHandle>,
    rx: OutboundRx,
    who: Requester,
    next_id: u64,
    sent: VecDeque<Sent>,
}

impl Session {
    fn open(hub: &Hub) -> Session {
        let (handle, rx) = hub.open_session(subjects(), 512, 64);
        let who = Requester {
            subjects: subjects(),
            origin: Some(handle.id),
        };
        Session {
            hub: hub.clone(),
            handle,
            rx,
            who,
            next_id: 0,
            sent: VecDeque::new(),
        }
    }

    /// A text frame as the WS binding handles it: a parse error is answered with its error
    /// envelope, anything else goes through the door (not yet settled).
    async fn door(&self, msg: &Value) -> Sent {
        let env = match Envelope::parse(&msg.to_string()) {
            Ok(env) => env,
            Err(f) => {
                let e = error_envelope(f.topic.as_ref(), f.correlation_id.as_deref(), &f.error);
                return Sent::Now(text_json(&e.to_text()));
            }
        };
        match self.hub.handle_protocol(&self.who, env).await {
            Some(answer) => Sent::Answer(answer),
            None => Sent::Nothing,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.hub.close_session(self.handle.id);
    }
}

impl run::Client for Session {
    async fn request(&mut self, mut cmd: Value) -> Value {
        if cmd["headers"]["correlation-id"].as_str().is_none() {
            self.next_id += 1;
            if !cmd["headers"].is_object() {
                cmd["headers"] = json!({});
            }
            cmd["headers"]["correlation-id"] = json!(format!("t-{}", self.next_id));
        }
        let sent = self.door(&cmd).await;
        sent.frame(&self.hub).await.unwrap_or(Value::Null)
    }

    async fn send(&mut self, msg: &Value) {
        let sent = self.door(msg).await;
        self.sent.push_back(sent);
    }

    /// A `START-SEND-*` control message as `ws::control` handles it.
    async fn control(&mut self, msg: &str) -> Result<(), String> {
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
        self.hub.subscribe(&self.handle, kind, sub);
        Ok(())
    }

    /// The answers of frames sent, in order (each settled: it waits for its live answer, acks
    /// or timeout), then what is pushed to the session's queue.
    async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        while let Some(sent) = self.sent.pop_front() {
            if let Some(v) = sent.frame(&self.hub).await {
                return Some(v);
            }
        }
        let timer = async {
            smol::Timer::after(wait).await;
            None
        };
        let out = future::or(async { self.rx.recv().await.ok() }, timer).await?;
        let text = match out {
            super::Outbound::Now(t) => t,
            super::Outbound::Durable { text, .. } => text,
        };
        Some(text_json(&text))
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
                    Class::Run(p) => InProcess::new().run(|g| run::twin(g, &c.name, &p)),
                    Class::Live(p) => InProcess::new().run(|g| run::live(g, &c.name, &p)),
                    _ => vec![],
                };
                n_ok += usize::from(run::report(&c.name, &ms, &mut failures));
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
