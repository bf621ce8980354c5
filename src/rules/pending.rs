//! The pending-request table: correlation-id -> requester, the acks ("slots") it waits for and
//! who owes each of them, plus the labels sessions declared (unique across sessions). Plain data
//! under one mutex in the hub; bounded (`max` entries); an entry leaves the table exactly once:
//! completed (sent to its waiter), taken at timeout / by a dropped waiter, or dropped with its
//! requester's session. What nobody can send any more (no receiver, a label nobody declared, a
//! receiver that closed) stays open until the timeout, as in Ditto's acknowledgement aggregator.

use super::acks::{Ack, LIVE_RESPONSE, TWIN_PERSISTED};
use super::live_errors::{duplicate_correlation_id, label_not_unique, table_full};
use crate::error::DittoError;
use crate::protocol::Envelope;
use async_channel::Sender;
use std::collections::HashMap;

/// How a slot was resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// a subscriber's ack (or weak ack, or the twin response)
    Ack(Ack),
    /// the live response / message response
    Answer(Box<Envelope>),
}

/// One awaited acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotState {
    /// the signal was not delivered yet (who owes it is unknown)
    Undispatched,
    /// any of these sessions may send it (none: it can only time out)
    Owed(Vec<u64>),
    /// filled by the waiter itself (`twin-persisted` after durability)
    Local,
    /// resolved
    Done(Resolution),
}

/// A label and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// the label (`live-response` for the live answer, also when it was not requested as ack)
    pub label: String,
    /// the state
    pub state: SlotState,
}

/// What a valid live answer looks like (checked by the hub before resolving).
pub type Matcher = Box<dyn Fn(&Envelope) -> Result<(), String> + Send>;

/// One pending request.
pub struct Entry {
    token: u64,
    requester: Option<u64>,
    /// the slots in request order
    pub slots: Vec<Slot>,
    matcher: Option<Matcher>,
    /// the last invalid answer (for the timeout description)
    pub invalid: Option<String>,
    tx: Sender<Vec<Slot>>,
}

impl Entry {
    fn complete(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Done(_)))
    }
}

/// Result of offering an answer or ack to the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// taken
    Accepted,
    /// no such pending request, or not owed by the sender, or already resolved: dropped
    Ignored,
    /// an answer of the wrong type (remembered for the timeout text)
    Invalid,
}

/// The table.
pub struct Table {
    map: HashMap<String, Entry>,
    declared: HashMap<String, u64>,
    max: usize,
    next_token: u64,
}

impl Table {
    /// An empty table for at most `max` pending requests.
    pub fn new(max: usize) -> Table {
        Table {
            map: HashMap::new(),
            declared: HashMap::new(),
            max: max.max(1),
            next_token: 1,
        }
    }

    /// Number of pending requests.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Declares labels for a session; all or none (409 if one is taken by another session).
    pub fn declare(&mut self, session: u64, labels: &[String]) -> Result<(), DittoError> {
        if labels
            .iter()
            .any(|l| self.declared.get(l).is_some_and(|s| *s != session))
        {
            return Err(label_not_unique());
        }
        for l in labels {
            self.declared.insert(l.clone(), session);
        }
        Ok(())
    }

    /// The session that declared `label`.
    pub fn declarer(&self, label: &str) -> Option<u64> {
        self.declared.get(label).copied()
    }

    /// Registers a request waiting for `labels` (slot `live-response` when `matcher` is set;
    /// `twin-persisted` is filled by the waiter). 409 for a correlation-id already pending,
    /// 429 when full. Returns the entry's token.
    pub fn insert(
        &mut self,
        cid: &str,
        requester: Option<u64>,
        labels: &[String],
        matcher: Option<Matcher>,
        tx: Sender<Vec<Slot>>,
    ) -> Result<u64, DittoError> {
        if self.map.contains_key(cid) {
            return Err(duplicate_correlation_id(cid));
        }
        if self.map.len() >= self.max {
            return Err(table_full(self.max));
        }
        let mut slots: Vec<Slot> = labels
            .iter()
            .map(|l| Slot {
                label: l.clone(),
                state: match l.as_str() {
                    TWIN_PERSISTED | super::acks::SEARCH_PERSISTED => SlotState::Local,
                    _ => SlotState::Undispatched,
                },
            })
            .collect();
        if matcher.is_some() && !labels.iter().any(|l| l == LIVE_RESPONSE) {
            slots.insert(
                0,
                Slot {
                    label: LIVE_RESPONSE.to_owned(),
                    state: SlotState::Undispatched,
                },
            );
        }
        let token = self.next_token;
        self.next_token += 1;
        self.map.insert(
            cid.to_owned(),
            Entry {
                token,
                requester,
                slots,
                matcher,
                invalid: None,
                tx,
            },
        );
        Ok(token)
    }

