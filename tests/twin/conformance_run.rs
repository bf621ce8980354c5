//! The steps of a conformance run, written once for both transports: the socket test
//! (`conformance.rs`, WS sessions against the binary) and the in-process one
//! (`src/hub/conformance_tests.rs`, bus sessions on a hub). Each implements `Gateway` and
//! `Client`; `twin` runs a twin plan (setup, sentinel, command, event, sentinel), `live` a
//! live plan (messages and acks over several sessions).

use super::cases::{command, compare_envelope, create, mm, modify, thing_of};
use super::cases::{LivePlan, Mismatch, Plan, POLICY, SENTINEL};
use serde_json::{json, Value};
use std::time::Duration;

/// Prints a case's outcome and adds its mismatches to `failures`; true if it passed.
pub fn report(name: &str, ms: &[Mismatch], failures: &mut Vec<String>) -> bool {
    if ms.is_empty() {
        eprintln!("{name:<55} ok");
        return true;
    }
    eprintln!("{name:<55} FAILED ({} mismatches)", ms.len());
    for m in ms {
        failures.push(format!(
            "{name}: {}\n    expected: {}\n    actual:   {}",
            m.field, m.expected, m.actual
        ));
    }
    false
}

/// How long an expected frame may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// One client session.
#[allow(async_fn_in_trait)]
pub trait Client {
    /// Sends a command (a correlation-id is added if it has none) and returns its answer.
    async fn request(&mut self, cmd: Value) -> Value;
    /// Sends a frame; whatever it causes arrives as frames (`next_frame`).
    async fn send(&mut self, msg: &Value);
    /// A `START-SEND-*` control message, taken.
    async fn control(&mut self, msg: &str) -> Result<(), String>;
    /// The next frame of any kind within `wait`.
    async fn next_frame(&mut self, wait: Duration) -> Option<Value>;

    /// The next event within `wait` (other frames are skipped).
    async fn next_event(&mut self, wait: Duration) -> Option<Value> {
        self.next_frame_where(wait, |v| {
            v["topic"].as_str().unwrap_or("").contains("/events/")
        })
        .await
    }

    /// The next frame with correlation-id `cid` within `wait` (other frames are skipped).
    async fn frame_with(&mut self, cid: &str, wait: Duration) -> Option<Value> {
        self.next_frame_where(wait, |v| v["headers"]["correlation-id"] == cid)
            .await
    }

    /// The next frame that passes `want` within `wait`.
    async fn next_frame_where(
        &mut self,
        wait: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self.next_frame(left).await?;
            if want(&v) {
                return Some(v);
            }
        }
    }
}

/// Where sessions come from.
#[allow(async_fn_in_trait)]
pub trait Gateway {
    type Client: Client;
    /// A session of the user `ditto` (subject `nginx:ditto`).
    async fn client(&self) -> Self::Client;
    /// The same, with `declared-acks` = `labels`.
    async fn declaring(&self, labels: &[String]) -> Self::Client;
}

/// A twin plan: setup, subscribe, a sentinel change (every later event belongs to the case),
/// the case command and its event, and the sentinel again (no unexpected event was emitted).
pub async fn twin<G: Gateway>(g: &G, name: &str, plan: &Plan) -> Vec<Mismatch> {
    let mut out = vec![];
    let mut w = g.client().await;
    let mut sub = g.client().await;
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
    if let Err(e) = sub.control(&plan.subscribe).await {
        out.push(mm("subscribe", "START-SEND-*", e));
        return out;
    }
    // Events are published once durable, asynchronously: events of the setup may still arrive
    // after the subscription.
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
    w.request(modify(SENTINEL, "/attributes/done", json!(true)))
        .await;
    match sub.next_event(WAIT).await {
        Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/created" => {}
        Some(a) if a["topic"] == "conformance/sentinel/things/twin/events/modified" => {}
        Some(a) => out.push(mm("event (unexpected)", "none", a)),
        None => out.push(mm("sentinel event", "an event", "<none>")),
    }
    out
}

