//! Conformance plans for the live channel cases of the corpus (messages, acknowledgements),
//! run with several WS sessions against the real binary:
//! - `message-*`, `adaptertest-message-*`: a sender session sends the case command, a device
//!   session (`START-SEND-MESSAGES`) must receive exactly it, answers with the case response
//!   (or a derived one), and the sender must receive exactly that answer.
//! - `ack-custom-*`, `adaptertest-acks-aggregated`, `generic-modify-requested-acks`: a requester
//!   modifies the thing with `requested-acks`, a subscriber that declared the label receives the
//!   event (with `requested-acks` = the custom labels), sends the case's ack (or none, for the
//!   timeout case), and the requester's aggregated acks (acks.md 3.2) are compared.
//! - `adaptertest-ack-minimal`: the minimal ack is dropped for a declaring session (its generated
//!   correlation-id matches nothing) and refused for a non-declaring one.

use super::{compare_envelope, mm, thing_of, LivePlan, Mismatch};
use crate::common::{block_on, command, modify, Server, Ws, WAIT};
use serde_json::{json, Value};
use std::time::Duration;

async fn declaring(srv: &Server, label: &str) -> Ws {
    Ws::connect_with(
        srv.addr,
        &format!("/ws/2?declared-acks={label}"),
        &[("authorization", crate::common::basic("ditto", "ditto"))],
    )
    .await
    .expect("ws connect")
}

async fn frame_with(ws: &mut Ws, cid: &str, wait: Duration) -> Option<Value> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let v: Value = serde_json::from_str(&ws.try_recv_text(left).await?).ok()?;
        if v["headers"]["correlation-id"] == cid {
            return Some(v);
        }
    }
}

/// Runs a live plan on a fresh server.
pub fn run(name: &str, plan: &LivePlan) -> Vec<Mismatch> {
    let srv = Server::start();
    block_on(async {
        let mut out = vec![];
        let cid = format!("conformance-{name}");
        match plan {
            LivePlan::Message {
                command: cmd,
                reply,
                ..
            } => {
                let thing = thing_of(cmd["topic"].as_str().unwrap_or_default());
                let mut sender = srv.ws().await;
                let mut device = srv.ws().await;
                let r = sender
                    .request(command(&thing, "create", "/", Some(json!({}))))
                    .await;
                if r["status"] != 201 {
                    return vec![mm("setup create", 201, r)];
                }
                device.control("START-SEND-MESSAGES").await;
                let mut cmd = cmd.clone();
                cmd["headers"]["correlation-id"] = json!(cid);
                sender.send(&cmd).await;
                let Some(got) = frame_with(&mut device, &cid, WAIT).await else {
                    return vec![mm("device received", &cmd, "<nothing>")];
                };
                compare_envelope("received", &cmd, &got, &cid, None, true, &mut out);
                let mut reply = reply.clone();
                reply["headers"]["correlation-id"] = json!(cid);
                device.send(&reply).await;
                match frame_with(&mut sender, &cid, WAIT).await {
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
                let mut req = srv.ws().await;
                let custom: Vec<&str> = labels
                    .iter()
                    .map(String::as_str)
                    .filter(|l| *l != "twin-persisted")
                    .collect();
                let mut sub = declaring(&srv, &custom.join(",")).await;
                let r = req
                    .request(command(
                        thing,
                        "create",
                        "/",
                        Some(json!({"attributes": {"x": 0}})),
                    ))
                    .await;
                if r["status"] != 201 {
                    return vec![mm("setup create", 201, r)];
                }
                sub.control("START-SEND-EVENTS").await;
                let mut m = modify(thing, "/attributes", json!({"x": 1}));
                m["headers"] =
                    json!({"correlation-id": cid, "requested-acks": labels, "timeout": timeout});
                req.send(&m).await;
                let Some(ev) = frame_with(&mut sub, &cid, WAIT).await else {
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
                let Some(r) = frame_with(&mut req, &cid, WAIT).await else {
                    return vec![mm("aggregated acks", "a response", "<nothing>")];
                };
                let topic = format!("{}/things/twin/acks", thing.replacen(':', "/", 1));
                let want = json!({"topic": topic, "path": "/", "status": expect.0,
                                  "headers": {"content-type": "application/json"}});
                let mut got = r.clone();
                got["value"] = Value::Null;
                let mut want_v = want.clone();
                want_v["value"] = Value::Null;
                compare_envelope("response", &want_v, &got, &cid, None, true, &mut out);
                let entries = r["value"].as_object().map(|m| m.len()).unwrap_or(0);
                if entries != expect.1.len() {
                    out.push(mm("response.value (labels)", expect.1.len(), &r["value"]));
                }
                for (label, status, payload) in &expect.1 {
                    let e = &r["value"][label];
                    if e["status"] != *status {
                        out.push(mm(
                            format!("response.value.{label}.status"),
                            status,
                            &e["status"],
                        ));
                    }
                    if let Some(p) = payload {
                        if &e["payload"] != p {
                            out.push(mm(
                                format!("response.value.{label}.payload"),
                                p,
                                &e["payload"],
                            ));
                        }
                    }
                    if e["headers"]["correlation-id"] != cid.as_str() {
                        out.push(mm(
                            format!("response.value.{label}.headers.correlation-id"),
                            &cid,
                            &e["headers"],
                        ));
                    }
                }
            }
            LivePlan::MinimalAck { ack } => {
                let label = ack["topic"]
                    .as_str()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let mut declared = declaring(&srv, &label).await;
                declared.send(ack).await;
                // the next frame must be the answer to this retrieve: the ack produced nothing
                let mut probe = command("thing:id", "retrieve", "/", None);
                probe["headers"]["correlation-id"] = json!("probe");
                declared.send(&probe).await;
                let next: Value =
                    serde_json::from_str(&declared.recv_text().await).unwrap_or_default();
                if next["headers"]["correlation-id"] != "probe" || next["status"] != 404 {
                    out.push(mm(
                        "declaring session: next frame",
                        "404 of the probe retrieve",
                        next,
                    ));
                }
                let mut other = srv.ws().await;
                other.send(ack).await;
                match other
                    .try_recv_text(WAIT)
                    .await
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                {
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
    })
}
