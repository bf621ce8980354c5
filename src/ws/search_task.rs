//! One WebSocket search subscription as a task: waits for demand (pages requested), a cancel,
//! a demand <= 0 (rule 3.9) or the idle timeout, computes one page per demanded `next` off the
//! executor threads, sends `complete` after the last page and `failed` on errors, and marks its
//! slot ended (a zombie) when it stops.

use super::search::{
    event, failed, lock, protocol_error, timed_out, Ctl, Slots, RULE_3_9, RULE_3_9_DESCRIPTION,
};
use crate::error::DittoError;
use crate::hub::{Outbound, Requester, SessionHandle};
use crate::search::{self, Position, Resolved};
use crate::state::State;
use futures_lite::future;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state of one subscription task.
pub(super) struct Task {
    pub st: Arc<State>,
    pub session: Arc<SessionHandle>,
    pub who: Requester,
    pub id: String,
    pub ctl: Arc<Ctl>,
    pub slots: Slots,
}

enum Step {
    Page,
    Fail(DittoError),
    End,
}

impl Task {
    fn cid(&self) -> Option<String> {
        self.ctl
            .cid
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn send(&self, text: Arc<str>) -> bool {
        !self.ctl.cancelled.load(Ordering::SeqCst) && self.session.reply(Outbound::Now(text)).await
    }

    /// Waits for something to do: a page to send, a failure to report, or the end.
    async fn next_step(&self, idle: Duration) -> Step {
        let mut deadline = Instant::now() + idle;
        loop {
            let listener = self.ctl.wake.listen();
            if self.ctl.cancelled.load(Ordering::SeqCst) {
                return Step::End;
            }
            if self.ctl.bad_demand.load(Ordering::SeqCst) {
                return Step::Fail(protocol_error(RULE_3_9, Some(RULE_3_9_DESCRIPTION)));
            }
            if self.ctl.demand.load(Ordering::SeqCst) > 0 {
                return Step::Page;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Step::Fail(timed_out(&self.id));
            }
            let woke = future::or(
                async {
                    listener.await;
                    true
                },
                async {
                    smol::Timer::after(left).await;
                    false
                },
            )
            .await;
            if woke && self.ctl.demand.load(Ordering::SeqCst) == 0 {
                deadline = Instant::now() + idle; // a request resets the idle timer
            }
        }
    }

    /// Runs until complete, failed, cancelled or the session ends.
    pub async fn run(self, resolved: Result<Resolved, DittoError>) {
        let idle = Duration::from_secs(self.st.cfg.search.subscription_idle_timeout_secs);
        let timeout = Duration::from_secs(self.st.cfg.search.query_timeout_secs);
        let mut after: Option<Position> = None;
        loop {
            let failure = match self.next_step(idle).await {
                Step::End => break,
                Step::Fail(e) => Some(e),
                Step::Page => match &resolved {
                    Err(e) => Some(e.clone()),
                    Ok(r) => {
                        let (spec, from, size) = (r.spec.clone(), after.take(), r.size);
                        let query =
                            move |s: &mut search::Searcher<'_>| s.page(&spec, from.as_ref(), size);
                        let page = self.st.hub.search(&self.who, Some(timeout), query).await;
                        match page {
                            Err(e) => Some(e),
                            Ok(p) => {
                                super::search::update(&self.ctl.demand, |d| d.saturating_sub(1));
                                let cid = self.cid();
                                if !p.items.is_empty() {
                                    let v = json!({"subscriptionId": self.id, "items": p.items});
                                    if !self.send(event("next", cid.as_deref(), v)).await {
                                        break;
                                    }
                                }
                                match p.more {
                                    Some(pos) => {
                                        after = Some(pos);
                                        continue;
                                    }
                                    None => {
                                        let v = json!({"subscriptionId": self.id});
                                        self.send(event("complete", cid.as_deref(), v)).await;
                                        break;
                                    }
                                }
                            }
                        }
                    }
                },
            };
            if let Some(e) = failure {
                let cid = self.cid();
                self.send(failed(&self.id, cid.as_deref(), &e)).await;
                break;
            }
        }
        if let Some(s) = lock(&self.slots).get_mut(&self.id) {
            s.ended.get_or_insert_with(Instant::now);
        }
    }
}