    /// Sends and removes the entry if every slot is resolved.
    fn finish_if_complete(&mut self, cid: &str) {
        if self.map.get(cid).is_some_and(Entry::complete) {
            if let Some(e) = self.map.remove(cid) {
                // bounded(1), one send per entry: cannot be full; a gone waiter is fine
                let _ = e.tx.try_send(e.slots);
            }
        }
    }

    /// The signal of `cid` reached `receivers`: `live-response` is owed by them, a custom
    /// label by its declarer if it received the signal, else weak-acked; a label nobody
    /// declared, or a live answer nobody received, is owed by nobody and times out (Ditto's
    /// `AcknowledgementAggregatorActor` waits for the timeout in both cases).
    pub fn dispatched(&mut self, cid: &str, receivers: &[u64]) {
        let declared = &self.declared;
        let Some(e) = self.map.get_mut(cid) else {
            return;
        };
        for s in &mut e.slots {
            if s.state != SlotState::Undispatched {
                continue;
            }
            s.state = if s.label == LIVE_RESPONSE {
                SlotState::Owed(receivers.to_vec())
            } else {
                match declared.get(&s.label) {
                    None => SlotState::Owed(Vec::new()),
                    Some(d) if receivers.contains(d) => SlotState::Owed(vec![*d]),
                    Some(_) => SlotState::Done(Resolution::Ack(Ack::weak(cid))),
                }
            };
        }
        self.finish_if_complete(cid);
    }

    /// Fills a slot the waiter owns (`twin-persisted`).
    pub fn fill_local(&mut self, cid: &str, token: u64, ack: &Ack) {
        let Some(e) = self.map.get_mut(cid).filter(|e| e.token == token) else {
            return;
        };
        for s in &mut e.slots {
            if s.state == SlotState::Local {
                s.state = SlotState::Done(Resolution::Ack(ack.clone()));
            }
        }
        self.finish_if_complete(cid);
    }

    /// An ack for `label` from the session that declared it.
    pub fn ack(&mut self, cid: &str, label: &str, from: u64, ack: Ack) -> Offer {
        let Some(e) = self.map.get_mut(cid) else {
            return Offer::Ignored;
        };
        let Some(s) = e.slots.iter_mut().find(|s| s.label == label) else {
            return Offer::Ignored;
        };
        match &s.state {
            SlotState::Owed(o) if o.contains(&from) => {}
            SlotState::Undispatched => {}
            _ => return Offer::Ignored,
        }
        s.state = SlotState::Done(Resolution::Ack(ack));
        self.finish_if_complete(cid);
        Offer::Accepted
    }

    /// A live command response / message response from session `from`: taken if `from`
    /// received the signal and the answer matches it; the first valid one wins.
    pub fn answer(&mut self, cid: &str, from: u64, env: Envelope) -> Offer {
        let Some(e) = self.map.get_mut(cid) else {
            return Offer::Ignored;
        };
        let Some(s) = e.slots.iter_mut().find(|s| s.label == LIVE_RESPONSE) else {
            return Offer::Ignored;
        };
        if !matches!(&s.state, SlotState::Owed(o) if o.contains(&from)) {
            return Offer::Ignored;
        }
        if let Some(Err(why)) = e.matcher.as_ref().map(|m| m(&env)) {
            e.invalid = Some(why);
            return Offer::Invalid;
        }
        s.state = SlotState::Done(Resolution::Answer(Box::new(env)));
        self.finish_if_complete(cid);
        Offer::Accepted
    }

    /// Removes an entry (timeout, waiter dropped); `None` if it already completed.
    pub fn take(&mut self, cid: &str, token: u64) -> Option<Entry> {
        if self.map.get(cid).is_some_and(|e| e.token == token) {
            self.map.remove(cid)
        } else {
            None
        }
    }

