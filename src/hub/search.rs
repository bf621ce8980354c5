//! The read side's one entry, `Hub::search`: search (HTTP, SSE, WS `thing-search`) runs a
//! `search::Searcher` for a requester off the executor threads (its store reads block). It is a
//! query engine beside the door, not behind it: it never writes, waits for no durability and
//! correlates nothing, and the binding drives its paging (cursors, SSE, `request(n)`).

use super::{Hub, Requester};
use crate::error::DittoError;
use crate::search::Searcher;
use std::time::{Duration, Instant};

impl Hub {
    /// Runs `query` on a `Searcher` of `who` at the hub's now, failing with 408
    /// `thing-search:query.time.exceeded` once `timeout` (if any) has passed.
    pub async fn search<T, F>(
        &self,
        who: &Requester,
        timeout: Option<Duration>,
        query: F,
    ) -> Result<T, DittoError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Searcher<'_>) -> Result<T, DittoError> + Send + 'static,
    {
        let (hub, who) = (self.clone(), who.clone());
        smol::unblock(move || {
            let deadline = timeout.map(|t| Instant::now() + t);
            let mut s = Searcher::new(&hub, &who, hub.now(), deadline);
            query(&mut s)
        })
        .await
    }
}