/// `who` sent something that must cause no frame to it: the next frame it gets is the answer
/// to a probe retrieve sent after it.
async fn silent(who: &str, c: &mut impl Client, out: &mut Vec<Mismatch>) {
    let mut probe = command("thing:probe", "retrieve", "/", None);
    probe["headers"]["correlation-id"] = json!("probe");
    c.send(&probe).await;
    let next = c.next_frame(WAIT).await.unwrap_or(Value::Null);
    if next["headers"]["correlation-id"] != "probe" || next["status"] != 404 {
        out.push(mm(
            format!("{who}: next frame"),
            "404 of the probe retrieve",
            next,
        ));
    }
}

/// A live plan: messages from a sender to a device and back; requested acks answered by a
/// declaring subscriber; the minimal ack.
pub async fn live<G: Gateway>(g: &G, name: &str, plan: &LivePlan) -> Vec<Mismatch> {
    let mut out = vec![];
    let cid = format!("conformance-{name}");
    match plan {
        LivePlan::Message {
            command: cmd,
            reply,
            ..
        } => {
            let thing = thing_of(cmd["topic"].as_str().unwrap_or_default());
            let mut sender = g.client().await;
            let mut device = g.client().await;
            let r = sender
                .request(command(&thing, "create", "/", Some(json!({}))))
                .await;
            if r["status"] != 201 {
                return vec![mm("setup create", 201, r)];
            }
            if let Err(e) = device.control("START-SEND-MESSAGES").await {
                return vec![mm("subscribe", "START-SEND-MESSAGES", e)];
            }
            let mut cmd = cmd.clone();
            cmd["headers"]["correlation-id"] = json!(cid);
            sender.send(&cmd).await;
            let Some(got) = device.frame_with(&cid, WAIT).await else {
                return vec![mm("device received", &cmd, "<nothing>")];
            };
            compare_envelope("received", &cmd, &got, &cid, None, true, &mut out);
            let mut reply = reply.clone();
            reply["headers"]["correlation-id"] = json!(cid);
            device.send(&reply).await;
            match sender.frame_with(&cid, WAIT).await {
                Some(a) => compare_envelope("response", &reply, &a, &cid, None, true, &mut out),
                None => out.push(mm("response", &reply, "<nothing>")),
            }
            silent("device, after its answer", &mut device, &mut out).await;
        }
        LivePlan::Acks {
            thing,
            labels,
            timeout,
            ack,
            expect,
            ..
        } => {
            let mut req = g.client().await;
            let custom: Vec<String> = labels
                .iter()
                .filter(|l| *l != "twin-persisted")
                .cloned()
                .collect();
            let mut sub = g.declaring(&custom).await;
            let create = command(thing, "create", "/", Some(json!({"attributes": {"x": 0}})));
            let r = req.request(create).await;
            if r["status"] != 201 {
                return vec![mm("setup create", 201, r)];
            }
            if let Err(e) = sub.control("START-SEND-EVENTS").await {
                return vec![mm("subscribe", "START-SEND-EVENTS", e)];
            }
            let mut m = modify(thing, "/attributes", json!({"x": 1}));
            m["headers"] =
                json!({"correlation-id": cid, "requested-acks": labels, "timeout": timeout});
            req.send(&m).await;
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
                sub.send(&a).await;
            }
            let Some(r) = req.frame_with(&cid, WAIT).await else {
                return vec![mm("aggregated acks", "a response", "<nothing>")];
            };
            if ack.is_some() {
                silent("subscriber, after its ack", &mut sub, &mut out).await;
            }
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
                if let Some(p) = payload.as_ref().filter(|p| &e["payload"] != *p) {
                    let f = format!("response.value.{label}.payload");
                    out.push(mm(f, p, &e["payload"]));
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
            // the declaring session: dropped silently (its generated correlation-id matches
            // nothing)
            let mut declared = g.declaring(std::slice::from_ref(&label)).await;
            declared.send(ack).await;
            silent("declaring session", &mut declared, &mut out).await;
            let mut other = g.client().await;
            other.send(ack).await;
            match other.next_frame(WAIT).await {
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
}
