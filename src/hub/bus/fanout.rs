//! Fan-out of one pushed signal (twin event, live command, live event, message) to the hub's
//! subscribers of its stream kind: no echo to the originating session, then the delivery rule
//! (`rules::fanout`) per subscriber under that session's subscription lock. Decides only; the
//! caller records the receivers (acks) and then pushes.

use super::session::SessionHandle;
use super::Hub;
use crate::rules::fanout::{Fanout, Memo};
use std::sync::Arc;

impl Hub {
    /// The subscribers that get the signal and the text each gets (one shared text for all
    /// that see it unfiltered and without `extra`).
    pub(crate) fn fan_out_to(&self, f: &Fanout) -> Vec<(Arc<SessionHandle>, Arc<str>)> {
        let mut out = Vec::new();
        let mut memo = Memo::default();
        self.for_subscribers(f.kind, |s| {
            if Some(s.id) == f.origin {
                return;
            }
            let Some(filtered) = (f.view)(&s.subjects) else {
                return;
            };
            let decision = s.with_subscription(f.kind, |sub| {
                f.decide(&s.subjects, &filtered, sub, &mut memo)
            });
            let Some(Some(extra)) = decision else { return };
            out.push((s.clone(), f.text(extra, &filtered, &mut memo)));
        });
        out
    }
}