    /// A session ended: its own requests are dropped (nobody to answer), its declared labels
    /// freed, and it owes nothing any more (what only it owed times out, as in Ditto).
    pub fn session_closed(&mut self, session: u64) {
        self.declared.retain(|_, s| *s != session);
        self.map.retain(|_, e| e.requester != Some(session));
        for e in self.map.values_mut() {
            for s in &mut e.slots {
                if let SlotState::Owed(o) = &mut s.state {
                    o.retain(|x| *x != session);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Headers;

    fn env(status: u16) -> Envelope {
        let mut e =
            Envelope::parse(r#"{"topic":"a/b/things/live/commands/retrieve","path":"/"}"#).unwrap();
        e.status = Some(status);
        e
    }

    fn ack(status: u16) -> Ack {
        Ack {
            status,
            payload: None,
            headers: Headers::new(),
        }
    }

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn live_answer_from_a_receiver_completes_and_leaves_the_table() {
        let mut t = Table::new(4);
        let (tx, rx) = async_channel::bounded(1);
        let matcher: Matcher = Box::new(|e| match e.status {
            Some(200) => Ok(()),
            _ => Err("wrong".into()),
        });
        t.insert(
            "c1",
            Some(1),
            &labels(&["live-response"]),
            Some(matcher),
            tx,
        )
        .unwrap();
        assert_eq!(
            t.answer("c1", 2, env(200)),
            Offer::Ignored,
            "not dispatched"
        );
        t.dispatched("c1", &[2, 3]);
        assert_eq!(
            t.answer("c1", 9, env(200)),
            Offer::Ignored,
            "not a receiver"
        );
        assert_eq!(t.answer("c1", 2, env(500)), Offer::Invalid);
        assert_eq!(t.answer("c1", 3, env(200)), Offer::Accepted);
        assert!(t.is_empty());
        let slots = rx.try_recv().unwrap();
        assert!(
            matches!(&slots[0].state, SlotState::Done(Resolution::Answer(e)) if e.status == Some(200))
        );
        assert_eq!(
            t.answer("c1", 2, env(200)),
            Offer::Ignored,
            "later answers dropped"
        );
    }

    #[test]
    fn duplicates_bound_and_take() {
        let mut t = Table::new(2);
        let (tx, _rx) = async_channel::bounded(1);
        let tok = t
            .insert("a", None, &labels(&["x-1"]), None, tx.clone())
            .unwrap();
        let e = t
            .insert("a", None, &labels(&["x-1"]), None, tx.clone())
            .unwrap_err();
        assert_eq!(
            (e.status, &*e.error),
            (409, "acknowledgement:request.duplicate.correlation-id")
        );
        t.insert("b", None, &labels(&["x-1"]), None, tx.clone())
            .unwrap();
        let e = t
            .insert("c", None, &labels(&["x-1"]), None, tx)
            .unwrap_err();
        assert_eq!((e.status, &*e.error), (429, "too.many.requests"));
        assert!(
            t.take("a", tok + 100).is_none(),
            "a stale token takes nothing"
        );
        assert!(t.take("a", tok).is_some());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn custom_labels_owed_weak_or_open_until_timeout() {
        let mut t = Table::new(8);
        t.declare(5, &labels(&["got-it"])).unwrap();
        t.declare(6, &labels(&["filtered"])).unwrap();
        assert_eq!(t.declare(7, &labels(&["got-it"])).unwrap_err().status, 409);
        let (tx, rx) = async_channel::bounded(1);
        let tok = t
            .insert(
                "c",
                Some(1),
                &labels(&["twin-persisted", "got-it", "filtered", "nobody"]),
                None,
                tx,
            )
            .unwrap();
        t.dispatched("c", &[5]);
        assert_eq!(
            t.ack("c", "got-it", 6, ack(200)),
            Offer::Ignored,
            "not owed by 6"
        );
        assert_eq!(t.ack("c", "got-it", 5, ack(400)), Offer::Accepted);
        t.fill_local("c", tok, &ack(204));
        assert_eq!(t.len(), 1, "the undeclared label keeps it open");
        assert!(rx.try_recv().is_err());
        let e = t.take("c", tok).expect("taken at the timeout");
        let states: Vec<_> = e.slots.iter().map(|s| s.state.clone()).collect();
        assert_eq!(states[0], SlotState::Done(Resolution::Ack(ack(204))));
        assert_eq!(states[1], SlotState::Done(Resolution::Ack(ack(400))));
        assert_eq!(states[2], SlotState::Done(Resolution::Ack(Ack::weak("c"))));
        assert_eq!(states[3], SlotState::Owed(vec![]), "owed by nobody");
    }

    #[test]
    fn closing_sessions_owe_nothing_and_free_everything() {
        let mut t = Table::new(8);
        t.declare(5, &labels(&["l-5"])).unwrap();
        let (tx, rx) = async_channel::bounded(1);
        let tok = t
            .insert(
                "owed",
                Some(1),
                &labels(&["live-response", "l-5"]),
                Some(Box::new(|_| Ok(()))),
                tx,
            )
            .unwrap();
        t.dispatched("owed", &[5, 6]);
        let (tx2, rx2) = async_channel::bounded(1);
        t.insert(
            "mine",
            Some(5),
            &labels(&["live-response"]),
            Some(Box::new(|_| Ok(()))),
            tx2,
        )
        .unwrap();
        t.session_closed(5);
        assert!(
            rx2.try_recv().is_err() && rx2.is_closed(),
            "requester gone: dropped"
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.declarer("l-5"), None);
        assert_eq!(
            t.answer("owed", 5, env(200)),
            Offer::Ignored,
            "5 owes nothing"
        );
        t.session_closed(6);
        assert_eq!(t.len(), 1, "open until the timeout (Ditto)");
        assert!(rx.try_recv().is_err());
        let e = t.take("owed", tok).unwrap();
        assert!(e.slots.iter().all(|s| s.state == SlotState::Owed(vec![])));
        assert!(t.is_empty(), "nothing leaks");
    }
}
