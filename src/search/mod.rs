//! Search: RQL queries over things, answered from an index kept in `Tree::Index` and updated
//! in the same atomic store submit as the twin change (`delta::write_ops`), so search is exactly as
//! durable as the twins. Pure parts: key layout (`keys`), index entries (`index`), planner
//! (`plan`), search semantics (`eval`), cursors and request validation; IO parts: the executor
//! (`exec`, `scan`) and the startup rebuild (`rebuild`). Bindings: `http::search`, `ws::search`.

pub mod choose;
pub mod cursor;
pub mod delta;
mod enforcers;
pub mod eval;
pub mod exec;
pub mod index;
pub mod keys;
pub mod plan;
pub mod prune;
pub mod rebuild;
pub mod request;
pub mod scan;

pub use exec::{Page, Position, Searcher, Spec};
pub use rebuild::ensure_index;
pub use request::{resolve, Endpoint, Params, Resolved};

use crate::error::DittoError;
use crate::hub::{Hub, Requester};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// `[search]` configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// a WebSocket search subscription without `request` for this long fails with
    /// `thing-search:subscription.timeout` (Ditto: 60 s)
    pub subscription_idle_timeout_secs: u64,
    /// open search subscriptions per WebSocket session (more: the subscribe is refused)
    pub max_subscriptions_per_session: usize,
    /// longest time one query (one page, one count) may run: 408
    /// `thing-search:query.time.exceeded` (a request's `timeout` can only lower it)
    pub query_timeout_secs: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            subscription_idle_timeout_secs: 60,
            max_subscriptions_per_session: 16,
            query_timeout_secs: 60,
        }
    }
}

impl SearchConfig {
    /// Problems of the values (each one line).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.subscription_idle_timeout_secs == 0
            || self.max_subscriptions_per_session == 0
            || self.query_timeout_secs == 0
        {
            p.push("search: values must be positive".into());
        }
        p
    }
}

/// One page, computed off the executor threads (the store reads block).
pub async fn page(
    hub: Hub,
    who: Requester,
    spec: Spec,
    after: Option<Position>,
    size: usize,
    timeout: Duration,
) -> Result<Page, DittoError> {
    smol::unblock(move || {
        let deadline = Instant::now() + timeout;
        Searcher::new(&hub, &who, crate::clock::now_millis(), Some(deadline)).page(
            &spec,
            after.as_ref(),
            size,
        )
    })
    .await
}

/// A page after skipping `offset` matches (deprecated `limit`); pages through the skipped part
/// so memory stays bounded.
pub async fn page_at_offset(
    hub: Hub,
    who: Requester,
    spec: Spec,
    offset: u64,
    count: usize,
    timeout: Duration,
) -> Result<Page, DittoError> {
    smol::unblock(move || {
        let deadline = Instant::now() + timeout;
        let mut s = Searcher::new(&hub, &who, crate::clock::now_millis(), Some(deadline));
        let mut after: Option<Position> = None;
        let mut left = offset;
        while left > 0 {
            let n = left.min(crate::rql::MAX_PAGE_SIZE as u64) as usize;
            let p = s.page(
                &Spec {
                    fields: None,
                    ..spec.clone()
                },
                after.as_ref(),
                n,
            )?;
            match p.more {
                Some(pos) => after = Some(pos),
                None => return Ok(Page::default()),
            }
            left -= n as u64;
        }
        if count == 0 {
            return Ok(Page::default());
        }
        s.page(&spec, after.as_ref(), count)
    })
    .await
}

/// The number of matching things the requester may read.
pub async fn count(
    hub: Hub,
    who: Requester,
    spec: Spec,
    timeout: Duration,
) -> Result<u64, DittoError> {
    smol::unblock(move || {
        let deadline = Instant::now() + timeout;
        Searcher::new(&hub, &who, crate::clock::now_millis(), Some(deadline)).count(&spec)
    })
    .await
}

/// Where to resume after the thing `id` (SSE `Last-Event-ID`): its sort values for this
/// requester, or only its ID if it is gone or unreadable.
pub async fn position_of(
    hub: Hub,
    who: Requester,
    spec: Spec,
    id: String,
) -> Result<Position, DittoError> {
    smol::unblock(move || {
        let mut s = Searcher::new(&hub, &who, crate::clock::now_millis(), None);
        let n = spec.sort.len();
        Ok(s.position_of(&spec, &id)?.unwrap_or(Position {
            values: vec![serde_json::Value::Null; n],
            thing_id: id,
        }))
    })
    .await
}
