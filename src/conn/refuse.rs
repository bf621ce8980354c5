//! The answer to a connection over a cap, written before its request is read: 503
//! `gateway:service.unavailable` (total cap) or 429 `too.many.requests` (per address), Ditto's
//! error JSON with `Retry-After`, then the socket is closed. Ditto's gateway (pekko-http
//! `max-connections = 4096`, gateway.conf) stops accepting instead, leaving clients hanging in
//! the backlog; a per-address cap needs the accept to know the address, and an answer tells
//! the client what happened. At most `MAX_REFUSING` answers are written at once; beyond that a
//! connection is closed right after the accept.

use super::{Refusal, Tracker};
use crate::error::DittoError;
use futures_lite::io::AsyncWriteExt;
use smol::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Refusal answers being written at once (each holds its socket for at most `within`).
const MAX_REFUSING: usize = 64;
/// Seconds a refused client is asked to wait.
const RETRY_AFTER_SECS: u64 = 5;

/// The error a refused connection gets.
pub fn refusal_error(r: Refusal, max: usize) -> DittoError {
    match r {
        Refusal::Total => DittoError::new(
            503,
            "gateway:service.unavailable",
            "The service you wanted to reach is currently not available.",
        )
        .describe(format!(
            "The gateway serves at most {max} connections at once (limits.max_connections); try again later."
        ))
        .retry_after(RETRY_AFTER_SECS),
        Refusal::PerAddress => DittoError::new(
            429,
            "too.many.requests",
            "You made too many requests.",
        )
        .describe(format!(
            "At most {max} connections from one address at once (limits.max_connections_per_address); close some or try again later."
        ))
        .retry_after(RETRY_AFTER_SECS),
    }
}

fn response(e: &DittoError) -> Vec<u8> {
    let body = e.to_json().to_string();
    let retry = e.retry_after.unwrap_or(RETRY_AFTER_SECS);
    let reason = if e.status == 503 {
        "Service Unavailable"
    } else {
        "Too Many Requests"
    };
    format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: {retry}\r\nconnection: close\r\n\r\n{body}",
        e.status,
        body.len()
    )
    .into_bytes()
}

/// Answers and closes a refused connection (within `within`), or just closes it when too many
/// answers are under way already.
pub async fn refuse(tracker: Arc<Tracker>, mut tcp: TcpStream, r: Refusal, within: Duration) {
    if tracker.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        tracker.refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let max = match r {
        Refusal::Total => tracker.max_total(),
        Refusal::PerAddress => tracker.max_per_address(),
    };
    let bytes = response(&refusal_error(r, max));
    let answer = async {
        if tcp.write_all(&bytes).await.is_ok() {
            super::stream::finish(&tcp, within).await;
        }
    };
    futures_lite::future::or(answer, async {
        smol::Timer::after(within).await;
    })
    .await;
    tracker.refusing.fetch_sub(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_ditto_errors_with_retry_after() {
        let t = String::from_utf8(response(&refusal_error(Refusal::Total, 7))).unwrap();
        assert!(t.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{t}");
        assert!(t.contains("retry-after: 5\r\n"));
        let body = t.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "gateway:service.unavailable");
        let t = String::from_utf8(response(&refusal_error(Refusal::PerAddress, 2))).unwrap();
        assert!(t.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{t}");
        assert!(t.contains("\"too.many.requests\""));
    }
}
