//! The gateway twin: the box itself as a cloud thing with a `ConnectionStatus` feature in
//! Ditto's convention (definition `org.eclipse.ditto:ConnectionStatus:1.0.0`, properties
//! `status.readySince` / `status.readyUntil`, docs "connectivity-mapping" ConnectionStatus
//! mapper): while the session is up `readyUntil` lies `status_ttl_secs` ahead and is renewed at
//! a third of that; at shutdown it is set to now. A box that vanishes is offline once it passes.

use super::conn::Link;
use super::plan::CloudCmd;
use super::status::Kind;
use super::sync::Shared;
use super::wire;
use crate::clock::format_millis;
use serde_json::{json, Value};
use std::time::Duration;

/// Feature definition of Ditto's connection status convention.
pub const DEFINITION: &str = "org.eclipse.ditto:ConnectionStatus:1.0.0";

/// The merge patch saying "ready since `since` until `until`" (epoch millis).
pub fn status_patch(since: Option<i64>, until: i64) -> Value {
    let mut status = json!({ "readyUntil": format_millis(until) });
    if let Some(s) = since {
        status["readySince"] = format_millis(s).into();
    }
    json!({"features": {"ConnectionStatus": {
        "definition": [DEFINITION],
        "properties": {"status": status}
    }}})
}

/// The gateway thing to create (with the configured cloud policy, if any).
pub fn create_body(policy_id: Option<&str>, patch: &Value) -> Value {
    let mut body = patch.clone();
    body["attributes"] = json!({"edgetwin": {"version": env!("CARGO_PKG_VERSION")}});
    if let Some(p) = policy_id {
        body["policyId"] = p.into();
    }
    body
}

/// Sends one command about the gateway thing; its status, or the error as text.
async fn send(up: &Shared, link: &Link, cmd: &CloudCmd) -> Result<u16, String> {
    let cid = crate::protocol::headers::new_correlation_id();
    let text = wire::command(&up.gateway, cmd, &cid, up.cfg.request_timeout_secs)
        .ok_or("invalid gateway_id")?;
    let env = link
        .request(text, &cid)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(env.status.unwrap_or(500)).and_then(|s| match s < 400 || s == 409 {
        true => Ok(s),
        false => {
            let (s, code, msg) = wire::error_of(&env);
            Err(format!("{s} {code}: {msg}"))
        }
    })
}

/// Writes the status: the first time in a session the thing is created (with the configured
/// policy; 409 if it exists), then merged. A merge at `/` would create a missing thing with
/// the cloud's default policy (Ditto's `MergeThing`), hence the create first.
async fn write(up: &Shared, link: &Link, patch: Value, create: bool) -> Result<(), String> {
    if create {
        let body = create_body(up.cfg.policy_id.as_deref(), &patch);
        if send(up, link, &CloudCmd::Create(body)).await? == 201 {
            return Ok(());
        }
    }
    send(up, link, &CloudCmd::Patch { patch, if_match: 0 })
        .await
        .map(|_| ())
}

/// Keeps the gateway twin online while `link` is open.
pub async fn keep_online(up: std::sync::Arc<Shared>, link: std::sync::Arc<Link>) {
    let ttl = Duration::from_secs(up.cfg.status_ttl_secs);
    let mut since = Some(crate::clock::now_millis());
    // at shutdown `go_offline` has the last word
    let stopping = || up.stopping.load(std::sync::atomic::Ordering::Acquire);
    while !link.is_closed() && !stopping() {
        let now = crate::clock::now_millis();
        let patch = status_patch(since, now + ttl.as_millis() as i64);
        match write(&up, &link, patch, since.is_some()).await {
            Ok(()) => since = None,
            Err(e) if !link.is_closed() => up.stats.fault(
                now,
                Kind::Cloud,
                format_args!("gateway twin '{}': {e}", up.gateway),
            ),
            Err(_) => return,
        }
        let closed = async {
            while !link.is_closed() {
                smol::Timer::after(Duration::from_millis(200)).await;
            }
        };
        futures_lite::future::or(up.sleep(ttl / 3), closed).await;
    }
}

/// At shutdown: `readyUntil` = now (best effort, within `within`).
pub async fn go_offline(up: &Shared, link: &Link, within: Duration) {
    let now = crate::clock::now_millis();
    let write = write(up, link, status_patch(None, now), false);
    let timer = async {
        smol::Timer::after(within).await;
        Err("timeout".to_owned())
    };
    if let Err(e) = futures_lite::future::or(write, timer).await {
        tracing::debug!(error = %e, "uplink: gateway offline status not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_dittos_convention() {
        let p = status_patch(Some(0), 180_000);
        let f = &p["features"]["ConnectionStatus"];
        assert_eq!(f["definition"][0], DEFINITION);
        assert_eq!(
            f["properties"]["status"]["readySince"],
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            f["properties"]["status"]["readyUntil"],
            "1970-01-01T00:03:00.000Z"
        );
        assert!(
            status_patch(None, 1)["features"]["ConnectionStatus"]["properties"]["status"]
                .get("readySince")
                .is_none()
        );
        let b = create_body(Some("fleet:edge"), &p);
        assert_eq!(b["policyId"], "fleet:edge");
        assert_eq!(b["features"], p["features"]);
    }
}
