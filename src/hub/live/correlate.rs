//! Correlation in the hub: registering pending requests (with their waiter), labels declared by
//! sessions, and what subscribers send back: acks (only for labels the session declared) and
//! live command / message answers (only from a session that received the signal).

use super::waiter::Waiter;
use super::{Hub, Requester, SessionHandle};
use crate::error::DittoError;
use crate::protocol::{Criterion, Envelope};
use crate::rules::acks::{
    built_in_forbidden, is_built_in, label_not_declared, validate_label, Ack,
};
use crate::rules::outcome::Plan;
use crate::rules::pending::{Matcher, Table};
use std::sync::MutexGuard;
use std::time::Duration;

/// Default bound of the pending-request table.
pub const DEFAULT_MAX_PENDING: usize = 4096;

impl Hub {
    /// The pending-request table (no await while held).
    pub(crate) fn pending(&self) -> MutexGuard<'_, Table> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of requests waiting for answers or acks (for `/status/health`).
    pub fn pending_count(&self) -> usize {
        self.pending().len()
    }

    /// Sets the bound of the pending-request table (config `limits.max_pending_requests`).
    pub fn set_max_pending(&self, max: usize) {
        let mut t = self.pending();
        if t.is_empty() {
            *t = Table::new(max);
        }
    }

    /// Declares the ack labels of a session (WS `declared-acks`): valid, not built-in, and not
    /// declared by another session (409 `acknowledgement:label.not.unique`).
    pub fn declare_acks(&self, session: u64, labels: &[String]) -> Result<(), DittoError> {
        for l in labels {
            validate_label(l)?;
            if is_built_in(l) {
                return Err(built_in_forbidden(l));
            }
        }
        self.pending().declare(session, labels)
    }

    /// The session that declared `label`.
    pub fn declarer(&self, label: &str) -> Option<u64> {
        self.pending().declarer(label)
    }

    /// The signal of `cid` reached `receivers` (acks now owed, weak, or unanswerable). Closed
    /// sessions are left out under the table's lock, so a session closing concurrently never
    /// stays recorded as owing something.
    pub(crate) fn acks_dispatched(&self, cid: Option<&str>, receivers: &[&SessionHandle]) {
        if let Some(cid) = cid {
            let mut t = self.pending();
            let ids: Vec<u64> = receivers
                .iter()
                .filter(|s| !s.is_closed())
                .map(|s| s.id)
                .collect();
            t.dispatched(cid, &ids);
        }
    }

    /// Registers a pending request for `labels` (plus the live answer when `matcher` is set)
    /// and returns its waiter.
    pub(crate) fn register(
        &self,
        who: &Requester,
        cid: &str,
        labels: &[String],
        matcher: Option<Matcher>,
        timeout_ms: u64,
        plan: Plan,
    ) -> Result<Waiter, DittoError> {
        let (tx, rx) = async_channel::bounded(1);
        let token = self
            .pending()
            .insert(cid, who.origin, labels, matcher, tx)?;
        Ok(Waiter {
            hub: self.clone(),
            cid: cid.to_owned(),
            token,
            rx,
            deadline: self.clock().instant() + Duration::from_millis(timeout_ms),
            timeout_ms,
            plan,
        })
    }

    /// An ack sent by a session: only for a label it declared; weak acks for built-in labels
    /// are dropped; an ack nobody waits for is dropped silently.
    pub fn incoming_ack(&self, from: Option<u64>, env: &Envelope) -> Result<(), DittoError> {
        let Criterion::Acks(Some(label)) = &env.topic.criterion else {
            return Err(crate::rules::responses::unsupported(&env.topic));
        };
        let weak = matches!(env.headers.bool("ditto-weak-ack"), Ok(Some(true)));
        if weak && is_built_in(label) {
            return Ok(());
        }
        let Some(from) = from.filter(|s| self.declarer(label) == Some(*s)) else {
            return Err(label_not_declared(label));
        };
        let Some(cid) = env.headers.correlation_id() else {
            return Err(DittoError::new(
                400,
                "acknowledgement:correlation-id.missing",
                "Correlation-id header for acknowledgement is missing.",
            )
            .describe("Please provide the mandatory header 'correlation-id' as part of your acknowledgement"));
        };
        self.pending()
            .ack(cid, label, from, Ack::from_envelope(env));
        Ok(())
    }

    /// A live command response or message response from a session (dropped unless it received
    /// the signal and nothing answered before).
    pub fn incoming_answer(&self, from: Option<u64>, env: Envelope) {
        let (Some(from), Some(cid)) = (from, env.headers.correlation_id().map(str::to_owned))
        else {
            return;
        };
        let offer = self.pending().answer(&cid, from, env);
        tracing::debug!(cid, ?offer, "live answer");
    }
}
