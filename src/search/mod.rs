//! Search: RQL queries over things, answered from an index kept in `Tree::Index` and updated
//! in the same atomic store submit as the twin change (`delta::write_ops`), so search is exactly as
//! durable as the twins. Pure parts: key layout (`keys`), index entries (`index`), planner
//! (`plan`), search semantics (`eval`), cursors and request validation; IO parts: the executor
//! (`exec`, `scan`) and the startup rebuild (`rebuild`). Its one entry is `Hub::search`
//! (`hub::search`); bindings: `http::search`, `http::search_sse`, `ws::search`.

pub mod access;
pub mod access_map;
pub mod choose;
mod counted;
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

use serde::Deserialize;

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
    /// bound of the in-memory copy of the index's access entries that lets a count decide
    /// candidates without an index read each (`search::access_map`; 0 = off)
    pub count_map_kib: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            subscription_idle_timeout_secs: 60,
            max_subscriptions_per_session: 16,
            query_timeout_secs: 60,
            count_map_kib: access_map::DEFAULT_KIB,
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
