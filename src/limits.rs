//! `[limits]`: the bounds per connection and per request (message size, queues, pending
//! requests, connection caps, timeouts), with their defaults. A leaf the config and the
//! connection layer (`conn`) both read; documented in docs/limits.md.

use serde::Deserialize;

/// Limits that bound memory per connection and per request.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// largest WS text frame / HTTP body processed, in KiB (bigger: 413 error)
    pub max_message_kib: usize,
    /// outbound queue per WS session (messages); a subscriber that lets it fill up is closed
    pub outbound_queue: usize,
    /// most replies of one session waiting for durability at once (more: reading pauses)
    pub max_pending_per_session: usize,
    /// seconds an HTTP request body may take to arrive completely (slow senders get 408)
    pub body_timeout_secs: u64,
    /// live commands / messages / requests with custom acks waiting for answers at once (more:
    /// 429 `too.many.requests`)
    pub max_pending_requests: usize,
    /// open TCP connections (HTTP, WebSocket, SSE) in total; more: 503 and closed (`src/conn`)
    pub max_connections: usize,
    /// open TCP connections from one peer address; more: 429 and closed
    pub max_connections_per_address: usize,
    /// seconds a write to a client may make no progress (a client that stopped reading) before
    /// its connection is dropped (WS, SSE, HTTP responses)
    pub send_timeout_secs: u64,
    /// seconds without a complete frame from a WS client before it is closed (1001); the server
    /// pings every third of it, so a live client's pongs keep it open
    pub ws_idle_timeout_secs: u64,
    /// seconds a closing handshake may take (our Close frame out, the peer's reply in); also
    /// bounds the refusal answer of a connection over a cap
    pub close_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_kib: 256,
            outbound_queue: 4096,
            max_pending_per_session: 1024,
            body_timeout_secs: 30,
            max_pending_requests: 4096,
            max_connections: 1024,
            max_connections_per_address: 128,
            send_timeout_secs: 30,
            ws_idle_timeout_secs: 90,
            close_timeout_secs: 5,
        }
    }
}
