//! Cloud live commands and messages for mirrored things, delivered to the local subscribers
//! (WS sessions, MQTT devices) through the hub; their answers go back to the cloud with the
//! same correlation-id, a little before the cloud caller's `timeout` ends (Ditto's default for
//! live commands and messages is 10 s). At most `4 x max_in_flight` deliveries at once; beyond,
//! the cloud caller gets 429 at once, and the reader never waits.

use super::conn::Link;
use super::status::add;
use super::sync::Shared;
use crate::error::DittoError;
use crate::protocol::{error_envelope, Envelope};
use std::sync::Arc;

/// Ditto's default timeout of live commands and messages, milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Longest timeout accepted from the cloud (Ditto's maximum is 60 s).
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The local timeout for a cloud timeout: a tenth (at least 250 ms, at most 2 s) earlier, so
/// that the local answer, even a timeout error, reaches the cloud caller in time.
pub fn local_timeout_ms(cloud_ms: u64) -> u64 {
    let margin = (cloud_ms / 10).clamp(250, 2_000);
    cloud_ms.saturating_sub(margin).max(cloud_ms.min(100))
}

/// Starts delivering one cloud live signal (returns at once).
pub fn deliver(up: &Arc<Shared>, link: &Arc<Link>, mut env: Envelope) {
    let Some(id) = env.topic.entity_id() else {
        return;
    };
    // things of other boxes (the cloud policy may let this box read them): not ours to answer
    if !up.tracks(&id) {
        return;
    }
    add(&up.stats.c.live, 1);
    let wants_answer = env.headers.bool("response-required").ok().flatten() != Some(false);
    let Some(permit) = up.live_slots.try_acquire_arc() else {
        if wants_answer {
            let e = DittoError::new(
                429,
                "too.many.requests",
                "The edge box has too many cloud requests in progress.",
            );
            let cid = env.headers.correlation_id().map(str::to_owned);
            let text = error_envelope(Some(&env.topic), cid.as_deref(), &e).to_text();
            let link = link.clone();
            up.ex
                .spawn(async move {
                    link.send(text).await;
                })
                .detach();
        }
        return;
    };
    let cloud_ms = env
        .headers
        .timeout_ms(MAX_TIMEOUT_MS)
        .ok()
        .flatten()
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    env.headers
        .insert("timeout", format!("{}ms", local_timeout_ms(cloud_ms)));
    let (up, link) = (up.clone(), link.clone());
    up.ex
        .clone()
        .spawn(async move {
            let _permit = permit;
            if let Some(answer) = up.local.deliver(env).await {
                tracing::debug!(topic = %answer.topic, status = answer.status, "uplink: answer to the cloud: {}", answer.to_text());
                if link.send(answer.to_text()).await {
                    add(&up.stats.c.answers, 1);
                }
            }
        })
        .detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_timeouts_end_before_the_cloud_callers() {
        assert_eq!(local_timeout_ms(10_000), 9_000);
        assert_eq!(local_timeout_ms(60_000), 58_000);
        assert_eq!(local_timeout_ms(1_000), 750);
        assert_eq!(local_timeout_ms(200), 100);
        assert_eq!(local_timeout_ms(0), 0);
    }
}
